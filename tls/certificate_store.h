#pragma once

#include <openssl/base.h>
#include <openssl/pool.h>

#include <string>
#include <string_view>
#include <vector>

#include "tls/client_hello.h"
#include "tls/self_signed.h"
#include "tls/tls_context.h"

namespace smtpgate::tls {

// One certificate chain with its key, ready to hand to SSL_set_chain_and_key.
struct LoadedCertificate {
  std::string certFile;
  std::string keyFile;
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> chain;  // leaf first, owned
  std::vector<CRYPTO_BUFFER*> chainView;              // the same, as the API wants it
  bssl::UniquePtr<EVP_PKEY> key;
  KeyType keyType = KeyType::Rsa;
  EcdsaKeyNeeds ecdsa;             // only for ECDSA keys
  std::vector<std::string> names;  // lower case, no trailing dot
};

// True when `pattern` (a certificate name, possibly "*.example.com") covers `host`. Both are
// expected in lower case; a wildcard stands for exactly one non-empty label.
bool nameMatches(std::string_view pattern, std::string_view host);

// "Mail.Example.COM." -> "mail.example.com".
std::string normalizeHostName(std::string_view name);

// The certificates of one server context and the choice among them per ClientHello.
class CertificateStore {
 public:
  // Loads a PEM chain and key from files. On failure returns false and sets `error` to a
  // sentence naming the file.
  bool addFromFiles(const CertificateSource& source, std::string& error);
  // The same from PEM text; `certLabel`/`keyLabel` name the origin in error messages.
  bool addFromPem(const std::string& certPem, const std::string& keyPem,
                  const std::string& certLabel, const std::string& keyLabel, std::string& error);

  bool empty() const { return certs_.empty(); }
  const std::vector<LoadedCertificate>& certificates() const { return certs_; }

  // The certificates that serve `sni`: exact name matches, else wildcard matches, else the
  // default group (the first certificate and those sharing a name with it).
  std::vector<const LoadedCertificate*> candidates(std::string_view sni) const;

  // The certificate to serve: among the candidates, ECDSA when the client can use it for
  // `version`, else RSA, else the first candidate.
  const LoadedCertificate* select(std::string_view sni, const ClientHelloSummary& hello,
                                  uint16_t version) const;

 private:
  std::vector<LoadedCertificate> certs_;
};

}  // namespace smtpgate::tls
