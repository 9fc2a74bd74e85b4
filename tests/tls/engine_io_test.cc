// Application data through two engines: round trips, large writes that overflow the BIO pair,
// data that arrives behind the handshake, and close_notify.

#include <catch2/catch.hpp>

#include "tests/tls/tls_fixtures.h"

using namespace smtpgate::tls;
using namespace smtpgate::tls::testing;
using Status = TlsEngine::Status;

namespace {

std::string pattern(size_t size) {
  std::string s(size, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

struct Pair {
  std::shared_ptr<TlsContext> serverCtx;
  std::shared_ptr<TlsContext> clientCtx;
  std::unique_ptr<TlsEngine> server;
  std::unique_ptr<TlsEngine> client;
};

Pair connected(uint16_t version) {
  Pair p;
  p.serverCtx = serverContext(kTls10, kTls13, {ecdsaMail(), rsaMail()});
  p.clientCtx = clientContext(version, version);
  p.server = std::make_unique<TlsEngine>(p.serverCtx);
  p.client = std::make_unique<TlsEngine>(p.clientCtx, "mail.example.com");
  auto outcome = runHandshake(*p.client, *p.server);
  REQUIRE(outcome.client == Status::Complete);
  REQUIRE(outcome.server == Status::Complete);
  return p;
}

}  // namespace

TEST_CASE("plaintext round trips both ways, including 1 MiB writes") {
  uint16_t version = GENERATE(kTls10, kTls12, kTls13);
  INFO("version " << versionName(version));
  Pair p = connected(version);

  CHECK(transfer(*p.client, *p.server, "EHLO client.example\r\n") == "EHLO client.example\r\n");
  CHECK(transfer(*p.server, *p.client, "250-mail.example.com\r\n250 PIPELINING\r\n") ==
        "250-mail.example.com\r\n250 PIPELINING\r\n");

  std::string big = pattern(1 << 20);
  // Whole, and in odd-sized chunks that split records.
  CHECK(transfer(*p.client, *p.server, big) == big);
  CHECK(transfer(*p.server, *p.client, big) == big);
  CHECK(transfer(*p.client, *p.server, big, 1000) == big);
  CHECK(transfer(*p.server, *p.client, big, 7777) == big);
}

TEST_CASE("a 1 MiB write never drops data: takeCiphertext drains all of it") {
  Pair p = connected(kTls13);
  std::string big = pattern((1 << 20) + 17);
  REQUIRE(p.client->writePlaintext(big) == Status::Ok);
  REQUIRE(p.client->hasCiphertext());
  std::string wire = p.client->takeCiphertext();
  CHECK(wire.size() > big.size());  // record overhead on top of every byte
  CHECK_FALSE(p.client->hasCiphertext());
  CHECK(p.client->takeCiphertext().empty());

  p.server->feedCiphertext(wire);
  std::string out;
  REQUIRE(p.server->readPlaintext(out) == Status::Ok);
  CHECK(out == big);
  // Nothing more to read: Ok and nothing appended.
  REQUIRE(p.server->readPlaintext(out) == Status::Ok);
  CHECK(out.size() == big.size());
}

TEST_CASE("several writes queue up until taken") {
  Pair p = connected(kTls12);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(p.client->writePlaintext("RCPT TO:<a@example.com>\r\n") == Status::Ok);
  }
  p.server->feedCiphertext(p.client->takeCiphertext());
  std::string out;
  REQUIRE(p.server->readPlaintext(out) == Status::Ok);
  CHECK(out.size() == 100 * std::string("RCPT TO:<a@example.com>\r\n").size());
}

TEST_CASE("application data right behind the client's Finished is not lost") {
  auto serverCtx = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto clientCtx = clientContext(kTls13, kTls13);
  TlsEngine s(serverCtx);
  TlsEngine c(clientCtx, "mail.example.com");
  REQUIRE(c.handshake() == Status::WantRead);
  s.feedCiphertext(c.takeCiphertext());
  REQUIRE(s.handshake() == Status::WantRead);
  c.feedCiphertext(s.takeCiphertext());
  // The TLS 1.3 client is done after its flight; it pipelines a command at once.
  REQUIRE(c.handshake() == Status::Complete);
  REQUIRE(c.writePlaintext("EHLO fast.example\r\n") == Status::Ok);
  s.feedCiphertext(c.takeCiphertext());  // Finished + data in one chunk
  REQUIRE(s.handshake() == Status::Complete);
  std::string out;
  REQUIRE(s.readPlaintext(out) == Status::Ok);
  CHECK(out == "EHLO fast.example\r\n");
}

TEST_CASE("readPlaintext drives an unfinished handshake") {
  auto serverCtx = serverContext(kTls10, kTls13, {ecdsaMail()});
  auto clientCtx = clientContext(kTls12, kTls12);
  TlsEngine s(serverCtx);
  TlsEngine c(clientCtx, "");
  std::string out;
  CHECK(s.readPlaintext(out) == Status::Ok);  // nothing yet
  CHECK(s.writePlaintext("too early") == Status::Error);
  CHECK_FALSE(s.lastError().empty());
  auto outcome = runHandshake(c, s);
  REQUIRE(outcome.server == Status::Complete);
  CHECK(transfer(c, s, "hello") == "hello");
}

TEST_CASE("close_notify is seen as Closed, in both directions") {
  uint16_t version = GENERATE(kTls10, kTls13);
  INFO("version " << versionName(version));
  Pair p = connected(version);

  SECTION("client closes") {
    REQUIRE(p.client->writePlaintext("QUIT\r\n") == Status::Ok);
    p.client->shutdown();
    p.server->feedCiphertext(p.client->takeCiphertext());
    std::string out;
    CHECK(p.server->readPlaintext(out) == Status::Closed);
    CHECK(out == "QUIT\r\n");  // data before the close_notify is delivered
    CHECK(p.server->readPlaintext(out) == Status::Closed);
    // The server answers with its own close_notify.
    p.server->shutdown();
    p.client->feedCiphertext(p.server->takeCiphertext());
    CHECK(p.client->readPlaintext(out) == Status::Closed);
  }
  SECTION("server closes") {
    p.server->shutdown();
    REQUIRE(p.server->hasCiphertext());
    p.client->feedCiphertext(p.server->takeCiphertext());
    std::string out;
    CHECK(p.client->readPlaintext(out) == Status::Closed);
    CHECK(out.empty());
  }
}

TEST_CASE("a corrupted record is an error with a reason and an alert") {
  Pair p = connected(kTls12);
  REQUIRE(p.client->writePlaintext("MAIL FROM:<a@example.com>\r\n") == Status::Ok);
  std::string wire = p.client->takeCiphertext();
  wire[wire.size() - 3] ^= 0x55;
  p.server->feedCiphertext(wire);
  std::string out;
  CHECK(p.server->readPlaintext(out) == Status::Error);
  CHECK(out.empty());
  CHECK_FALSE(p.server->lastError().empty());
  std::string alert = p.server->takeCiphertext();
  REQUIRE(alert.size() >= 5);
  CHECK(static_cast<uint8_t>(alert[0]) == 21);  // an (encrypted) alert record
}

TEST_CASE("readPlaintext from the caller's buffer: records cut anywhere, leftovers kept") {
  uint16_t version = GENERATE(kTls12, kTls13);
  INFO("version " << versionName(version));
  Pair p = connected(version);
  // Several records (16 KiB each at most) in one wire string, read in chunks that end inside
  // a record header, inside a body, and exactly at a record boundary.
  const std::string big = pattern(40000);
  REQUIRE(p.client->writePlaintext(big) == Status::Ok);
  const std::string wire = p.client->takeCiphertext();
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{4099}, wire.size()}) {
    INFO("chunk " << chunk);
    Pair q = connected(version);
    REQUIRE(q.client->writePlaintext(big) == Status::Ok);
    const std::string w = q.client->takeCiphertext();
    std::string out;
    for (std::size_t at = 0; at < w.size(); at += chunk) {
      // A copy that dies right after the call, as the worker's read buffer is reused.
      std::string piece = w.substr(at, chunk);
      REQUIRE(q.server->readPlaintext(piece, out) == Status::Ok);
      piece.assign(piece.size(), '\xff');
    }
    CHECK(out == big);
  }
  // Mixed with feedCiphertext: bytes fed before go first.
  std::string out;
  p.server->feedCiphertext(std::string_view(wire).substr(0, 10));
  REQUIRE(p.server->readPlaintext(std::string_view(wire).substr(10), out) == Status::Ok);
  CHECK(out == big);
}

TEST_CASE("readPlaintext from the caller's buffer: a close_notify in it ends the reading") {
  Pair p = connected(kTls13);
  REQUIRE(p.client->writePlaintext("QUIT\r\n") == Status::Ok);
  p.client->shutdown();
  std::string wire = p.client->takeCiphertext();
  std::string out;
  CHECK(p.server->readPlaintext(wire, out) == Status::Closed);
  CHECK(out == "QUIT\r\n");
}
