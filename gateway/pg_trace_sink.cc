#include "gateway/pg_trace_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <unordered_map>

#include "gateway/time_format.h"

namespace smtpgate {
namespace {

constexpr std::size_t kSessionColumns = 18;
constexpr std::size_t kMessageColumns = 17;
// Rows per statement: libpq takes at most 65535 parameters.
constexpr std::size_t kRowsPerStatement = 1000;

std::string valuesList(std::size_t rows, std::size_t columns) {
  std::string sql;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ", (";
    for (std::size_t c = 0; c < columns; ++c) {
      sql += fmt::format("{}${}", c == 0 ? "" : ", ", r * columns + c + 1);
    }
    sql += ")";
  }
  return sql;
}

// The records in statements of at most kRowsPerStatement rows each.
template <typename Record>
bool insertChunks(PgConnection& db, const std::vector<const Record*>& records,
                  std::string (*build)(std::size_t), void (*append)(PgParams&, const Record&),
                  std::string& error) {
  for (std::size_t begin = 0; begin < records.size(); begin += kRowsPerStatement) {
    const std::size_t end = std::min(records.size(), begin + kRowsPerStatement);
    PgParams params;
    for (std::size_t i = begin; i < end; ++i) {
      append(params, *records[i]);
    }
    if (!db.exec(build(end - begin), params, nullptr, error)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string buildSessionInsert(std::size_t rows) {
  return "INSERT INTO sessions (session_id, started_ms, ended_ms, day, listener, endpoint, "
         "client_ip, client_port, sni, ehlo, tls_version, tls_cipher, tls_max_offered, "
         "auth_user, tenant, rule, final_reply, messages) VALUES " +
         valuesList(rows, kSessionColumns) +
         " ON CONFLICT (session_id) DO UPDATE SET started_ms = EXCLUDED.started_ms, "
         "ended_ms = EXCLUDED.ended_ms, day = EXCLUDED.day, listener = EXCLUDED.listener, "
         "endpoint = EXCLUDED.endpoint, client_ip = EXCLUDED.client_ip, "
         "client_port = EXCLUDED.client_port, sni = EXCLUDED.sni, ehlo = EXCLUDED.ehlo, "
         "tls_version = EXCLUDED.tls_version, tls_cipher = EXCLUDED.tls_cipher, "
         "tls_max_offered = EXCLUDED.tls_max_offered, auth_user = EXCLUDED.auth_user, "
         "tenant = EXCLUDED.tenant, rule = EXCLUDED.rule, final_reply = EXCLUDED.final_reply, "
         "messages = EXCLUDED.messages";
}

std::string buildMessageInsert(std::size_t rows) {
  return "INSERT INTO messages (session_id, received_ms, day, listener, endpoint, client_ip, "
         "ehlo, tls_version, tls_cipher, auth_user, tenant, sender, rcpt_count, size, rule, "
         "reply, queue_id) VALUES " +
         valuesList(rows, kMessageColumns);
}

void appendSessionParams(PgParams& p, const SessionTrace& t) {
  p.text(pgSafeText(t.sessionId))
      .integer(t.startedMs)
      .integer(t.endedMs)
      .text(utcDay(t.startedMs))
      .text(pgSafeText(t.listener))
      .text(pgSafeText(t.endpoint))
      .text(pgSafeText(t.clientIp))
      .integer(t.clientPort)
      .text(pgSafeText(t.sni))
      .text(pgSafeText(t.ehlo))
      .text(pgSafeText(t.tlsVersion))
      .text(pgSafeText(t.tlsCipher))
      .text(pgSafeText(t.tlsMaxOffered))
      .text(pgSafeText(t.authUser))
      .text(pgSafeText(t.tenant))
      .text(pgSafeText(t.rule))
      .text(pgSafeText(t.finalReply))
      .integer(t.messages);
}

void appendMessageParams(PgParams& p, const MessageTrace& t) {
  p.text(pgSafeText(t.sessionId))
      .integer(t.receivedMs)
      .text(utcDay(t.receivedMs))
      .text(pgSafeText(t.listener))
      .text(pgSafeText(t.endpoint))
      .text(pgSafeText(t.clientIp))
      .text(pgSafeText(t.ehlo))
      .text(pgSafeText(t.tlsVersion))
      .text(pgSafeText(t.tlsCipher))
      .text(pgSafeText(t.authUser))
      .text(pgSafeText(t.tenant))
      .text(pgSafeText(t.sender))
      .integer(t.rcptCount)
      .integer(static_cast<int64_t>(std::min<uint64_t>(t.size, INT64_MAX)))
      .text(pgSafeText(t.rule))
      .text(pgSafeText(t.reply))
      .text(pgSafeText(t.queueId));
}

PgConnection* PgTraceSink::connection(std::string& error) {
  if (db_ && db_->healthy()) {
    return db_.get();
  }
  db_ = PgConnection::connect(conninfo_, error);
  return db_.get();
}

PgWrite PgTraceSink::write(const std::vector<const SessionTrace*>& sessions,
                           const std::vector<const MessageTrace*>& messages, std::string& error) {
  PgConnection* db = connection(error);
  if (db == nullptr) {
    return PgWrite::Unavailable;
  }
  // One row per session id: ON CONFLICT cannot touch a row twice in one statement, and the
  // later record of a session is the one that counts.
  std::unordered_map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    last[sessions[i]->sessionId] = i;
  }
  std::vector<const SessionTrace*> unique;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    if (last[sessions[i]->sessionId] == i) {
      unique.push_back(sessions[i]);
    }
  }
  bool ok = db->exec("BEGIN", error) &&
            insertChunks(*db, unique, buildSessionInsert, appendSessionParams, error) &&
            insertChunks(*db, messages, buildMessageInsert, appendMessageParams, error) &&
            db->exec("COMMIT", error);
  if (ok) {
    return PgWrite::Committed;
  }
  std::string ignored;
  db->exec("ROLLBACK", ignored);
  if (!db->healthy()) {
    db_.reset();
    return PgWrite::Unavailable;
  }
  return PgWrite::Refused;
}

bool PgTraceSink::deleteBefore(int64_t cutoffMs, int64_t& deleted, std::string& error) {
  PgConnection* db = connection(error);
  if (db == nullptr) {
    return false;
  }
  PgParams cutoff;
  cutoff.integer(cutoffMs);
  PgResult a;
  PgResult b;
  if (!db->exec("WITH d AS (DELETE FROM sessions WHERE started_ms < $1 RETURNING 1) "
                "SELECT count(*) FROM d",
                cutoff, &a, error) ||
      !db->exec("WITH d AS (DELETE FROM messages WHERE received_ms < $1 RETURNING 1) "
                "SELECT count(*) FROM d",
                cutoff, &b, error)) {
    return false;
  }
  deleted = a.integer(0, 0) + b.integer(0, 0);
  return true;
}

}  // namespace smtpgate
