// The pure ClientHello rules: GREASE, highest offered version, predicted version, ECDSA
// support, and certificate name matching.

#include "tls/client_hello.h"

#include <catch2/catch.hpp>

#include "tls/certificate_store.h"
#include "tls/handshake_facts.h"

using namespace smtpgate::tls;

TEST_CASE("GREASE values are recognised") {
  for (uint16_t v : {0x0a0a, 0x1a1a, 0x2a2a, 0x7a7a, 0xfafa}) {
    CHECK(isGrease(v));
  }
  for (uint16_t v : {0x0303, 0x0304, 0x0a1a, 0x1a0a, 0x0a0b, 0x0000}) {
    CHECK_FALSE(isGrease(v));
  }
}

TEST_CASE("the highest offered version") {
  ClientHelloSummary hello;
  hello.legacyVersion = kTls12;
  CHECK(maxOfferedVersion(hello) == kTls12);  // no supported_versions: legacy_version

  hello.hasSupportedVersions = true;
  hello.supportedVersions = {kTls13, kTls12};
  CHECK(maxOfferedVersion(hello) == kTls13);

  hello.supportedVersions = {kTls11, kTls10};
  CHECK(maxOfferedVersion(hello) == kTls11);

  // Drafts (0x7fxx) and DTLS values do not count as "higher than 1.3".
  hello.supportedVersions = {0x7f1c, kTls12, 0xfefd};
  CHECK(maxOfferedVersion(hello) == kTls12);
}

TEST_CASE("the version the server will pick") {
  ClientHelloSummary hello;
  hello.legacyVersion = kTls12;
  CHECK(predictVersion(hello, kTls10, kTls13) == kTls12);  // no 1.3 without supported_versions
  CHECK(predictVersion(hello, kTls10, kTls11) == kTls11);
  hello.legacyVersion = kTls10;
  CHECK(predictVersion(hello, kTls12, kTls13) == 0);

  hello.hasSupportedVersions = true;
  hello.supportedVersions = {kTls13, kTls12};
  CHECK(predictVersion(hello, kTls10, kTls13) == kTls13);
  CHECK(predictVersion(hello, kTls10, kTls12) == kTls12);
  hello.supportedVersions = {kTls11};
  CHECK(predictVersion(hello, kTls12, kTls13) == 0);
}

TEST_CASE("ECDSA support per version") {
  const EcdsaKeyNeeds p256{0x0403, 23};

  SECTION("TLS 1.3 needs the curve's signature scheme") {
    ClientHelloSummary hello;
    hello.hasSignatureAlgorithms = true;
    hello.signatureAlgorithms = {0x0804, 0x0401};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls13, p256));
    hello.signatureAlgorithms = {0x0503, 0x0804};  // P-384 scheme does not fit a P-256 key
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls13, p256));
    hello.signatureAlgorithms.push_back(0x0403);
    CHECK(clientSupportsEcdsa(hello, kTls13, p256));
  }
  SECTION("TLS 1.2 needs an ECDHE_ECDSA suite, an ECDSA scheme and the curve") {
    ClientHelloSummary hello;
    hello.cipherSuites = {0xC02F, 0x009C};  // ECDHE-RSA-AES128-GCM, RSA-AES128-GCM
    hello.hasSignatureAlgorithms = true;
    hello.signatureAlgorithms = {0x0403, 0x0804};
    hello.hasGroups = true;
    hello.groups = {29, 23};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls12, p256));  // RSA suites only
    // ECDSA suites the server does not enable do not count (found by sslscan: with them the
    // ECDSA certificate was chosen and the handshake found no shared cipher).
    hello.cipherSuites.insert(hello.cipherSuites.begin(), {0xC023, 0xC024});
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls12, p256));
    hello.cipherSuites.push_back(0xC02B);
    CHECK(clientSupportsEcdsa(hello, kTls12, p256));
    hello.signatureAlgorithms = {0x0804, 0x0401};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls12, p256));
    hello.hasSignatureAlgorithms = false;  // absent: SHA-1 with the certificate's algorithm
    hello.signatureAlgorithms.clear();
    CHECK(clientSupportsEcdsa(hello, kTls12, p256));
    hello.groups = {29, 24};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls12, p256));
  }
  SECTION("TLS 1.0/1.1 need an ECDHE_ECDSA CBC suite and the curve") {
    ClientHelloSummary hello;
    hello.cipherSuites = {0xC013, 0x002F};  // ECDHE-RSA-AES128-SHA, AES128-SHA
    hello.hasGroups = true;
    hello.groups = {23, 24};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls10, p256));
    hello.cipherSuites.push_back(0xC02B);  // a TLS 1.2-only suite does not help TLS 1.0
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls10, p256));
    hello.cipherSuites.push_back(0xC009);
    CHECK(clientSupportsEcdsa(hello, kTls10, p256));
    CHECK(clientSupportsEcdsa(hello, kTls11, p256));
    hello.groups = {24, 25};
    CHECK_FALSE(clientSupportsEcdsa(hello, kTls10, p256));
    hello.hasGroups = false;  // RFC 4492: no list means any curve
    hello.groups.clear();
    CHECK(clientSupportsEcdsa(hello, kTls10, p256));
  }
}

TEST_CASE("certificate names match exactly or by a one-label wildcard") {
  CHECK(nameMatches("mail.example.com", "mail.example.com"));
  CHECK_FALSE(nameMatches("mail.example.com", "smtp.example.com"));
  CHECK(nameMatches("*.example.com", "mail.example.com"));
  CHECK_FALSE(nameMatches("*.example.com", "a.b.example.com"));
  CHECK_FALSE(nameMatches("*.example.com", "example.com"));
  CHECK_FALSE(nameMatches("*.example.com", ".example.com"));
  CHECK_FALSE(nameMatches("*.example.com", "mail.example.org"));
  CHECK_FALSE(nameMatches("", "example.com"));
  CHECK_FALSE(nameMatches("example.com", ""));
  CHECK(normalizeHostName("Mail.Example.COM.") == "mail.example.com");
}
