// Abuse limits at the session level: spoofing commands refused, the error tarpit, the
// STARTTLS handshake gate, the DATA watchdog's cut, and input progress (the connection's
// whole-line deadline).

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/relay_transcript.h"
#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

std::string written(const Actions& actions) {
  std::string out;
  for (const Action& a : actions) {
    if (const auto* w = std::get_if<Write>(&a)) {
      out += w->bytes;
    }
  }
  return out;
}

bool has(const Actions& actions, auto pred) {
  for (const Action& a : actions) {
    if (pred(a)) {
      return true;
    }
  }
  return false;
}

bool closes(const Actions& actions) {
  return has(actions, [](const Action& a) { return std::holds_alternative<Close>(a); });
}

TEST_CASE("abuse: client XCLIENT, XFORWARD and PROXY are refused and counted",
          "[smtp][abuse]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 4;
  Outcome o = transcript(s, {send("XCLIENT ADDR=10.0.0.1 NAME=spoofed\r\n"
                                  "XFORWARD ADDR=10.0.0.1\r\n"
                                  "PROXY TCP4 10.0.0.1 10.0.0.2 1234 25\r\n"
                                  "xclient LOGIN=admin\r\n"
                                  "NOOP\r\n")});
  REQUIRE(o.trace == kGreeting + lines({"550 5.7.1 Command not allowed",
                                        "550 5.7.1 Command not allowed",
                                        "550 5.7.1 Command not allowed",
                                        "550 5.7.1 Command not allowed",
                                        "421 4.7.0 mx.test Error: too many errors"}) +
                         "<Close>");
}

TEST_CASE("abuse: the PROXY refusal also holds before TLS", "[smtp][abuse]") {
  Outcome o = transcript(testSettings(), {send("PROXY TCP4 10.0.0.1 10.0.0.2 1234 25\r\nNOOP\r\n")});
  REQUIRE(o.trace == kGreeting + lines({"550 5.7.1 Command not allowed", "250 2.0.0 Ok"}));
}

TEST_CASE("abuse: without a delay the tarpit is off", "[smtp][abuse]") {
  SmtpSession session(testSettings());
  session.start();
  Actions a = session.onBytes("A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\n");
  REQUIRE(written(a) == lines({"500 5.5.2 Error: command not recognized",
                               "500 5.5.2 Error: command not recognized",
                               "500 5.5.2 Error: command not recognized",
                               "500 5.5.2 Error: command not recognized",
                               "500 5.5.2 Error: command not recognized", "250 2.0.0 Ok"}));
  REQUIRE(session.tarpitMs() == 0);
}

TEST_CASE("abuse: each error after the third pauses the input until resume()",
          "[smtp][abuse]") {
  SessionSettings s = testSettings();
  s.errorDelayMs = 1500;
  s.maxErrors = 6;
  const std::string bad = "500 5.5.2 Error: command not recognized";
  SmtpSession session(s);
  session.start();
  // Pipelined garbage: three errors are answered at once, the fourth too, then nothing more.
  Actions a = session.onBytes("A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\nF\r\n");
  REQUIRE(written(a) == lines({bad, bad, bad, bad}));
  REQUIRE(session.tarpitMs() == 1500);
  REQUIRE(session.errors() == 4);
  // More input while paused is only buffered.
  REQUIRE(session.onBytes("NOOP\r\n").empty());
  a = session.resume();
  REQUIRE(written(a) == lines({bad}));  // E, then paused again
  REQUIRE(session.tarpitMs() == 1500);
  REQUIRE(session.resume().empty() == false);  // NOOP answered, F is the 6th error: 421
  REQUIRE(session.closed());
  REQUIRE(session.tarpitMs() == 0);
}

TEST_CASE("abuse: the tarpit answers the same byte by byte", "[smtp][abuse]") {
  SessionSettings s = testSettings();
  s.errorDelayMs = 1000;
  const std::string input = "A\r\nB\r\nC\r\nD\r\nNOOP\r\n";
  SmtpSession session(s);
  session.start();
  std::string out;
  for (char c : input) {
    out += written(session.onBytes(std::string(1, c)));
  }
  REQUIRE(out == lines({"500 5.5.2 Error: command not recognized",
                        "500 5.5.2 Error: command not recognized",
                        "500 5.5.2 Error: command not recognized",
                        "500 5.5.2 Error: command not recognized"}));
  REQUIRE(session.tarpitMs() == 1000);
  REQUIRE(written(session.resume()) == lines({"250 2.0.0 Ok"}));
  REQUIRE(session.tarpitMs() == 0);
}

TEST_CASE("abuse: a shutdown during the tarpit still says goodbye", "[smtp][abuse]") {
  SessionSettings s = testSettings();
  s.errorDelayMs = 1000;
  SmtpSession session(s);
  session.start();
  session.onBytes("A\r\nB\r\nC\r\nD\r\nNOOP\r\n");
  REQUIRE(session.tarpitMs() == 1000);
  Actions a = session.onShutdown();
  REQUIRE(written(a) == lines({"421 4.3.2 mx.test Service shutting down"}));
  REQUIRE(closes(a));
  REQUIRE(session.resume().empty());
}

TEST_CASE("abuse: STARTTLS over the handshake rate gets 454 and stays in plaintext",
          "[smtp][abuse]") {
  SmtpSession session(testSettings());
  int asked = 0;
  session.setStartTlsGate([&asked] {
    ++asked;
    return false;
  });
  session.start();
  Actions a = session.onBytes("EHLO a\r\nSTARTTLS\r\nMAIL FROM:<a@b.c>\r\nNOOP\r\n");
  REQUIRE(asked == 1);
  REQUIRE_FALSE(has(a, [](const Action& x) { return std::holds_alternative<StartTls>(x); }));
  std::string text = written(a);
  REQUIRE(text.find("454 4.7.0 TLS not available: too many TLS handshakes from your address\r\n"
                    "530 5.7.0 Must issue a STARTTLS command first\r\n250 2.0.0 Ok\r\n") !=
          std::string::npos);
  REQUIRE_FALSE(session.tlsActive());
  REQUIRE(session.errors() == 1);  // the 530; the 454 is our limit, not the client's error
}

TEST_CASE("abuse: STARTTLS within the handshake rate starts TLS", "[smtp][abuse]") {
  SmtpSession session(testSettings());
  session.setStartTlsGate([] { return true; });
  session.start();
  Actions a = session.onBytes("EHLO a\r\nSTARTTLS\r\n");
  REQUIRE(has(a, [](const Action& x) { return std::holds_alternative<StartTls>(x); }));
}

TEST_CASE("abuse: progress counts complete lines, not bytes of a trickled one",
          "[smtp][abuse]") {
  SmtpSession session(testSettings());
  session.start();
  const uint64_t start = session.progress();
  for (char c : std::string("NOO")) {
    session.onBytes(std::string(1, c));
  }
  REQUIRE(session.progress() == start);
  session.onBytes("P\r\n");
  REQUIRE(session.progress() == start + 1);
  // An over-long line: reported once (progress), its further bytes are not.
  session.onBytes(std::string(600, 'x'));
  const uint64_t afterTooLong = session.progress();
  REQUIRE(afterTooLong == start + 2);
  session.onBytes(std::string(600, 'x'));
  REQUIRE(session.progress() == afterTooLong);
}

TEST_CASE("abuse: DATA too slow is cut with 421 and nothing is delivered", "[smtp][abuse]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
  REQUIRE(session.inData());
  const uint64_t before = session.progress();
  session.onBytes("Subject: slow\r\n");
  REQUIRE(session.progress() > before);  // DATA bytes move the deadline
  Actions a = session.onDataTooSlow();
  REQUIRE(written(a) == lines({"421 4.4.2 mx.test Data transfer too slow"}));
  REQUIRE(closes(a));
  REQUIRE_FALSE(has(a, [](const Action& x) { return std::holds_alternative<Deliver>(x); }));
  REQUIRE_FALSE(session.inData());
  REQUIRE(session.onBytes("\r\n.\r\n").empty());
}

TEST_CASE("abuse: DATA too slow under relay drops the message upstream", "[smtp][abuse]") {
  SmtpSession session(relaySettings());
  session.onTlsEstablished();
  session.start();
  Actions a = session.onBytes("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
  REQUIRE(has(a, [](const Action& x) { return std::holds_alternative<OpenBackend>(x); }));
  session.onBackendReady(true);
  session.onBackendReply("250 2.1.0 Ok\r\n");
  session.onBackendReply("250 2.1.5 Ok\r\n");
  session.onBackendReply("354 go ahead\r\n");
  REQUIRE(session.inData());
  a = session.onBytes("Subject: slow\r\n");
  REQUIRE(has(a, [](const Action& x) { return std::holds_alternative<BackendData>(x); }));
  a = session.onDataTooSlow();
  REQUIRE(written(a) == lines({"421 4.4.2 mx.test Data transfer too slow"}));
  REQUIRE(has(a, [](const Action& x) { return std::holds_alternative<AbortBackend>(x); }));
  REQUIRE_FALSE(has(a, [](const Action& x) { return std::holds_alternative<BackendEndData>(x); }));
  REQUIRE(closes(a));
}

}  // namespace
}  // namespace smtpgate::smtp
