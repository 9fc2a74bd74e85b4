#include "tls/self_signed.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace smtpgate::tls {
namespace {

bssl::UniquePtr<EVP_PKEY> generateKey(KeyType type) {
  bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
  if (!pkey) {
    return nullptr;
  }
  if (type == KeyType::Ecdsa) {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (!ec || !EC_KEY_generate_key(ec.get()) || !EVP_PKEY_set1_EC_KEY(pkey.get(), ec.get())) {
      return nullptr;
    }
    return pkey;
  }
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  if (!rsa || !e || !BN_set_word(e.get(), RSA_F4) ||
      !RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr) ||
      !EVP_PKEY_set1_RSA(pkey.get(), rsa.get())) {
    return nullptr;
  }
  return pkey;
}

// A positive random 128-bit serial, as RFC 5280 recommends for unpredictability.
bool setRandomSerial(X509* cert) {
  uint8_t bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;  // keep it 16 bytes long and non-zero
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) {
    return false;
  }
  bssl::UniquePtr<ASN1_INTEGER> serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  return serial && X509_set_serialNumber(cert, serial.get());
}

bool addSubjectAltNames(X509* cert, const std::vector<std::string>& names) {
  bssl::UniquePtr<GENERAL_NAMES> sans(sk_GENERAL_NAME_new_null());
  if (!sans) {
    return false;
  }
  for (const auto& name : names) {
    bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
    bssl::UniquePtr<ASN1_IA5STRING> text(ASN1_IA5STRING_new());
    if (!gn || !text || !ASN1_STRING_set(text.get(), name.data(), static_cast<int>(name.size()))) {
      return false;
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, text.release());
    if (!sk_GENERAL_NAME_push(sans.get(), gn.get())) {
      return false;
    }
    gn.release();
  }
  return X509_add1_ext_i2d(cert, NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

bool addKeyUsage(X509* cert, KeyType type) {
  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!usage || !ASN1_BIT_STRING_set_bit(usage.get(), 0, 1)) {  // digitalSignature
    return false;
  }
  // RSA also needs keyEncipherment for the plain-RSA key exchange old clients use.
  if (type == KeyType::Rsa && !ASN1_BIT_STRING_set_bit(usage.get(), 2, 1)) {
    return false;
  }
  bssl::UniquePtr<BASIC_CONSTRAINTS> constraints(BASIC_CONSTRAINTS_new());
  if (!constraints) {
    return false;
  }
  constraints->ca = 0;
  return X509_add1_ext_i2d(cert, NID_key_usage, usage.get(), 1, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(cert, NID_basic_constraints, constraints.get(), 1, X509V3_ADD_DEFAULT) ==
             1;
}

std::string toPem(int (*write)(BIO*, void*), void* object) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !write(bio.get(), object)) {
    return "";
  }
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(bio.get(), &data, &len)) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(data), len);
}

int writeCert(BIO* bio, void* cert) { return PEM_write_bio_X509(bio, static_cast<X509*>(cert)); }

int writeKey(BIO* bio, void* key) {
  // PKCS#8 ("BEGIN PRIVATE KEY"), readable by every TLS stack.
  return PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(key), nullptr, nullptr, 0, nullptr,
                                  nullptr);
}

}  // namespace

PemPair makeSelfSigned(KeyType type, const std::vector<std::string>& names, int days,
                       std::string& error) {
  if (names.empty()) {
    error = "a self-signed certificate needs at least one name";
    return {};
  }
  if (days <= 0) {
    error = "a self-signed certificate must be valid for at least one day";
    return {};
  }
  bssl::UniquePtr<EVP_PKEY> key = generateKey(type);
  bssl::UniquePtr<X509> cert(X509_new());
  bool ok =
      key && cert && X509_set_version(cert.get(), X509_VERSION_3) && setRandomSerial(cert.get()) &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) != nullptr &&
      X509_set_pubkey(cert.get(), key.get());
  if (ok) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    ok = X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                    reinterpret_cast<const uint8_t*>(names.front().c_str()),
                                    static_cast<int>(names.front().size()), -1, 0) &&
         X509_set_issuer_name(cert.get(), subject) && addSubjectAltNames(cert.get(), names) &&
         addKeyUsage(cert.get(), type) && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  }
  PemPair out;
  if (ok) {
    out.certPem = toPem(writeCert, cert.get());
    out.keyPem = toPem(writeKey, key.get());
  }
  if (!ok || out.certPem.empty() || out.keyPem.empty()) {
    uint32_t code = ERR_get_error();
    ERR_clear_error();
    const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
    error = std::string("cannot create a self-signed certificate: ") +
            (reason != nullptr ? reason : "internal error");
    return {};
  }
  return out;
}

}  // namespace smtpgate::tls
