#pragma once

// The SQLite schema of the trace store (state_dir/traces.sqlite). The writer creates it; the
// report reads it. Times are Unix milliseconds; `day` is the UTC date (YYYY-MM-DD) of the
// record, kept as a column so that per-day reports use an index.
namespace smtpgate::trace_schema {

inline constexpr int kVersion = 1;

inline constexpr const char* kCreate = R"SQL(
CREATE TABLE IF NOT EXISTS sessions (
  session_id TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  ended_ms INTEGER NOT NULL,
  day TEXT NOT NULL,
  listener TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  client_port INTEGER NOT NULL,
  sni TEXT NOT NULL,
  ehlo TEXT NOT NULL,
  tls_version TEXT NOT NULL,
  tls_cipher TEXT NOT NULL,
  tls_max_offered TEXT NOT NULL,
  auth_user TEXT NOT NULL,
  tenant TEXT NOT NULL,
  rule TEXT NOT NULL,
  final_reply TEXT NOT NULL,
  messages INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_day ON sessions (day);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client_ip);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  day TEXT NOT NULL,
  listener TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  ehlo TEXT NOT NULL,
  tls_version TEXT NOT NULL,
  tls_cipher TEXT NOT NULL,
  auth_user TEXT NOT NULL,
  tenant TEXT NOT NULL,
  sender TEXT NOT NULL,
  rcpt_count INTEGER NOT NULL,
  size INTEGER NOT NULL,
  rule TEXT NOT NULL,
  reply TEXT NOT NULL,
  queue_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_day ON messages (day, tls_version);
CREATE INDEX IF NOT EXISTS messages_client ON messages (client_ip, tls_version);
CREATE INDEX IF NOT EXISTS messages_tenant ON messages (tenant, day);
CREATE INDEX IF NOT EXISTS messages_sender ON messages (sender);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)SQL";

}  // namespace smtpgate::trace_schema
