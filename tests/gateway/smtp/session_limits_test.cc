// Line length, error count, timeout and shutdown.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

TEST_CASE("limits: a command line may have 512 octets including CRLF", "[smtp][limits]") {
  // "NOOP " + padding: 510 octets + CRLF = 512 is fine; 511 + CRLF = 513 is too long.
  const std::string ok = "NOOP " + std::string(505, 'x') + "\r\n";
  const std::string tooLong = "NOOP " + std::string(506, 'x') + "\r\n";
  REQUIRE(ok.size() == 512);
  REQUIRE(tooLong.size() == 513);
  Outcome o = transcript(testSettings(), {send(ok + tooLong + "NOOP\r\n")});
  REQUIRE(o.trace ==
          kGreeting + lines({"250 2.0.0 Ok", "500 5.5.6 Line too long", "250 2.0.0 Ok"}));
}

TEST_CASE("limits: a 100 KB line is answered once and never buffered", "[smtp][limits]") {
  const std::string huge(100 * 1024, 'z');
  Outcome o = transcript(testSettings(), {send("NOOP\r\n" + huge + "\r\nNOOP\r\n")});
  REQUIRE(o.trace ==
          kGreeting + lines({"250 2.0.0 Ok", "500 5.5.6 Line too long", "250 2.0.0 Ok"}));

  SmtpSession session(testSettings());
  session.start();
  std::size_t most = 0;
  std::string written;
  for (std::size_t i = 0; i < huge.size(); i += 1000) {
    for (const Action& a : session.onBytes(huge.substr(i, 1000))) {
      if (const auto* w = std::get_if<Write>(&a)) {
        written += w->bytes;
      }
    }
    most = std::max(most, session.bufferedBytes());
  }
  REQUIRE(most < 512);
  for (const Action& a : session.onBytes("\r\nNOOP\r\n")) {
    if (const auto* w = std::get_if<Write>(&a)) {
      written += w->bytes;
    }
  }
  REQUIRE(written == lines({"500 5.5.6 Line too long", "250 2.0.0 Ok"}));
  REQUIRE(session.errors() == 1);
  REQUIRE(session.bufferedBytes() == 0);
}

TEST_CASE("limits: max_errors gives 421 and close", "[smtp][limits]") {
  SessionSettings s = testSettings();
  s.maxErrors = 3;
  Outcome o = transcript(s, {send("FOO\r\nNOOP\r\nVRFY x\r\nBAR\r\nNOOP\r\n")});
  REQUIRE(o.trace == kGreeting +
                         lines({"500 5.5.2 Error: command not recognized", "250 2.0.0 Ok",
                                "502 5.5.1 VRFY command is disabled",
                                "500 5.5.2 Error: command not recognized",
                                "421 4.7.0 mx.test Error: too many errors"}) +
                         "<Close>");
}

TEST_CASE("limits: the default max_errors is 10", "[smtp][limits]") {
  std::string input;
  std::string expected = kGreeting;
  for (int i = 0; i < 12; ++i) {
    input += "XYZZY\r\n";
  }
  for (int i = 0; i < 10; ++i) {
    expected += "500 5.5.2 Error: command not recognized\r\n";
  }
  expected += "421 4.7.0 mx.test Error: too many errors\r\n<Close>";
  Outcome o = transcript(testSettings(), {send(input)});
  REQUIRE(o.trace == expected);
}

TEST_CASE("limits: over-long lines count as errors", "[smtp][limits]") {
  SessionSettings s = testSettings();
  s.maxErrors = 2;
  Outcome o = transcript(s, {send(std::string(600, 'a') + "\r\n" + std::string(600, 'b') + "\n")});
  REQUIRE(o.trace == kGreeting +
                         lines({"500 5.5.6 Line too long", "500 5.5.6 Line too long",
                                "421 4.7.0 mx.test Error: too many errors"}) +
                         "<Close>");
}

TEST_CASE("limits: timeout", "[smtp][limits]") {
  Outcome o = transcript(testSettings(), {send("EHLO a\r\nNO"), timeout(), send("OP\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() +
                         lines({"421 4.4.2 mx.test Error: timeout exceeded"}) + "<Close>");
}

TEST_CASE("limits: timeout inside DATA", "[smtp][limits]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
                                              "DATA\r\npartial"),
                                         timeout()});
  REQUIRE(o.trace ==
          kGreeting + ehloTls() +
              lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                     "421 4.4.2 mx.test Error: timeout exceeded"}) +
              "<Close>");
  REQUIRE(o.messages.empty());
}

TEST_CASE("limits: shutdown", "[smtp][limits]") {
  Outcome o = transcript(testSettings(), {send("EHLO a\r\n"), shutdown(), send("NOOP\r\n")});
  REQUIRE(o.trace ==
          kGreeting + ehloPlain() + lines({"421 4.3.2 mx.test Service shutting down"}) + "<Close>");
}

TEST_CASE("limits: shutdown while a delivery is pending waits for its result", "[smtp][limits]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
                                              "DATA\r\nx\r\n.\r\nNOOP\r\n"),
                                         shutdown(), delivered("Q9")});
  REQUIRE(o.trace ==
          kGreeting + ehloTls() +
              lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"}) +
              "<Deliver>" +
              lines({"250 2.0.0 Ok: queued as Q9", "421 4.3.2 mx.test Service shutting down"}) +
              "<Close>");
}

TEST_CASE("limits: shutdown while an authentication is pending waits for its result",
          "[smtp][limits]") {
  Outcome o = transcript(
      tlsSettings(), {send("EHLO a\r\nAUTH PLAIN AHUAcA==\r\n"), shutdown(), authResult(false)});
  REQUIRE(o.trace == kGreeting + ehloTls() + "<Auth PLAIN>" +
                         lines({"535 5.7.8 Error: authentication failed",
                                "421 4.3.2 mx.test Service shutting down"}) +
                         "<Close>");
}

TEST_CASE("limits: no plaintext into a running TLS handshake", "[smtp][limits]") {
  SmtpSession session(testSettings());
  session.start();
  session.onBytes("STARTTLS\r\n");
  Actions a = session.onTimeout();
  REQUIRE(a.size() == 1);
  REQUIRE(std::holds_alternative<Close>(a[0]));
}

TEST_CASE("limits: results nobody asked for are ignored", "[smtp][limits]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  REQUIRE(session.onAuthResult(true).empty());
  REQUIRE(session.onDeliveryResult({true, "X", ""}).empty());
  REQUIRE(session.authUser().empty());
}

}  // namespace
}  // namespace smtpgate::smtp
