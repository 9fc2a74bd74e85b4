// Which certificate the server presents: by SNI (exact, wildcard, default) and by key type
// (ECDSA to clients that support it, RSA to the others).

#include <openssl/sha.h>

#include <catch2/catch.hpp>

#include "tests/tls/tls_fixtures.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;
using Status = TlsEngine::Status;

namespace {

struct Served {
  std::string serverKeyType;
  std::string clientKeyType;
  std::string commonName;
  std::string cipher;
  std::string sni;
};

Served handshakeWith(const std::shared_ptr<TlsContext>& server,
                     const std::shared_ptr<TlsContext>& client, const std::string& sni) {
  TlsEngine s(server);
  TlsEngine c(client, sni);
  auto outcome = runHandshake(c, s);
  INFO("client: " << c.lastError() << " server: " << s.lastError());
  REQUIRE(outcome.client == Status::Complete);
  REQUIRE(outcome.server == Status::Complete);
  return {s.facts().certificateKeyType, c.facts().certificateKeyType, servedCommonName(c),
          s.facts().cipher, s.facts().sni};
}

}  // namespace

TEST_CASE("RSA and ECDSA side by side: ECDSA for capable clients, RSA for the others") {
  bool rsaFirst = GENERATE(false, true);
  INFO((rsaFirst ? "RSA configured first" : "ECDSA configured first"));
  std::vector<CertificateSource> certs = {ecdsaMail(), rsaMail()};
  if (rsaFirst) {
    std::swap(certs[0], certs[1]);
  }
  auto server = serverContext(kTls10, kTls13, certs);

  SECTION("a default TLS 1.3 client gets ECDSA") {
    auto served = handshakeWith(server, clientContext(kTls10, kTls13), "mail.example.com");
    CHECK(served.serverKeyType == "ECDSA");
    CHECK(served.clientKeyType == "ECDSA");
  }
  SECTION("a default TLS 1.0 client gets ECDSA (ECDHE-ECDSA CBC suite and P-256)") {
    auto served = handshakeWith(server, clientContext(kTls10, kTls10), "mail.example.com");
    CHECK(served.serverKeyType == "ECDSA");
    CHECK(served.clientKeyType == "ECDSA");
    CHECK(served.cipher.find("ECDHE_ECDSA") != std::string::npos);
  }
  SECTION("a TLS 1.2 client with only an ECDHE-RSA suite gets RSA") {
    auto served = handshakeWith(
        server, clientContext(kTls12, kTls12, "ECDHE-RSA-AES128-GCM-SHA256"), "mail.example.com");
    CHECK(served.serverKeyType == "RSA");
    CHECK(served.clientKeyType == "RSA");
    CHECK(served.cipher == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  }
  SECTION("a TLS 1.0 client with only AES128-SHA gets RSA") {
    auto served =
        handshakeWith(server, clientContext(kTls10, kTls10, "AES128-SHA"), "mail.example.com");
    CHECK(served.serverKeyType == "RSA");
    CHECK(served.clientKeyType == "RSA");
    CHECK(served.cipher == "TLS_RSA_WITH_AES_128_CBC_SHA");
  }
  SECTION("a TLS 1.3 client that verifies only RSA signatures gets RSA") {
    auto client = clientContext(kTls13, kTls13);
    const uint16_t rsaOnly[] = {SSL_SIGN_RSA_PSS_RSAE_SHA256, SSL_SIGN_RSA_PKCS1_SHA256};
    REQUIRE(SSL_CTX_set_verify_algorithm_prefs(client->raw(), rsaOnly, 2));
    auto served = handshakeWith(server, client, "mail.example.com");
    CHECK(served.serverKeyType == "RSA");
    CHECK(served.clientKeyType == "RSA");
  }
  SECTION("without SNI the default pair still chooses by key type") {
    CHECK(handshakeWith(server, clientContext(kTls10, kTls13), "").serverKeyType == "ECDSA");
    CHECK(handshakeWith(server, clientContext(kTls10, kTls10, "AES256-SHA"), "").serverKeyType ==
          "RSA");
  }
}

TEST_CASE("with only an RSA certificate every client gets RSA") {
  auto server = serverContext(kTls10, kTls13, {rsaMail()});
  CHECK(handshakeWith(server, clientContext(kTls10, kTls13), "mail.example.com").serverKeyType ==
        "RSA");
  CHECK(handshakeWith(server, clientContext(kTls10, kTls10), "").serverKeyType == "RSA");
}

TEST_CASE("SNI selects among certificates: exact, case-insensitive, wildcard, else default") {
  const auto& first = testCert(KeyType::Ecdsa, {"mail.example.com", "smtp.example.com"}).files;
  const auto& wildcard = testCert(KeyType::Ecdsa, {"*.example.org"}).files;
  const auto& legacy = testCert(KeyType::Rsa, {"smtp-legacy.example.net"}).files;
  auto server = serverContext(kTls10, kTls13, {first, wildcard, legacy});
  auto client = clientContext(kTls10, kTls13);

  struct Row {
    std::string sni;
    std::string expectedCn;
  };
  auto row = GENERATE(Row{"mail.example.com", "mail.example.com"},
                      Row{"smtp.example.com", "mail.example.com"},
                      Row{"MAIL.Example.COM", "mail.example.com"},
                      Row{"smtp-legacy.example.net", "smtp-legacy.example.net"},
                      Row{"relay.example.org", "*.example.org"},
                      Row{"a.b.example.org", "mail.example.com"},  // one label only
                      Row{"example.org", "mail.example.com"},
                      Row{"unknown.example", "mail.example.com"}, Row{"", "mail.example.com"});
  INFO("SNI '" << row.sni << "'");
  auto served = handshakeWith(server, client, row.sni);
  CHECK(served.commonName == row.expectedCn);
  CHECK(served.sni == row.sni);
}

TEST_CASE("an exact name beats a wildcard, whatever the order") {
  const auto& wildcard = testCert(KeyType::Ecdsa, {"*.example.com"}).files;
  const auto& exact = testCert(KeyType::Ecdsa, {"mx.example.com"}).files;
  auto server = serverContext(kTls12, kTls13, {wildcard, exact});
  auto client = clientContext(kTls12, kTls13);
  CHECK(handshakeWith(server, client, "mx.example.com").commonName == "mx.example.com");
  CHECK(handshakeWith(server, client, "mail.example.com").commonName == "*.example.com");
}

TEST_CASE("SNI and key type combine: the RSA twin of a non-default name") {
  const auto& defEcdsa = testCert(KeyType::Ecdsa, {"mail.example.com"}).files;
  const auto& otherEcdsa = testCert(KeyType::Ecdsa, {"legacy.example.com"}).files;
  const auto& otherRsa = testCert(KeyType::Rsa, {"legacy.example.com"}).files;
  auto server = serverContext(kTls10, kTls13, {defEcdsa, otherEcdsa, otherRsa});
  auto old =
      handshakeWith(server, clientContext(kTls10, kTls10, "AES128-SHA"), "legacy.example.com");
  CHECK(old.commonName == "legacy.example.com");
  CHECK(old.serverKeyType == "RSA");
  auto modern = handshakeWith(server, clientContext(kTls10, kTls13), "legacy.example.com");
  CHECK(modern.commonName == "legacy.example.com");
  CHECK(modern.serverKeyType == "ECDSA");
}

TEST_CASE("client certificates are fingerprinted only when requested") {
  uint16_t version = GENERATE(kTls10, kTls12, kTls13);
  INFO("version " << versionName(version));
  const auto& clientCert = testCert(KeyType::Ecdsa, {"printer.contoso.com"});
  auto clientWithCertCtx = clientContext(version, version);
  {
    bssl::UniquePtr<BIO> certBio(BIO_new_mem_buf(clientCert.pem.certPem.data(),
                                                 static_cast<int>(clientCert.pem.certPem.size())));
    bssl::UniquePtr<X509> x509(PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr));
    bssl::UniquePtr<BIO> keyBio(BIO_new_mem_buf(clientCert.pem.keyPem.data(),
                                                static_cast<int>(clientCert.pem.keyPem.size())));
    bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr));
    REQUIRE(SSL_CTX_use_certificate(clientWithCertCtx->raw(), x509.get()));
    REQUIRE(SSL_CTX_use_PrivateKey(clientWithCertCtx->raw(), key.get()));
  }
  // The expected fingerprint, from the DER of the PEM.
  std::string expected;
  {
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(clientCert.pem.certPem.data(),
                                             static_cast<int>(clientCert.pem.certPem.size())));
    bssl::UniquePtr<X509> x509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    uint8_t* der = nullptr;
    int len = i2d_X509(x509.get(), &der);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<size_t>(len), digest);
    OPENSSL_free(der);
    char hex[3];
    for (uint8_t b : digest) {
      std::snprintf(hex, sizeof hex, "%02x", b);
      expected += hex;
    }
  }

  auto asking = serverContext(kTls10, kTls13, {ecdsaMail()}, true);
  auto notAsking = serverContext(kTls10, kTls13, {ecdsaMail()}, false);
  auto clientCtx = clientContext(version, version);

  {
    TlsEngine s(asking);
    TlsEngine c(clientWithCertCtx, "mail.example.com");
    REQUIRE(runHandshake(c, s).server == Status::Complete);
    CHECK(s.facts().clientCertSha256 == expected);
    CHECK(s.facts().clientCertSha256.size() == 64);
  }
  {
    TlsEngine s(asking);
    TlsEngine c(clientCtx, "mail.example.com");  // no certificate: still welcome
    REQUIRE(runHandshake(c, s).server == Status::Complete);
    CHECK(s.facts().clientCertSha256.empty());
  }
  {
    TlsEngine s(notAsking);
    TlsEngine c(clientWithCertCtx, "mail.example.com");
    REQUIRE(runHandshake(c, s).server == Status::Complete);
    CHECK(s.facts().clientCertSha256.empty());
  }
}
