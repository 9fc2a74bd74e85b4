-- smtpgate cluster store, version 1: tenants with their exceptions, the audit trail of tenant
-- changes, and the trace records (the tables of the SQLite trace store, same columns).
-- Times are Unix milliseconds; `day` is the UTC date (YYYY-MM-DD) of the record.

-- One row per tenant in document order; `doc` is the tenant object of the tenants file
-- (id, domains, allow_legacy_tls_clients, exceptions).
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  doc JSON NOT NULL
);

-- The version of the tenant set: every change increments it in the transaction that makes the
-- change and sends NOTIFY smtpgate_tenants with the new version.
CREATE TABLE tenant_state (
  singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
  version BIGINT NOT NULL
);
INSERT INTO tenant_state (singleton, version) VALUES (TRUE, 0);

CREATE TABLE tenant_audit (
  id BIGSERIAL PRIMARY KEY,
  at_ms BIGINT NOT NULL,
  tenant TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX tenant_audit_tenant ON tenant_audit (lower(tenant), id);

CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY,
  started_ms BIGINT NOT NULL,
  ended_ms BIGINT NOT NULL,
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
CREATE INDEX sessions_day ON sessions (day);
CREATE INDEX sessions_client ON sessions (client_ip);
CREATE INDEX sessions_started ON sessions (started_ms);

CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  session_id TEXT NOT NULL,
  received_ms BIGINT NOT NULL,
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
  size BIGINT NOT NULL,
  rule TEXT NOT NULL,
  reply TEXT NOT NULL,
  queue_id TEXT NOT NULL
);
CREATE INDEX messages_day ON messages (day, tls_version);
CREATE INDEX messages_client ON messages (client_ip, tls_version);
CREATE INDEX messages_tenant ON messages (tenant, day);
CREATE INDEX messages_sender ON messages (sender);
CREATE INDEX messages_received ON messages (received_ms);
