#pragma once

// Cluster mode: the trace records of this instance in PostgreSQL (tables sessions and messages,
// gateway/db/migrations). Called by the trace store's writer thread only; one transaction per
// batch of multi-row INSERTs whose values are all parameters.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/pg_connection.h"
#include "gateway/trace_record.h"

namespace smtpgate {

// INSERT ... VALUES ($1, ..., $18), ... for `rows` sessions; a session recorded again replaces
// its row (as INSERT OR REPLACE does in SQLite).
std::string buildSessionInsert(std::size_t rows);
// INSERT ... VALUES ($1, ..., $17), ... for `rows` messages.
std::string buildMessageInsert(std::size_t rows);
// The parameters of one row, in the column order of the statements above (client-supplied text
// made storable by pgSafeText).
void appendSessionParams(PgParams& params, const SessionTrace& t);
void appendMessageParams(PgParams& params, const MessageTrace& t);

enum class PgWrite {
  Committed,
  Unavailable,  // PostgreSQL away or the connection lost: keep the records, try again later
  Refused,      // the server refused the statement on a healthy connection: retrying won't help
};

class PgTraceSink {
 public:
  explicit PgTraceSink(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  // Commits the records in one transaction, or says why not (with `error`); after Unavailable
  // the connection is reopened on the next call.
  PgWrite write(const std::vector<const SessionTrace*>& sessions,
             const std::vector<const MessageTrace*>& messages, std::string& error);
  // Deletes the records older than `cutoffMs`; false with `error`.
  bool deleteBefore(int64_t cutoffMs, int64_t& deleted, std::string& error);

 private:
  PgConnection* connection(std::string& error);
  std::string conninfo_;
  std::unique_ptr<PgConnection> db_;
};

}  // namespace smtpgate
