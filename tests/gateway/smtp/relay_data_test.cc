// Relay mode DATA: the backend's 354 and final reply passed through, the Received: line
// first, the content streamed and re-encoded exactly (no smuggling), refused messages never
// completed upstream.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/relay_transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace std::string_literals;
using namespace testing;

const std::string kOpen = "EHLO client.example\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";
const std::string kUpstream = "<open>MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";
const std::string kReceived = "Received: from client.example <d@e.f>\r\n";

BackendScript accepting(std::string final = "250 2.0.0 Ok: queued as 4XYZ\r\n") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n",
               std::move(final)};
  return b;
}

// The actions without SetTimeout (tested in relay_pipelining_test.cc).
Actions withoutTimers(Actions actions) {
  std::erase_if(actions, [](const Action& a) { return std::holds_alternative<SetTimeout>(a); });
  return actions;
}

std::string openReplies() {
  return kGreeting + ehloRelay() +
         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"});
}

TEST_CASE(
    "relay data: 354 and the final reply pass through, the content follows the Received "
    "line",
    "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n",
               "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
               "250 2.0.0 OK 1700000000 x1si123.42 - gsmtp\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kOpen + "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n")});
  REQUIRE(o.client ==
          kGreeting + ehloRelay() +
              lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 Start mail input; end with <CRLF>.<CRLF>",
                     "250 2.0.0 OK 1700000000 x1si123.42 - gsmtp", "221 2.0.0 Bye"}) +
              "<Close>");
  REQUIRE(o.backend == kUpstream + kReceived + "Subject: hi\r\n\r\nbody\r\n.\r\n");
  REQUIRE(o.ends == 1);
  REQUIRE(o.aborts == 0);
}

TEST_CASE("relay data: a refused message is passed through and the transaction resets",
          "[smtp][relay]") {
  RelayOutcome o = relayTranscript(relaySettings(),
                                   accepting("554-5.7.1 Message rejected\r\n554 5.7.1 as spam\r\n"),
                                   {send(kOpen + "x\r\n.\r\nRCPT TO:<d@e.f>\r\n")});
  REQUIRE(o.client == openReplies() + lines({"554-5.7.1 Message rejected", "554 5.7.1 as spam",
                                             "503 5.5.1 Error: need MAIL command"}));
}

TEST_CASE("relay data: dot-stuffing is exact and the Received line is first", "[smtp][relay]") {
  RelayOutcome o = relayTranscript(relaySettings(), accepting(),
                                   {send(kOpen + "..\r\n...x\r\n.y\r\n. \r\nz.\r\n.\r\n")});
  // The client's stuffing undone, the backend's redone: "..", "...x", "y", " ", "z.".
  REQUIRE(o.backend == kUpstream + kReceived + "..\r\n...x\r\ny\r\n \r\nz.\r\n.\r\n");
}

TEST_CASE("relay data: an empty message is the Received line only", "[smtp][relay]") {
  RelayOutcome o = relayTranscript(relaySettings(), accepting(), {send(kOpen + ".\r\n")});
  REQUIRE(o.backend == kUpstream + kReceived + ".\r\n");
  RelayOptions none;
  none.received = nullptr;  // received_header off
  o = relayTranscript(relaySettings(), accepting(), {send(kOpen + ".\r\n")}, none);
  REQUIRE(o.backend == kUpstream + ".\r\n");
}

TEST_CASE("relay data: smuggling sequences reach the backend as stuffed content", "[smtp][relay]") {
  struct Case {
    const char* name;
    std::string body;
    std::string wire;  // what the backend must get for it
  };
  const std::vector<Case> cases = {
      {"LF.LF", "a\n.\nMAIL FROM:<evil@x.y>\n", "a\r\n..\r\nMAIL FROM:<evil@x.y>\r\n"},
      {"LF.CRLF", "a\n.\r\nRSET\r\n", "a\r\n..\r\nRSET\r\n"},
      {"CRLF.LF", "a\r\n.\nRSET\r\n", "a\r\n..\r\nRSET\r\n"},
      {"CR.CR", "a\r.\rRSET\r\n", "a\r\n..\r\nRSET\r\n"},
      {"CRLF.CR", "a\r\n.\rRSET\r\n", "a\r\n..\r\nRSET\r\n"},
      {"CRLF.CRCRLF", "a\r\n.\r\r\nRSET\r\n", "a\r\n..\r\n\r\nRSET\r\n"},
      {"NUL", "a\0.\r\nb\r\n"s, "a\0.\r\nb\r\n"s},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    RelayOutcome o =
        relayTranscript(relaySettings(), accepting(), {send(kOpen + c.body + "\r\n.\r\nNOOP\r\n")});
    REQUIRE(o.client == openReplies() + lines({"250 2.0.0 Ok: queued as 4XYZ", "250 2.0.0 Ok"}));
    REQUIRE(o.backend == kUpstream + kReceived + c.wire + "\r\n.\r\n");
    // Nothing in the message can end it early upstream.
    const std::string content = o.backend.substr(kUpstream.size());
    REQUIRE(content.find("\r\n.\r\n") == content.size() - 5);
  }
}

// A session with the Received line on, its MAIL and RCPT accepted upstream: the backend's
// next reply answers DATA.
void untilDataReply(SmtpSession& session) {
  session.setReceivedHeader(testReceived);
  session.onTlsEstablished();
  session.start();
  session.onBytes(kOpen);
  session.onBackendReady(true);
  session.onBackendReply("250 2.1.0 Ok\r\n");
  session.onBackendReply("250 2.1.5 Ok\r\n");
}

TEST_CASE("relay data: the content is streamed as it arrives", "[smtp][relay]") {
  SmtpSession session(relaySettings());
  untilDataReply(session);
  Actions a = withoutTimers(session.onBackendReply("354 go\r\n"));
  REQUIRE(a.size() == 1);
  REQUIRE(std::get<Write>(a[0]).bytes == "354 go\r\n");
  // The Received: line waits for the first content and goes out in the same piece.
  a = session.onBytes("..first line\r\nsecond ");
  REQUIRE(a.size() == 1);
  REQUIRE(std::get<BackendData>(a[0]).bytes == kReceived + "..first line\r\nsecond ");
  a = session.onBytes("line\r\n");
  REQUIRE(a.size() == 1);
  REQUIRE(std::get<BackendData>(a[0]).bytes == "line\r\n");
  REQUIRE_FALSE(session.waiting());
  a = session.onBytes(".\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[0]).seconds == 0);
  REQUIRE(std::holds_alternative<BackendEndData>(a[1]));
  REQUIRE(session.waiting());
  a = session.onBackendReply("250 2.0.0 Ok: queued as Q\r\n");
  REQUIRE(std::get<Write>(a.at(0)).bytes == "250 2.0.0 Ok: queued as Q\r\n");
}

TEST_CASE("relay data: an empty message still gets its Received line, before the end",
          "[smtp][relay]") {
  SmtpSession session(relaySettings());
  untilDataReply(session);
  session.onBackendReply("354 go\r\n");
  Actions a = withoutTimers(session.onBytes(".\r\n"));
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<BackendData>(a[0]).bytes == kReceived);
  REQUIRE(std::holds_alternative<BackendEndData>(a[1]));
}

TEST_CASE("relay data: the Received line is made of CRLF lines whatever it is given",
          "[smtp][relay]") {
  RelayOptions options;
  options.received = [](const Message&) { return std::string("Received: a\n\tb\rc"); };
  RelayOutcome o =
      relayTranscript(relaySettings(), accepting(), {send(kOpen + "x\r\n.\r\n")}, options);
  REQUIRE(o.backend == kUpstream + "Received: a\r\n\tb\r\nc\r\nx\r\n.\r\n");
}

TEST_CASE("relay data: a message over the limit is dropped upstream, never completed",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.maxMessageBytes = 20;
  BackendScript b = accepting();
  b.replies.pop_back();  // no final "." is sent, so no reply to it is asked
  RelayOutcome o = relayTranscript(
      s, b,
      {send(kOpen + "0123456789\r\n0123456789\r\n.\r\nNOOP\r\nMAIL FROM:<a@b.c>\r\n"),
       backendReply("250 2.1.0 Ok again\r\n")});
  REQUIRE(o.client == openReplies() + lines({"552 5.3.4 Message size exceeds fixed limit",
                                             "250 2.0.0 Ok", "250 2.1.0 Ok again"}));
  REQUIRE(o.backend == kUpstream + "<abort><open>MAIL FROM:<a@b.c>\r\n");
  REQUIRE(o.ends == 0);
  REQUIRE(o.aborts == 1);
  REQUIRE(o.opens == 2);  // the next MAIL opens a new backend
  REQUIRE(o.repliesLeft == 0);
  // At the limit exactly it goes through.
  o = relayTranscript(s, accepting(), {send(kOpen + "0123456789\r\n012345\r\n.\r\n")});
  REQUIRE(o.ends == 1);
  REQUIRE(o.aborts == 0);
}

TEST_CASE("relay data: bare line ends under reject drop the backend, 550 to the client",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.bareLf = BareLfPolicy::Reject;
  for (const char* body : {"a\nb\r\n.\r\n", "ok\r\na\rb\r\n.\r\n", "a\r\n.\n\r\n.\r\n"}) {
    INFO(body);
    RelayOutcome o = relayTranscript(s, accepting(), {send(kOpen + body + "NOOP\r\n")});
    REQUIRE(o.client ==
            openReplies() + lines({"550 5.5.2 Error: bare <CR> or <LF> received", "250 2.0.0 Ok"}));
    REQUIRE(o.backend == kUpstream + "<abort>");
    REQUIRE(o.ends == 0);
  }
}

TEST_CASE("relay data: DATA refused by the backend resets both sides", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "554 5.5.1 Error: no valid recipients\r\n",
               "250 2.0.0 Ok\r\n", "250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kOpen), send("RCPT TO:<d@e.f>\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.client ==
          kGreeting + ehloRelay() +
              lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "554 5.5.1 Error: no valid recipients",
                     "503 5.5.1 Error: need MAIL command", "250 2.1.0 Ok"}));
  REQUIRE(o.backend == kUpstream + "RSET\r\nMAIL FROM:<a@b.c>\r\n");
}

TEST_CASE("relay data: the Received line sees the accepted envelope and the AUTH user",
          "[smtp][relay]") {
  BackendScript b;
  b.replies = {"235 2.7.0 Authentication successful\r\n",
               "250 2.1.0 Ok\r\n",
               "550 5.1.1 no\r\n",
               "250 2.1.5 Ok\r\n",
               "354 go\r\n",
               "250 2.0.0 Ok: queued as Q\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send("EHLO client.example\r\nAUTH PLAIN AGFsaWNlQGNvbnRvc28uY29tAHMzY3JldA==\r\n"
            "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nhi\r\n.\r\n")});
  REQUIRE(o.backend.ends_with(
      "DATA\r\nReceived: from client.example (alice@contoso.com) <d@e.f>\r\nhi\r\n.\r\n"));
}

}  // namespace
}  // namespace smtpgate::smtp
