#include "gateway/trace_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include "gateway/log.h"
#include "gateway/pg_trace_sink.h"
#include "gateway/time_format.h"
#include "gateway/trace_jsonl.h"
#include "gateway/trace_schema.h"

namespace smtpgate {

namespace {

// Rows per transaction: large enough that per-commit costs vanish, small enough that one
// transaction stays short and a failed batch loses little.
constexpr std::size_t kBatchRows = 5000;
constexpr auto kIdleWake = std::chrono::milliseconds(200);
constexpr auto kRetentionInterval = std::chrono::hours(1);
constexpr int kBusyTimeoutMs = 5000;
constexpr int64_t kDayMs = 86400000;
// Cluster mode: pauses between attempts while PostgreSQL is away.
constexpr auto kFirstRetry = std::chrono::milliseconds(100);
constexpr auto kMaxRetry = std::chrono::milliseconds(2000);

const char* const kInsertSession =
    "INSERT OR REPLACE INTO sessions (session_id, started_ms, ended_ms, day, listener, endpoint, "
    "client_ip, client_port, sni, ehlo, tls_version, tls_cipher, tls_max_offered, auth_user, "
    "tenant, rule, final_reply, messages) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
const char* const kInsertMessage =
    "INSERT INTO messages (session_id, received_ms, day, listener, endpoint, client_ip, ehlo, "
    "tls_version, tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule, reply, "
    "queue_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

int64_t nowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Binds parameters 1, 2, 3, ... in order and remembers the first failure.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* statement) : statement_(statement) {}
  Binder& text(const std::string& value) {
    // SQLITE_STATIC: the record outlives the step; the bytes are stored as they are (TEXT
    // holds client-controlled, possibly invalid UTF-8 without complaint).
    auto size =
        static_cast<int>(std::min<std::size_t>(value.size(), std::numeric_limits<int>::max()));
    check(sqlite3_bind_text(statement_, ++index_, value.data(), size, SQLITE_STATIC));
    return *this;
  }
  Binder& integer(int64_t value) {
    check(sqlite3_bind_int64(statement_, ++index_, value));
    return *this;
  }
  int rc() const { return rc_; }

 private:
  void check(int rc) {
    if (rc_ == SQLITE_OK) {
      rc_ = rc;
    }
  }
  sqlite3_stmt* statement_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

bool writeAll(int fd, const std::string& data, std::string& error) {
  std::size_t offset = 0;
  while (offset < data.size()) {
    ssize_t n = ::write(fd, data.data() + offset, data.size() - offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = std::strerror(errno);
      return false;
    }
    offset += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TraceStore::TraceStore(const Options& options) : options_(options) {}

std::unique_ptr<TraceStore> TraceStore::open(const Options& options, std::string& error) {
  std::unique_ptr<TraceStore> store(new TraceStore(options));
  if (!options.postgres.empty()) {
    store->options_.sqlite = false;
    store->postgres_ = std::make_unique<PgTraceSink>(options.postgres);
  }
  if (store->options_.sqlite && !store->openDatabase(error)) {
    return nullptr;
  }
  if (!options.eventsJsonl.empty() && !store->openJsonl(error)) {
    return nullptr;
  }
  if (store->options_.sqlite) {
    store->applyRetention();
  }
  store->writer_ = std::thread([s = store.get()] { s->writerLoop(); });
  return store;
}

TraceStore::~TraceStore() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
  }
  closeDatabase();
  if (jsonlFd_ > STDOUT_FILENO) {
    ::close(jsonlFd_);
  }
}

bool TraceStore::openDatabase(std::string& error) {
  const std::string& path = options_.databasePath;
  auto fail = [&](const std::string& why) {
    error = fmt::format("cannot open {}: {}", path, why);
    closeDatabase();
    return false;
  };
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::create_directories(parent, ec) && ec) {
    return fail(fmt::format("cannot create {}: {}", parent.string(), ec.message()));
  }
  // Created here rather than by SQLite so that the traces (addresses, user names) are not
  // world-readable; SQLite gives the -wal and -shm files the same mode.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return fail(std::strerror(errno));
  }
  ::close(fd);
  int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    return fail(db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  std::string why;
  // WAL: the report reads while the writer writes. synchronous=NORMAL: a power cut may lose
  // the last transactions but never corrupts the file, and commits do not fsync.
  if (!exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", why) ||
      !exec(trace_schema::kCreate, why)) {
    return fail(why);
  }
  sqlite3_stmt* select = nullptr;
  rc = sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &select,
                          nullptr);
  if (rc != SQLITE_OK) {
    return fail(sqlite3_errmsg(db_));
  }
  std::string version;
  if (sqlite3_step(select) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(select, 0);
    version = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(select);
  if (version.empty()) {
    if (!exec(fmt::format("INSERT INTO meta (key, value) VALUES ('schema_version', '{}')",
                          trace_schema::kVersion)
                  .c_str(),
              why)) {
      return fail(why);
    }
  } else if (version != std::to_string(trace_schema::kVersion)) {
    return fail(fmt::format("schema version {} (this smtpgate uses version {})", version,
                            trace_schema::kVersion));
  }
  if (sqlite3_prepare_v3(db_, kInsertSession, -1, SQLITE_PREPARE_PERSISTENT, &insertSession_,
                         nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db_, kInsertMessage, -1, SQLITE_PREPARE_PERSISTENT, &insertMessage_,
                         nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db_));
  }
  return true;
}

bool TraceStore::openJsonl(std::string& error) {
  if (options_.eventsJsonl == "-") {
    jsonlFd_ = STDOUT_FILENO;
    return true;
  }
  jsonlFd_ = ::open(options_.eventsJsonl.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (jsonlFd_ < 0) {
    error = fmt::format("cannot open {}: {}", options_.eventsJsonl, std::strerror(errno));
    return false;
  }
  return true;
}

void TraceStore::closeDatabase() {
  sqlite3_finalize(insertSession_);
  sqlite3_finalize(insertMessage_);
  insertSession_ = nullptr;
  insertMessage_ = nullptr;
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

bool TraceStore::exec(const char* sql, std::string& error) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    error = message != nullptr ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return false;
  }
  return true;
}

void TraceStore::record(SessionTrace trace) {
  push(Item(std::in_place_type<SessionTrace>, std::move(trace)));
}

void TraceStore::record(MessageTrace trace) {
  push(Item(std::in_place_type<MessageTrace>, std::move(trace)));
}

void TraceStore::push(Item item) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    // Records the writer holds count too: memory stays bounded even while a batch is slow.
    if (accepted_ - finished_ >= options_.queueLimit) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      if (!dropping_.exchange(true)) {
        log::error(
            "trace store: {} records are waiting to be written; dropping new records "
            "(counted in smtpgate_trace_dropped_total)",
            options_.queueLimit);
      }
      return;
    }
    queue_.push_back(std::move(item));
    ++accepted_;
    // Below a full batch the writer comes by itself within kIdleWake: no wake-up per record.
    wake = queue_.size() == kBatchRows;
  }
  if (wake) {
    wake_.notify_one();
  }
}

void TraceStore::flush() {
  std::unique_lock lock(mutex_);
  uint64_t target = accepted_;
  ++flushWaiters_;
  wake_.notify_one();
  done_.wait(lock, [&] { return finished_ >= target || outage_.load(); });
  --flushWaiters_;
}

std::size_t TraceStore::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(accepted_ - finished_);
}

void TraceStore::pauseWriterForTesting(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  wake_.notify_one();
}

void TraceStore::writerLoop() {
  auto nextRetention = std::chrono::steady_clock::now() + kRetentionInterval;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, kIdleWake, [this] {
      return stopping_ ||
             (!paused_ && (queue_.size() >= kBatchRows || (flushWaiters_ > 0 && !queue_.empty())));
    });
    if (paused_ && !stopping_) {
      continue;
    }
    if (queue_.empty() && stopping_) {
      break;
    }
    // Take everything in O(1) and write it outside the lock, in transactions of kBatchRows.
    std::deque<Item> batch;
    batch.swap(queue_);
    lock.unlock();
    for (std::size_t begin = 0; begin < batch.size(); begin += kBatchRows) {
      std::size_t end = std::min(batch.size(), begin + kBatchRows);
      writeBatch(batch, begin, end);
      {
        std::lock_guard finished(mutex_);
        finished_ += end - begin;
      }
      done_.notify_all();
    }
    batch.clear();  // frees the records outside the lock
    if ((options_.sqlite || postgres_) && std::chrono::steady_clock::now() >= nextRetention) {
      nextRetention = std::chrono::steady_clock::now() + kRetentionInterval;
      applyRetention();
    }
    lock.lock();
  }
}

void TraceStore::writeBatch(std::deque<Item>& items, std::size_t begin, std::size_t end) {
  uint64_t count = end - begin;
  bool stored = true;
  if (options_.sqlite) {
    stored = insertBatch(items, begin, end);
  } else if (postgres_) {
    stored = insertPostgres(items, begin, end);
  }
  if (jsonlFd_ >= 0) {
    std::string text;
    for (std::size_t i = begin; i < end; ++i) {
      std::visit([&text](const auto& trace) { trace_jsonl::appendLine(text, trace); }, items[i]);
    }
    std::string error;
    // One write(2) for the whole batch: other threads' lines on stdout never land inside ours.
    if (!writeAll(jsonlFd_, text, error)) {
      log::error("trace store: cannot write {}: {}",
                 jsonlFd_ == STDOUT_FILENO ? "stdout" : options_.eventsJsonl, error);
      // Without the database the stream is the store: its records are lost.
      stored = stored && (options_.sqlite || postgres_);
    }
  }
  (stored ? written_ : dropped_).fetch_add(count, std::memory_order_relaxed);
}

bool TraceStore::insertBatch(std::deque<Item>& items, std::size_t begin, std::size_t end) {
  std::string error;
  // IMMEDIATE: take the write lock now (waiting up to the busy timeout), not halfway through.
  if (!exec("BEGIN IMMEDIATE", error)) {
    log::error("trace store: {}: cannot begin a transaction: {}", options_.databasePath, error);
    return false;
  }
  for (std::size_t i = begin; i < end; ++i) {
    bool ok = std::visit([this](const auto& trace) { return insert(trace); }, items[i]);
    if (!ok) {
      log::error("trace store: {}: {} records not written: {}", options_.databasePath, end - begin,
                 sqlite3_errmsg(db_));
      exec("ROLLBACK", error);
      return false;
    }
  }
  if (!exec("COMMIT", error)) {
    log::error("trace store: {}: {} records not written: {}", options_.databasePath, end - begin,
               error);
    exec("ROLLBACK", error);
    return false;
  }
  return true;
}

bool TraceStore::insert(const SessionTrace& t) {
  sqlite3_stmt* s = insertSession_;
  std::string day = utcDay(t.startedMs);
  Binder bind(s);
  bind.text(t.sessionId)
      .integer(t.startedMs)
      .integer(t.endedMs)
      .text(day)
      .text(t.listener)
      .text(t.endpoint)
      .text(t.clientIp)
      .integer(t.clientPort)
      .text(t.sni)
      .text(t.ehlo)
      .text(t.tlsVersion)
      .text(t.tlsCipher)
      .text(t.tlsMaxOffered)
      .text(t.authUser)
      .text(t.tenant)
      .text(t.rule)
      .text(t.finalReply)
      .integer(t.messages);
  bool ok = bind.rc() == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ok;
}

bool TraceStore::insert(const MessageTrace& t) {
  sqlite3_stmt* s = insertMessage_;
  std::string day = utcDay(t.receivedMs);
  Binder bind(s);
  bind.text(t.sessionId)
      .integer(t.receivedMs)
      .text(day)
      .text(t.listener)
      .text(t.endpoint)
      .text(t.clientIp)
      .text(t.ehlo)
      .text(t.tlsVersion)
      .text(t.tlsCipher)
      .text(t.authUser)
      .text(t.tenant)
      .text(t.sender)
      .integer(t.rcptCount)
      .integer(static_cast<int64_t>(std::min<uint64_t>(t.size, INT64_MAX)))
      .text(t.rule)
      .text(t.reply)
      .text(t.queueId);
  bool ok = bind.rc() == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ok;
}

void TraceStore::setOutage(bool down) {
  {
    std::lock_guard lock(mutex_);
    outage_ = down;
  }
  done_.notify_all();  // flush() does not wait for a database that is away
}

bool TraceStore::insertPostgres(std::deque<Item>& items, std::size_t begin, std::size_t end) {
  if (giveUpAt_ && std::chrono::steady_clock::now() >= *giveUpAt_) {
    // The grace period of a stop during an outage is over: the batches still queued are lost
    // without another connection attempt each (a blackholed database would hold every one
    // for its connect_timeout, past systemd's and Kubernetes' stop deadlines).
    log::error("trace store: stopping while PostgreSQL is away: {} records lost", end - begin);
    return false;  // counted as dropped by writeBatch
  }
  std::vector<const SessionTrace*> sessions;
  std::vector<const MessageTrace*> messages;
  for (std::size_t i = begin; i < end; ++i) {
    if (const auto* s = std::get_if<SessionTrace>(&items[i])) {
      sessions.push_back(s);
    } else {
      messages.push_back(&std::get<MessageTrace>(items[i]));
    }
  }
  auto pauseFor = kFirstRetry;
  const auto downSince = std::chrono::steady_clock::now();
  for (;;) {
    std::string error;
    const PgWrite result = postgres_->write(sessions, messages, error);
    if (result == PgWrite::Committed) {
      if (outage_) {
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now() - downSince)
                                 .count();
        log::info("trace store: PostgreSQL is back after {} s; {} records dropped so far", seconds,
                  dropped_.load());
        dropping_ = false;
        setOutage(false);
      }
      return true;
    }
    if (result == PgWrite::Refused) {
      log::error("trace store: PostgreSQL refused {} records: {}", end - begin, error);
      return false;
    }
    if (!outage_) {
      log::error(
          "trace store: PostgreSQL unavailable, holding up to {} records in memory and "
          "retrying: {}",
          options_.queueLimit, error);
      setOutage(true);
    }
    std::unique_lock lock(mutex_);
    // One grace period for the whole queue, not one per batch.
    if (stopping_ && !giveUpAt_) {
      giveUpAt_ = std::chrono::steady_clock::now() + options_.stopRetry;
    }
    if (giveUpAt_ && std::chrono::steady_clock::now() >= *giveUpAt_) {
      log::error("trace store: stopping while PostgreSQL is away: {} records lost", end - begin);
      return false;  // counted as dropped by writeBatch
    }
    wake_.wait_for(lock, pauseFor);
    pauseFor =
        std::min(pauseFor * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxRetry));
  }
}

void TraceStore::applyRetention() {
  int64_t cutoff = nowMs() - static_cast<int64_t>(options_.retentionDays) * kDayMs;
  std::string error;
  if (postgres_) {
    int64_t deleted = 0;
    if (!postgres_->deleteBefore(cutoff, deleted, error)) {
      log::error("trace store: PostgreSQL retention: {}", error);
    } else if (deleted > 0) {
      log::info("trace store: deleted {} records older than {} days", deleted,
                options_.retentionDays);
    }
    return;
  }
  if (!exec("BEGIN IMMEDIATE", error)) {
    log::error("trace store: {}: retention: {}", options_.databasePath, error);
    return;
  }
  int64_t deleted = 0;
  for (const char* sql : {"DELETE FROM sessions WHERE started_ms < ?1",
                          "DELETE FROM messages WHERE received_ms < ?1"}) {
    sqlite3_stmt* s = nullptr;
    bool ok = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK &&
              sqlite3_bind_int64(s, 1, cutoff) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
    sqlite3_finalize(s);
    if (!ok) {
      log::error("trace store: {}: retention: {}", options_.databasePath, sqlite3_errmsg(db_));
      exec("ROLLBACK", error);
      return;
    }
    deleted += sqlite3_changes(db_);
  }
  if (!exec("COMMIT", error)) {
    log::error("trace store: {}: retention: {}", options_.databasePath, error);
    exec("ROLLBACK", error);
    return;
  }
  if (deleted > 0) {
    log::info("trace store: deleted {} records older than {} days", deleted,
              options_.retentionDays);
  }
}

}  // namespace smtpgate
