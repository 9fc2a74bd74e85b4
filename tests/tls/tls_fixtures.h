#pragma once

// Shared helpers for the tls/ tests: generated certificates on disk (once per process) and a
// pump that moves ciphertext between a client and a server engine in memory.

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tls/self_signed.h"
#include "tls/tls_context.h"
#include "tls/tls_engine.h"

namespace smtpgate::tls::testing {

// A temporary directory removed at process exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "smtpgate-tls-XXXXXX").string();
    if (char* made = ::mkdtemp(pattern.data())) {
      path_ = made;
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::string path_;
};

inline TempDir& tempDir() {
  static TempDir dir;
  return dir;
}

struct TestCert {
  PemPair pem;
  CertificateSource files;
};

// Certificates are cached by key type and names: RSA key generation is slow.
inline const TestCert& testCert(KeyType type, const std::vector<std::string>& names) {
  static std::map<std::string, TestCert> cache;
  std::string key = type == KeyType::Ecdsa ? "ecdsa" : "rsa";
  for (const auto& n : names) {
    key += "_" + n;
  }
  auto it = cache.find(key);
  if (it != cache.end()) {
    return it->second;
  }
  std::string error;
  TestCert cert;
  cert.pem = makeSelfSigned(type, names, 30, error);
  REQUIRE(error.empty());
  std::string base;
  for (char c : key) {
    base.push_back(c == '*' ? 'W' : c);
  }
  cert.files.certFile = tempDir().write(base + ".crt", cert.pem.certPem);
  cert.files.keyFile = tempDir().write(base + ".key", cert.pem.keyPem);
  return cache.emplace(key, std::move(cert)).first->second;
}

inline const CertificateSource& ecdsaMail() {
  return testCert(KeyType::Ecdsa, {"mail.example.com"}).files;
}
inline const CertificateSource& rsaMail() {
  return testCert(KeyType::Rsa, {"mail.example.com"}).files;
}

inline std::shared_ptr<TlsContext> serverContext(uint16_t minVersion, uint16_t maxVersion,
                                                 std::vector<CertificateSource> certs,
                                                 bool requestClientCert = false) {
  ServerContextOptions options;
  options.minVersion = minVersion;
  options.maxVersion = maxVersion;
  options.certificates = std::move(certs);
  options.requestClientCertificate = requestClientCert;
  std::string error;
  auto ctx = TlsContext::createServer(options, error);
  INFO(error);
  REQUIRE(ctx);
  return ctx;
}

inline std::shared_ptr<TlsContext> clientContext(uint16_t minVersion, uint16_t maxVersion,
                                                 const std::string& ciphers = "") {
  ClientContextOptions options;
  options.minVersion = minVersion;
  options.maxVersion = maxVersion;
  options.cipherList = ciphers;
  std::string error;
  auto ctx = TlsContext::createClient(options, error);
  INFO(error);
  REQUIRE(ctx);
  return ctx;
}

// Moves everything `from` has queued into `to`, whole or one byte at a time; with
// `driveHandshake` the receiver's handshake() runs after every delivery.
inline bool deliver(TlsEngine& from, TlsEngine& to, bool byteAtATime, bool driveHandshake) {
  std::string bytes = from.takeCiphertext();
  if (bytes.empty()) {
    return false;
  }
  if (!byteAtATime) {
    to.feedCiphertext(bytes);
    if (driveHandshake) {
      to.handshake();
    }
    return true;
  }
  for (char c : bytes) {
    to.feedCiphertext(std::string_view(&c, 1));
    if (driveHandshake) {
      to.handshake();
    }
  }
  return true;
}

struct HandshakeOutcome {
  TlsEngine::Status client;
  TlsEngine::Status server;
};

inline HandshakeOutcome runHandshake(TlsEngine& client, TlsEngine& server,
                                     bool byteAtATime = false) {
  HandshakeOutcome out{client.handshake(), server.handshake()};
  for (int round = 0; round < 100; ++round) {
    bool moved = deliver(client, server, byteAtATime, true);
    out.server = server.handshake();
    moved = deliver(server, client, byteAtATime, true) || moved;
    out.client = client.handshake();
    if (!moved) {
      break;
    }
  }
  return out;
}

// Sends `data` from one engine to the other and returns what the receiver decrypted.
inline std::string transfer(TlsEngine& from, TlsEngine& to, const std::string& data,
                            size_t chunk = 0) {
  REQUIRE(from.writePlaintext(data) == TlsEngine::Status::Ok);
  std::string wire = from.takeCiphertext();
  std::string out;
  if (chunk == 0) {
    chunk = wire.size() == 0 ? 1 : wire.size();
  }
  for (size_t off = 0; off < wire.size(); off += chunk) {
    to.feedCiphertext(std::string_view(wire).substr(off, chunk));
    REQUIRE(to.readPlaintext(out) == TlsEngine::Status::Ok);
  }
  return out;
}

// The CN of the certificate the client received, to tell certificates apart.
inline std::string servedCommonName(const TlsEngine& client) {
  bssl::UniquePtr<X509> cert(SSL_get_peer_certificate(client.raw()));
  if (!cert) {
    return "";
  }
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  return cn;
}

}  // namespace smtpgate::tls::testing
