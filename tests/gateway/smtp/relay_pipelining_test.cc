// Relay mode, RFC 2920 toward the backend: MAIL, RCPTs and a final DATA complete in the buffer
// go out in one batch, replies are matched in order, the MAIL and RCPT replies decide what the
// client hears for its DATA, and the client's replies keep its command order, local ones
// included.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/relay_transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

const std::string kHello = "EHLO client.example\r\n";

std::string opened() { return kGreeting + ehloRelay(); }

TEST_CASE("relay pipelining: MAIL, RCPTs and DATA in one batch", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n",
                     "354 End data with <CR><LF>.<CR><LF>\r\n", "250 2.0.0 Ok: queued as Q1\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"
                     "hello\r\n.\r\nQUIT\r\n")});
  // The reference run gets all input at once and the replies all at once: one batch.
  REQUIRE(o.trace ==
          opened() + "<Open><Ready>[MAIL FROM:<a@b.c>][RCPT TO:<d@e.f>][RCPT TO:<g@h.i>][DATA]" +
              lines({"250 2.1.0 Ok"}) + lines({"250 2.1.5 Ok"}) + lines({"250 2.1.5 Ok"}) +
              lines({"354 End data with <CR><LF>.<CR><LF>"}) + "<Data><End>" +
              lines({"250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye"}) + "<Close>");
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"
          "Received: from client.example <d@e.f> <g@h.i>\r\nhello\r\n.\r\n");
}

TEST_CASE("relay pipelining: one command at a time toward a backend without PIPELINING",
          "[smtp][relay]") {
  SessionSettings settings = relaySettings();
  settings.relayCapabilities = {"SIZE 10240000", "8BITMIME"};
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 go\r\n", "250 2.0.0 Ok: Q\r\n"};
  // A client that pipelines anyway (RFC 2920 forbids it here) is served in order.
  RelayOutcome o = relayTranscript(
      settings, backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nhello\r\n.\r\n")});
  REQUIRE(o.trace == kGreeting + lines({"250-mx.test", "250-SIZE 10240000", "250 8BITMIME"}) +
                         "<Open><Ready>[MAIL FROM:<a@b.c>]" + lines({"250 2.1.0 Ok"}) +
                         "[RCPT TO:<d@e.f>]" + lines({"250 2.1.5 Ok"}) + "[DATA]" +
                         lines({"354 go"}) + "<Data><End>" + lines({"250 2.0.0 Ok: Q"}));
}

TEST_CASE("relay pipelining: the backend opens before the batch goes out", "[smtp][relay]") {
  // While the backend opens nothing else is processed; then the whole batch goes at once.
  SmtpSession session(relaySettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes(kHello);
  Actions a = session.onBytes("MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nNOOP\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[0]).seconds == 0);
  REQUIRE(std::holds_alternative<OpenBackend>(a[1]));
  REQUIRE(session.waiting());
  REQUIRE(session.onBytes("RCPT TO:<g@h.i>\r\n").empty());
  a = session.onBackendReady(true);
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<BackendCommand>(a[0]).line == "MAIL FROM:<a@b.c>\r\n");
  REQUIRE(std::get<BackendCommand>(a[1]).line == "RCPT TO:<d@e.f>\r\n");
  a = session.onBackendReply("250 2.1.0 Ok\r\n");
  REQUIRE(a.size() == 1);  // NOOP waits behind the RCPT's reply
  REQUIRE(std::get<Write>(a[0]).bytes == "250 2.1.0 Ok\r\n");
  a = session.onBackendReply("250 2.1.5 Ok\r\n");
  REQUIRE(a.size() == 2);  // RCPT's reply, NOOP's; the RCPT after NOOP is a new batch
  REQUIRE(std::get<Write>(a[0]).bytes == "250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n");
  REQUIRE(std::get<BackendCommand>(a[1]).line == "RCPT TO:<g@h.i>\r\n");
}

TEST_CASE("relay pipelining: RCPTs batched behind a refused MAIL get the backend's replies",
          "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"550 5.7.1 Sender rejected\r\n", "503 5.5.1 Need MAIL before RCPT\r\n",
                     "503 5.5.1 Need MAIL before RCPT\r\n", "503 5.5.1 Error: need RCPT\r\n",
                     "250 2.0.0 Ok\r\n"};
  RelayOptions reference;
  reference.referenceOnly = true;  // one by one, the RCPTs would be refused locally
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n")},
      reference);
  REQUIRE(o.client ==
          opened() +
              lines({"550 5.7.1 Sender rejected", "503 5.5.1 Need MAIL before RCPT",
                     "503 5.5.1 Need MAIL before RCPT", "503 5.5.1 Error: need RCPT command"}));
  // The DATA went with the batch; its refusal is ours (as for a DATA sent alone), and a RSET
  // clears whatever the backend kept.
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\nRSET\r\n");
  REQUIRE(o.repliesLeft == 0);
}

TEST_CASE(
    "relay pipelining: a recipient refused by D6 is answered locally, in order, and never "
    "sent upstream",
    "[smtp][relay]") {
  FakePolicy policy;
  policy.rcptVerdicts["bad@contoso.com"] = FakePolicy::refuseRecipient(kRcpt450);
  RelayOptions options;
  options.policy = &policy;
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok d\r\n", "250 2.1.5 Ok g\r\n", "354 go\r\n",
                     "250 2.0.0 Ok: queued as Q\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<bad@contoso.com>\r\n"
                     "RCPT TO:<g@h.i>\r\nDATA\r\nx\r\n.\r\n")},
      options);
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok d", kRcpt450,
                                        "250 2.1.5 Ok g", "354 go", "250 2.0.0 Ok: queued as Q"}));
  REQUIRE(o.backend.find("bad@contoso.com") == std::string::npos);
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"
          "Received: from client.example <d@e.f> <g@h.i>\r\nx\r\n.\r\n");
  REQUIRE(o.calls == std::vector<std::string>{"rcpt d@e.f", "rcpt bad@contoso.com", "rcpt g@h.i"});
}

TEST_CASE("relay pipelining: local errors inside a batch keep their place", "[smtp][relay]") {
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<x\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<y\r\n"
                     "NOOP\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"250 2.1.0 Ok", "501 5.5.4 Syntax: RCPT TO:<address>", "250 2.1.5 Ok",
                            "501 5.5.4 Syntax: RCPT TO:<address>", "250 2.0.0 Ok"}));
  REQUIRE(o.trace ==
          opened() + "<Open><Ready>[MAIL FROM:<a@b.c>][RCPT TO:<d@e.f>]" +
              lines({"250 2.1.0 Ok", "501 5.5.4 Syntax: RCPT TO:<address>"}) +
              lines({"250 2.1.5 Ok", "501 5.5.4 Syntax: RCPT TO:<address>", "250 2.0.0 Ok"}));
}

TEST_CASE("relay pipelining: a close inside a batch waits for the replies before it",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.maxErrors = 2;
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n"};
  RelayOutcome o = relayTranscript(
      s, backend,
      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<x\r\nRCPT TO:<y\r\n"
                     "RCPT TO:<g@h.i>\r\n")});
  REQUIRE(o.client ==
          opened() +
              lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "501 5.5.4 Syntax: RCPT TO:<address>",
                     "501 5.5.4 Syntax: RCPT TO:<address>",
                     "421 4.7.0 mx.test Error: too many errors"}) +
              "<Close>");
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
  REQUIRE(o.aborts == 0);

  FakePolicy policy;
  policy.rcptVerdicts["bad@contoso.com"] = FakePolicy::closeWith(kT1);
  RelayOptions options;
  options.policy = &policy;
  o = relayTranscript(relaySettings(), backend,
                      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n"
                                     "RCPT TO:<bad@contoso.com>\r\nRCPT TO:<g@h.i>\r\n")},
                      options);
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok", kT1}) + "<Close>");
  REQUIRE(o.backend == "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
}

TEST_CASE("relay pipelining: at the recipient limit the awaited replies decide", "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.maxRecipients = 2;
  BackendScript backend;
  backend.replies = {"250 2.1.0 Ok\r\n", "550 5.1.1 unknown a\r\n", "250 2.1.5 Ok b\r\n",
                     "250 2.1.5 Ok c\r\n"};
  RelayOutcome o =
      relayTranscript(s, backend,
                      {send(kHello + "MAIL FROM:<a@b.c>\r\nRCPT TO:<a@x.y>\r\nRCPT TO:<b@x.y>\r\n"
                                     "RCPT TO:<c@x.y>\r\nRCPT TO:<d@x.y>\r\n")});
  REQUIRE(o.client == opened() + lines({"250 2.1.0 Ok", "550 5.1.1 unknown a", "250 2.1.5 Ok b",
                                        "250 2.1.5 Ok c", "452 4.5.3 Error: too many recipients"}));
  REQUIRE(o.backend ==
          "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<a@x.y>\r\nRCPT TO:<b@x.y>\r\nRCPT TO:<c@x.y>\r\n");
  REQUIRE(o.trace == opened() +
                         "<Open><Ready>[MAIL FROM:<a@b.c>][RCPT TO:<a@x.y>][RCPT TO:<b@x.y>]" +
                         lines({"250 2.1.0 Ok"}) + lines({"550 5.1.1 unknown a"}) +
                         "[RCPT TO:<c@x.y>]" + lines({"250 2.1.5 Ok b"}) +
                         lines({"250 2.1.5 Ok c", "452 4.5.3 Error: too many recipients"}));
}

TEST_CASE("relay pipelining: the client timer is off while the backend is awaited",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.commandTimeoutS = 300;
  s.dataTimeoutS = 180;
  SmtpSession session(s);
  session.onTlsEstablished();
  session.start();
  session.onBytes(kHello);
  Actions a = session.onBytes("MAIL FROM:<a@b.c>\r\n");
  REQUIRE(std::get<SetTimeout>(a.at(0)).seconds == 0);
  a = session.onBackendReady(true);
  REQUIRE(a.size() == 1);
  REQUIRE(std::holds_alternative<BackendCommand>(a[0]));
  a = session.onBackendReply("250 2.1.0 Ok\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[1]).seconds == 300);
  session.onBytes("RCPT TO:<d@e.f>\r\n");
  session.onBackendReply("250 2.1.5 Ok\r\n");
  a = session.onBytes("DATA\r\n");
  REQUIRE(std::get<SetTimeout>(a.at(0)).seconds == 0);
  a = session.onBackendReply("354 go\r\n");
  REQUIRE(std::get<Write>(a.at(0)).bytes == "354 go\r\n");
  REQUIRE(std::get<SetTimeout>(a.at(1)).seconds == 180);
  // A timeout in the middle of a message drops the backend: it must not complete it.
  a = session.onTimeout();
  REQUIRE(a.size() == 3);
  REQUIRE(std::get<Write>(a[0]).bytes == "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  REQUIRE(std::holds_alternative<AbortBackend>(a[1]));
  REQUIRE(std::holds_alternative<Close>(a[2]));
}

}  // namespace
}  // namespace smtpgate::smtp
