#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <chrono>
#include <string>
#include <thread>
#include <variant>

#include "gateway/trace_record.h"

struct sqlite3;
namespace smtpgate {
class PgTraceSink;
}
struct sqlite3_stmt;

namespace smtpgate {

// SPEC section 7: the trace store. Event-loop threads hand records to record(), which only
// queues them; one writer thread commits them to SQLite (STATE_DIR/traces.sqlite, schema in
// gateway/trace_schema.h) in batches, one transaction per batch, and streams them as JSON lines
// when asked to. A full queue drops records (counted) rather than slowing a connection down.
class TraceStore {
 public:
  struct Options {
    std::string databasePath;     // STATE_DIR/traces.sqlite; parent directories are created
    uint32_t retentionDays = 90;  // older rows are deleted at open and then hourly
    std::string eventsJsonl;      // "" = off, "-" = stdout, else a file appended to (0640)
    std::size_t queueLimit = 200000;
    bool sqlite = true;           // false: JSON lines only ("store": "none")
    // Cluster mode: a libpq connection string; the records go to PostgreSQL instead of SQLite.
    // While it is away they stay queued (queueLimit is then the outage buffer) and the writer
    // retries with a growing pause; flush() stops waiting for them.
    std::string postgres;
    // Cluster mode: how long a stopping store keeps retrying before it counts the rest as lost.
    std::chrono::milliseconds stopRetry{10000};
  };

  // Creates the directories, the database and its schema (WAL, synchronous=NORMAL), applies
  // the retention once and starts the writer thread. nullptr with `error` set
  // ("cannot open /var/lib/smtpgate/traces.sqlite: ...") when the database or the JSON-lines
  // file cannot be opened.
  static std::unique_ptr<TraceStore> open(const Options& options, std::string& error);
  // Drains the queue, commits, joins the writer.
  ~TraceStore();
  TraceStore(const TraceStore&) = delete;
  TraceStore& operator=(const TraceStore&) = delete;

  // Thread-safe and never waits for the disk: a push under a mutex. When queueLimit records
  // are pending, the record is dropped and counted.
  void record(SessionTrace trace);
  void record(MessageTrace trace);
  // Blocks until every record queued before the call is committed (or counted as dropped), or
  // PostgreSQL is found away (cluster mode).
  void flush();
  // False while the cluster store cannot be written (records are being held in memory).
  bool storeAvailable() const { return !outage_.load(std::memory_order_relaxed); }

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::size_t queued() const;  // accepted, not yet committed

  // Tests only: while paused the writer takes nothing from the queue (flush() would wait).
  void pauseWriterForTesting(bool paused);

 private:
  using Item = std::variant<SessionTrace, MessageTrace>;

  explicit TraceStore(const Options& options);
  bool openDatabase(std::string& error);
  bool openJsonl(std::string& error);
  void push(Item item);
  void writerLoop();
  void writeBatch(std::deque<Item>& items, std::size_t begin, std::size_t end);
  bool insertBatch(std::deque<Item>& items, std::size_t begin, std::size_t end);
  // Cluster mode: retries until committed; false when refused or given up at shutdown.
  bool insertPostgres(std::deque<Item>& items, std::size_t begin, std::size_t end);
  void setOutage(bool down);
  bool insert(const SessionTrace& t);
  bool insert(const MessageTrace& t);
  void writeJsonl(const std::deque<Item>& items, std::size_t begin, std::size_t end);
  void applyRetention();
  bool exec(const char* sql, std::string& error);
  void closeDatabase();

  Options options_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insertSession_ = nullptr;
  sqlite3_stmt* insertMessage_ = nullptr;
  int jsonlFd_ = -1;  // 1 for stdout (not closed)
  std::unique_ptr<PgTraceSink> postgres_;
  std::optional<std::chrono::steady_clock::time_point> giveUpAt_;  // writer thread only

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer: a full batch, a flush, shutdown, unpause
  std::condition_variable done_;  // flush(): a batch was finished
  std::deque<Item> queue_;
  uint64_t accepted_ = 0;  // records ever queued
  uint64_t finished_ = 0;  // of those, committed or dropped by the writer
  std::size_t flushWaiters_ = 0;
  bool stopping_ = false;
  bool paused_ = false;

  std::atomic<bool> outage_{false};
  std::atomic<bool> dropping_{false};  // a drop was logged; logged again after the next recovery
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> written_{0};
  std::thread writer_;
};

}  // namespace smtpgate
