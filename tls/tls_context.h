#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tls/handshake_facts.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace smtpgate::tls {

// One certificate (chain + key) in PEM form, with the DNS names it serves
// (filled from the certificate's SAN dNSNames, else its CN, when loaded).
struct CertificateSource {
  std::string certFile;  // PEM chain, leaf first
  std::string keyFile;   // PEM private key (RSA or ECDSA)
};

struct ServerContextOptions {
  uint16_t minVersion = kTls12;
  uint16_t maxVersion = kTls13;
  // The first certificate is the default (no SNI or no name matches). Several certificates
  // for the same names may differ by key type: ECDSA is served to clients that support it,
  // RSA to the others.
  std::vector<CertificateSource> certificates;
  // Ask clients for a certificate (never required, never verified) so that its SHA-256 can
  // match `--cert-sha256` exceptions. Off by default: some clients prompt their users.
  bool requestClientCertificate = false;
};

struct ClientContextOptions {
  uint16_t minVersion = kTls10;
  uint16_t maxVersion = kTls13;
  std::string cipherList;  // empty: BoringSSL's default list plus the legacy CBC-SHA suites
};

// An SSL_CTX with the settings of one endpoint. Immutable once built; shared by the
// engines of many connections (engines hold a reference).
class TlsContext {
 public:
  // Builds a server context. Returns nullptr and sets `error` (a sentence naming the file
  // and what is wrong) when a certificate or key cannot be loaded or does not match.
  static std::shared_ptr<TlsContext> createServer(const ServerContextOptions& options,
                                                  std::string& error);
  static std::shared_ptr<TlsContext> createClient(const ClientContextOptions& options,
                                                  std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* raw() const { return ctx_; }
  bool isServer() const { return server_; }
  uint16_t minVersion() const { return minVersion_; }
  uint16_t maxVersion() const { return maxVersion_; }

  struct Impl;  // certificates by name and key type; opaque to users
  Impl* impl() const { return impl_.get(); }

 private:
  TlsContext(SSL_CTX* ctx, bool server);
  SSL_CTX* ctx_;
  bool server_;
  uint16_t minVersion_ = 0;
  uint16_t maxVersion_ = 0;
  std::unique_ptr<Impl> impl_;
};

// The server cipher list for contexts that allow TLS below 1.2: AEAD suites first, then the
// ECDHE and RSA CBC-SHA suites old devices need. 3DES is never offered (Sweet32).
extern const char* const kServerCipherList;

}  // namespace smtpgate::tls
