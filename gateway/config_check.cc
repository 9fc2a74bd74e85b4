// checkConfigFiles: the part of `check-config` that touches the file system; and the
// file-system side of the commands' configuration (lookup, admin token).

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "gateway/config.h"
#include "gateway/json_validator.h"
#include "gateway/spool.h"
#include "gateway/tenants_file.h"
#include "gateway/users_file.h"
#include "tls/tls_context.h"

namespace smtpgate {

namespace {

// A sentence when `path` cannot be opened for reading, "" otherwise. Checked before the TLS
// library so that the error names the right key (cert or key) and the errno text.
std::string unreadable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fmt::format("cannot read {}: {}", path, std::strerror(errno));
  }
  ::close(fd);
  return "";
}

}  // namespace

void checkConfigFiles(const Config& config, std::vector<ConfigError>& errors) {
  for (std::size_t i = 0; i < config.certificates.size(); ++i) {
    const auto& certificate = config.certificates[i];
    std::string pointer = fmt::format("/certificates/{}", i);
    std::string certError = unreadable(certificate.cert);
    std::string keyError = unreadable(certificate.key);
    if (!certError.empty()) {
      errors.push_back({pointer + "/cert", certError});
    }
    if (!keyError.empty()) {
      errors.push_back({pointer + "/key", keyError});
    }
    if (!certError.empty() || !keyError.empty()) {
      continue;
    }
    // Each certificate on its own, so that a bad one is named by its own pointer.
    tls::ServerContextOptions options;
    options.certificates.push_back({certificate.cert, certificate.key});
    std::string error;
    if (!tls::TlsContext::createServer(options, error)) {
      errors.push_back({pointer + "/cert", error});
    }
  }

  // A relay has no spool and no users file: the MTA stores messages and checks credentials.
  std::string spoolError = config.relay ? "" : Spool(config.spool.dir).prepare();
  if (!spoolError.empty()) {
    errors.push_back({"/backend/spool", spoolError});
  }

  if (!config.relay && !config.spool.users.empty()) {
    UsersFile users;
    std::vector<std::string> userErrors;
    if (!users.load(config.spool.users, userErrors)) {
      for (auto& e : userErrors) {
        errors.push_back({"/backend/users", std::move(e)});
      }
    }
  }

  if (!config.tenantsPath.empty()) {
    // Read here rather than through loadTenantsFile so that an unreadable file is not
    // prefixed with its own name twice.
    std::string text;
    std::string error;
    if (!json_schema::readFile(config.tenantsPath, text, error)) {
      errors.push_back({"/tenants", error});
    } else {
      policy::TenantDirectory tenants;
      std::vector<ConfigError> tenantErrors;
      if (!parseTenants(text, tenants, tenantErrors)) {
        // "/tenants: /etc/smtpgate/tenants.json: /tenants/0/domains/1: must be a DNS name"
        for (const auto& e : tenantErrors) {
          errors.push_back({"/tenants", config.tenantsPath + ": " + e.str()});
        }
      }
    }
  }

  if (config.admin.enabled) {
    std::string error;
    if (readAdminToken(config.admin.tokenFile, error).empty()) {
      errors.push_back({"/admin/token_file", error});
    }
  }

  if (!config.user.empty() && ::getpwnam(config.user.c_str()) == nullptr) {
    errors.push_back({"/user", fmt::format("no such user \"{}\"", config.user)});
  }
}

bool loadCommandConfig(const std::string& configPath, const char* command, Config& config) {
  std::string path = configPath;
  if (path.empty()) {
    const char* env = std::getenv("SMTPGATE_CONFIG");
    std::error_code ec;
    if (env && *env) {
      path = env;
    } else if (std::filesystem::exists("/etc/smtpgate/smtpgate.json", ec)) {
      path = "/etc/smtpgate/smtpgate.json";
    }
  }
  if (path.empty()) {
    config = embeddedDefaultConfig(std::filesystem::current_path().string());
    return true;
  }
  std::vector<ConfigError> errors;
  config = loadConfigFile(path, errors);
  for (const auto& e : errors) {
    std::fprintf(stderr, "smtpgate %s: %s: %s\n", command, path.c_str(), e.str().c_str());
  }
  return errors.empty();
}

std::string readAdminToken(const std::string& tokenFile, std::string& error) {
  std::string text;
  if (!json_schema::readFile(tokenFile, text, error)) {
    return "";
  }
  std::string token = text.substr(0, text.find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) {
    token.pop_back();
  }
  std::size_t start = token.find_first_not_of(" \t");
  token = start == std::string::npos ? "" : token.substr(start);
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      error = tokenFile + ": the token must be printable ASCII without spaces";
      return "";
    }
  }
  if (token.size() < 16) {
    error = tokenFile + ": the token must be at least 16 characters";
    return "";
  }
  return token;
}

}  // namespace smtpgate
