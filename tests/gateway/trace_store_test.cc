#include "gateway/time_format.h"
#include "gateway/trace_store.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/trace_jsonl.h"
#include "gateway/trace_schema.h"
#include "tests/gateway/config_fixtures.h"

using namespace smtpgate;
using smtpgate::testing::TempDir;

namespace {

constexpr int64_t kNovember27 = 1795817647123;  // 2026-11-27T22:14:07.123Z
constexpr int64_t kDayMs = 86400000;

int64_t nowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SessionTrace session(std::string id, int64_t startedMs) {
  SessionTrace t;
  t.sessionId = std::move(id);
  t.startedMs = startedMs;
  t.endedMs = startedMs + 1500;
  t.listener = "legacy-starttls";
  t.endpoint = "legacy";
  t.clientIp = "192.0.2.10";
  t.clientPort = 50122;
  t.sni = "smtp-legacy.example.com";
  t.ehlo = "printer.contoso.com";
  t.tlsVersion = "1.0";
  t.tlsCipher = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
  t.tlsMaxOffered = "1.0";
  t.authUser = "alice@contoso.com";
  t.tenant = "contoso";
  t.rule = "D8";
  t.finalReply = "221 2.0.0 Bye";
  t.messages = 1;
  return t;
}

MessageTrace message(std::string sessionId, int64_t receivedMs) {
  MessageTrace t;
  t.sessionId = std::move(sessionId);
  t.receivedMs = receivedMs;
  t.listener = "strict-starttls";
  t.endpoint = "strict";
  t.clientIp = "2001:db8::5";
  t.ehlo = "mua.example";
  t.tlsVersion = "1.3";
  t.tlsCipher = "TLS_AES_128_GCM_SHA256";
  t.authUser = "bob@fabrikam.com";
  t.tenant = "fabrikam";
  t.sender = "bob@fabrikam.com";
  t.rcptCount = 3;
  t.size = 123456;
  t.rule = "D8";
  t.reply = "250 2.0.0 Ok: queued as 4Xc";
  t.queueId = "4Xc";
  return t;
}

// A second, independent connection to the database, as the report would open it.
class Db {
 public:
  explicit Db(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  }
  ~Db() { sqlite3_close(db_); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out = "<no row>";
    if (sqlite3_step(s) == SQLITE_ROW) {
      auto* p = sqlite3_column_text(s, 0);
      out = p != nullptr ? reinterpret_cast<const char*>(p) : "<null>";
    }
    sqlite3_finalize(s);
    return out;
  }
  int64_t integer(const std::string& sql) { return std::stoll(text(sql)); }
  void exec(const std::string& sql) {
    REQUIRE(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }

 private:
  sqlite3* db_ = nullptr;
};

std::unique_ptr<TraceStore> openStore(const TraceStore::Options& options) {
  std::string error;
  auto store = TraceStore::open(options, error);
  INFO(error);
  REQUIRE(store != nullptr);
  return store;
}

TraceStore::Options optionsIn(const TempDir& dir) {
  TraceStore::Options o;
  o.databasePath = dir.path + "/state/traces.sqlite";
  return o;
}

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

unsigned modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("trace text: UTC day and time") {
  CHECK(utcDay(0) == "1970-01-01");
  CHECK(utcDay(-1) == "1969-12-31");  // floor, not truncation
  CHECK(utcDay(kNovember27) == "2026-11-27");
  CHECK(utcDay(1795823999999) == "2026-11-27");
  CHECK(utcDay(1795823999999 + 1) == "2026-11-28");
  CHECK(isoUtcMillis(kNovember27) == "2026-11-27T22:14:07.123Z");
  CHECK(isoUtcMillis(0) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("trace store: records are written with every field and their day") {
  TempDir dir;
  auto options = optionsIn(dir);  // state/ does not exist yet: open() creates it
  auto store = openStore(options);
  store->record(session("s1", kNovember27));
  auto m = message("s1", kNovember27 + 1000);
  m.size = 40000000000ull;
  store->record(m);
  store->flush();
  CHECK(store->written() == 2);
  CHECK(store->dropped() == 0);
  CHECK(store->queued() == 0);
  CHECK(modeOf(options.databasePath) == 0640);

  Db db(options.databasePath);
  CHECK(db.text("PRAGMA journal_mode") == "wal");
  CHECK(db.text("SELECT value FROM meta WHERE key = 'schema_version'") ==
        std::to_string(trace_schema::kVersion));
  CHECK(db.integer("SELECT count(*) FROM sessions") == 1);
  CHECK(db.text("SELECT session_id || '|' || started_ms || '|' || ended_ms || '|' || day || '|' || "
                "listener || '|' || endpoint || '|' || client_ip || '|' || client_port || '|' || "
                "sni || '|' || ehlo || '|' || tls_version || '|' || tls_cipher || '|' || "
                "tls_max_offered || '|' || auth_user || '|' || tenant || '|' || rule || '|' || "
                "final_reply || '|' || messages FROM sessions") ==
        "s1|1795817647123|1795817648623|2026-11-27|legacy-starttls|legacy|192.0.2.10|50122|"
        "smtp-legacy.example.com|printer.contoso.com|1.0|TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA|1.0|"
        "alice@contoso.com|contoso|D8|221 2.0.0 Bye|1");
  CHECK(db.integer("SELECT count(*) FROM messages") == 1);
  CHECK(db.text("SELECT session_id || '|' || received_ms || '|' || day || '|' || listener || '|' "
                "|| endpoint || '|' || client_ip || '|' || ehlo || '|' || tls_version || '|' || "
                "tls_cipher || '|' || auth_user || '|' || tenant || '|' || sender || '|' || "
                "rcpt_count || '|' || size || '|' || rule || '|' || reply || '|' || queue_id "
                "FROM messages") ==
        "s1|1795817648123|2026-11-27|strict-starttls|strict|2001:db8::5|mua.example|1.3|"
        "TLS_AES_128_GCM_SHA256|bob@fabrikam.com|fabrikam|bob@fabrikam.com|3|40000000000|D8|"
        "250 2.0.0 Ok: queued as 4Xc|4Xc");
}

TEST_CASE("trace store: a session id is one row, the last record wins") {
  TempDir dir;
  auto options = optionsIn(dir);
  auto store = openStore(options);
  store->record(session("s1", kNovember27));
  auto later = session("s1", kNovember27);
  later.messages = 7;
  later.finalReply = "421 4.7.66 TLS 1.0 and 1.1 are not supported.";
  store->record(later);
  store->record(session("s2", kNovember27));
  store->flush();
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM sessions") == 2);
  CHECK(db.text("SELECT messages || ' ' || final_reply FROM sessions WHERE session_id = 's1'") ==
        "7 421 4.7.66 TLS 1.0 and 1.1 are not supported.");
}

TEST_CASE("trace store: flush returns once everything queued is committed") {
  TempDir dir;
  auto options = optionsIn(dir);
  auto store = openStore(options);
  store->flush();  // nothing queued: returns at once
  for (int i = 0; i < 12345; ++i) {
    store->record(message(fmt::format("s{}", i), nowMs()));
  }
  store->flush();
  CHECK(store->queued() == 0);
  CHECK(store->written() == 12345);
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM messages") == 12345);
  // Text that SQL would choke on is stored as it is (bound, never spliced).
  auto m = message("quote'\"; DROP TABLE messages; --", nowMs());
  m.ehlo = std::string("bad\xff\xfe utf8\0nul", 14);
  store->record(m);
  store->flush();
  CHECK(db.integer("SELECT count(*) FROM messages") == 12346);
  CHECK(db.integer("SELECT length(CAST(ehlo AS BLOB)) FROM messages WHERE session_id LIKE "
                   "'quote%'") == 14);
}

TEST_CASE("trace store: records from many threads all arrive") {
  TempDir dir;
  auto options = optionsIn(dir);
  auto store = openStore(options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 10000; ++i) {
        if (i % 2 == 0) {
          store->record(message(fmt::format("t{}-{}", t, i), nowMs()));
        } else {
          store->record(session(fmt::format("t{}-{}", t, i), nowMs()));
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  store->flush();
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM messages") == 20000);
  CHECK(db.integer("SELECT count(*) FROM sessions") == 20000);
  CHECK(store->written() == 40000);
}

TEST_CASE("trace store: nothing flushed or queued is lost across a restart") {
  TempDir dir;
  auto options = optionsIn(dir);
  {
    auto store = openStore(options);
    for (int i = 0; i < 10; ++i) {
      store->record(message("a", nowMs()));
    }
    store->flush();
    // Queued right before the destructor: it drains and commits them.
    for (int i = 0; i < 5; ++i) {
      store->record(message("b", nowMs()));
    }
    store->record(session("b", nowMs()));
  }
  {
    auto store = openStore(options);  // the existing schema is accepted
    Db db(options.databasePath);
    CHECK(db.integer("SELECT count(*) FROM messages WHERE session_id = 'a'") == 10);
    CHECK(db.integer("SELECT count(*) FROM messages WHERE session_id = 'b'") == 5);
    CHECK(db.integer("SELECT count(*) FROM sessions") == 1);
    store->record(message("c", nowMs()));
  }
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM messages") == 16);
  CHECK(db.integer("SELECT count(*) FROM meta") == 1);
}

TEST_CASE("trace store: retention deletes old rows at open, keeps recent ones") {
  TempDir dir;
  auto options = optionsIn(dir);
  options.retentionDays = 3650;
  int64_t now = nowMs();
  {
    auto store = openStore(options);
    store->record(session("old", now - 3 * kDayMs));
    store->record(message("old", now - 3 * kDayMs));
    store->record(session("edge", now - 2 * kDayMs + 60000));  // inside 2 days, not 1
    store->record(session("new", now - 60000));
    store->record(message("new", now - 60000));
  }
  options.retentionDays = 2;
  {
    auto store = openStore(options);
    Db db(options.databasePath);
    CHECK(db.text("SELECT group_concat(session_id) FROM sessions ORDER BY session_id") ==
          "edge,new");
    CHECK(db.text("SELECT group_concat(session_id) FROM messages") == "new");
  }
  options.retentionDays = 1;
  auto store = openStore(options);
  Db db(options.databasePath);
  CHECK(db.text("SELECT group_concat(session_id) FROM sessions") == "new");
  CHECK(db.text("SELECT group_concat(session_id) FROM messages") == "new");
}

TEST_CASE("trace store: a full queue drops and counts, record() does not wait") {
  TempDir dir;
  auto options = optionsIn(dir);
  options.queueLimit = 10;
  auto store = openStore(options);
  store->pauseWriterForTesting(true);
  for (int i = 0; i < 15; ++i) {
    store->record(message(std::to_string(i), nowMs()));
  }
  CHECK(store->queued() == 10);
  CHECK(store->dropped() == 5);
  CHECK(store->written() == 0);
  store->pauseWriterForTesting(false);
  store->flush();
  CHECK(store->queued() == 0);
  CHECK(store->written() == 10);
  CHECK(store->dropped() == 5);
  // Room again once the writer caught up.
  store->record(message("late", nowMs()));
  store->flush();
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM messages") == 11);
  CHECK(db.text("SELECT group_concat(session_id) FROM messages WHERE session_id IN ('9', '10')") ==
        "9");
}

TEST_CASE("trace store: SQLite errors while writing are counted as dropped") {
  TempDir dir;
  auto options = optionsIn(dir);
  auto store = openStore(options);
  store->record(message("before", nowMs()));
  store->flush();
  Db db(options.databasePath);
  db.exec("DROP TABLE messages");  // under the writer's prepared statement
  store->record(message("lost", nowMs()));
  store->record(message("lost", nowMs()));
  store->flush();
  CHECK(store->dropped() == 2);
  CHECK(store->written() == 1);
  // The writer goes on; sessions are still written.
  store->record(session("after", nowMs()));
  store->flush();
  CHECK(store->written() == 2);
  CHECK(db.integer("SELECT count(*) FROM sessions") == 1);
}

TEST_CASE("trace store: open() fails with the path and the reason") {
  TempDir dir;
  std::string error;
  TraceStore::Options options;

  dir.write("plain", "not a directory");
  options.databasePath = dir.path + "/plain/traces.sqlite";
  CHECK(TraceStore::open(options, error) == nullptr);
  CHECK(error.rfind("cannot open " + options.databasePath + ": ", 0) == 0);

  dir.write("garbage.sqlite", std::string(4096, 'x'));
  options.databasePath = dir.path + "/garbage.sqlite";
  CHECK(TraceStore::open(options, error) == nullptr);
  CHECK(error == "cannot open " + options.databasePath + ": file is not a database");

  options = optionsIn(dir);
  {
    openStore(options);
  }
  Db(options.databasePath).exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  CHECK(TraceStore::open(options, error) == nullptr);
  CHECK(error == "cannot open " + options.databasePath +
                     ": schema version 99 (this smtpgate uses version 1)");

  options = optionsIn(dir);
  options.databasePath = dir.path + "/fresh.sqlite";
  options.eventsJsonl = dir.path + "/no/such/dir/events.jsonl";
  CHECK(TraceStore::open(options, error) == nullptr);
  CHECK(error == "cannot open " + options.eventsJsonl + ": No such file or directory");
}

TEST_CASE("trace store: JSON lines, one valid object per record") {
  TempDir dir;
  auto options = optionsIn(dir);
  options.eventsJsonl = dir.path + "/events.jsonl";
  dir.write("events.jsonl", "{\"type\": \"earlier\"}\n");  // appended to, not truncated
  {
    auto store = openStore(options);
    auto s = session("s1", kNovember27);
    s.ehlo = "bad\xff utf8 \"quoted\"\r\n";  // client-controlled
    store->record(s);
    store->record(message("s1", kNovember27 + 5));
    store->flush();
  }
  auto lines = readLines(options.eventsJsonl);
  REQUIRE(lines.size() == 3);
  auto s = nlohmann::json::parse(lines[1]);
  CHECK(s["type"] == "session");
  CHECK(s["session_id"] == "s1");
  CHECK(s["started_ms"] == kNovember27);
  CHECK(s["ended_ms"] == kNovember27 + 1500);
  CHECK(s["client_ip"] == "192.0.2.10");
  CHECK(s["client_port"] == 50122);
  CHECK(s["sni"] == "smtp-legacy.example.com");
  CHECK(s["ehlo"] == "bad\xef\xbf\xbd utf8 \"quoted\"\r\n");  // U+FFFD for the bad byte
  CHECK(s["tls_version"] == "1.0");
  CHECK(s["tls_max_offered"] == "1.0");
  CHECK(s["auth_user"] == "alice@contoso.com");
  CHECK(s["tenant"] == "contoso");
  CHECK(s["rule"] == "D8");
  CHECK(s["final_reply"] == "221 2.0.0 Bye");
  CHECK(s["messages"] == 1);
  CHECK(s["day"] == "2026-11-27");
  CHECK(s["time"] == "2026-11-27T22:14:07.123Z");
  auto m = nlohmann::json::parse(lines[2]);
  CHECK(m["type"] == "message");
  CHECK(m["received_ms"] == kNovember27 + 5);
  CHECK(m["sender"] == "bob@fabrikam.com");
  CHECK(m["rcpt_count"] == 3);
  CHECK(m["size"] == 123456);
  CHECK(m["queue_id"] == "4Xc");
  CHECK(m["tls_cipher"] == "TLS_AES_128_GCM_SHA256");
  CHECK(m["time"] == "2026-11-27T22:14:07.128Z");
  CHECK(modeOf(options.databasePath) == 0640);

  // "store": "none": the stream alone, no database file.
  TraceStore::Options streamOnly;
  streamOnly.sqlite = false;
  streamOnly.eventsJsonl = dir.path + "/only.jsonl";
  {
    auto store = openStore(streamOnly);
    for (int i = 0; i < 3; ++i) {
      store->record(message(std::to_string(i), kNovember27));
    }
    store->flush();
    CHECK(store->written() == 3);
  }
  CHECK(modeOf(streamOnly.eventsJsonl) == 0640);
  lines = readLines(streamOnly.eventsJsonl);
  REQUIRE(lines.size() == 3);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CHECK(nlohmann::json::parse(lines[i])["session_id"] == std::to_string(i));
  }
}

TEST_CASE("trace store: 100,000 records from one thread (latency printed, not asserted)") {
  TempDir dir;
  auto options = optionsIn(dir);
  auto store = openStore(options);
  constexpr int kRecords = 100000;
  std::vector<MessageTrace> records;
  records.reserve(kRecords);
  for (int i = 0; i < kRecords; ++i) {
    records.push_back(message(fmt::format("s{}", i), nowMs()));
  }
  std::vector<double> micros;
  micros.reserve(kRecords);
  auto begin = std::chrono::steady_clock::now();
  for (auto& r : records) {
    auto t0 = std::chrono::steady_clock::now();
    store->record(std::move(r));
    auto t1 = std::chrono::steady_clock::now();
    micros.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  auto pushed = std::chrono::steady_clock::now();
  store->flush();
  auto flushed = std::chrono::steady_clock::now();
  std::sort(micros.begin(), micros.end());
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  WARN(fmt::format(
      "record() latency over {} calls: median {:.2f} us, p99 {:.2f} us, p99.9 {:.2f} us, "
      "max {:.1f} us; pushing took {:.0f} ms, flush() {:.0f} ms more",
      kRecords, micros[kRecords / 2], micros[kRecords * 99 / 100], micros[kRecords * 999 / 1000],
      micros.back(), ms(pushed - begin), ms(flushed - pushed)));
  CHECK(store->dropped() == 0);
  CHECK(store->written() == kRecords);
  Db db(options.databasePath);
  CHECK(db.integer("SELECT count(*) FROM messages") == kRecords);
}

TEST_CASE("trace store: while PostgreSQL is away records wait within the bound, the rest is counted") {
  TraceStore::Options options;
  // Nothing listens on port 1 of loopback: every attempt is refused at once.
  options.postgres = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1";
  options.queueLimit = 10;
  options.stopRetry = std::chrono::milliseconds(300);
  std::string error;
  auto store = TraceStore::open(options, error);
  REQUIRE(store != nullptr);
  for (int i = 0; i < 15; ++i) {
    SessionTrace t;
    t.sessionId = fmt::format("s{}", i);
    store->record(std::move(t));
  }
  CHECK(store->dropped() == 5);
  CHECK(store->queued() == 10);
  // flush() returns once the store is found away instead of waiting for it.
  const auto started = std::chrono::steady_clock::now();
  store->flush();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  CHECK_FALSE(store->storeAvailable());
  CHECK(store->written() == 0);
  CHECK(store->queued() == 10);  // held, not lost
  store.reset();                 // gives up after stopRetry: nothing hangs
}
