#include "gateway/time_format.h"
#include "gateway/report.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gateway/trace_schema.h"

using namespace smtpgate;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

constexpr int64_t kDay1 = 1795651200000;  // 2026-11-26T00:00:00Z
constexpr int64_t kDay2 = kDay1 + 86400000;
constexpr int64_t kHour = 3600000;

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/smtpgate-report-test-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Session {
  std::string id;
  int64_t startedMs;
  std::string endpoint;
  std::string clientIp;
  std::string ehlo;
  std::string tls;
  std::string authUser;
  std::string tenant;
  std::string rule;
  int messages;
  std::string sender;  // of each of its messages
};

// A trace database written with plain SQL (not TraceStore), the schema of trace_schema.h.
class TraceDb {
 public:
  explicit TraceDb(const std::string& path) : path_(path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    exec(trace_schema::kCreate);
  }
  ~TraceDb() { sqlite3_close(db_); }

  void exec(const std::string& sql) {
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    INFO((message ? message : ""));
    sqlite3_free(message);
    REQUIRE(rc == SQLITE_OK);
  }

  void add(const Session& s) {
    const std::string day = utcDay(s.startedMs);
    run("INSERT INTO sessions VALUES (?, ?, ?, ?, 'l1', ?, ?, 40000, '', ?, ?, 'CIPHER', ?, ?, ?,"
        " ?, '250 ok', ?)",
        {s.id, std::to_string(s.startedMs), std::to_string(s.startedMs + 60000), day, s.endpoint,
         s.clientIp, s.ehlo, s.tls, s.tls, s.authUser, s.tenant, s.rule,
         std::to_string(s.messages)});
    for (int n = 0; n < s.messages; ++n) {
      int64_t at = s.startedMs + 1000 * (n + 1);
      run("INSERT INTO messages (session_id, received_ms, day, listener, endpoint, client_ip,"
          " ehlo, tls_version, tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule,"
          " reply, queue_id) VALUES (?, ?, ?, 'l1', ?, ?, ?, ?, 'CIPHER', ?, ?, ?, 1, 100, ?,"
          " '250 2.0.0 ok', 'Q')",
          {s.id, std::to_string(at), utcDay(at), s.endpoint, s.clientIp, s.ehlo, s.tls,
           s.authUser, s.tenant, s.sender, s.rule});
    }
  }

 private:
  void run(const char* sql, const std::vector<std::string>& values) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) == SQLITE_OK);
    for (std::size_t i = 0; i < values.size(); ++i) {
      sqlite3_bind_text(st, static_cast<int>(i) + 1, values[i].c_str(), -1, SQLITE_TRANSIENT);
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    REQUIRE(rc == SQLITE_DONE);
  }
  std::string path_;
  sqlite3* db_ = nullptr;
};

// 62 accepted messages over two days: 7 TLS 1.0, 3 TLS 1.1, 40 TLS 1.2, 10 TLS 1.3, 2 without
// TLS; tenants acme and globex; 4 sessions refused by D3 and 2 by D5.
void addKnownMix(TraceDb& db) {
  db.add({"s1", kDay1 + 10 * kHour, "legacy", "192.0.2.10", "printer.example", "1.0",
          "scanner@acme.example", "acme", "D8", 4, "scanner@acme.example"});
  db.add({"s2", kDay2 + 9 * kHour, "legacy", "192.0.2.10", "printer.example", "1.0",
          "scanner@acme.example", "acme", "D8", 3, "scanner@acme.example"});
  db.add({"s3", kDay2 + 11 * kHour, "legacy", "192.0.2.11", "old-mta", "1.1", "", "acme", "D8",
          3, "alerts@acme.example"});
  db.add({"s4", kDay1 + 12 * kHour, "strict", "198.51.100.5", "mail.acme.example", "1.2",
          "a@acme.example", "acme", "D8", 20, "a@acme.example"});
  db.add({"s5", kDay2 + 12 * kHour, "strict", "198.51.100.6", "mail.globex.example", "1.2", "",
          "globex", "D8", 20, "news@globex.example"});
  db.add({"s6", kDay2 + 13 * kHour, "strict", "198.51.100.6", "mail.globex.example", "1.3", "",
          "globex", "D8", 10, "news@globex.example"});
  db.add({"s7", kDay1 + 8 * kHour, "legacy", "192.0.2.12", "cam", "none", "", "acme", "D8", 2,
          ""});
  for (int i = 0; i < 4; ++i) {
    db.add({"r" + std::to_string(i), kDay2 + 14 * kHour + i * 60000, "strict", "203.0.113.7",
            "legacy,\"box\"", "1.0", "", "", "D3", 0, ""});
  }
  for (int i = 0; i < 2; ++i) {
    db.add({"d" + std::to_string(i), kDay1 + 15 * kHour + i * 60000, "legacy", "203.0.113.8", "x",
            "1.2", "bob@globex.example", "globex", "D5", 0, ""});
  }
}

struct Fixture {
  TempDir dir;
  std::string path = dir.path + "/traces.sqlite";
  Fixture() {
    TraceDb db(path);
    addKnownMix(db);
  }
  Json run(ReportQuery q) {
    if (q.sinceMs == 0) {
      q.sinceMs = kDay1;
    }
    if (q.untilMs == 0) {
      q.untilMs = kDay2 + 86400000 - 1;
    }
    std::string error;
    Json out = runReport(path, q, error);
    INFO(error);
    REQUIRE(error.empty());
    return out;
  }
};

ReportQuery by(ReportQuery::By b) {
  ReportQuery q;
  q.by = b;
  return q;
}

}  // namespace

TEST_CASE("report by day: messages per UTC day and TLS version, percentages, decisions") {
  Fixture f;
  Json expected = Json::parse(R"({
    "totals": {"none": 2, "1.0": 7, "1.1": 3, "1.2": 40, "1.3": 10, "all": 62,
               "percent": {"none": 3.2, "1.0": 11.3, "1.1": 4.8, "1.2": 64.5, "1.3": 16.1},
               "decisions": {"D3": 4, "D5": 2}},
    "days": [
      {"date": "2026-11-26", "none": 2, "1.0": 4, "1.1": 0, "1.2": 20, "1.3": 0, "all": 26,
       "percent": {"none": 7.7, "1.0": 15.4, "1.1": 0.0, "1.2": 76.9, "1.3": 0.0}},
      {"date": "2026-11-27", "none": 0, "1.0": 3, "1.1": 3, "1.2": 20, "1.3": 10, "all": 36,
       "percent": {"none": 0.0, "1.0": 8.3, "1.1": 8.3, "1.2": 55.6, "1.3": 27.8}}
    ]})");
  CHECK(f.run({}).dump() == expected.dump());
}

TEST_CASE("report filters: tenant, endpoint, tls, since") {
  Fixture f;
  SECTION("tenant") {
    ReportQuery q;
    q.tenant = "globex";
    Json r = f.run(q);
    CHECK(r["totals"]["all"] == 30);
    CHECK(r["totals"]["1.2"] == 20);
    CHECK(r["totals"]["1.3"] == 10);
    CHECK(r["totals"]["decisions"].dump() == R"({"D5":2})");
    REQUIRE(r["days"].size() == 1);
    CHECK(r["days"][0]["date"] == "2026-11-27");
  }
  SECTION("endpoint") {
    ReportQuery q;
    q.endpoint = "legacy";
    Json r = f.run(q);
    CHECK(r["totals"]["all"] == 12);
    CHECK(r["totals"]["none"] == 2);
    CHECK(r["totals"]["1.0"] == 7);
    CHECK(r["totals"]["1.1"] == 3);
    CHECK(r["totals"]["1.2"] == 0);
    CHECK(r["totals"]["decisions"].dump() == R"({"D5":2})");
  }
  SECTION("tls") {
    ReportQuery q;
    q.tls = {"1.0", "1.1"};
    Json r = f.run(q);
    CHECK(r["totals"]["all"] == 10);
    CHECK(r["totals"]["1.2"] == 0);
    CHECK(r["totals"]["percent"]["1.0"] == 70.0);
    CHECK(r["totals"]["decisions"].dump() == R"({"D3":4})");
  }
  SECTION("since and until") {
    ReportQuery q;
    q.sinceMs = kDay2;
    Json r = f.run(q);
    CHECK(r["totals"]["all"] == 36);
    REQUIRE(r["days"].size() == 1);
    CHECK(r["totals"]["decisions"].dump() == R"({"D3":4})");
    q.sinceMs = kDay1 + 10 * kHour + 2000;  // after s1's first message
    q.untilMs = kDay1 + 10 * kHour + 3500;  // before its fourth
    CHECK(f.run(q)["totals"]["all"] == 2);
  }
}

TEST_CASE("report by client: the legacy-client inventory") {
  Fixture f;
  Json clients = f.run(by(ReportQuery::By::Client))["clients"];
  REQUIRE(clients.size() == 7);
  // Legacy use first: the refused TLS 1.0 device (4 sessions), the 1.0 scanner, the 1.1 MTA.
  CHECK(clients[0]["client_ip"] == "203.0.113.7");
  CHECK(clients[0].dump() == Json::parse(R"({"client_ip": "203.0.113.7",
      "ehlo": "legacy,\"box\"", "auth_user": "", "tenant": "", "endpoint": "strict",
      "versions": {"1.0": 4}, "messages": 0, "first_seen": "2026-11-27T14:00:00Z",
      "last_seen": "2026-11-27T14:04:00Z", "last_rule": "D3"})").dump());
  CHECK(clients[1].dump() == Json::parse(R"({"client_ip": "192.0.2.10",
      "ehlo": "printer.example", "auth_user": "scanner@acme.example", "tenant": "acme",
      "endpoint": "legacy", "versions": {"1.0": 2}, "messages": 7,
      "first_seen": "2026-11-26T10:00:00Z", "last_seen": "2026-11-27T09:01:00Z",
      "last_rule": "D8"})").dump());
  CHECK(clients[2]["client_ip"] == "192.0.2.11");
  // Then by messages.
  CHECK(clients[3]["client_ip"] == "198.51.100.6");
  CHECK(clients[3]["versions"].dump() == R"({"1.2":1,"1.3":1})");
  CHECK(clients[3]["messages"] == 30);
  CHECK(clients[4]["client_ip"] == "198.51.100.5");
  CHECK(clients[5]["client_ip"] == "192.0.2.12");
  CHECK(clients[5]["versions"].dump() == R"({"none":1})");
  // Refused only: listed with no messages, its last decision and tenant.
  CHECK(clients[6].dump() == Json::parse(R"({"client_ip": "203.0.113.8", "ehlo": "x",
      "auth_user": "bob@globex.example", "tenant": "globex", "endpoint": "legacy",
      "versions": {"1.2": 2}, "messages": 0, "first_seen": "2026-11-26T15:00:00Z",
      "last_seen": "2026-11-26T15:02:00Z", "last_rule": "D5"})").dump());

  SECTION("--tls 1.0,1.1 lists only the clients that used them") {
    ReportQuery q = by(ReportQuery::By::Client);
    q.tls = {"1.0", "1.1"};
    Json legacy = f.run(q)["clients"];
    REQUIRE(legacy.size() == 3);
    CHECK(legacy[0]["client_ip"] == "203.0.113.7");
    CHECK(legacy[1]["client_ip"] == "192.0.2.10");
    CHECK(legacy[2]["client_ip"] == "192.0.2.11");
  }
  SECTION("tenant and endpoint") {
    ReportQuery q = by(ReportQuery::By::Client);
    q.tenant = "globex";
    q.endpoint = "strict";
    Json g = f.run(q)["clients"];
    REQUIRE(g.size() == 1);
    CHECK(g[0]["client_ip"] == "198.51.100.6");
    CHECK(g[0]["last_seen"] == "2026-11-27T13:01:00Z");
  }
}

TEST_CASE("report by sender") {
  Fixture f;
  Json senders = f.run(by(ReportQuery::By::Sender))["senders"];
  CHECK(senders.dump() == Json::parse(R"([
    {"sender": "news@globex.example", "messages": 30, "versions": {"1.2": 20, "1.3": 10},
     "last_seen": "2026-11-27T13:00:10Z"},
    {"sender": "a@acme.example", "messages": 20, "versions": {"1.2": 20},
     "last_seen": "2026-11-26T12:00:20Z"},
    {"sender": "scanner@acme.example", "messages": 7, "versions": {"1.0": 7},
     "last_seen": "2026-11-27T09:00:03Z"},
    {"sender": "alerts@acme.example", "messages": 3, "versions": {"1.1": 3},
     "last_seen": "2026-11-27T11:00:03Z"},
    {"sender": "", "messages": 2, "versions": {"none": 2},
     "last_seen": "2026-11-26T08:00:02Z"}])").dump());
  ReportQuery q = by(ReportQuery::By::Sender);
  q.tls = {"1.0"};
  Json legacy = f.run(q)["senders"];
  REQUIRE(legacy.size() == 1);
  CHECK(legacy[0]["sender"] == "scanner@acme.example");
}

TEST_CASE("report table: aligned columns, TOTAL row with percentages, refusals") {
  Fixture f;
  std::string table = formatTable(f.run({}), ReportQuery::By::Day);
  CHECK(table ==
        "date            none        1.0       1.1         1.2         1.3  all\n"
        "2026-11-26         2          4         0          20           0   26\n"
        "2026-11-27         0          3         3          20          10   36\n"
        "TOTAL       2 (3.2%)  7 (11.3%)  3 (4.8%)  40 (64.5%)  10 (16.1%)   62\n"
        "refused sessions: D3 4, D5 2\n");
  std::string clients = formatTable(f.run(by(ReportQuery::By::Client)), ReportQuery::By::Client);
  INFO(clients);
  CHECK(clients.rfind("client_ip     ehlo                 auth_user             tenant  endpoint  "
                      "none  1.0  1.1  1.2  1.3  messages  first_seen            last_seen  "
                      "           last_rule\n", 0) == 0);
  CHECK(clients.find("\n192.0.2.10    printer.example      scanner@acme.example  acme    legacy "
                     "      0    2    0    0    0         7  2026-11-26T10:00:00Z  "
                     "2026-11-27T09:01:00Z  D8\n") != std::string::npos);
  std::string senders = formatTable(f.run(by(ReportQuery::By::Sender)), ReportQuery::By::Sender);
  CHECK(senders.find("\n<>  ") != std::string::npos);  // the null sender
}

TEST_CASE("report table: control characters of a client are escaped") {
  Json report = Json::parse(R"({"clients": [{"client_ip": "192.0.2.1",
      "ehlo": "evil\u001b[2J", "auth_user": "", "tenant": "", "endpoint": "strict",
      "versions": {"1.0": 1}, "messages": 0, "first_seen": "x", "last_seen": "y",
      "last_rule": "D3"}]})");
  std::string table = formatTable(report, ReportQuery::By::Client);
  CHECK(table.find('\x1b') == std::string::npos);
  CHECK(table.find("evil\\x1b[2J") != std::string::npos);
}

TEST_CASE("report CSV: header row, RFC 4180 quoting") {
  Fixture f;
  CHECK(formatCsv(f.run({}), ReportQuery::By::Day) ==
        "date,none,1.0,1.1,1.2,1.3,all\r\n"
        "2026-11-26,2,4,0,20,0,26\r\n"
        "2026-11-27,0,3,3,20,10,36\r\n");
  std::string clients = formatCsv(f.run(by(ReportQuery::By::Client)), ReportQuery::By::Client);
  CHECK(clients.rfind("client_ip,ehlo,auth_user,tenant,endpoint,none,1.0,1.1,1.2,1.3,messages,"
                      "first_seen,last_seen,last_rule\r\n"
                      "203.0.113.7,\"legacy,\"\"box\"\"\",,,strict,0,4,0,0,0,0,"
                      "2026-11-27T14:00:00Z,2026-11-27T14:04:00Z,D3\r\n",
                      0) == 0);
  std::string senders = formatCsv(f.run(by(ReportQuery::By::Sender)), ReportQuery::By::Sender);
  CHECK(senders.rfind("sender,messages,none,1.0,1.1,1.2,1.3,last_seen\r\n"
                      "news@globex.example,30,0,0,0,20,10,2026-11-27T13:00:10Z\r\n",
                      0) == 0);
  Json multiline = Json::parse(R"({"senders": [{"sender": "a\r\nb", "messages": 1,
      "versions": {}, "last_seen": ""}]})");
  CHECK(formatCsv(multiline, ReportQuery::By::Sender).find("\"a\r\nb\",1,") !=
        std::string::npos);
  // A client-supplied field a spreadsheet would run as a formula is defused.
  Json formula = Json::parse(R"json({"senders": [
      {"sender": "=HYPERLINK(\"http://evil.example\",\"x\")", "messages": 1, "versions": {}, "last_seen": ""},
      {"sender": "@SUM(A1)", "messages": 1, "versions": {}, "last_seen": ""},
      {"sender": "-1+1", "messages": 1, "versions": {}, "last_seen": ""}]})json");
  std::string defused = formatCsv(formula, ReportQuery::By::Sender);
  CHECK(defused.find("\r\n\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",1,") !=
        std::string::npos);
  CHECK(defused.find("\r\n\"'@SUM(A1)\",1,") != std::string::npos);
  CHECK(defused.find("\r\n\"'-1+1\",1,") != std::string::npos);
}

TEST_CASE("report: a missing database or one without tables is all zeros") {
  TempDir dir;
  std::string error;
  ReportQuery q;
  Json r = runReport(dir.path + "/traces.sqlite", q, error);
  CHECK(error.empty());
  CHECK(r.dump() == R"({"totals":{"none":0,"1.0":0,"1.1":0,"1.2":0,"1.3":0,"all":0,)"
                    R"("percent":{"none":0.0,"1.0":0.0,"1.1":0.0,"1.2":0.0,"1.3":0.0},)"
                    R"("decisions":{}},"days":[]})");
  CHECK(runReport(dir.path + "/none.sqlite", by(ReportQuery::By::Client), error).dump() ==
        R"({"total":0,"offset":0,"limit":0,"clients":[]})");
  CHECK(runReport(dir.path + "/none.sqlite", by(ReportQuery::By::Sender), error).dump() ==
        R"({"senders":[]})");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir.path + "/empty.sqlite").c_str(), &db) == SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE meta (key TEXT)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  r = runReport(dir.path + "/empty.sqlite", q, error);
  CHECK(error.empty());
  CHECK(r["totals"]["all"] == 0);
  CHECK(!fs::exists(dir.path + "/traces.sqlite"));  // read-only: nothing created
}

TEST_CASE("report: a file that is not a database is an error") {
  TempDir dir;
  std::string path = dir.path + "/traces.sqlite";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("this is not a database, just text long enough for a header...........", f);
  std::fclose(f);
  std::string error;
  Json r = runReport(path, ReportQuery{}, error);
  CHECK(r.is_null());
  CHECK(error.find("trace database") != std::string::npos);
}

TEST_CASE("report: parseSince and parseTlsList") {
  const int64_t now = kDay2 + 5 * kHour;
  int64_t since = 0;
  std::string error;
  CHECK(parseSince("7d", now, since, error));
  CHECK(since == now - 7 * 86400000LL);
  CHECK(parseSince("24h", now, since, error));
  CHECK(since == now - 86400000LL);
  CHECK(parseSince("2026-11-27", now, since, error));
  CHECK(since == kDay2);
  for (const char* bad : {"banana", "0d", "7", "d", "-1d", "2026-02-30", "2026-13-01", "7w",
                          "99999999d", "2026-1-01", ""}) {
    INFO(bad);
    CHECK_FALSE(parseSince(bad, now, since, error));
    CHECK(!error.empty());
  }
  std::vector<std::string> tls;
  CHECK(parseTlsList("none,1.0,1.1,1.2,1.3,1.0", tls, error));
  CHECK(tls == std::vector<std::string>{"none", "1.0", "1.1", "1.2", "1.3"});
  CHECK_FALSE(parseTlsList("1.4", tls, error));
  CHECK(error.find("'1.4'") != std::string::npos);
  CHECK_FALSE(parseTlsList("1.0,", tls, error));
  CHECK_FALSE(parseTlsList("", tls, error));
}

TEST_CASE("report by message: the drill-down, newest first, paged, with filters") {
  Fixture f;
  ReportQuery q = by(ReportQuery::By::Message);
  q.tls = {"1.0"};
  Json all = f.run(q);
  CHECK(all["total"] == 7);
  REQUIRE(all["messages"].size() == 7);
  CHECK(all["messages"][0]["session_id"] == "s2");  // day 2 first
  CHECK(all["messages"][0]["client_ip"] == "192.0.2.10");
  CHECK(all["messages"][0]["ehlo"] == "printer.example");
  CHECK(all["messages"][0]["auth_user"] == "scanner@acme.example");
  CHECK(all["messages"][0]["tls_version"] == "1.0");
  CHECK(all["messages"][0]["queue_id"] == "Q");
  CHECK(all["messages"][0]["time"].get<std::string>().size() == 24);  // ...T09:00:03.000Z
  CHECK(all["messages"][6]["session_id"] == "s1");

  q.limit = 3;
  q.offset = 6;
  Json last = f.run(q);
  CHECK(last["total"] == 7);
  CHECK(last["limit"] == 3);
  CHECK(last["offset"] == 6);
  REQUIRE(last["messages"].size() == 1);
  CHECK(last["messages"][0]["id"] == all["messages"][6]["id"]);

  ReportQuery day = by(ReportQuery::By::Message);
  day.day = utcDay(kDay1);
  day.clientIp = "198.51.100.5";
  CHECK(f.run(day)["total"] == 20);
  day.day = utcDay(kDay2);
  CHECK(f.run(day)["total"] == 0);

  // The CSV export has the columns of the drill-down.
  std::string csv = formatCsv(all, ReportQuery::By::Message);
  CHECK(csv.rfind("time,client_ip,ehlo,auth_user,tenant,endpoint,tls_version,tls_cipher,sender,"
                  "rcpt_count,size,queue_id,session_id\r\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 8);
  CHECK(formatTable(all, ReportQuery::By::Message).find("printer.example") != std::string::npos);
}

TEST_CASE("report by client: paging keeps the order and counts the whole list") {
  Fixture f;
  Json whole = f.run(by(ReportQuery::By::Client));
  ReportQuery q = by(ReportQuery::By::Client);
  q.limit = 2;
  q.offset = 1;
  Json page = f.run(q);
  CHECK(page["total"] == whole["clients"].size());
  REQUIRE(page["clients"].size() == 2);
  CHECK(page["clients"][0] == whole["clients"][1]);
  CHECK(page["clients"][1] == whole["clients"][2]);
}

TEST_CASE("report filters: client address, day, limit and offset are checked") {
  std::string error;
  ReportQuery q;
  q.clientIp = "::ffff:192.0.2.10";
  REQUIRE(parseReportFilters(q, "50", "10", error));
  CHECK(q.clientIp == "192.0.2.10");  // the spelling the traces use
  CHECK(q.limit == 50);
  CHECK(q.offset == 10);

  ReportQuery bad;
  bad.clientIp = "192.0.2.300";
  CHECK_FALSE(parseReportFilters(bad, "", "", error));
  CHECK(error == "client '192.0.2.300' is not an IPv4 or IPv6 address");
  ReportQuery badDay;
  badDay.day = "2026-02-30";
  CHECK_FALSE(parseReportFilters(badDay, "", "", error));
  CHECK(error == "date '2026-02-30' is not a date such as 2026-11-27");
  ReportQuery limits;
  CHECK_FALSE(parseReportFilters(limits, "0", "", error));
  CHECK(error == "limit '0' must be a number 1..100000");
  CHECK_FALSE(parseReportFilters(limits, "100001", "", error));
  CHECK_FALSE(parseReportFilters(limits, "", "-1", error));
  CHECK(error == "offset '-1' must be a number 0..100000000");
  CHECK_FALSE(parseReportFilters(limits, "1e3", "", error));
}

TEST_CASE("report: PostgreSQL out of reach makes the report unavailable, a failed query does not") {
  std::string error;
  ReportQuery q;
  q.sinceMs = 0;
  q.untilMs = 1;
  // Nothing listens on port 1: connecting fails at once.
  const auto result =
      runReport(ReportStore{"", "host=127.0.0.1 port=1 connect_timeout=2 dbname=x"}, q, error);
  CHECK(result.is_null());
  CHECK(error.starts_with("cannot connect to PostgreSQL"));
  CHECK(reportStoreUnavailable(error));
  // The connection lost during the query (PgDatabase::query) is unavailable too (503) ...
  CHECK(reportStoreUnavailable(
      "lost the connection to PostgreSQL: server closed the connection unexpectedly"));
  // ... an error of the query itself is not (500).
  CHECK_FALSE(reportStoreUnavailable("trace database: relation \"messages\" does not exist"));
  CHECK_FALSE(reportStoreUnavailable("cannot open /var/lib/smtpgate/traces.sqlite: no such file"));
}
