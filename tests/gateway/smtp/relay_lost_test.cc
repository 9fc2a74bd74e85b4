// Relay mode: the backend lost or misbehaving at every point of a transaction. The client gets
// 451 4.4.1 for what was waiting, never a 250; the next MAIL opens a new backend.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/relay_transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

const std::string kHello = "EHLO client.example\r\n";
const std::string kLost = "451 4.4.1 mx.test Error: backend connection lost";

std::string opened() { return kGreeting + ehloRelay(); }

TEST_CASE("relay lost: at MAIL", "[smtp][relay]") {
  RelayOutcome o = relayTranscript(
      relaySettings(), {},
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"), backendLost(),
       send("RCPT TO:<d@e.f>\r\nMAIL FROM:<a@b.c>\r\n"), backendReply("250 2.1.0 Ok\r\n")});
  REQUIRE(o.client ==
          opened() + lines({kLost, kLost, "503 5.5.1 Error: need MAIL command", "250 2.1.0 Ok"}));
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n<lost><open>MAIL FROM:<a@b.c>\r\n");
  REQUIRE(o.opens == 2);
}

TEST_CASE("relay lost: at RCPT, with DATA pipelined behind it", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"),
       backendLost()});
  // The DATA went out with the RCPTs (RFC 2920), so it is lost with them.
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", kLost, kLost, kLost}));
  REQUIRE(o.client.find("354") == std::string::npos);
}

TEST_CASE("relay lost: at DATA", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"};
  RelayOutcome o =
      relayTranscript(relaySettings(), b,
                      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n"),
                       backendLost(), send("NOOP\r\n")});
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok", kLost, "250 2.0.0 Ok"}));
}

TEST_CASE("relay lost: during the content, the rest is read and refused", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 go\r\n"};
  RelayOutcome o =
      relayTranscript(relaySettings(), b,
                      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nfirst\r\n"),
                       backendLost(), send("MAIL FROM:<in@the.body>\r\n.\r\nNOOP\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 go", kLost, "250 2.0.0 Ok"}));
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n<lost>");
  REQUIRE(o.ends == 0);
  REQUIRE(o.opens == 1);  // the body's "MAIL" line was content, not a command
}

TEST_CASE("relay lost: after the final dot, the message is not claimed", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 go\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n"),
       backendLost(), send("QUIT\r\n")});
  REQUIRE(o.client == opened() +
                          lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 go", kLost, "250 2.0.0 Ok",
                                 "221 2.0.0 Bye"}) +
                          "<Close>");
  REQUIRE(o.ends == 1);
}

TEST_CASE("relay lost: while idle, nothing to say until the next MAIL opens a new one",
          "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.0.0 Ok\r\n", "250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kHello + "MAIL FROM:<a@b.c>\r\nRSET\r\n"), backendLost(),
                                    send("RSET\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == opened() + "<Open><Ready>[MAIL FROM:<a@b.c>]" + lines({"250 2.1.0 Ok"}) +
                         "[RSET]" + lines({"250 2.0.0 Ok"}) + "<Lost>" + lines({"250 2.0.0 Ok"}) +
                         "<Open><Ready>[MAIL FROM:<a@b.c>]" + lines({"250 2.1.0 Ok"}));
}

TEST_CASE("relay lost: a RSET waiting for its reply is still a reset", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kHello + "MAIL FROM:<a@b.c>\r\nRSET\r\n"), backendLost()});
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.0.0 Ok"}));
}

TEST_CASE("relay lost: while opening, as if it never opened", "[smtp][relay]") {
  SmtpSession session(relaySettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes(kHello);
  Actions a = session.onBytes("MAIL FROM:<a@b.c>\r\n");
  REQUIRE_FALSE(a.empty());
  REQUIRE(std::holds_alternative<OpenBackend>(a.back()));
  a = session.onBackendLost();
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<Write>(a[0]).bytes == "421 4.4.2 mx.test Error: backend not available\r\n");
  REQUIRE(std::holds_alternative<Close>(a[1]));
  REQUIRE(session.closed());
}

TEST_CASE("relay lost: a reply that cannot be forwarded drops the backend", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "hello there\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b, {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nNOOP\r\n")});
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", kLost, "250 2.0.0 Ok"}));
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n<abort>");
}

TEST_CASE("relay lost: an intermediate reply where none belongs drops the backend",
          "[smtp][relay]") {
  SECTION("354 to the final dot: the message is not claimed, the client gets 451") {
    BackendScript b;
    b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 go\r\n", "354 again\r\n"};
    RelayOutcome o = relayTranscript(
        relaySettings(), b,
        {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n")});
    REQUIRE(o.client ==
            opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 go", kLost, "250 2.0.0 Ok"}));
    REQUIRE(o.backend.substr(o.backend.size() - 7) == "<abort>");
  }
  SECTION("334 to MAIL") {
    BackendScript b;
    b.replies = {"334 what\r\n"};
    RelayOutcome o = relayTranscript(relaySettings(), b, {send(kHello + "MAIL FROM:<a@b.c>\r\n")});
    REQUIRE(o.client == opened() + lines({kLost}));
    REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\n<abort>");
  }
  SECTION("334 to RCPT") {
    BackendScript b;
    b.replies = {"250 2.1.0 Ok\r\n", "334 what\r\n"};
    RelayOutcome o = relayTranscript(relaySettings(), b,
                                     {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n")});
    REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", kLost}));
  }
  SECTION("354 to RSET") {
    BackendScript b;
    b.replies = {"250 2.1.0 Ok\r\n", "354 reset?\r\n"};
    RelayOutcome o =
        relayTranscript(relaySettings(), b, {send(kHello + "MAIL FROM:<a@b.c>\r\nRSET\r\n")});
    REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.0.0 Ok"}));
    REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRSET\r\n<abort>");
  }
}

TEST_CASE("relay lost: bare line ends inside a backend reply never reach the client",
          "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250-first\nsecond\r250 third\r\n", "550 a\nb\r\n", "250\r\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"250-first", "250-second", "250 third", "550-a", "550 b", "250"}));
}

TEST_CASE("relay lost: shutdown while a reply is awaited waits for it", "[smtp][relay]") {
  BackendScript b;
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "MAIL FROM:<a@b.c>\r\n"), shutdown(), backendReply("250 2.1.0 Ok\r\n")});
  REQUIRE(o.client == opened() +
                          lines({"250 2.1.0 Ok", "421 4.3.2 mx.test Service shutting down"}) +
                          "<Close>");
  REQUIRE(o.aborts == 0);
}

TEST_CASE("relay lost: a timeout while the backend is awaited drops it", "[smtp][relay]") {
  RelayOutcome o =
      relayTranscript(relaySettings(), {}, {send(kHello + "MAIL FROM:<a@b.c>\r\n"), timeout()});
  REQUIRE(o.client == opened() + lines({"421 4.4.2 mx.test Error: timeout exceeded"}) + "<Close>");
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\n<abort>");
}

}  // namespace
}  // namespace smtpgate::smtp
