// Relay mode (SPEC section 6): the lazy backend, EHLO from the backend's capabilities, MAIL
// and RCPT replies passed through, RSET, several transactions on one backend link.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/relay_transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

const std::string kHello = "EHLO client.example\r\n";

std::string opened() { return kGreeting + ehloRelay(); }

TEST_CASE("relay: EHLO after TLS offers the backend's capabilities, HELO is unchanged",
          "[smtp][relay]") {
  RelayOutcome o = relayTranscript(relaySettings(), {}, {send(kHello + "HELO client.example\r\n")});
  REQUIRE(o.trace == opened() + lines({"250 mx.test"}));
  SessionSettings none = relaySettings();
  none.relayCapabilities.clear();
  o = relayTranscript(none, {}, {send(kHello)});
  REQUIRE(o.trace == kGreeting + lines({"250 mx.test"}));
}

TEST_CASE("relay: before TLS the EHLO is the gateway's own, after STARTTLS the backend's",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.implicitTls = false;
  RelayOutcome o = relayTranscript(
      s, {}, {send("EHLO a\r\nSTARTTLS\r\n"), tlsEstablished(), send("EHLO a\r\n")});
  REQUIRE(o.trace == kGreeting + ehloPlain() + lines({"220 2.0.0 Ready to start TLS"}) +
                         "<StartTls>" + ehloRelay());
  REQUIRE(o.opens == 0);
}

TEST_CASE("relay: STARTTLS drops a backend opened in plaintext", "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.implicitTls = false;
  s.requireTls = false;
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.0 Ok again\r\n"};
  RelayOutcome o = relayTranscript(s, backend,
                                   {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nSTARTTLS\r\n"),
                                    tlsEstablished(), send("EHLO a\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.client == kGreeting + ehloPlain() +
                          lines({"250 2.1.0 Ok", "220 2.0.0 Ready to start TLS"}) + "<StartTls>" +
                          ehloRelay() + lines({"250 2.1.0 Ok again"}));
  // The backend heard the plaintext facts: the next MAIL gets a new one.
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\n<abort><open>MAIL FROM:<a@b.c>\r\n");
}

TEST_CASE("relay: sessions that never need the backend never open it", "[smtp][relay]") {
  RelayOutcome o = relayTranscript(
      relaySettings(), {},
      {send(kHello + "NOOP\r\nHELP\r\nVRFY x\r\nRSET\r\nRCPT TO:<a@b.c>\r\nDATA\r\nQUIT\r\n")});
  REQUIRE(o.trace ==
          opened() +
              lines({"250 2.0.0 Ok", "214 2.0.0 See RFC 5321", "502 5.5.1 VRFY command is disabled",
                     "250 2.0.0 Ok", "503 5.5.1 Error: need MAIL command",
                     "503 5.5.1 Error: need RCPT command", "221 2.0.0 Bye"}) +
              "<Close>");
  REQUIRE(o.opens == 0);
  REQUIRE(o.backend.empty());
}

TEST_CASE("relay: local syntax errors never open the backend", "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.maxMessageBytes = 1000;
  RelayOutcome o = relayTranscript(
      s, {},
      {send(kHello + "MAIL FROM:a@b.c\r\nMAIL FROM:<a@@b>\r\nMAIL FROM:<a@b.c> SIZE=1001\r\n"
                     "MAIL FROM:<a@b.c> FOO=1\r\nAUTH PLAIN !!!!\r\n")});
  REQUIRE(o.trace ==
          opened() +
              lines({"501 5.5.4 Syntax: MAIL FROM:<address>", "501 5.1.7 Bad sender address syntax",
                     "552 5.3.4 Message size exceeds fixed limit",
                     "555 5.5.4 Unsupported option: FOO=1", "501 5.5.2 Cannot decode response"}));
  REQUIRE(o.opens == 0);
}

TEST_CASE("relay: plaintext MAIL/RCPT/AUTH refused by require_tls never open the backend",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.implicitTls = false;
  FakePolicy policy;
  RelayOptions options;
  options.policy = &policy;
  RelayOutcome o = relayTranscript(
      s, {}, {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nAUTH PLAIN =\r\n")}, options);
  REQUIRE(o.trace == kGreeting + ehloPlain() +
                         lines({"530 5.7.0 Must issue a STARTTLS command first",
                                "530 5.7.0 Must issue a STARTTLS command first",
                                "530 5.7.0 Must issue a STARTTLS command first"}));
  REQUIRE(o.opens == 0);
  REQUIRE(o.calls ==
          std::vector<std::string>{"plaintext MAIL", "plaintext RCPT", "plaintext AUTH"});
}

TEST_CASE("relay: a session refused after the handshake (D2/D3) never opens the backend",
          "[smtp][relay]") {
  RelayOutcome o = relayTranscript(relaySettings(), {},
                                   {rejectNext(kT1), send(kHello + "MAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == kGreeting + lines({kT1}) + "<Close>");
  REQUIRE(o.opens == 0);
}

TEST_CASE("relay: a backend that cannot be opened gives 421 4.4.2 and Close", "[smtp][relay]") {
  BackendScript backend;
  backend.opens = {false};
  RelayOutcome o = relayTranscript(relaySettings(), backend,
                                   {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n")});
  REQUIRE(o.trace == opened() + "<Open><NotReady>" +
                         lines({"421 4.4.2 mx.test Error: backend not available"}) + "<Close>");
  REQUIRE(o.backend == "<open>");
}

TEST_CASE("relay: MAIL and RCPT replies reach the client unchanged", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {
      "250 2.1.0 Sender <a@b.c> ok\r\n",
      "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
      "550-5.1.1 Please try double-checking the recipient's email address\r\n"
      "550 5.1.1 for typos.\r\n",
      "251 2.1.5 User not local; will forward\r\n",
      "450 4.2.0 <g@h.i>: Recipient address rejected: Greylisted\r\n",
      "299 odd, but a success\r\n",
  };
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM: <@relay.example:a@b.c>  size=100 BODY=8BITMIME\r\n"
                     "RCPT TO:<d@e.f>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<g@h.i>\r\n"
                     "RCPT TO:<\"j k\"@[192.0.2.1]>\r\n")});
  REQUIRE(o.client == opened() + backend.replies[0] + backend.replies[1] + backend.replies[2] +
                          backend.replies[3] + backend.replies[4]);
  // Rebuilt from the parsed envelope: no source route, the parameters as sent.
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c> size=100 BODY=8BITMIME\r\nRCPT TO:<d@e.f>\r\n"
          "RCPT TO:<Postmaster>\r\nRCPT TO:<g@h.i>\r\nRCPT TO:<\"j k\"@[192.0.2.1]>\r\n");
  REQUIRE(o.repliesLeft == 0);
}

TEST_CASE("relay: only recipients the backend accepted count", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "550 5.1.1 no\r\n", "451 4.3.0 later\r\n",
                     "554 5.5.1 Error: no valid recipients\r\n"};
  SessionSettings s = relaySettings();
  s.maxErrors = 1;  // the backend's refusals are not client errors
  const std::string refused = opened() +
                              lines({"250 2.1.0 Ok", "550 5.1.1 no", "451 4.3.0 later",
                                     "554 5.5.1 Error: no valid recipients",
                                     "421 4.7.0 mx.test Error: too many errors"}) +
                              "<Close>";
  SECTION("pipelined: the DATA goes with the batch, the refusal is still ours") {
    RelayOptions reference;
    reference.referenceOnly = true;  // one line at a time, DATA would come after the replies
    RelayOutcome o = relayTranscript(
        s, backend,
        {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n")},
        reference);
    REQUIRE(o.client == refused);
    REQUIRE(o.backend ==
            "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n");
  }
  SECTION("one command at a time: the DATA never goes upstream") {
    // Each reply before the next command (the steps between separate the client's writes).
    RelayOutcome o = relayTranscript(
        s, BackendScript{},
        {send(kHello + "MAIL FROM:<a@b.c>\r\n"), backendReply("250 2.1.0 Ok\r\n"),
         send("RCPT TO:<d@e.f>\r\n"), backendReply("550 5.1.1 no\r\n"),
         send("RCPT TO:<g@h.i>\r\n"), backendReply("451 4.3.0 later\r\n"), send("DATA\r\n")});
    REQUIRE(o.client == refused);
    REQUIRE(o.backend.find("DATA") == std::string::npos);
  }
}

TEST_CASE("relay: a pipelined DATA that the backend accepts with no recipient is dropped",
          "[smtp][relay]") {
  // A backend out of step: 354 although it refused every RCPT. It waits for a message that
  // must never come, so the link goes; the client gets what it would get for DATA alone.
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "550 5.1.1 no\r\n", "354 go ahead\r\n",
                     "250 2.1.0 Ok again\r\n"};
  RelayOptions reference;
  reference.referenceOnly = true;
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n"),
       send("NOOP\r\nMAIL FROM:<a@b.c>\r\n")},
      reference);
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "550 5.1.1 no",
                                        "554 5.5.1 Error: no valid recipients", "250 2.0.0 Ok",
                                        "250 2.1.0 Ok again"}));
  REQUIRE(o.aborts == 1);
  REQUIRE(o.opens == 2);
  REQUIRE(o.ends == 0);
}

TEST_CASE("relay: MAIL refused by the backend resets the transaction", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"553 5.7.1 <a@b.c>: Sender address rejected\r\n"};
  // Not pipelined (the step between separates the client's writes): a RCPT in the same batch
  // as the MAIL goes to the backend, see relay_pipelining_test.cc.
  RelayOutcome o =
      relayTranscript(relaySettings(), backend,
                      {send(kHello + "MAIL FROM:<a@b.c>\r\n"), backendReply("250 2.1.0 Ok\r\n"),
                       send("RCPT TO:<d@e.f>\r\nMAIL FROM:<>\r\n")});
  REQUIRE(o.client == opened() + lines({"553 5.7.1 <a@b.c>: Sender address rejected",
                                        "503 5.5.1 Error: need MAIL command", "250 2.1.0 Ok"}));
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nMAIL FROM:<>\r\n");
}

TEST_CASE("relay: RSET is local without a backend, relayed with one", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.0.0 Flushed\r\n", "250 2.1.0 Ok again\r\n"};
  RelayOutcome o =
      relayTranscript(relaySettings(), backend,
                      {send(kHello + "RSET\r\nMAIL FROM:<a@b.c>\r\nRSET\r\nRCPT TO:<d@e.f>\r\n"
                                     "MAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == opened() + lines({"250 2.0.0 Ok"}) + "<Open><Ready>[MAIL FROM:<a@b.c>]" +
                         lines({"250 2.1.0 Ok"}) + "[RSET]" +
                         lines({"250 2.0.0 Flushed", "503 5.5.1 Error: need MAIL command"}) +
                         "[MAIL FROM:<a@b.c>]" + lines({"250 2.1.0 Ok again"}));
  REQUIRE(o.opens == 1);
}

TEST_CASE("relay: EHLO inside a transaction resets the backend's too", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "250 2.0.0 Ok (ours)\r\n",
                     "250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n" + kHello + "MAIL FROM:<>\r\n")});
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok"}) + ehloRelay() +
                          lines({"250 2.1.0 Ok"}));
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRSET\r\nMAIL FROM:<>\r\n");
}

TEST_CASE("relay: QUIT is answered locally, also with a backend open", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), backend,
                                   {send(kHello + "MAIL FROM:<a@b.c>\r\nQUIT\r\nNOOP\r\n")});
  REQUIRE(o.trace == opened() + "<Open><Ready>[MAIL FROM:<a@b.c>]" +
                         lines({"250 2.1.0 Ok", "221 2.0.0 Bye"}) + "<Close>");
  REQUIRE(o.aborts == 0);  // an idle backend is QUIT by the connection, not dropped
}

TEST_CASE("relay: two transactions on one backend link", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n",
                     "354 go ahead\r\n", "250 2.0.0 Ok: queued as AAA\r\n",
                     "250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n",
                     "354 go ahead\r\n", "250 2.0.0 Ok: queued as BBB\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n"), send("one\r\n.\r\n"),
       send("MAIL FROM:<>\r\nRCPT TO:<g@h.i>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n")});
  REQUIRE(o.client == opened() +
                          lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 go ahead",
                                 "250 2.0.0 Ok: queued as AAA", "250 2.1.0 Ok", "250 2.1.5 Ok",
                                 "354 go ahead", "250 2.0.0 Ok: queued as BBB", "221 2.0.0 Bye"}) +
                          "<Close>");
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n"
          "Received: from client.example <d@e.f>\r\none\r\n.\r\n"
          "MAIL FROM:<>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"
          "Received: from client.example <g@h.i>\r\ntwo\r\n.\r\n");
  REQUIRE(o.opens == 1);
}

TEST_CASE("relay: SMTPUTF8 follows the backend's offer, DSN parameters too", "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.relayCapabilities = {"PIPELINING", "DSN"};
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n"};
  RelayOutcome o = relayTranscript(
      s, backend,
      {send(kHello + "MAIL FROM:<a@b.c> SMTPUTF8\r\nMAIL FROM:<a@b.c> RET=HDRS ENVID=x1\r\n"
                     "RCPT TO:<d@e.f> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d@e.f\r\n"
                     "RCPT TO:<g@h.i> NOTIFY=NEVER\r\nRCPT TO:<j@k.l> NOTIFY=SOMETIMES\r\n"
                     "RCPT TO:<j@k.l> XYZ=1\r\n")});
  REQUIRE(o.client ==
          kGreeting + lines({"250-mx.test", "250-PIPELINING", "250 DSN"}) +
              lines({"555 5.5.4 Unsupported option: SMTPUTF8", "250 2.1.0 Ok", "250 2.1.5 Ok",
                     "250 2.1.5 Ok", "501 5.5.4 Bad parameter: NOTIFY=SOMETIMES",
                     "555 5.5.4 Unsupported option: XYZ=1"}));
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c> RET=HDRS ENVID=x1\r\n"
          "RCPT TO:<d@e.f> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d@e.f\r\n"
          "RCPT TO:<g@h.i> NOTIFY=NEVER\r\n");
  // Without DSN from the backend, RCPT takes no parameter, as in spool mode.
  backend.replies = {"250 2.1.0 Ok\r\n"};
  o = relayTranscript(relaySettings(), backend,
                      {send(kHello + "MAIL FROM:<a@b.c> SMTPUTF8\r\n"
                                     "RCPT TO:<d@e.f> NOTIFY=NEVER\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"250 2.1.0 Ok", "555 5.5.4 Unsupported option: NOTIFY=NEVER"}));
}

TEST_CASE("relay: the spool mode never emits backend actions", "[smtp][relay]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  Actions all =
      session.onBytes(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nx\r\n.\r\n");
  bool deliver = false;
  for (const Action& a : all) {
    REQUIRE_FALSE(std::holds_alternative<OpenBackend>(a));
    REQUIRE_FALSE(std::holds_alternative<BackendCommand>(a));
    REQUIRE_FALSE(std::holds_alternative<BackendData>(a));
    deliver = deliver || std::holds_alternative<Deliver>(a);
  }
  REQUIRE(deliver);
  // Relay events are ignored in spool mode.
  REQUIRE(session.onBackendReply("250 ok\r\n").empty());
  REQUIRE(session.onBackendLost().empty());
  REQUIRE(session.onBackendReady(true).empty());
}

}  // namespace
}  // namespace smtpgate::smtp
