#pragma once

// A thin owner of one libpq connection (cluster mode, "store": {"postgres": CONNINFO}). Every
// value reaches the server as a bound parameter of PQexecParams, never inside the SQL text.
// Blocking: used from the writer, watcher, admin and command-line threads, never from an event
// loop.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace smtpgate {

// The text parameters of one statement ($1, $2, ...); std::nullopt is SQL NULL.
class PgParams {
 public:
  PgParams& text(std::string_view value);
  PgParams& integer(int64_t value);
  PgParams& null();
  std::size_t size() const { return values_.size(); }
  const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

// The rows of a statement, read as text (libpq's text format).
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result);
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  bool isNull(int row, int column) const;
  std::string text(int row, int column) const;
  int64_t integer(int row, int column) const;  // 0 for NULL or not a number

 private:
  friend class PgConnection;
  pg_result* raw() const { return result_; }
  pg_result* result_ = nullptr;
};

class PgConnection {
 public:
  // Connects (client encoding UTF8). nullptr with `error` ("cannot connect to PostgreSQL: ...",
  // never the password of the connection string).
  static std::unique_ptr<PgConnection> connect(const std::string& conninfo, std::string& error);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement; false with `error` set on any failure. `out` may be null.
  bool exec(const std::string& sql, const PgParams& params, PgResult* out, std::string& error);
  bool exec(const std::string& sql, std::string& error) { return exec(sql, {}, nullptr, error); }
  // Several statements without parameters in one string (a migration file).
  bool execScript(const std::string& sql, std::string& error);
  // True while the connection is usable.
  bool healthy() const;
  int socket() const;
  // Reads what arrived on the socket and returns the channel/payload pairs of NOTIFYs; false
  // when the connection broke.
  bool takeNotifications(std::vector<std::pair<std::string, std::string>>& out);
  // The SQLSTATE of the last failed statement ("" when unknown).
  const std::string& lastSqlState() const { return sqlState_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  bool finish(PgResult result, PgResult* out, std::string& error);
  pg_conn* conn_ = nullptr;
  std::string sqlState_;
};

// PostgreSQL text cannot hold a NUL byte or invalid UTF-8; client-supplied strings (EHLO names,
// senders) may. Each byte of an invalid sequence and each NUL becomes U+FFFD, as the JSON
// output of the SQLite path shows them.
std::string pgSafeText(std::string_view bytes);

// Rewrites the "?" placeholders of a statement into PostgreSQL's "$1", "$2", ... ("?" inside
// single-quoted literals is left alone), so one SQL text serves SQLite and PostgreSQL.
std::string numberedPlaceholders(std::string_view sql);

}  // namespace smtpgate
