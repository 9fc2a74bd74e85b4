#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/spool.h"
#include "gateway/users_file.h"
#include "policy/legacy_tls.h"
#include "policy/tenants.h"
#include "tls/tls_context.h"

namespace smtpgate {

// Everything a connection needs that comes from the configuration, built once and then
// read-only: sessions keep the snapshot they started with; a reload builds a new one.
struct Runtime {
  Config config;
  std::shared_ptr<tls::TlsContext> strictContext;
  std::shared_ptr<tls::TlsContext> legacyContext;
  std::shared_ptr<Spool> spool;
  std::shared_ptr<UsersFile> users;  // null: AUTH is not offered
  policy::TenantDirectory tenants;   // empty without a tenants file
  std::shared_ptr<tls::TlsContext> backendTlsContext;  // relay with "tls": "starttls"

  const std::shared_ptr<tls::TlsContext>& contextFor(EndpointKind endpoint) const {
    return endpoint == EndpointKind::Legacy ? legacyContext : strictContext;
  }
  // The endpoint a session on `listener` belongs to, given the TLS SNI name ("" = none).
  EndpointKind resolveEndpoint(const ListenerConfig& listener, const std::string& sni) const;
  const policy::LegacyTlsPolicy& legacyTls() const { return config.legacyTls; }
};

policy::Endpoint policyEndpoint(EndpointKind kind);

// Builds the runtime: TLS contexts (certificates loaded), spool directories, users file,
// tenants file.
// Problems are appended to `errors` with the pointers of the configuration values.
// Cluster mode passes the tenants read from PostgreSQL in `tenants` (the configuration then
// names no tenants file).
std::shared_ptr<const Runtime> buildRuntime(const Config& config, std::vector<ConfigError>& errors,
                                            const policy::TenantDirectory* tenants = nullptr);

}  // namespace smtpgate
