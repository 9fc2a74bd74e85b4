#include "gateway/runtime.h"


#include "gateway/tenants_file.h"

namespace smtpgate {

EndpointKind Runtime::resolveEndpoint(const ListenerConfig& listener,
                                      const std::string& sni) const {
  if (listener.endpoint != EndpointKind::BySni) {
    return listener.endpoint;
  }
  auto it = config.hostnames.find(policy::normalizeDomain(sni));
  return it == config.hostnames.end() ? config.defaultEndpoint : it->second;
}

policy::Endpoint policyEndpoint(EndpointKind kind) {
  return kind == EndpointKind::Legacy ? policy::Endpoint::Legacy : policy::Endpoint::Strict;
}

std::shared_ptr<const Runtime> buildRuntime(const Config& config,
                                            std::vector<ConfigError>& errors,
                                            const policy::TenantDirectory* tenants) {
  auto runtime = std::make_shared<Runtime>();
  runtime->config = config;
  if (tenants != nullptr) {
    runtime->tenants = *tenants;
  } else if (!config.tenantsPath.empty()) {
    std::vector<ConfigError> tenantErrors;
    if (!loadTenantsFile(config.tenantsPath, runtime->tenants, tenantErrors)) {
      for (const auto& e : tenantErrors) {
        errors.push_back({"/tenants", config.tenantsPath + ": " + e.str()});
      }
      return nullptr;
    }
  }

  tls::ServerContextOptions options;
  for (const auto& cert : config.certificates) {
    options.certificates.push_back({cert.cert, cert.key});
  }
  // Both endpoints negotiate TLS 1.0 to 1.3: which versions a session may keep is the
  // policy's decision, made from the handshake facts (SPEC section 4).
  options.minVersion = tls::kTls10;
  options.maxVersion = tls::kTls13;
  // Ask for a client certificate only when an exception can use it: some old devices fail
  // on a CertificateRequest they do not expect.
  for (const auto& tenant : runtime->tenants.all()) {
    for (const auto& exception : tenant.exceptions) {
      if (exception.kind == policy::TenantException::Kind::CertSha256) {
        options.requestClientCertificate = true;
      }
    }
  }
  std::string error;
  if (!config.certificates.empty()) {
    runtime->strictContext = tls::TlsContext::createServer(options, error);
    if (!runtime->strictContext) {
      errors.push_back({"/certificates", error});
      return nullptr;
    }
    runtime->legacyContext = tls::TlsContext::createServer(options, error);
    if (!runtime->legacyContext) {
      errors.push_back({"/certificates", error});
      return nullptr;
    }
  } else if (!config.listeners.empty()) {
    errors.push_back({"/certificates", "at least one certificate is required"});
    return nullptr;
  }

  if (config.relay) {
    if (config.smtpBackend.startTls) {
      // TLS 1.2+ toward our own MTA; it is on a trusted network path, so its certificate is
      // not verified (a private CA or self-signed one is the norm there).
      tls::ClientContextOptions client;
      client.minVersion = tls::kTls12;
      runtime->backendTlsContext = tls::TlsContext::createClient(client, error);
      if (!runtime->backendTlsContext) {
        errors.push_back({"/backend/tls", error});
        return nullptr;
      }
    }
    return runtime;  // the MTA stores messages and checks credentials
  }
  runtime->spool = std::make_shared<Spool>(config.spool.dir);
  std::string spoolError = runtime->spool->prepare();
  if (!spoolError.empty()) {
    errors.push_back({"/backend/spool", spoolError});
    return nullptr;
  }
  if (!config.spool.users.empty()) {
    auto users = std::make_shared<UsersFile>();
    std::vector<std::string> userErrors;
    if (!users->load(config.spool.users, userErrors)) {
      for (const auto& e : userErrors) {
        errors.push_back({"/backend/users", e});
      }
      return nullptr;
    }
    runtime->users = std::move(users);
  }
  return runtime;
}

}  // namespace smtpgate
