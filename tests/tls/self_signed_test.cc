// makeSelfSigned: names, validity, key types, and that TlsContext loads what it makes.

#include <openssl/bn.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <ctime>

#include "tests/tls/tls_fixtures.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;

namespace {

bssl::UniquePtr<X509> parse(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return bssl::UniquePtr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::vector<std::string> sanNames(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(sans != nullptr);
  for (size_t i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
    REQUIRE(gn->type == GEN_DNS);
    names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                       ASN1_STRING_length(gn->d.dNSName));
  }
  GENERAL_NAMES_free(sans);
  return names;
}

}  // namespace

TEST_CASE("self-signed certificates carry the names, the key type and the validity") {
  KeyType type = GENERATE(KeyType::Ecdsa, KeyType::Rsa);
  std::string error;
  PemPair pem = makeSelfSigned(type, {"smtp.example.com", "smtp-legacy.example.com"}, 10, error);
  REQUIRE(error.empty());
  CHECK(pem.certPem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  CHECK(pem.keyPem.find("PRIVATE KEY-----") != std::string::npos);

  auto cert = parse(pem.certPem);
  REQUIRE(cert);
  CHECK(sanNames(cert.get()) ==
        std::vector<std::string>{"smtp.example.com", "smtp-legacy.example.com"});
  char cn[128] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "smtp.example.com");
  CHECK(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())) == 0);

  bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(cert.get()));
  REQUIRE(key);
  if (type == KeyType::Ecdsa) {
    CHECK(EVP_PKEY_id(key.get()) == EVP_PKEY_EC);
    CHECK(EVP_PKEY_bits(key.get()) == 256);
  } else {
    CHECK(EVP_PKEY_id(key.get()) == EVP_PKEY_RSA);
    CHECK(EVP_PKEY_bits(key.get()) == 2048);
  }
  // Self-signed: the signature verifies with its own key.
  CHECK(X509_verify(cert.get(), key.get()) == 1);

  // Valid from about an hour ago for `days` days.
  time_t now = std::time(nullptr);
  time_t justBefore = now - 3500;
  time_t wellBefore = now - 3700;
  CHECK(X509_cmp_time(X509_get0_notBefore(cert.get()), &justBefore) < 0);
  CHECK(X509_cmp_time(X509_get0_notBefore(cert.get()), &wellBefore) > 0);
  time_t nineDays = now + 9 * 86400;
  time_t elevenDays = now + 11 * 86400;
  CHECK(X509_cmp_time(X509_get0_notAfter(cert.get()), &nineDays) > 0);
  CHECK(X509_cmp_time(X509_get0_notAfter(cert.get()), &elevenDays) < 0);
}

TEST_CASE("serial numbers are random and positive") {
  std::string error;
  auto a = parse(makeSelfSigned(KeyType::Ecdsa, {"a.example"}, 1, error).certPem);
  auto b = parse(makeSelfSigned(KeyType::Ecdsa, {"a.example"}, 1, error).certPem);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(ASN1_INTEGER_cmp(X509_get_serialNumber(a.get()), X509_get_serialNumber(b.get())) != 0);
  bssl::UniquePtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get_serialNumber(a.get()), nullptr));
  CHECK_FALSE(BN_is_negative(serial.get()));
  CHECK(BN_num_bits(serial.get()) > 64);
}

TEST_CASE("makeSelfSigned refuses empty names and non-positive validity") {
  std::string error;
  PemPair pem = makeSelfSigned(KeyType::Ecdsa, {}, 10, error);
  CHECK(pem.certPem.empty());
  CHECK(pem.keyPem.empty());
  CHECK_FALSE(error.empty());
  error.clear();
  pem = makeSelfSigned(KeyType::Ecdsa, {"x.example"}, 0, error);
  CHECK(pem.certPem.empty());
  CHECK_FALSE(error.empty());
}

TEST_CASE("a generated certificate serves a handshake") {
  KeyType type = GENERATE(KeyType::Ecdsa, KeyType::Rsa);
  const auto& cert = testCert(type, {"selfsigned.example"});
  auto server = serverContext(kTls12, kTls13, {cert.files});
  auto client = clientContext(kTls12, kTls13);
  TlsEngine s(server);
  TlsEngine c(client, "selfsigned.example");
  auto outcome = runHandshake(c, s);
  CHECK(outcome.server == TlsEngine::Status::Complete);
  CHECK(servedCommonName(c) == "selfsigned.example");
}
