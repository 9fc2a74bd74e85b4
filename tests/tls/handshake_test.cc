// In-memory handshakes between a client and a server engine, for every version, whole and
// one byte at a time, and the facts they record.

#include <catch2/catch.hpp>

#include "tests/tls/tls_fixtures.h"
#include "tls/handshake_facts.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;
using Status = TlsEngine::Status;

namespace {

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TEST_CASE("version labels and names") {
  CHECK(versionLabel(kTls10) == "1.0");
  CHECK(versionLabel(kTls11) == "1.1");
  CHECK(versionLabel(kTls12) == "1.2");
  CHECK(versionLabel(kTls13) == "1.3");
  CHECK(versionLabel(0x0300).empty());
  CHECK(versionLabel(0).empty());
  CHECK(versionName(kTls10) == "TLSv1");
  CHECK(versionName(kTls11) == "TLSv1.1");
  CHECK(versionName(kTls12) == "TLSv1.2");
  CHECK(versionName(kTls13) == "TLSv1.3");
  CHECK(versionName(0x7f1c).empty());
}

TEST_CASE("every version from 1.0 to 1.3 handshakes in memory, whole and byte by byte") {
  uint16_t version = GENERATE(kTls10, kTls11, kTls12, kTls13);
  bool byteAtATime = GENERATE(false, true);
  INFO("version " << versionName(version) << (byteAtATime ? ", one byte at a time" : ""));

  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(version, version);
  TlsEngine s(server);
  TlsEngine c(client, "mail.example.com");
  CHECK_FALSE(s.handshakeComplete());

  auto outcome = runHandshake(c, s, byteAtATime);
  INFO("client: " << c.lastError() << " server: " << s.lastError());
  REQUIRE(outcome.client == Status::Complete);
  REQUIRE(outcome.server == Status::Complete);
  REQUIRE(s.handshakeComplete());
  REQUIRE(c.handshakeComplete());

  const HandshakeFacts& sf = s.facts();
  const HandshakeFacts& cf = c.facts();
  CHECK(sf.version == version);
  CHECK(cf.version == version);
  CHECK(sf.cipher == cf.cipher);
  CHECK(sf.cipherOpenSsl == cf.cipherOpenSsl);
  CHECK_FALSE(sf.cipherOpenSsl.empty());
  CHECK(sf.cipherBits >= 128);
  CHECK(sf.sni == "mail.example.com");
  CHECK(cf.sni == "mail.example.com");
  CHECK(sf.maxOfferedVersion == version);
  CHECK(sf.certificateKeyType == "ECDSA");
  CHECK(cf.certificateKeyType == "ECDSA");
  CHECK(sf.clientCertSha256.empty());
  CHECK_FALSE(sf.resumed);
  if (version == kTls13) {
    CHECK((startsWith(sf.cipher, "TLS_AES_") || startsWith(sf.cipher, "TLS_CHACHA20_")));
  } else if (version == kTls12) {
    // Server preference puts the ECDHE AEAD suites first.
    CHECK(startsWith(sf.cipher, "TLS_ECDHE_ECDSA_WITH_"));
    CHECK((sf.cipher.find("GCM") != std::string::npos ||
           sf.cipher.find("CHACHA20") != std::string::npos));
  } else {
    CHECK(endsWith(sf.cipher, "_CBC_SHA"));
    CHECK(endsWith(sf.cipherOpenSsl, "-SHA"));
  }
}

TEST_CASE("the highest offered version comes from supported_versions or legacy_version") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  struct Row {
    uint16_t clientMax;
    uint16_t offered;
  };
  auto row = GENERATE(Row{kTls11, kTls11}, Row{kTls12, kTls12}, Row{kTls13, kTls13});
  auto client = clientContext(kTls10, row.clientMax);
  TlsEngine s(server);
  TlsEngine c(client, "");
  auto outcome = runHandshake(c, s);
  REQUIRE(outcome.server == Status::Complete);
  CHECK(s.facts().maxOfferedVersion == row.offered);
  CHECK(s.facts().version == row.offered);
  CHECK(c.facts().maxOfferedVersion == row.clientMax);
  CHECK(s.facts().sni.empty());
}

TEST_CASE("GREASE values in a ClientHello (as browsers send) are ignored") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(kTls10, kTls13);
  SSL_CTX_set_grease_enabled(client->raw(), 1);
  TlsEngine s(server);
  TlsEngine c(client, "mail.example.com");
  REQUIRE(runHandshake(c, s).server == Status::Complete);
  CHECK(s.facts().maxOfferedVersion == kTls13);
  CHECK(s.facts().version == kTls13);
  CHECK(s.facts().certificateKeyType == "ECDSA");
}

TEST_CASE("a TLS 1.1-only client against a TLS 1.2+ server fails cleanly on both sides") {
  auto server = serverContext(kTls12, kTls13, {ecdsaMail()});
  auto client = clientContext(kTls10, kTls11);
  TlsEngine s(server);
  TlsEngine c(client, "mail.example.com");

  REQUIRE(c.handshake() == Status::WantRead);
  s.feedCiphertext(c.takeCiphertext());
  REQUIRE(s.handshake() == Status::Error);
  INFO(s.lastError());
  CHECK(s.lastError().find("version") != std::string::npos);
  CHECK(s.lastError().find("TLS 1.1") != std::string::npos);
  // What the client offered is known even though the handshake failed (for D1 traces).
  CHECK(s.facts().maxOfferedVersion == kTls11);
  CHECK(s.facts().sni == "mail.example.com");

  // The server leaves a fatal protocol_version alert (70) for the gateway to send.
  REQUIRE(s.hasCiphertext());
  std::string alert = s.takeCiphertext();
  REQUIRE(alert.size() >= 7);
  CHECK(static_cast<uint8_t>(alert[0]) == 21);  // content type alert
  CHECK(static_cast<uint8_t>(alert[5]) == 2);   // fatal
  CHECK(static_cast<uint8_t>(alert[6]) == 70);  // protocol_version
  CHECK_FALSE(s.hasCiphertext());

  c.feedCiphertext(alert);
  REQUIRE(c.handshake() == Status::Error);
  INFO(c.lastError());
  CHECK(c.lastError().find("protocol version") != std::string::npos);

  // Everything after the failure is a quiet Error, never a crash.
  std::string out;
  CHECK(s.handshake() == Status::Error);
  CHECK(s.readPlaintext(out) == Status::Error);
  CHECK(s.writePlaintext("x") == Status::Error);
  s.shutdown();
  s.feedCiphertext("more");
  CHECK(out.empty());
  CHECK_FALSE(s.handshakeComplete());
}

TEST_CASE("3DES is never negotiated, even with TLS 1.0 allowed") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  CHECK(std::string(kServerCipherList).find("3DES") == std::string::npos);
  CHECK(std::string(kServerCipherList).find("DES-CBC3") == std::string::npos);

  SECTION("a client offering only DES-CBC3-SHA fails") {
    auto client = clientContext(kTls10, kTls10, "DES-CBC3-SHA");
    TlsEngine s(server);
    TlsEngine c(client, "mail.example.com");
    auto outcome = runHandshake(c, s);
    CHECK(outcome.server == Status::Error);
    CHECK(outcome.client == Status::Error);
    INFO(s.lastError());
    CHECK(s.lastError().find("no shared cipher") != std::string::npos);
  }
  SECTION("the same client with AES128-SHA succeeds, so the failure is the cipher") {
    auto client = clientContext(kTls10, kTls10, "AES128-SHA");
    TlsEngine s(server);
    TlsEngine c(client, "mail.example.com");
    auto outcome = runHandshake(c, s);
    CHECK(outcome.server == Status::Complete);
    CHECK(s.facts().cipher == "TLS_RSA_WITH_AES_128_CBC_SHA");
  }
}

TEST_CASE("a TLS 1.2+ server offers only forward-secret AEAD suites below TLS 1.3") {
  auto server = serverContext(kTls12, kTls13, {ecdsaMail(), rsaMail()});
  auto cbc = clientContext(kTls12, kTls12, "ECDHE-RSA-AES128-SHA:AES128-SHA");
  TlsEngine s(server);
  TlsEngine c(cbc, "");
  CHECK(runHandshake(c, s).server == Status::Error);

  auto aead = clientContext(kTls12, kTls12, "ECDHE-RSA-AES256-GCM-SHA384");
  TlsEngine s2(server);
  TlsEngine c2(aead, "");
  REQUIRE(runHandshake(c2, s2).server == Status::Complete);
  CHECK(s2.facts().cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
  CHECK(s2.facts().certificateKeyType == "RSA");
}

TEST_CASE("plaintext spoken into a TLS server is an error, not a crash") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  TlsEngine s(server);
  s.feedCiphertext("EHLO client.example\r\n");
  CHECK(s.handshake() == Status::Error);
  CHECK_FALSE(s.lastError().empty());
}

TEST_CASE("an engine refuses a context of the wrong kind") {
  auto server = serverContext(kTls12, kTls13, {ecdsaMail()});
  auto client = clientContext(kTls12, kTls13);
  TlsEngine wrongClient(server, "x");
  TlsEngine wrongServer(client);
  CHECK(wrongClient.handshake() == Status::Error);
  CHECK(wrongServer.handshake() == Status::Error);
  CHECK_FALSE(wrongClient.lastError().empty());
  CHECK_FALSE(wrongClient.hasCiphertext());
}

TEST_CASE("ALPN: a client naming other protocols than smtp is refused (ALPACA)") {
  auto server = serverContext(kTls12, kTls13, {ecdsaMail()});
  auto client = clientContext(kTls12, kTls13);
  auto handshakeWith = [&](const std::vector<uint8_t>& protos, std::string& selected) {
    TlsEngine s(server);
    TlsEngine c(client, "mail.example.com");
    if (!protos.empty()) {
      REQUIRE(SSL_set_alpn_protos(c.raw(), protos.data(), protos.size()) == 0);
    }
    auto outcome = runHandshake(c, s);
    const uint8_t* data = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(s.raw(), &data, &len);
    selected.assign(reinterpret_cast<const char*>(data), len);
    return outcome.server;
  };
  std::string selected;
  CHECK(handshakeWith({}, selected) == TlsEngine::Status::Complete);  // mail clients: no ALPN
  CHECK(selected.empty());
  CHECK(handshakeWith({4, 's', 'm', 't', 'p'}, selected) == TlsEngine::Status::Complete);
  CHECK(selected == "smtp");
  CHECK(handshakeWith({2, 'h', '2', 4, 's', 'm', 't', 'p'}, selected) ==
        TlsEngine::Status::Complete);
  CHECK(selected == "smtp");
  CHECK(handshakeWith({8, 'h', 't', 't', 'p', '/', '1', '.', '1'}, selected) ==
        TlsEngine::Status::Error);
  CHECK(handshakeWith({2, 'h', '2'}, selected) == TlsEngine::Status::Error);
}
