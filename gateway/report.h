#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace smtpgate {

// The inbound messages report of SPEC section 7, read from the trace store
// (STATE_DIR/traces.sqlite, gateway/trace_schema.h). A message counts once it was accepted
// (a row of `messages`); refused sessions count as decisions (rows of `sessions` whose rule is
// not D8).
struct ReportQuery {
  int64_t sinceMs = 0;  // Unix milliseconds, inclusive
  int64_t untilMs = 0;  // inclusive; 0 = now
  std::string tenant;   // "" = every tenant
  std::string endpoint;  // "strict" | "legacy", "" = both
  std::vector<std::string> tls;  // "none", "1.0", "1.1", "1.2", "1.3"; empty = all
  std::string clientIp;  // "" = every client
  std::string day;       // "2026-11-27": only that UTC day; "" = the whole range
  // Paging of the client and message lists: `limit` rows from `offset` (0 = all rows).
  int64_t limit = 0;
  int64_t offset = 0;
  enum class By { Day, Client, Sender, Message } by = By::Day;
};

// The five TLS versions in report order: "none", "1.0", "1.1", "1.2", "1.3".
const std::vector<std::string>& reportVersions();

// Opens the database read-only (a missing database, or one without tables yet, is an empty
// report, not an error) and returns the JSON of SPEC section 7:
//   by day:    {"totals": {"none": N, "1.0": N, "1.1": N, "1.2": N, "1.3": N, "all": N,
//                          "percent": {"none": 6.7, ...}, "decisions": {"D3": 4}},
//               "days": [{"date": "2026-11-27", "none": N, ..., "all": N, "percent": {...}}]}
//              message counts per UTC day (only days with messages, ascending); every version
//              key always present; percentages of the row's "all" with one decimal.
//   by client: {"clients": [{"client_ip", "ehlo", "auth_user", "tenant", "endpoint",
//               "versions": {"1.0": 3}, "messages": 3, "first_seen", "last_seen",
//               "last_rule"}]} — one entry per (client_ip, ehlo, auth_user) of the sessions in
//              range; versions = sessions per TLS version (keys with a count only), messages =
//              accepted messages of that client, tenant/endpoint/last_rule of its latest
//              session; the clients with the most TLS 1.0/1.1 sessions first, then by messages.
//   by sender: {"senders": [{"sender", "messages", "versions": {"1.2": 5}, "last_seen"}]}
//              most messages first.
//   by message: {"total": N, "offset": 0, "limit": 100, "messages": [{"id", "time",
//               "session_id", "listener", "endpoint", "client_ip", "ehlo", "tls_version",
//               "tls_cipher", "auth_user", "tenant", "sender", "rcpt_count", "size", "rule",
//               "reply", "queue_id"}]} — the accepted messages themselves, newest first.
// The client list also carries "total", "offset" and "limit"; `total` counts the rows before
// paging.
// Times are ISO-8601 UTC ("2026-11-27T10:04:05Z"). Filters apply to sessions and messages
// alike. On a database error returns null and sets `error`.
nlohmann::ordered_json runReport(const std::string& databasePath, const ReportQuery& q,
                                 std::string& error);

// Where the report reads: the SQLite trace store, or in cluster mode the PostgreSQL of every
// instance (same SQL, same JSON; an unreachable database is an error).
struct ReportStore {
  std::string sqlitePath;
  std::string postgres;  // a libpq connection string; non-empty wins
};
nlohmann::ordered_json runReport(const ReportStore& store, const ReportQuery& q,
                                 std::string& error);
// True for an error of runReport that says the cluster's PostgreSQL is out of reach (it could
// not be connected to, or the connection was lost during the query): the report is unavailable
// for now (HTTP 503), not broken.
bool reportStoreUnavailable(const std::string& error);

// Renders a report of runReport: aligned columns with a header (by day: date none 1.0 1.1 1.2
// 1.3 all, then a TOTAL row with percentages and the refused sessions by rule), or CSV
// (RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote, CR or LF; a header
// row). Control characters of client-supplied strings are shown as \xNN in the table.
std::string formatTable(const nlohmann::ordered_json& report, ReportQuery::By by);
std::string formatCsv(const nlohmann::ordered_json& report, ReportQuery::By by);

// Command-line values. parseSince accepts "7d", "24h" (1..100000 days or hours before
// `nowMs`) and a UTC date "2026-11-01" (its midnight); parseTlsList a comma-separated list of
// versions. Both return false with a phrase in `error`.
bool parseSince(std::string_view text, int64_t nowMs, int64_t& sinceMs, std::string& error);
bool parseTlsList(std::string_view text, std::vector<std::string>& out, std::string& error);
// "day" | "client" | "sender" | "message"; false with "by week: must be day, client, sender or
// message" in `error`.
bool parseReportBy(std::string_view text, ReportQuery::By& by, std::string& error);
// Checks the query's client address (an IP literal, stored in the form the traces use) and
// day (YYYY-MM-DD), and reads `limit` (1..100000, "" = none) and `offset` (0.., "" = 0).
// One checker for the CLI and the admin API.
bool parseReportFilters(ReportQuery& q, std::string_view limit, std::string_view offset,
                        std::string& error);


}  // namespace smtpgate
