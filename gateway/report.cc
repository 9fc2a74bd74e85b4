#include "gateway/report.h"

#include "gateway/pg_connection.h"
#include "gateway/time_format.h"
#include "policy/ip_address.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include <fmt/format.h>

namespace smtpgate {
namespace {

using Json = nlohmann::ordered_json;

// One bound parameter of a prepared statement: every value that comes from the user or the
// database goes through sqlite3_bind_*, never into the SQL text.
struct Param {
  bool isInt = false;
  int64_t i = 0;
  std::string s;
  static Param integer(int64_t v) { return Param{true, v, {}}; }
  static Param text(std::string v) { return Param{false, 0, std::move(v)}; }
};

// The rows of one query, whichever database answers it.
class Rows {
 public:
  virtual ~Rows() = default;
  virtual bool next() = 0;  // false at the end or on an error (then `error` is set)
  virtual std::string text(int column) const = 0;
  virtual int64_t integer(int column) const = 0;
};

// Where the trace records are: STATE_DIR/traces.sqlite or the cluster's PostgreSQL. The report
// SQL is shared; the few spellings that differ are asked for with postgres().
class Database {
 public:
  virtual ~Database() = default;
  virtual std::unique_ptr<Rows> query(const std::string& sql, const std::vector<Param>& params,
                                      std::string& error) const = 0;
  virtual bool postgres() const = 0;
};

class SqliteRows : public Rows {
 public:
  SqliteRows(sqlite3* db, const std::string& sql, const std::vector<Param>& params,
             std::string& error)
      : db_(db), error_(error) {
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      fail();
      return;
    }
    for (std::size_t n = 0; n < params.size(); ++n) {
      const int index = static_cast<int>(n) + 1;
      int rc = params[n].isInt
                   ? sqlite3_bind_int64(stmt_, index, params[n].i)
                   : sqlite3_bind_text(stmt_, index, params[n].s.data(),
                                       static_cast<int>(params[n].s.size()), SQLITE_TRANSIENT);
      if (rc != SQLITE_OK) {
        fail();
        return;
      }
    }
  }
  ~SqliteRows() override { sqlite3_finalize(stmt_); }
  SqliteRows(const SqliteRows&) = delete;
  SqliteRows& operator=(const SqliteRows&) = delete;

  bool next() override {
    if (!stmt_ || !error_.empty()) {
      return false;
    }
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc != SQLITE_DONE) {
      fail();
    }
    return false;
  }
  std::string text(int column) const override {
    const unsigned char* p = sqlite3_column_text(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }
  int64_t integer(int column) const override { return sqlite3_column_int64(stmt_, column); }

 private:
  void fail() {
    if (error_.empty()) {
      error_ = fmt::format("trace database: {}", sqlite3_errmsg(db_));
    }
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string& error_;
};

class SqliteDatabase : public Database {
 public:
  ~SqliteDatabase() override {
    if (db_) {
      sqlite3_close(db_);
    }
  }
  bool open(const std::string& path, std::string& error) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
    if (rc != SQLITE_OK) {
      error = fmt::format("cannot open {}: {}", path,
                          db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      return false;
    }
    sqlite3_busy_timeout(db_, 5000);  // the writer may hold the lock for a moment
    return true;
  }
  std::unique_ptr<Rows> query(const std::string& sql, const std::vector<Param>& params,
                              std::string& error) const override {
    return std::make_unique<SqliteRows>(db_, sql, params, error);
  }
  bool postgres() const override { return false; }

 private:
  sqlite3* db_ = nullptr;
};

class PgRows : public Rows {
 public:
  explicit PgRows(PgResult result) : result_(std::move(result)) {}
  bool next() override { return ++row_ < result_.rows(); }
  std::string text(int column) const override { return result_.text(row_, column); }
  int64_t integer(int column) const override { return result_.integer(row_, column); }

 private:
  PgResult result_;
  int row_ = -1;
};

constexpr std::string_view kConnectionLost = "lost the connection to PostgreSQL: ";

class PgDatabase : public Database {
 public:
  bool open(const std::string& conninfo, std::string& error) {
    db_ = PgConnection::connect(conninfo, error);
    return db_ != nullptr;
  }
  std::unique_ptr<Rows> query(const std::string& sql, const std::vector<Param>& params,
                              std::string& error) const override {
    PgParams values;
    for (const Param& p : params) {
      if (p.isInt) {
        values.integer(p.i);
      } else {
        values.text(pgSafeText(p.s));
      }
    }
    PgResult result;
    if (error.empty() && !db_->exec(numberedPlaceholders(sql), values, &result, error)) {
      std::string_view detail = error;
      if (detail.starts_with("PostgreSQL: ")) {
        detail.remove_prefix(12);
      }
      error = db_->healthy() ? fmt::format("trace database: {}", detail)
                             : fmt::format("{}{}", kConnectionLost, detail);
    }
    return std::make_unique<PgRows>(std::move(result));
  }
  bool postgres() const override { return true; }

 private:
  std::unique_ptr<PgConnection> db_;
};

// A query of the report, read row by row.
class Statement {
 public:
  Statement(const Database& db, const std::string& sql, const std::vector<Param>& params,
            std::string& error)
      : rows_(db.query(sql, params, error)) {}
  bool next() { return rows_->next(); }
  std::string text(int column) const { return rows_->text(column); }
  int64_t integer(int column) const { return rows_->integer(column); }

 private:
  std::unique_ptr<Rows> rows_;
};

// The WHERE clause of the query's filters over one table; `timeColumn` is started_ms for
// sessions and received_ms for messages. The `day` bounds let SQLite use the day indexes; the
// millisecond bounds are the exact range.
std::string whereClause(const ReportQuery& q, int64_t untilMs, const char* timeColumn,
                        std::vector<Param>& params) {
  std::string sql = fmt::format(" WHERE {0} >= ? AND {0} <= ? AND day >= ? AND day <= ?",
                                timeColumn);
  params.push_back(Param::integer(q.sinceMs));
  params.push_back(Param::integer(untilMs));
  params.push_back(Param::text(utcDay(q.sinceMs)));
  params.push_back(Param::text(utcDay(untilMs)));
  if (!q.tenant.empty()) {
    sql += " AND tenant = ?";
    params.push_back(Param::text(q.tenant));
  }
  if (!q.endpoint.empty()) {
    sql += " AND endpoint = ?";
    params.push_back(Param::text(q.endpoint));
  }
  if (!q.clientIp.empty()) {
    sql += " AND client_ip = ?";
    params.push_back(Param::text(q.clientIp));
  }
  if (!q.day.empty()) {
    sql += " AND day = ?";
    params.push_back(Param::text(q.day));
  }
  if (!q.tls.empty()) {
    sql += " AND tls_version IN (";
    for (std::size_t n = 0; n < q.tls.size(); ++n) {
      sql += n ? ", ?" : "?";
      params.push_back(Param::text(q.tls[n]));
    }
    sql += ")";
  }
  return sql;
}

bool isVersion(const std::string& v) {
  const auto& all = reportVersions();
  return std::find(all.begin(), all.end(), v) != all.end();
}

double percentOf(int64_t count, int64_t all) {
  return all == 0 ? 0.0 : std::round(static_cast<double>(count) * 1000.0 /
                                     static_cast<double>(all)) / 10.0;
}

// {"none": N, ..., "1.3": N, "all": N, "percent": {...}} of per-version counts.
Json countsRow(const std::map<std::string, int64_t>& counts) {
  Json row = Json::object();
  int64_t all = 0;
  for (const auto& v : reportVersions()) {
    auto it = counts.find(v);
    int64_t n = it == counts.end() ? 0 : it->second;
    row[v] = n;
    all += n;
  }
  row["all"] = all;
  Json percent = Json::object();
  for (const auto& v : reportVersions()) {
    percent[v] = percentOf(row[v].get<int64_t>(), all);
  }
  row["percent"] = std::move(percent);
  return row;
}

// {"1.0": 3} in version order, keys with a count only.
Json versionsObject(const std::map<std::string, int64_t>& counts) {
  Json out = Json::object();
  for (const auto& v : reportVersions()) {
    auto it = counts.find(v);
    if (it != counts.end() && it->second > 0) {
      out[v] = it->second;
    }
  }
  for (const auto& [v, n] : counts) {  // a version this report does not know, kept visible
    if (!isVersion(v) && n > 0) {
      out[v] = n;
    }
  }
  return out;
}

// {"total": N, "offset": O, "limit": L, KEY: [...]} — the keys of a paged list.
Json pagedList(const char* key, Json rows, int64_t total, const ReportQuery& q) {
  Json out = Json::object();
  out["total"] = total;
  out["offset"] = q.offset;
  out["limit"] = q.limit;
  out[key] = std::move(rows);
  return out;
}

Json emptyReport(const ReportQuery& q) {
  switch (q.by) {
    case ReportQuery::By::Client:
      return pagedList("clients", Json::array(), 0, q);
    case ReportQuery::By::Message:
      return pagedList("messages", Json::array(), 0, q);
    case ReportQuery::By::Sender:
      return Json{{"senders", Json::array()}};
    case ReportQuery::By::Day:
      break;
  }
  Json totals = countsRow({});
  totals["decisions"] = Json::object();
  Json out = Json::object();
  out["totals"] = std::move(totals);
  out["days"] = Json::array();
  return out;
}

Json reportByDay(const Database& db, const ReportQuery& q, int64_t untilMs, std::string& error) {
  std::map<std::string, std::map<std::string, int64_t>> days;
  std::map<std::string, int64_t> totals;
  {
    std::vector<Param> params;
    std::string sql = "SELECT day, tls_version, COUNT(*) FROM messages" +
                      whereClause(q, untilMs, "received_ms", params) +
                      " GROUP BY day, tls_version";
    Statement st(db, sql, params, error);
    while (st.next()) {
      std::string version = st.text(1);
      if (!isVersion(version)) {
        continue;  // not a version of the report: "all" stays the sum of the columns
      }
      days[st.text(0)][version] += st.integer(2);
      totals[version] += st.integer(2);
    }
  }
  Json decisions = Json::object();
  {
    std::vector<Param> params;
    std::string sql = "SELECT rule, COUNT(*) FROM sessions" +
                      whereClause(q, untilMs, "started_ms", params) +
                      " AND rule <> 'D8' AND rule <> '' GROUP BY rule ORDER BY rule";
    Statement st(db, sql, params, error);
    while (st.next()) {
      decisions[st.text(0)] = st.integer(1);
    }
  }
  if (!error.empty()) {
    return nullptr;
  }
  Json out = Json::object();
  Json totalsJson = countsRow(totals);
  totalsJson["decisions"] = std::move(decisions);
  out["totals"] = std::move(totalsJson);
  Json dayList = Json::array();
  for (const auto& [day, counts] : days) {  // std::map: ascending dates
    Json row = Json::object();
    row["date"] = day;
    const Json columns = countsRow(counts);
    for (const auto& [key, value] : columns.items()) {
      row[key] = value;
    }
    dayList.push_back(std::move(row));
  }
  out["days"] = std::move(dayList);
  return out;
}

using ClientKey = std::tuple<std::string, std::string, std::string>;  // ip, ehlo, auth user

struct ClientRow {
  std::map<std::string, int64_t> versions;  // sessions per TLS version
  int64_t messages = 0;
  int64_t firstMs = 0;
  int64_t lastMs = 0;
  std::string tenant;
  std::string endpoint;
  std::string lastRule;
  int64_t legacySessions() const {
    int64_t n = 0;
    for (const char* v : {"1.0", "1.1"}) {
      auto it = versions.find(v);
      n += it == versions.end() ? 0 : it->second;
    }
    return n;
  }
};

Json reportByClient(const Database& db, const ReportQuery& q, int64_t untilMs,
                    std::string& error) {
  std::map<ClientKey, ClientRow> clients;
  {
    std::vector<Param> params;
    std::string sql =
        std::string("SELECT client_ip, ehlo, auth_user, tls_version, COUNT(*), MIN(started_ms),") +
        (db.postgres() ? " MAX(GREATEST(started_ms, ended_ms))" : " MAX(MAX(started_ms, ended_ms))") +
        " FROM sessions" +
        whereClause(q, untilMs, "started_ms", params) +
        " GROUP BY client_ip, ehlo, auth_user, tls_version";
    Statement st(db, sql, params, error);
    while (st.next()) {
      auto [it, inserted] = clients.try_emplace(ClientKey{st.text(0), st.text(1), st.text(2)});
      ClientRow& row = it->second;
      row.versions[st.text(3)] += st.integer(4);
      row.firstMs = inserted ? st.integer(5) : std::min(row.firstMs, st.integer(5));
      row.lastMs = inserted ? st.integer(6) : std::max(row.lastMs, st.integer(6));
    }
  }
  {
    // The latest session of each client. SQLite takes the bare columns of a group from the row
    // that holds its single MAX(); PostgreSQL says it with DISTINCT ON.
    std::vector<Param> params;
    std::string sql =
        db.postgres()
            ? "SELECT DISTINCT ON (client_ip, ehlo, auth_user) client_ip, ehlo, auth_user,"
              " tenant, endpoint, rule, started_ms FROM sessions" +
                  whereClause(q, untilMs, "started_ms", params) +
                  " ORDER BY client_ip, ehlo, auth_user, started_ms DESC"
            : "SELECT client_ip, ehlo, auth_user, tenant, endpoint, rule, MAX(started_ms)"
              " FROM sessions" +
                  whereClause(q, untilMs, "started_ms", params) +
                  " GROUP BY client_ip, ehlo, auth_user";
    Statement st(db, sql, params, error);
    while (st.next()) {
      auto it = clients.find(ClientKey{st.text(0), st.text(1), st.text(2)});
      if (it != clients.end()) {
        it->second.tenant = st.text(3);
        it->second.endpoint = st.text(4);
        it->second.lastRule = st.text(5);
      }
    }
  }
  {
    std::vector<Param> params;
    std::string sql = "SELECT client_ip, ehlo, auth_user, COUNT(*) FROM messages" +
                      whereClause(q, untilMs, "received_ms", params) +
                      " GROUP BY client_ip, ehlo, auth_user";
    Statement st(db, sql, params, error);
    while (st.next()) {
      auto it = clients.find(ClientKey{st.text(0), st.text(1), st.text(2)});
      if (it != clients.end()) {
        it->second.messages = st.integer(3);
      }
    }
  }
  if (!error.empty()) {
    return nullptr;
  }
  std::vector<std::pair<ClientKey, ClientRow>> sorted(clients.begin(), clients.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second.legacySessions() != b.second.legacySessions()) {
      return a.second.legacySessions() > b.second.legacySessions();
    }
    if (a.second.messages != b.second.messages) {
      return a.second.messages > b.second.messages;
    }
    return a.second.lastMs > b.second.lastMs;  // then the key order of the map
  });
  const auto total = static_cast<int64_t>(sorted.size());
  const auto first = static_cast<std::size_t>(std::min(q.offset, total));
  const auto last = q.limit > 0 ? static_cast<std::size_t>(std::min(q.offset + q.limit, total))
                                : sorted.size();
  Json list = Json::array();
  for (std::size_t n = first; n < last; ++n) {
    const auto& [key, row] = sorted[n];
    Json c = Json::object();
    c["client_ip"] = std::get<0>(key);
    c["ehlo"] = std::get<1>(key);
    c["auth_user"] = std::get<2>(key);
    c["tenant"] = row.tenant;
    c["endpoint"] = row.endpoint;
    c["versions"] = versionsObject(row.versions);
    c["messages"] = row.messages;
    c["first_seen"] = isoUtcSeconds(row.firstMs);
    c["last_seen"] = isoUtcSeconds(row.lastMs);
    c["last_rule"] = row.lastRule;
    list.push_back(std::move(c));
  }
  return pagedList("clients", std::move(list), total, q);
}

Json reportMessages(const Database& db, const ReportQuery& q, int64_t untilMs,
                    std::string& error) {
  int64_t total = 0;
  {
    std::vector<Param> params;
    std::string sql = "SELECT COUNT(*) FROM messages" +
                      whereClause(q, untilMs, "received_ms", params);
    Statement st(db, sql, params, error);
    if (st.next()) {
      total = st.integer(0);
    }
  }
  std::vector<Param> params;
  std::string sql =
      "SELECT id, received_ms, session_id, listener, endpoint, client_ip, ehlo, tls_version,"
      " tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule, reply, queue_id"
      " FROM messages" +
      whereClause(q, untilMs, "received_ms", params) +
      " ORDER BY received_ms DESC, id DESC LIMIT ? OFFSET ?";
  // No limit: the largest count both databases accept.
  params.push_back(Param::integer(q.limit > 0 ? q.limit : std::numeric_limits<int64_t>::max()));
  params.push_back(Param::integer(q.offset));
  Statement st(db, sql, params, error);
  Json list = Json::array();
  static const char* const kText[] = {"session_id", "listener", "endpoint", "client_ip",
                                      "ehlo", "tls_version", "tls_cipher", "auth_user",
                                      "tenant", "sender"};
  while (st.next()) {
    Json m = Json::object();
    m["id"] = st.integer(0);
    m["time"] = isoUtcMillis(st.integer(1));
    for (int n = 0; n < 10; ++n) {
      m[kText[n]] = st.text(2 + n);
    }
    m["rcpt_count"] = st.integer(12);
    m["size"] = st.integer(13);
    m["rule"] = st.text(14);
    m["reply"] = st.text(15);
    m["queue_id"] = st.text(16);
    list.push_back(std::move(m));
  }
  if (!error.empty()) {
    return nullptr;
  }
  return pagedList("messages", std::move(list), total, q);
}

Json reportBySender(const Database& db, const ReportQuery& q, int64_t untilMs,
                    std::string& error) {
  struct SenderRow {
    std::map<std::string, int64_t> versions;
    int64_t messages = 0;
    int64_t lastMs = 0;
  };
  std::map<std::string, SenderRow> senders;
  std::vector<Param> params;
  std::string sql = "SELECT sender, tls_version, COUNT(*), MAX(received_ms) FROM messages" +
                    whereClause(q, untilMs, "received_ms", params) +
                    " GROUP BY sender, tls_version";
  Statement st(db, sql, params, error);
  while (st.next()) {
    SenderRow& row = senders[st.text(0)];
    row.versions[st.text(1)] += st.integer(2);
    row.messages += st.integer(2);
    row.lastMs = std::max(row.lastMs, st.integer(3));
  }
  if (!error.empty()) {
    return nullptr;
  }
  std::vector<std::pair<std::string, SenderRow>> sorted(senders.begin(), senders.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.messages > b.second.messages;  // then by sender (the map's order)
  });
  Json list = Json::array();
  for (const auto& [sender, row] : sorted) {
    Json s = Json::object();
    s["sender"] = sender;
    s["messages"] = row.messages;
    s["versions"] = versionsObject(row.versions);
    s["last_seen"] = isoUtcSeconds(row.lastMs);
    list.push_back(std::move(s));
  }
  return Json{{"senders", std::move(list)}};
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::vector<std::string>& reportVersions() {
  static const std::vector<std::string> versions{"none", "1.0", "1.1", "1.2", "1.3"};
  return versions;
}

namespace {

Json reportFrom(const Database& db, const ReportQuery& q, std::string& error) {
  const int64_t untilMs = q.untilMs == 0 ? nowMs() : q.untilMs;
  switch (q.by) {
    case ReportQuery::By::Client:
      return reportByClient(db, q, untilMs, error);
    case ReportQuery::By::Sender:
      return reportBySender(db, q, untilMs, error);
    case ReportQuery::By::Message:
      return reportMessages(db, q, untilMs, error);
    case ReportQuery::By::Day:
      break;
  }
  return reportByDay(db, q, untilMs, error);
}

}  // namespace

nlohmann::ordered_json runReport(const ReportStore& store, const ReportQuery& q,
                                 std::string& error) {
  if (store.postgres.empty()) {
    return runReport(store.sqlitePath, q, error);
  }
  error.clear();
  PgDatabase db;
  if (!db.open(store.postgres, error)) {
    return nullptr;
  }
  return reportFrom(db, q, error);
}

bool reportStoreUnavailable(const std::string& error) {
  // PgConnection::connect() says "cannot connect to PostgreSQL: ..."; PgDatabase::query()
  // says kConnectionLost when the connection went during the query.
  return error.starts_with("cannot connect to PostgreSQL") || error.starts_with(kConnectionLost);
}

nlohmann::ordered_json runReport(const std::string& databasePath, const ReportQuery& q,
                                 std::string& error) {
  error.clear();
  std::error_code ec;
  if (!std::filesystem::exists(databasePath, ec)) {
    return emptyReport(q);  // nothing recorded yet
  }
  SqliteDatabase db;
  if (!db.open(databasePath, error)) {
    return nullptr;
  }
  {
    // A database the writer has just created may not have its tables yet.
    Statement st(db,
                 "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                 {Param::text("sessions"), Param::text("messages")}, error);
    if (!st.next()) {
      return nullptr;
    }
    if (st.integer(0) < 2) {
      return emptyReport(q);
    }
  }
  return reportFrom(db, q, error);
}

bool parseSince(std::string_view text, int64_t now, int64_t& sinceMs, std::string& error) {
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (text.size() >= 2 && (text.back() == 'd' || text.back() == 'h') &&
      digits(text.substr(0, text.size() - 1)) && text.size() <= 7) {
    int64_t n = std::stoll(std::string(text.substr(0, text.size() - 1)));
    if (n < 1 || n > 100000) {
      error = fmt::format("--since {}: must be 1..100000 days or hours", text);
      return false;
    }
    sinceMs = std::max<int64_t>(0, now - n * (text.back() == 'd' ? 86400000 : 3600000));
    return true;
  }
  if (text.size() == 10 && text[4] == '-' && text[7] == '-' && digits(text.substr(0, 4)) &&
      digits(text.substr(5, 2)) && digits(text.substr(8, 2))) {
    std::tm tm{};
    tm.tm_year = std::stoi(std::string(text.substr(0, 4))) - 1900;
    tm.tm_mon = std::stoi(std::string(text.substr(5, 2))) - 1;
    tm.tm_mday = std::stoi(std::string(text.substr(8, 2)));
    std::time_t t = ::timegm(&tm);
    if (tm.tm_year >= 70 && t >= 0 && utcDay(static_cast<int64_t>(t) * 1000) == text) {
      sinceMs = static_cast<int64_t>(t) * 1000;
      return true;
    }
  }
  error = fmt::format("--since {}: expected a number of days or hours (7d, 24h) or a date "
                      "(2026-11-01)", text);
  return false;
}

bool parseTlsList(std::string_view text, std::vector<std::string>& out, std::string& error) {
  out.clear();
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    std::string item(text.substr(start, comma == std::string_view::npos ? text.npos
                                                                         : comma - start));
    if (!isVersion(item)) {
      error = fmt::format("--tls: '{}' is not one of none, 1.0, 1.1, 1.2, 1.3", item);
      return false;
    }
    if (std::find(out.begin(), out.end(), item) == out.end()) {
      out.push_back(item);
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    start = comma + 1;
  }
}

bool parseReportBy(std::string_view text, ReportQuery::By& by, std::string& error) {
  static const std::pair<std::string_view, ReportQuery::By> kNames[] = {
      {"day", ReportQuery::By::Day},
      {"client", ReportQuery::By::Client},
      {"sender", ReportQuery::By::Sender},
      {"message", ReportQuery::By::Message}};
  for (const auto& [name, value] : kNames) {
    if (text == name) {
      by = value;
      return true;
    }
  }
  error = fmt::format("by {}: must be day, client, sender or message", text);
  return false;
}

bool parseReportFilters(ReportQuery& q, std::string_view limit, std::string_view offset,
                        std::string& error) {
  if (!q.clientIp.empty()) {
    auto ip = policy::IpAddress::parse(q.clientIp);
    if (!ip) {
      error = fmt::format("client '{}' is not an IPv4 or IPv6 address", q.clientIp);
      return false;
    }
    q.clientIp = ip->str();
  }
  int64_t dayStart = 0;
  if (!q.day.empty() && (!parseSince(q.day, 0, dayStart, error) || q.day.size() != 10)) {
    error = fmt::format("date '{}' is not a date such as 2026-11-27", q.day);
    return false;
  }
  auto number = [&error](std::string_view text, const char* name, int64_t low, int64_t high,
                         int64_t& out) {
    if (text.empty()) {
      return true;
    }
    int64_t n = 0;
    bool ok = text.size() <= 9;
    for (char c : text) {
      ok = ok && c >= '0' && c <= '9';
      n = ok ? n * 10 + (c - '0') : n;
    }
    if (!ok || n < low || n > high) {
      error = fmt::format("{} '{}' must be a number {}..{}", name, text, low, high);
      return false;
    }
    out = n;
    return true;
  };
  return number(limit, "limit", 1, 100000, q.limit) &&
         number(offset, "offset", 0, 100000000, q.offset);
}

}  // namespace smtpgate
