#include "tls/certificate_store.h"

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace smtpgate::tls {
namespace {

// Reads a whole file; on failure sets `error` to the system's reason.
bool readFile(const std::string& path, std::string& out, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = std::strerror(errno);
    return false;
  }
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    out.append(buf, n);
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    error = "read error";
    return false;
  }
  return true;
}

// Encrypted keys are not supported: never prompt on a terminal for a pass phrase.
int noPassword(char*, int, int, void*) { return 0; }

// The reason of the most recent BoringSSL error in lower case ("bad base64 decode").
std::string lastReason() {
  uint32_t code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) {
    return "unknown error";
  }
  const char* reason = ERR_reason_error_string(code);
  std::string text = reason != nullptr ? reason : "unknown error";
  for (char& c : text) {
    c = c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

bool isNoStartLine() {
  uint32_t code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

std::string asn1Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// SAN dNSNames, else the subject CN (RFC 6125 fallback for old certificates).
std::vector<std::string> certificateNames(X509* leaf) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS) {
        names.push_back(normalizeHostName(asn1Text(name->d.dNSName)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(leaf);
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
      names.push_back(normalizeHostName(asn1Text(cn)));
    }
  }
  return names;
}

bool ecdsaNeeds(const EVP_PKEY* key, EcdsaKeyNeeds& needs) {
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
  if (ec == nullptr) {
    return false;
  }
  switch (EC_GROUP_get_curve_name(EC_KEY_get0_group(ec))) {
    case NID_X9_62_prime256v1:
      needs = {SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_CURVE_SECP256R1};
      return true;
    case NID_secp384r1:
      needs = {SSL_SIGN_ECDSA_SECP384R1_SHA384, SSL_CURVE_SECP384R1};
      return true;
    case NID_secp521r1:
      needs = {SSL_SIGN_ECDSA_SECP521R1_SHA512, SSL_CURVE_SECP521R1};
      return true;
    default:
      return false;
  }
}

bool toBuffer(X509* cert, LoadedCertificate& out) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) {
    return false;
  }
  bssl::UniquePtr<CRYPTO_BUFFER> buffer(CRYPTO_BUFFER_new(der, static_cast<size_t>(len), nullptr));
  OPENSSL_free(der);
  if (!buffer) {
    return false;
  }
  out.chainView.push_back(buffer.get());
  out.chain.push_back(std::move(buffer));
  return true;
}

}  // namespace

std::string normalizeHostName(std::string_view name) {
  std::string out(name);
  while (!out.empty() && out.back() == '.') {
    out.pop_back();
  }
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool nameMatches(std::string_view pattern, std::string_view host) {
  if (pattern.empty() || host.empty()) {
    return false;
  }
  if (pattern == host) {
    return true;
  }
  if (pattern.size() < 3 || pattern.substr(0, 2) != "*.") {
    return false;
  }
  std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (host.size() <= suffix.size() || host.substr(host.size() - suffix.size()) != suffix) {
    return false;
  }
  // The wildcard covers exactly one label: "a.example.com", not "a.b.example.com".
  return host.substr(0, host.size() - suffix.size()).find('.') == std::string_view::npos;
}

bool CertificateStore::addFromFiles(const CertificateSource& source, std::string& error) {
  std::string certPem, keyPem, why;
  if (!readFile(source.certFile, certPem, why)) {
    error = "certificate file " + source.certFile + ": cannot read: " + why;
    return false;
  }
  if (!readFile(source.keyFile, keyPem, why)) {
    error = "key file " + source.keyFile + ": cannot read: " + why;
    return false;
  }
  return addFromPem(certPem, keyPem, source.certFile, source.keyFile, error);
}

bool CertificateStore::addFromPem(const std::string& certPem, const std::string& keyPem,
                                  const std::string& certLabel, const std::string& keyLabel,
                                  std::string& error) {
  // Certificate and key files are a few kilobytes; refuse anything absurd before parsing.
  constexpr size_t kMaxPem = 1 << 20;
  if (certPem.size() > kMaxPem) {
    error = "certificate file " + certLabel + ": larger than 1 MiB, not a certificate chain";
    return false;
  }
  if (keyPem.size() > kMaxPem) {
    error = "key file " + keyLabel + ": larger than 1 MiB, not a private key";
    return false;
  }
  ERR_clear_error();
  LoadedCertificate loaded;
  loaded.certFile = certLabel;
  loaded.keyFile = keyLabel;

  bssl::UniquePtr<BIO> certBio(BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size())));
  bssl::UniquePtr<X509> leaf;
  for (;;) {
    bssl::UniquePtr<X509> cert(PEM_read_bio_X509(certBio.get(), nullptr, noPassword, nullptr));
    if (!cert) {
      if (isNoStartLine()) {
        ERR_clear_error();
        break;  // end of the chain
      }
      error = "certificate file " + certLabel + ": certificate " +
              std::to_string(loaded.chain.size() + 1) + " is not valid PEM: " + lastReason();
      return false;
    }
    if (!toBuffer(cert.get(), loaded)) {
      error = "certificate file " + certLabel + ": cannot encode certificate: " + lastReason();
      return false;
    }
    if (!leaf) {
      leaf = std::move(cert);
    }
  }
  if (!leaf) {
    error = "certificate file " + certLabel +
            ": no PEM certificate found (expected -----BEGIN CERTIFICATE-----)";
    return false;
  }

  bssl::UniquePtr<BIO> keyBio(BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size())));
  loaded.key.reset(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, noPassword, nullptr));
  if (!loaded.key) {
    if (isNoStartLine()) {
      ERR_clear_error();
      error = "key file " + keyLabel +
              ": no PEM private key found (expected -----BEGIN PRIVATE KEY-----; encrypted keys "
              "are not supported)";
    } else {
      error = "key file " + keyLabel + ": private key is not valid PEM: " + lastReason();
    }
    return false;
  }
  switch (EVP_PKEY_id(loaded.key.get())) {
    case EVP_PKEY_RSA:
      loaded.keyType = KeyType::Rsa;
      break;
    case EVP_PKEY_EC:
      loaded.keyType = KeyType::Ecdsa;
      if (!ecdsaNeeds(loaded.key.get(), loaded.ecdsa)) {
        error = "key file " + keyLabel + ": unsupported ECDSA curve (use P-256, P-384 or P-521)";
        return false;
      }
      break;
    default:
      error = "key file " + keyLabel + ": unsupported key type (RSA or ECDSA expected)";
      return false;
  }
  if (!X509_check_private_key(leaf.get(), loaded.key.get())) {
    ERR_clear_error();
    error = "key file " + keyLabel + " does not match the certificate in " + certLabel;
    return false;
  }
  loaded.names = certificateNames(leaf.get());
  certs_.push_back(std::move(loaded));
  return true;
}

std::vector<const LoadedCertificate*> CertificateStore::candidates(std::string_view sni) const {
  std::vector<const LoadedCertificate*> exact, wildcard;
  std::string host = normalizeHostName(sni);
  if (!host.empty()) {
    for (const auto& cert : certs_) {
      bool isExact = false, isWildcard = false;
      for (const auto& name : cert.names) {
        if (name == host) {
          isExact = true;
        } else if (nameMatches(name, host)) {
          isWildcard = true;
        }
      }
      if (isExact) {
        exact.push_back(&cert);
      } else if (isWildcard) {
        wildcard.push_back(&cert);
      }
    }
  }
  if (!exact.empty()) {
    return exact;
  }
  if (!wildcard.empty()) {
    return wildcard;
  }
  std::vector<const LoadedCertificate*> defaults;
  if (certs_.empty()) {
    return defaults;
  }
  const auto& first = certs_.front();
  for (const auto& cert : certs_) {
    bool shares = &cert == &first;
    for (const auto& name : cert.names) {
      for (const auto& firstName : first.names) {
        shares = shares || name == firstName;
      }
    }
    if (shares) {
      defaults.push_back(&cert);
    }
  }
  return defaults;
}

const LoadedCertificate* CertificateStore::select(std::string_view sni,
                                                  const ClientHelloSummary& hello,
                                                  uint16_t version) const {
  auto group = candidates(sni);
  if (group.empty()) {
    return nullptr;
  }
  for (const auto* cert : group) {
    if (cert->keyType == KeyType::Ecdsa && clientSupportsEcdsa(hello, version, cert->ecdsa)) {
      return cert;
    }
  }
  for (const auto* cert : group) {
    if (cert->keyType == KeyType::Rsa) {
      return cert;
    }
  }
  return group.front();
}

}  // namespace smtpgate::tls
