#include "gateway/embedded_default.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "gateway/json_validator.h"
#include "gateway/users_file.h"
#include "tls/self_signed.h"

namespace smtpgate {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDemoUser = "demo@example.com";

// Two demo tenants: one that opted in to legacy TLS (the demo user's domain), one that did not,
// with the two kinds of exception administrators use most.
constexpr const char* kDemoTenants = R"({
  "tenants": [
    {"id": "example", "domains": ["example.com", "example.org"],
     "allow_legacy_tls_clients": true},
    {"id": "contoso", "domains": ["contoso.com"],
     "allow_legacy_tls_clients": false,
     "exceptions": [
       {"client": "127.0.0.2/32", "reason": "demo: the scanner on 127.0.0.2", "expires": "2027-12-31"},
       {"user": "printer@contoso.com", "reason": "demo: the 3rd-floor printer"}
     ]}
  ]
}
)";

std::string writeFile(const std::string& path, const std::string& data, mode_t mode) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) {
    return fmt::format("cannot create {}: {}", fs::path(path).parent_path().string(), ec.message());
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
  }
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return fmt::format("cannot write {}: {}", path, why);
  }
  return "";
}

// What the banner shows: a file that is missing shows nothing.
std::string readFile(const std::string& path) {
  std::string text, error;
  json_schema::readFile(path, text, error);
  return text;
}

std::string randomPassword(std::size_t length = 16) {
  static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::vector<uint8_t> bytes(length);
  RAND_bytes(bytes.data(), bytes.size());
  std::string out;
  for (uint8_t b : bytes) {
    out += alphabet[b % (sizeof alphabet - 1)];
  }
  return out;
}

std::string ensureCertificate(const CertificateConfig& cert, tls::KeyType type,
                              const std::vector<std::string>& names) {
  if (fs::exists(cert.cert) && fs::exists(cert.key)) {
    return "";
  }
  std::string error;
  tls::PemPair pair = tls::makeSelfSigned(type, names, 825, error);
  if (!error.empty()) {
    return error;
  }
  std::string e = writeFile(cert.key, pair.keyPem, 0600);
  if (e.empty()) {
    e = writeFile(cert.cert, pair.certPem, 0644);
  }
  return e;
}

}  // namespace

std::string prepareEmbeddedDefault(const Config& config, std::string& banner) {
  std::vector<std::string> names = {config.hostname};
  if (config.hostname != "localhost") {
    names.push_back("localhost");
  }
  // The embedded default lists the ECDSA certificate first, then the RSA one.
  for (std::size_t i = 0; i < config.certificates.size(); ++i) {
    tls::KeyType type = i == 0 ? tls::KeyType::Ecdsa : tls::KeyType::Rsa;
    std::string e = ensureCertificate(config.certificates[i], type, names);
    if (!e.empty()) {
      return e;
    }
  }
  std::string credentials = config.stateDir + "/demo-credentials.txt";
  if (!config.spool.users.empty() && !fs::exists(config.spool.users)) {
    std::string password = randomPassword();
    std::string e = writeFile(
        config.spool.users,
        fmt::format("# smtpgate demo users: user@domain:crypt(3) hash\n{}:{}\n", kDemoUser,
                    UsersFile::hashPassword(password)),
        0600);
    if (e.empty()) {
      e = writeFile(credentials, fmt::format("{} {}\n", kDemoUser, password), 0600);
    }
    if (!e.empty()) {
      return e;
    }
  }

  if (!config.tenantsPath.empty() && !fs::exists(config.tenantsPath)) {
    std::string e = writeFile(config.tenantsPath, kDemoTenants, 0644);
    if (!e.empty()) {
      return e;
    }
  }

  if (config.admin.enabled && !fs::exists(config.admin.tokenFile)) {
    std::string e = writeFile(config.admin.tokenFile, randomPassword(32) + "\n", 0600);
    if (!e.empty()) {
      return e;
    }
  }

  banner += "smtpgate is running on its embedded default configuration:\n";
  for (const auto& l : config.listeners) {
    banner += fmt::format("  {:<16} {:<16} {:<9} endpoint {}\n", l.name, l.listen.str(),
                          l.tls == TlsMode::Implicit ? "implicit" : "starttls",
                          endpointName(l.endpoint));
  }
  banner += fmt::format("  certificates     {} (self-signed)\n",
                        fs::path(config.certificates.front().cert).parent_path().string());
  banner += fmt::format("  spool            {}/new (ID.eml + ID.json per message)\n",
                        config.spool.dir);
  if (!config.tenantsPath.empty()) {
    banner += fmt::format("  tenants          {}\n", config.tenantsPath);
    std::istringstream tenants(readFile(config.tenantsPath));
    for (std::string line; std::getline(tenants, line);) {
      banner += "                   " + line + "\n";
    }
  }
  if (config.admin.enabled) {
    banner += fmt::format("  admin            http://{}/ (bearer token in {})\n",
                          config.admin.listen.str(), config.admin.tokenFile);
  }
  std::string cred = readFile(credentials);
  if (!cred.empty()) {
    std::istringstream in(cred);
    std::string user, password;
    in >> user >> password;
    banner += fmt::format("  demo AUTH user   {} password {} (from {})\n", user, password,
                          credentials);
  }
  banner += fmt::format("try: swaks --to a@example.com --server {} -tls\n",
                        config.listeners.empty() ? "127.0.0.1:2587"
                                                 : config.listeners.front().listen.str());
  return "";
}

}  // namespace smtpgate
