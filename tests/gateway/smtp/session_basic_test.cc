// Greeting, EHLO/HELO, STARTTLS and the simple commands, as transcripts.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

TEST_CASE("session: greeting arms the command timer", "[smtp][session]") {
  SmtpSession session(testSettings());
  Actions actions = session.start();
  REQUIRE(actions.size() == 2);
  REQUIRE(std::get<Write>(actions[0]).bytes == "220 mx.test ESMTP\r\n");
  REQUIRE(std::get<SetTimeout>(actions[1]).seconds == 300);
}

TEST_CASE("session: EHLO before TLS offers STARTTLS, never AUTH", "[smtp][session]") {
  Outcome o = transcript(testSettings(), {send("EHLO client.example\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain());
}

TEST_CASE("session: EHLO on a plaintext listener with a small size limit", "[smtp][session]") {
  SessionSettings s = testSettings();
  s.maxMessageBytes = 1000;
  s.authAvailable = false;
  Outcome o = transcript(s, {send("ehlo x\r\n")});
  REQUIRE(o.trace ==
          kGreeting + lines({"250-mx.test", "250-PIPELINING", "250-SIZE 1000", "250-8BITMIME",
                             "250-ENHANCEDSTATUSCODES", "250 STARTTLS"}));
}

TEST_CASE("session: EHLO after TLS offers AUTH and SMTPUTF8, never STARTTLS", "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO client.example\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls());
}

TEST_CASE("session: EHLO after TLS without AUTH available", "[smtp][session]") {
  SessionSettings s = tlsSettings();
  s.authAvailable = false;
  Outcome o = transcript(s, {send("EHLO client.example\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls(false));
}

TEST_CASE("session: HELO and missing arguments", "[smtp][session]") {
  Outcome o =
      transcript(testSettings(), {send("HELO client.example\r\nEHLO\r\nHELO   \r\nEHLO a\tb\r\n")});
  REQUIRE(o.trace == kGreeting + lines({"250 mx.test", "501 5.5.4 Syntax: EHLO hostname",
                                        "501 5.5.4 Syntax: HELO hostname",
                                        "501 5.5.4 Syntax: EHLO hostname"}));
}

TEST_CASE("session: STARTTLS wipes pipelined plaintext (CVE-2011-0411)", "[smtp][session]") {
  Outcome o =
      transcript(testSettings(),
                 {send("EHLO a\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<x@y.z>\r\n"), tlsEstablished(),
                  send("MAIL FROM:<a@b.c>\r\n"), send("EHLO b\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() + lines({"220 2.0.0 Ready to start TLS"}) +
                         "<StartTls>" + lines({"503 5.5.1 Error: send HELO/EHLO first"}) +
                         ehloTls() + lines({"250 2.1.0 Ok"}));
}

TEST_CASE("session: STARTTLS reply and StartTls come in one call, RSET never answered",
          "[smtp][session]") {
  SmtpSession session(testSettings());
  session.start();
  Actions a = session.onBytes("STARTTLS\r\nRSET\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<Write>(a[0]).bytes == "220 2.0.0 Ready to start TLS\r\n");
  REQUIRE(std::holds_alternative<StartTls>(a[1]));
  REQUIRE(session.bufferedBytes() == 0);
  // Bytes arriving before the handshake ends are plaintext injection: dropped.
  REQUIRE(session.onBytes("NOOP\r\n").empty());
  Actions t = session.onTlsEstablished();
  REQUIRE(t.size() == 1);
  REQUIRE(std::get<SetTimeout>(t[0]).seconds == 300);
  REQUIRE(session.tlsActive());
  Actions n = session.onBytes("NOOP\r\n");
  REQUIRE(std::get<Write>(n.at(0)).bytes == "250 2.0.0 Ok\r\n");
}

TEST_CASE("session: STARTTLS resets HELO and the transaction", "[smtp][session]") {
  SessionSettings s = testSettings();
  s.requireTls = false;
  Outcome o = transcript(s, {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nSTARTTLS\r\n"), tlsEstablished(),
                             send("RCPT TO:<d@e.f>\r\nEHLO b\r\nRCPT TO:<d@e.f>\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() +
                         lines({"250 2.1.0 Ok", "220 2.0.0 Ready to start TLS"}) + "<StartTls>" +
                         lines({"503 5.5.1 Error: need MAIL command"}) + ehloTls() +
                         lines({"503 5.5.1 Error: need MAIL command"}));
}

TEST_CASE("session: STARTTLS errors", "[smtp][session]") {
  Outcome plain = transcript(testSettings(), {send("STARTTLS now\r\n")});
  REQUIRE(plain.trace == kGreeting + lines({"501 5.5.4 Syntax: STARTTLS"}));
  Outcome tls = transcript(tlsSettings(), {send("EHLO a\r\nSTARTTLS\r\n")});
  REQUIRE(tls.trace == kGreeting + ehloTls() + lines({"503 5.5.1 Error: TLS already active"}));
  Outcome twice =
      transcript(testSettings(), {send("STARTTLS\r\n"), tlsEstablished(), send("STARTTLS\r\n")});
  REQUIRE(twice.trace == kGreeting + lines({"220 2.0.0 Ready to start TLS"}) + "<StartTls>" +
                             lines({"503 5.5.1 Error: TLS already active"}));
}

TEST_CASE("session: require_tls refuses MAIL, RCPT and AUTH in plaintext", "[smtp][session]") {
  Outcome o = transcript(testSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
                                               "AUTH PLAIN AGEAYg==\r\nNOOP\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() +
                         lines({"530 5.7.0 Must issue a STARTTLS command first",
                                "530 5.7.0 Must issue a STARTTLS command first",
                                "530 5.7.0 Must issue a STARTTLS command first", "250 2.0.0 Ok"}));
  REQUIRE(o.auths.empty());
}

TEST_CASE("session: without require_tls plaintext mail flows but AUTH is still 530",
          "[smtp][session]") {
  SessionSettings s = testSettings();
  s.requireTls = false;
  Outcome o =
      transcript(s, {send("EHLO a\r\nAUTH LOGIN\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() +
                         lines({"530 5.7.0 Must issue a STARTTLS command first", "250 2.1.0 Ok",
                                "250 2.1.5 Ok"}));
}

TEST_CASE("session: simple commands", "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("NOOP\r\nnoop with args\r\nHELP\r\nVRFY root\r\n"
                                              "EXPN staff\r\nBDAT 10 LAST\r\nETRN x\r\nTURN\r\n"
                                              "XCLIENT ADDR=1.2.3.4\r\nFOO\r\n\r\nRSET\r\nQUIT\r\n"
                                              "NOOP\r\n")});
  REQUIRE(o.trace ==
          kGreeting +
              lines({"250 2.0.0 Ok", "250 2.0.0 Ok", "214 2.0.0 See RFC 5321",
                     "502 5.5.1 VRFY command is disabled", "502 5.5.1 EXPN command is disabled",
                     "502 5.5.1 Error: command not implemented",
                     "502 5.5.1 Error: command not implemented",
                     "502 5.5.1 Error: command not implemented",
                     "550 5.7.1 Command not allowed",
                     "500 5.5.2 Error: command not recognized",
                     "500 5.5.2 Error: command not recognized", "250 2.0.0 Ok", "221 2.0.0 Bye"}) +
              "<Close>");
}

TEST_CASE("session: QUIT closes and later input is ignored", "[smtp][session]") {
  SmtpSession session(testSettings());
  session.start();
  Actions a = session.onBytes("QUIT\r\nNOOP\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<Write>(a[0]).bytes == "221 2.0.0 Bye\r\n");
  REQUIRE(std::holds_alternative<Close>(a[1]));
  REQUIRE(session.closed());
  REQUIRE(session.onBytes("NOOP\r\n").empty());
  REQUIRE(session.onTimeout().empty());
  REQUIRE(session.onShutdown().empty());
}

TEST_CASE("session: commands are case-insensitive", "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("eHlO a\r\nmail from:<a@b.c>\r\nRcPt To:<d@e.f>\r\n"
                                              "rset\r\nQuit\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok", "221 2.0.0 Bye"}) +
                         "<Close>");
}

TEST_CASE("session: bare LF ends a command line, a bare CR inside one is a syntax error",
          "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\nNOOP\rRSET\r\nNOOP\r\r\nNOOP\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"501 5.5.2 Syntax error: bare <CR> received",
                                "501 5.5.2 Syntax error: bare <CR> received", "250 2.0.0 Ok"}));
}

TEST_CASE("session: HTTP from a cross-protocol attack gets 421 and close", "[smtp][session]") {
  for (const char* line :
       {"GET / HTTP/1.1\r\n", "POST /form HTTP/1.1\r\n", "CONNECT mx.test:25 HTTP/1.1\r\n",
        "HEAD / HTTP/1.0\r\n", "PUT /x HTTP/1.1\r\n", "User-Agent: Mozilla/5.0\r\n",
        "Host: mx.test\r\n"}) {
    INFO(line);
    Outcome o = transcript(testSettings(), {send(std::string(line) + "EHLO a\r\n")});
    REQUIRE(o.trace ==
            kGreeting + lines({"421 4.7.0 mx.test Error: this is an SMTP server"}) + "<Close>");
  }
  Outcome late = transcript(testSettings(), {send("EHLO a\r\nHost: mx.test\r\nNOOP\r\n")});
  REQUIRE(late.trace == kGreeting + ehloPlain() +
                            lines({"421 4.7.0 mx.test Error: this is an SMTP server"}) + "<Close>");
}

TEST_CASE("session: RSET clears the transaction", "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
                                              "RSET\r\nRCPT TO:<d@e.f>\r\nDATA\r\n"
                                              "MAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok",
                                "503 5.5.1 Error: need MAIL command",
                                "503 5.5.1 Error: need RCPT command", "250 2.1.0 Ok"}));
}

TEST_CASE("session: EHLO resets the transaction", "[smtp][session]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nHELO b\r\n"
                                              "RCPT TO:<d@e.f>\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"250 2.1.0 Ok", "250 mx.test", "503 5.5.1 Error: need MAIL command",
                                "250 2.1.0 Ok"}));
}

}  // namespace
}  // namespace smtpgate::smtp
