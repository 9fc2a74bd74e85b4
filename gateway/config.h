#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/legacy_tls.h"
#include "policy/tenants.h"

namespace smtpgate {

// One problem in a configuration: the JSON pointer of the offending value and what is wrong,
// printed as "/listeners/1/port: must be 1..65535".
struct ConfigError {
  std::string pointer;
  std::string message;
  std::string str() const { return pointer.empty() ? message : pointer + ": " + message; }
};

struct ListenAddress {
  std::string host;  // "0.0.0.0", "127.0.0.1", "::", "::1" (no brackets)
  uint16_t port = 0;
  std::string str() const;  // "127.0.0.1:2587", "[::1]:25"
};

enum class TlsMode { StartTls, Implicit };
enum class EndpointKind { Strict, Legacy, BySni };

struct ListenerConfig {
  std::string name;
  ListenAddress listen;
  TlsMode tls = TlsMode::StartTls;
  EndpointKind endpoint = EndpointKind::Strict;
  bool requireTls = true;
  // "proxy_protocol": {"trusted": [CIDR, ...]}: a PROXY v1/v2 header from one of these peers
  // comes first and names the client; any other peer is refused. Empty = no PROXY protocol.
  std::vector<policy::Cidr> proxyTrusted;
};

struct CertificateConfig {
  std::string cert;
  std::string key;
};

struct SpoolBackendConfig {
  std::string dir;    // spool directory: tmp/ and new/ beneath it
  std::string users;  // users file (user@domain:CRYPT-HASH lines), "" = AUTH not offered
};

// How the backend learns the real client (SPEC section 6).
enum class Handoff { None, Xclient, ProxyV1, ProxyV2 };

struct SmtpBackendConfig {
  ListenAddress address;            // the MTA's SMTP listener, an IP literal and port
  Handoff handoff = Handoff::Xclient;
  bool startTls = false;            // "tls": "starttls" toward the backend
};

struct SmtpConfig {
  uint64_t maxMessageBytes = 36700160;
  uint32_t maxRecipients = 100;
  bool bareLfReject = false;  // "bare_lf": "normalize" (false) | "reject" (true)
  bool receivedHeader = true;
};

struct TimeoutsConfig {
  uint32_t command = 300;
  uint32_t dataBlock = 180;
  uint32_t handshake = 30;
  uint32_t backendConnect = 10;
  uint32_t drain = 60;
  uint32_t dataTotal = 1800;      // one DATA phase from 354 to its end, whatever the pace
  uint32_t dataRateWindow = 30;   // min_data_rate_bps is checked over windows this long
  uint32_t write = 60;            // replies queued toward a client that does not read
};

struct LimitsConfig {
  uint32_t maxConnections = 20000;
  uint32_t maxConnectionsPerIp = 100;
  uint32_t maxErrors = 10;
  // Rates per client IP (IPv6: per /64), shared by all workers: token buckets that refill
  // over a minute, so a burst of this many and then this many per minute.
  uint32_t newConnectionsPerIpPerMinute = 600;
  uint32_t newTlsHandshakesPerIpPerMinute = 600;
  // DATA slower than this on average over a timeouts_s.data_rate_window: 421 4.4.2. 0 = off.
  uint32_t minDataRateBps = 1024;
  // Each error reply after the third pauses the session's input this long (the tarpit).
  uint32_t errorDelayMs = 1000;
  TimeoutsConfig timeouts;
};

// SPEC section 7: the trace store (STATE_DIR/traces.sqlite) and the JSON-lines event stream.
struct TraceConfig {
  bool sqlite = true;            // "store": "sqlite" (true) | "none" (false)
  uint32_t retentionDays = 90;   // rows older than this are deleted
  std::string eventsJsonl;       // "" = off, "-" = stdout, else an absolute path (appended to)
};

// Cluster mode: tenants, their audit trail and the traces in PostgreSQL instead of the tenants
// file and STATE_DIR/traces.sqlite ("store": {"postgres": CONNINFO}).
struct StoreConfig {
  std::string postgres;            // a libpq connection string or URI; "" = local files
  uint32_t bufferRecords = 200000;  // trace records held in memory while PostgreSQL is away
  uint32_t refreshS = 30;          // tenants re-read this often even without a NOTIFY
  bool cluster() const { return !postgres.empty(); }
};

// SPEC section 7: the admin HTTP API and page. Off unless "admin" is configured; never without
// a token (the file holds one line of at least 16 printable characters).
struct AdminConfig {
  bool enabled = false;
  ListenAddress listen;    // "127.0.0.1:8025"
  std::string tokenFile;   // resolved path
};

struct Config {
  std::string hostname = "localhost";
  std::string stateDir = "/var/lib/smtpgate";  // resolved against the config's directory
  uint32_t workers = 0;
  std::vector<ListenerConfig> listeners;
  std::map<std::string, EndpointKind> hostnames;  // lower-case name -> strict|legacy
  EndpointKind defaultEndpoint = EndpointKind::Strict;
  std::vector<CertificateConfig> certificates;
  SpoolBackendConfig spool;
  bool relay = false;               // "backend": {"smtp": ...} instead of the spool
  SmtpBackendConfig smtpBackend;  // without a "backend" section: STATE_DIR/spool, no users
  SmtpConfig smtp;
  LimitsConfig limits;
  // The tenants file (gateway/tenants_file.h), resolved; "" = no tenants, so that
  // legacyTls.defaultAllow decides for every domain.
  std::string tenantsPath;
  policy::LegacyTlsPolicy legacyTls;  // timestamps as Unix seconds
  TraceConfig trace;
  StoreConfig store;
  AdminConfig admin;
  std::string user;                   // "" = keep running as the starting user
  std::string sourcePath;             // file it came from, "" for the embedded default
};

// Parses and validates a configuration document. Relative paths are resolved against
// `baseDir`. Every problem is appended to `errors` (all of them, not just the first);
// the returned Config is meaningful only when `errors` is empty.
Config parseConfig(const std::string& jsonText, const std::string& baseDir,
                   std::vector<ConfigError>& errors);
// Reads `path` and parses it; an unreadable file or invalid JSON is one error with an empty
// pointer ("cannot read /etc/x.json: No such file or directory", "invalid JSON at line 3 ...").
Config loadConfigFile(const std::string& path, std::vector<ConfigError>& errors);

// Checks that the configuration's files exist and are usable (certificates and keys load and
// match, the spool directory can be created, the users file and the tenants file parse).
// Appends errors; those of the tenants file read
// "/tenants: /etc/smtpgate/tenants.json: /tenants/0/domains/1: must be a DNS name".
void checkConfigFiles(const Config& config, std::vector<ConfigError>& errors);

// Reads the admin token of `config.admin.tokenFile`: its first line without surrounding
// spaces. Returns "" and sets `error` when the file cannot be read or the token is shorter than
// 16 characters or holds anything but printable ASCII.
std::string readAdminToken(const std::string& tokenFile, std::string& error);

const char* endpointName(EndpointKind kind);  // "strict", "legacy", "by-sni"
const char* tlsModeName(TlsMode mode);        // "starttls", "implicit"

// "127.0.0.1:25" or "[::1]:25" (IPv4 dotted quad or bracketed IPv6; port 1..65535). The host
// is stored in canonical form ("[0::0]:25" -> "::"). On failure `error` is a phrase such as
// "port must be 1..65535".
bool parseListenAddress(std::string_view text, ListenAddress& out, std::string& error);
// LDH labels of 1..63 characters separated by dots, at most 253 characters, no trailing dot.
bool isDnsName(std::string_view name);

// The configuration that the `report` and `tenant` commands read: `configPath`, else
// $SMTPGATE_CONFIG, else /etc/smtpgate/smtpgate.json when it exists, else the embedded default
// (under the current directory). Errors go to stderr as "smtpgate COMMAND: PATH: error".
bool loadCommandConfig(const std::string& configPath, const char* command, Config& config);

// The configuration used when none is given (SPEC section 9), as JSON (for
// `smtpgate run --print-default`) and parsed, with relative paths resolved against `baseDir`.
const char* embeddedDefaultJson();
Config embeddedDefaultConfig(const std::string& baseDir);

}  // namespace smtpgate
