// The per-connection ClientHello hook of a server engine: raising the minimum version before
// BoringSSL negotiates it (rule D1, by-sni endpoints), rejecting, and changing nothing when
// unset or idle.

#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <stdexcept>
#include <vector>

#include "tests/tls/tls_fixtures.h"
#include "tls/handshake_facts.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;
using Status = TlsEngine::Status;

namespace {

constexpr uint8_t kAlertHandshakeFailure = 40;
constexpr uint8_t kAlertProtocolVersion = 70;

// The description of the first fatal alert record in unencrypted ciphertext, or -1.
int alertDescription(const std::string& wire) {
  size_t pos = 0;
  while (pos + 5 <= wire.size()) {
    auto type = static_cast<uint8_t>(wire[pos]);
    size_t len = static_cast<uint8_t>(wire[pos + 3]) << 8 | static_cast<uint8_t>(wire[pos + 4]);
    if (type == 21 && len == 2 && pos + 7 <= wire.size() &&
        static_cast<uint8_t>(wire[pos + 5]) == 2) {
      return static_cast<uint8_t>(wire[pos + 6]);
    }
    pos += 5 + len;
  }
  return -1;
}

// Records every call and answers with a fixed verdict.
struct RecordingHook {
  ClientHelloVerdict verdict;
  std::vector<HandshakeFacts> calls;

  ClientHelloHook hook() {
    return [this](const HandshakeFacts& early) {
      calls.push_back(early);
      return verdict;
    };
  }
};

ClientHelloVerdict minimum(uint16_t version) {
  ClientHelloVerdict v;
  v.minVersion = version;
  return v;
}

const CertificateSource& ecdsaStrict() {
  return testCert(KeyType::Ecdsa, {"smtp.example.com"}).files;
}
const CertificateSource& ecdsaLegacy() {
  return testCert(KeyType::Ecdsa, {"smtp-legacy.example.com"}).files;
}

}  // namespace

TEST_CASE("hook: a raised minimum refuses a TLS 1.1 client exactly as a refused version") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(kTls10, kTls11);
  RecordingHook recorder;
  recorder.verdict = minimum(kTls12);
  TlsEngine s(server);
  s.setClientHelloHook(recorder.hook());
  TlsEngine c(client, "mail.example.com");

  REQUIRE(c.handshake() == Status::WantRead);
  s.feedCiphertext(c.takeCiphertext());
  REQUIRE(s.handshake() == Status::Error);
  CHECK(s.lastError() ==
        "unsupported protocol version: the client offered at most TLS 1.1, this endpoint "
        "accepts TLS 1.2 to TLS 1.3");

  // The hook saw the early facts once, before any version was negotiated.
  REQUIRE(recorder.calls.size() == 1);
  CHECK(recorder.calls[0].sni == "mail.example.com");
  CHECK(recorder.calls[0].maxOfferedVersion == kTls11);
  CHECK(recorder.calls[0].version == 0);

  // The facts say the hook, not the endpoint's own range, refused the client (D1).
  const HandshakeFacts& f = s.facts();
  CHECK(f.maxOfferedVersion == 0x0302);
  CHECK(f.sni == "mail.example.com");
  CHECK(f.hookMinVersion == kTls12);
  CHECK(f.versionRefusedByHook);
  CHECK_FALSE(f.rejectedByHook);
  CHECK(f.version == 0);

  std::string alert = s.takeCiphertext();
  CHECK(alertDescription(alert) == kAlertProtocolVersion);
  c.feedCiphertext(alert);
  REQUIRE(c.handshake() == Status::Error);
  INFO(c.lastError());
  CHECK(c.lastError().find("protocol version") != std::string::npos);
}

TEST_CASE("hook: without the hook the same TLS 1.1 client is accepted by this context") {
  // The control for the case above: the refusal comes from the hook alone.
  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(kTls10, kTls11);
  TlsEngine s(server);
  TlsEngine c(client, "mail.example.com");
  auto outcome = runHandshake(c, s);
  REQUIRE(outcome.server == Status::Complete);
  REQUIRE(outcome.client == Status::Complete);
  CHECK(s.facts().version == kTls11);
  CHECK(s.facts().hookMinVersion == 0);
  CHECK_FALSE(s.facts().versionRefusedByHook);
}

TEST_CASE("hook: modern clients pass a raised minimum") {
  struct Row {
    uint16_t clientMin;
    uint16_t clientMax;
    uint16_t expected;
  };
  auto row = GENERATE(Row{kTls10, kTls13, kTls13}, Row{kTls10, kTls12, kTls12},
                      Row{kTls12, kTls12, kTls12});
  bool byteAtATime = GENERATE(false, true);
  INFO("client " << versionName(row.clientMin) << ".." << versionName(row.clientMax)
                 << (byteAtATime ? ", one byte at a time" : ""));

  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(row.clientMin, row.clientMax);
  RecordingHook recorder;
  recorder.verdict = minimum(kTls12);
  TlsEngine s(server);
  s.setClientHelloHook(recorder.hook());
  TlsEngine c(client, "mail.example.com");
  auto outcome = runHandshake(c, s, byteAtATime);
  INFO("client: " << c.lastError() << " server: " << s.lastError());
  REQUIRE(outcome.server == Status::Complete);
  REQUIRE(outcome.client == Status::Complete);
  CHECK(s.facts().version == row.expected);
  CHECK(c.facts().version == row.expected);
  CHECK(s.facts().maxOfferedVersion == row.clientMax);
  CHECK(s.facts().hookMinVersion == kTls12);
  CHECK_FALSE(s.facts().versionRefusedByHook);
  CHECK_FALSE(s.facts().rejectedByHook);
  CHECK(s.facts().certificateKeyType == "ECDSA");
  CHECK(recorder.calls.size() == 1);

  CHECK(transfer(c, s, "EHLO client.example\r\n") == "EHLO client.example\r\n");
  CHECK(transfer(s, c, "250 ok\r\n") == "250 ok\r\n");
}

TEST_CASE("hook: a refusal one byte at a time") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto client = clientContext(kTls10, kTls11);
  RecordingHook recorder;
  recorder.verdict = minimum(kTls12);
  TlsEngine s(server);
  s.setClientHelloHook(recorder.hook());
  TlsEngine c(client, "mail.example.com");

  REQUIRE(c.handshake() == Status::WantRead);
  std::string hello = c.takeCiphertext();
  for (size_t i = 0; i + 1 < hello.size(); ++i) {
    s.feedCiphertext(hello.substr(i, 1));
    REQUIRE(s.handshake() == Status::WantRead);
  }
  CHECK(recorder.calls.empty());  // not before the whole ClientHello is there
  s.feedCiphertext(hello.substr(hello.size() - 1));
  REQUIRE(s.handshake() == Status::Error);
  CHECK(recorder.calls.size() == 1);
  CHECK(s.facts().versionRefusedByHook);
  CHECK(s.facts().maxOfferedVersion == kTls11);

  std::string alert = s.takeCiphertext();
  CHECK(alertDescription(alert) == kAlertProtocolVersion);
  Status clientStatus = Status::WantRead;
  for (char ch : alert) {
    c.feedCiphertext(std::string_view(&ch, 1));
    clientStatus = c.handshake();
  }
  CHECK(clientStatus == Status::Error);
  CHECK(c.lastError().find("protocol version") != std::string::npos);
}

TEST_CASE("hook: by-sni, the name picks the rules and the certificate on one port") {
  // One context for both names, as on a by-sni listener; the hook applies the strict rules
  // to smtp.example.com only.
  auto server = serverContext(kTls10, kTls13, {ecdsaStrict(), ecdsaLegacy()});
  auto bySni = [](const HandshakeFacts& early) {
    ClientHelloVerdict v;
    if (early.sni != "smtp-legacy.example.com") {
      v.minVersion = kTls12;  // strict, also the default for no or unknown names
    }
    return v;
  };
  bool byteAtATime = GENERATE(false, true);
  INFO((byteAtATime ? "one byte at a time" : "whole"));

  SECTION("TLS 1.0 with the strict name fails") {
    TlsEngine s(server);
    s.setClientHelloHook(bySni);
    TlsEngine c(clientContext(kTls10, kTls10), "smtp.example.com");
    auto outcome = runHandshake(c, s, byteAtATime);
    CHECK(outcome.server == Status::Error);
    CHECK(outcome.client == Status::Error);
    CHECK(s.facts().sni == "smtp.example.com");
    CHECK(s.facts().maxOfferedVersion == kTls10);
    CHECK(s.facts().versionRefusedByHook);
    CHECK(s.lastError().find("offered at most TLS 1.0") != std::string::npos);
  }
  SECTION("TLS 1.0 with the legacy name succeeds and gets the legacy name's certificate") {
    TlsEngine s(server);
    s.setClientHelloHook(bySni);
    TlsEngine c(clientContext(kTls10, kTls10), "smtp-legacy.example.com");
    auto outcome = runHandshake(c, s, byteAtATime);
    INFO("client: " << c.lastError() << " server: " << s.lastError());
    REQUIRE(outcome.server == Status::Complete);
    REQUIRE(outcome.client == Status::Complete);
    CHECK(s.facts().version == kTls10);
    CHECK(s.facts().sni == "smtp-legacy.example.com");
    CHECK(s.facts().hookMinVersion == 0);
    CHECK_FALSE(s.facts().versionRefusedByHook);
    CHECK(servedCommonName(c) == "smtp-legacy.example.com");
  }
  SECTION("TLS 1.3 with the strict name succeeds and gets the strict name's certificate") {
    TlsEngine s(server);
    s.setClientHelloHook(bySni);
    TlsEngine c(clientContext(kTls10, kTls13), "smtp.example.com");
    auto outcome = runHandshake(c, s, byteAtATime);
    REQUIRE(outcome.server == Status::Complete);
    CHECK(s.facts().version == kTls13);
    CHECK(s.facts().hookMinVersion == kTls12);
    CHECK(servedCommonName(c) == "smtp.example.com");
  }
  SECTION("TLS 1.0 without SNI gets the default (strict) rules") {
    TlsEngine s(server);
    s.setClientHelloHook(bySni);
    TlsEngine c(clientContext(kTls10, kTls10), "");
    auto outcome = runHandshake(c, s, byteAtATime);
    CHECK(outcome.server == Status::Error);
    CHECK(s.facts().sni.empty());
    CHECK(s.facts().versionRefusedByHook);
  }
}

TEST_CASE("hook: re-evaluated per handshake, as the cutoff passes") {
  // The same context before and after the cutoff: only the hook's answer changes.
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  long now = 100;
  const long cutoff = 200;
  auto d1 = [&now, cutoff](const HandshakeFacts&) {
    ClientHelloVerdict v;
    if (now >= cutoff) {
      v.minVersion = kTls12;
    }
    return v;
  };
  auto client = clientContext(kTls10, kTls11);

  TlsEngine before(server);
  before.setClientHelloHook(d1);
  TlsEngine c1(client, "mail.example.com");
  REQUIRE(runHandshake(c1, before).server == Status::Complete);
  CHECK(before.facts().version == kTls11);

  now = cutoff;
  TlsEngine after(server);
  after.setClientHelloHook(d1);
  TlsEngine c2(client, "mail.example.com");
  CHECK(runHandshake(c2, after).server == Status::Error);
  CHECK(after.facts().versionRefusedByHook);

  // The raised minimum belongs to that one connection, not to the shared context.
  now = 0;
  TlsEngine later(server);
  TlsEngine c3(client, "mail.example.com");
  REQUIRE(runHandshake(c3, later).server == Status::Complete);
  CHECK(later.facts().version == kTls11);
}

TEST_CASE("hook: reject aborts with a handshake_failure alert") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  uint16_t clientMax = GENERATE(kTls10, kTls13);
  RecordingHook recorder;
  recorder.verdict.reject = true;
  TlsEngine s(server);
  s.setClientHelloHook(recorder.hook());
  TlsEngine c(clientContext(kTls10, clientMax), "mail.example.com");

  REQUIRE(c.handshake() == Status::WantRead);
  s.feedCiphertext(c.takeCiphertext());
  REQUIRE(s.handshake() == Status::Error);
  CHECK(s.lastError() == "handshake rejected by the ClientHello hook");
  CHECK(s.facts().rejectedByHook);
  CHECK_FALSE(s.facts().versionRefusedByHook);
  CHECK(s.facts().maxOfferedVersion == clientMax);
  CHECK(s.facts().sni == "mail.example.com");
  CHECK(recorder.calls.size() == 1);

  std::string alert = s.takeCiphertext();
  CHECK(alertDescription(alert) == kAlertHandshakeFailure);
  c.feedCiphertext(alert);
  REQUIRE(c.handshake() == Status::Error);
  INFO(c.lastError());
  CHECK(c.lastError().find("handshake failure") != std::string::npos);
}

TEST_CASE("hook: a throwing hook rejects instead of unwinding through BoringSSL") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  TlsEngine s(server);
  s.setClientHelloHook([](const HandshakeFacts&) -> ClientHelloVerdict {
    throw std::runtime_error("policy unavailable");
  });
  TlsEngine c(clientContext(kTls10, kTls13), "mail.example.com");
  auto outcome = runHandshake(c, s);
  CHECK(outcome.server == Status::Error);
  CHECK(outcome.client == Status::Error);
  CHECK(s.facts().rejectedByHook);
  CHECK(s.lastError().find("hook failed") != std::string::npos);
}

TEST_CASE("hook: a minimum above the endpoint's maximum rejects with an alert") {
  // BoringSSL would fail an empty range without any alert; the engine refuses clearly.
  auto server = serverContext(kTls10, kTls12, {ecdsaMail()});
  uint16_t asked = GENERATE(as<uint16_t>{}, kTls13, 0x0305);
  INFO("asked 0x" << std::hex << asked);
  TlsEngine s(server);
  s.setClientHelloHook([asked](const HandshakeFacts&) { return minimum(asked); });
  TlsEngine c(clientContext(kTls10, kTls13), "mail.example.com");
  REQUIRE(c.handshake() == Status::WantRead);
  s.feedCiphertext(c.takeCiphertext());
  REQUIRE(s.handshake() == Status::Error);
  INFO(s.lastError());
  CHECK(s.lastError().find("above this endpoint's maximum TLS 1.2") != std::string::npos);
  CHECK(s.facts().rejectedByHook);
  CHECK(s.facts().hookMinVersion == 0);
  CHECK(alertDescription(s.takeCiphertext()) == kAlertHandshakeFailure);
}

TEST_CASE("hook: a minimum at or below the context's changes nothing") {
  auto server = serverContext(kTls12, kTls13, {ecdsaMail()});
  uint16_t asked = GENERATE(as<uint16_t>{}, 0, kTls10, kTls12);
  TlsEngine s(server);
  s.setClientHelloHook([asked](const HandshakeFacts&) { return minimum(asked); });
  TlsEngine c(clientContext(kTls10, kTls11), "mail.example.com");
  auto outcome = runHandshake(c, s);
  // Still refused by the context's own minimum: the hook cannot lower it.
  CHECK(outcome.server == Status::Error);
  CHECK(s.facts().hookMinVersion == 0);
  CHECK_FALSE(s.facts().versionRefusedByHook);
  CHECK(s.lastError() ==
        "unsupported protocol version: the client offered at most TLS 1.1, this endpoint "
        "accepts TLS 1.2 to TLS 1.3");
}

TEST_CASE("hook: an idle hook and no hook give the same handshake") {
  uint16_t version = GENERATE(kTls10, kTls11, kTls12, kTls13);
  bool byteAtATime = GENERATE(false, true);
  INFO("version " << versionName(version) << (byteAtATime ? ", one byte at a time" : ""));
  auto server = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  auto client = clientContext(version, version);

  TlsEngine plain(server);
  TlsEngine c1(client, "mail.example.com");
  auto plainOutcome = runHandshake(c1, plain, byteAtATime);

  RecordingHook recorder;  // default verdict: keep everything
  TlsEngine hooked(server);
  hooked.setClientHelloHook(recorder.hook());
  TlsEngine c2(client, "mail.example.com");
  auto hookedOutcome = runHandshake(c2, hooked, byteAtATime);

  REQUIRE(plainOutcome.server == Status::Complete);
  REQUIRE(hookedOutcome.server == Status::Complete);
  REQUIRE(hookedOutcome.client == Status::Complete);
  REQUIRE(recorder.calls.size() == 1);
  CHECK(recorder.calls[0].maxOfferedVersion == version);
  const HandshakeFacts& a = plain.facts();
  const HandshakeFacts& b = hooked.facts();
  CHECK(a.version == b.version);
  CHECK(a.cipher == b.cipher);
  CHECK(a.sni == b.sni);
  CHECK(a.maxOfferedVersion == b.maxOfferedVersion);
  CHECK(a.certificateKeyType == b.certificateKeyType);
  CHECK(servedCommonName(c1) == servedCommonName(c2));
  CHECK(b.hookMinVersion == 0);
  CHECK_FALSE(b.versionRefusedByHook);
  CHECK_FALSE(b.rejectedByHook);
}

TEST_CASE("hook: runs once even when TLS 1.3 sends a HelloRetryRequest") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto client = clientContext(kTls10, kTls13);
  // The client's key share is for P-256; the server prefers X25519 and asks again.
  REQUIRE(SSL_CTX_set1_curves_list(client->raw(), "P-256:X25519"));
  RecordingHook recorder;
  recorder.verdict = minimum(kTls12);
  TlsEngine s(server);
  s.setClientHelloHook(recorder.hook());
  TlsEngine c(client, "mail.example.com");
  auto outcome = runHandshake(c, s);
  REQUIRE(outcome.server == Status::Complete);
  REQUIRE(SSL_used_hello_retry_request(s.raw()) == 1);
  CHECK(recorder.calls.size() == 1);
  CHECK(s.facts().version == kTls13);
  CHECK(s.facts().hookMinVersion == kTls12);
}

TEST_CASE("hook: ignored on a client engine") {
  auto server = serverContext(kTls10, kTls13, {ecdsaMail()});
  RecordingHook recorder;
  recorder.verdict.reject = true;
  TlsEngine s(server);
  TlsEngine c(clientContext(kTls10, kTls13), "mail.example.com");
  c.setClientHelloHook(recorder.hook());
  REQUIRE(runHandshake(c, s).client == Status::Complete);
  CHECK(recorder.calls.empty());
}
