// Session resumption works within one context and never across contexts (each SSL_CTX has
// its own ticket keys and session cache).

#include <catch2/catch.hpp>

#include "tests/tls/tls_fixtures.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;
using Status = TlsEngine::Status;

namespace {

// The last session a client context was handed (tickets or session IDs).
bssl::UniquePtr<SSL_SESSION>& savedSession() {
  static bssl::UniquePtr<SSL_SESSION> session;
  return session;
}

int saveSession(SSL*, SSL_SESSION* session) {
  savedSession().reset(session);
  return 1;  // we took the reference
}

std::shared_ptr<TlsContext> cachingClient(uint16_t version) {
  auto client = clientContext(version, version);
  SSL_CTX_set_session_cache_mode(client->raw(), SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(client->raw(), saveSession);
  return client;
}

// A full handshake. BoringSSL holds TLS 1.3 tickets back until the server's first write, so
// the server answers once, as an SMTP server always does.
// `sessionContext`: what the server's ClientHello hook sets ("" = no hook).
void firstConnection(const std::shared_ptr<TlsContext>& server,
                     const std::shared_ptr<TlsContext>& client,
                     const std::string& sessionContext = "") {
  savedSession().reset();
  TlsEngine s(server);
  if (!sessionContext.empty()) {
    s.setClientHelloHook([sessionContext](const HandshakeFacts&) {
      ClientHelloVerdict v;
      v.sessionContext = sessionContext;
      return v;
    });
  }
  TlsEngine c(client, "mail.example.com");
  REQUIRE(runHandshake(c, s).server == Status::Complete);
  CHECK_FALSE(s.facts().resumed);
  CHECK(transfer(s, c, "250 ok\r\n") == "250 ok\r\n");
  REQUIRE(savedSession());
}

bool resumes(const std::shared_ptr<TlsContext>& server, const std::shared_ptr<TlsContext>& client,
             const std::string& sessionContext = "") {
  TlsEngine s(server);
  if (!sessionContext.empty()) {
    s.setClientHelloHook([sessionContext](const HandshakeFacts&) {
      ClientHelloVerdict v;
      v.sessionContext = sessionContext;
      return v;
    });
  }
  TlsEngine c(client, "mail.example.com");
  REQUIRE(SSL_set_session(c.raw(), savedSession().get()));
  auto outcome = runHandshake(c, s);
  REQUIRE(outcome.server == Status::Complete);
  REQUIRE(outcome.client == Status::Complete);
  CHECK(s.facts().resumed == c.facts().resumed);
  // The certificate choice is recorded on resumption too.
  CHECK_FALSE(s.facts().certificateKeyType.empty());
  return s.facts().resumed;
}

}  // namespace

TEST_CASE("sessions resume on the same context only") {
  uint16_t version = GENERATE(kTls12, kTls13);
  INFO("version " << versionName(version));
  auto strict = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto legacy = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto client = cachingClient(version);

  firstConnection(strict, client);
  CHECK(resumes(strict, client));

  firstConnection(strict, client);
  CHECK_FALSE(resumes(legacy, client));
}

TEST_CASE("one context serving two endpoints by SNI: sessions stay with their endpoint") {
  uint16_t version = GENERATE(kTls10, kTls12, kTls13);
  INFO("version " << versionName(version));
  auto bySni = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto client = cachingClient(version);

  firstConnection(bySni, client, "smtpgate-legacy");
  CHECK(resumes(bySni, client, "smtpgate-legacy"));
  firstConnection(bySni, client, "smtpgate-legacy");
  CHECK_FALSE(resumes(bySni, client, "smtpgate-strict"));  // full handshake instead
}
