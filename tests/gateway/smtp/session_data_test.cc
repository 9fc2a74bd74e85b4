// MAIL / RCPT / DATA through the session: envelopes, content, smuggling, limits.

#include <catch2/catch.hpp>

#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace std::string_literals;

using namespace testing;

const std::string kOpen = "EHLO client.example\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n";

std::string openReplies() {
  return kGreeting + ehloTls() +
         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"});
}

TEST_CASE("data: a full transaction delivers envelope and content", "[smtp][data]") {
  Outcome o = transcript(
      tlsSettings(),
      {send("EHLO client.example\r\nMAIL FROM:<alice@contoso.com> SIZE=100 BODY=8BITMIME\r\n"
            "RCPT TO:<bob@fabrikam.com>\r\nRCPT TO:<\"carol smith\"@[192.0.2.1]>\r\nDATA\r\n"
            "Subject: hi\r\n\r\nbody\r\n.\r\n"),
       delivered("4XYZ"), send("QUIT\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                                "354 End data with <CR><LF>.<CR><LF>"}) +
                         "<Deliver>" + lines({"250 2.0.0 Ok: queued as 4XYZ", "221 2.0.0 Bye"}) +
                         "<Close>");
  REQUIRE(o.messages.size() == 1);
  const Message& m = o.messages[0];
  CHECK(m.envelope.mailFrom == "alice@contoso.com");
  CHECK(m.envelope.mailParams == std::vector<std::string>{"SIZE=100", "BODY=8BITMIME"});
  CHECK(m.envelope.rcptTo ==
        std::vector<std::string>{"bob@fabrikam.com", "\"carol smith\"@[192.0.2.1]"});
  CHECK(m.content == "Subject: hi\r\n\r\nbody\r\n");
  CHECK(m.helo == "client.example");
  CHECK(m.esmtp);
  CHECK(m.authUser.empty());
}

TEST_CASE("data: the transaction resets after delivery, success or not", "[smtp][data]") {
  Outcome o = transcript(
      tlsSettings(), {send(kOpen + "x\r\n.\r\nRCPT TO:<d@e.f>\r\n"),
                      deliveryFailed("451 4.3.0 Error: backend unavailable"),
                      send("MAIL FROM:<>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n.\r\n"), delivered("Q2")});
  REQUIRE(o.trace ==
          openReplies() + "<Deliver>" +
              lines({"451 4.3.0 Error: backend unavailable", "503 5.5.1 Error: need MAIL command",
                     "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"}) +
              "<Deliver>" + lines({"250 2.0.0 Ok: queued as Q2"}));
  REQUIRE(o.messages.size() == 2);
  CHECK(o.messages[1].envelope.mailFrom.empty());
  CHECK(o.messages[1].content.empty());  // DATA CRLF . CRLF: the first CRLF ended DATA
}

TEST_CASE("data: a failed delivery is not a client error", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 1;
  Outcome o = transcript(
      s, {send(kOpen + "x\r\n.\r\n"), deliveryFailed("554 5.7.1 Rejected\r\n"), send("NOOP\r\n")});
  REQUIRE(o.trace == openReplies() + "<Deliver>" + lines({"554 5.7.1 Rejected", "250 2.0.0 Ok"}));
}

TEST_CASE("data: dot-unstuffing", "[smtp][data]") {
  Outcome o = transcript(tlsSettings(),
                         {send(kOpen + "..\r\n...x\r\n.y\r\n. \r\nz.\r\n.\r\n"), delivered("Q")});
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].content == ".\r\n..x\r\ny\r\n \r\nz.\r\n");
}

TEST_CASE("data: smuggling variants do not end the data under normalize", "[smtp][data]") {
  struct Case {
    const char* name;
    std::string body;
    std::string content;
  };
  const std::vector<Case> cases = {
      {"LF.LF", "a\n.\nMAIL FROM:<evil@x.y>\n", "a\r\n.\r\nMAIL FROM:<evil@x.y>\r\n"},
      {"LF.CRLF", "a\n.\r\nRSET\r\n", "a\r\n.\r\nRSET\r\n"},
      {"CRLF.LF", "a\r\n.\nRSET\r\n", "a\r\n.\r\nRSET\r\n"},
      {"CR.CR", "a\r.\rRSET\r\n", "a\r\n.\r\nRSET\r\n"},
      {"CRLF.CR", "a\r\n.\rRSET\r\n", "a\r\n.\r\nRSET\r\n"},
      {"CRLF.CRCRLF", "a\r\n.\r\r\nRSET\r\n", "a\r\n.\r\n\r\nRSET\r\n"},
      {"CR.CRLF", "a\r.\r\nRSET\r\n", "a\r\n.\r\nRSET\r\n"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Outcome o =
        transcript(tlsSettings(), {send(kOpen + c.body + "\r\n.\r\nNOOP\r\n"), delivered("Q")});
    REQUIRE(o.trace ==
            openReplies() + "<Deliver>" + lines({"250 2.0.0 Ok: queued as Q", "250 2.0.0 Ok"}));
    REQUIRE(o.messages.size() == 1);
    CHECK(o.messages[0].content == c.content + "\r\n");
  }
}

TEST_CASE("data: bare line ends are refused under reject", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.bareLf = BareLfPolicy::Reject;
  for (const char* body :
       {"a\nb\r\n.\r\n", "a\rb\r\n.\r\n", "a\r\n.\n\r\n.\r\n", "a\r\n.\r.\r\n\r\n.\r\n"}) {
    INFO(body);
    Outcome o = transcript(s, {send(kOpen + body + "NOOP\r\n")});
    REQUIRE(o.trace ==
            openReplies() + lines({"550 5.5.2 Error: bare <CR> or <LF> received", "250 2.0.0 Ok"}));
    REQUIRE(o.messages.empty());
  }
  Outcome clean = transcript(s, {send(kOpen + "a\r\n.\r\n"), delivered("Q")});
  REQUIRE(clean.messages.size() == 1);
}

TEST_CASE("data: NUL bytes and 8-bit text are content", "[smtp][data]") {
  const std::string body = "a\0b\xc3\xa9\r\n.\r\n"s;
  Outcome o = transcript(tlsSettings(), {send(kOpen + body), delivered("Q")});
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].content == "a\0b\xc3\xa9\r\n"s);
}

TEST_CASE("data: max_message_bytes: exact fits, one more is 552 after the terminator",
          "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.maxMessageBytes = 20;
  const std::string fits = std::string(18, 'x') + "\r\n";  // 20 octets
  Outcome ok = transcript(s, {send(kOpen + fits + ".\r\n"), delivered("Q")});
  REQUIRE(ok.messages.size() == 1);
  CHECK(ok.messages[0].content == fits);

  Outcome justOver = transcript(s, {send(kOpen + "x" + fits + ".\r\n")});
  REQUIRE(justOver.messages.empty());
  REQUIRE(justOver.trace.find("552 5.3.4 Message size exceeds fixed limit\r\n") !=
          std::string::npos);

  const std::string big = std::string(19, 'x') + "\r\n" + std::string(5000, 'y') + "\r\n";
  Outcome o = transcript(s, {send(kOpen + big + ".\r\nNOOP\r\n")});
  REQUIRE(o.messages.empty());
  REQUIRE(o.trace ==
          kGreeting + lines({"250-mx.test", "250-PIPELINING", "250-SIZE 20", "250-8BITMIME",
                             "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250 AUTH PLAIN LOGIN",
                             "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                             "552 5.3.4 Message size exceeds fixed limit", "250 2.0.0 Ok"}));
}

TEST_CASE("data: SIZE= above the limit is refused at MAIL", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.maxMessageBytes = 1000;
  Outcome o =
      transcript(s, {send("EHLO a\r\nMAIL FROM:<a@b.c> SIZE=1001\r\n"
                          "MAIL FROM:<a@b.c> size=99999999999999999999999\r\n"
                          "MAIL FROM:<a@b.c> SIZE=12x\r\nMAIL FROM:<a@b.c> SIZE=1000\r\n")});
  REQUIRE(o.trace ==
          kGreeting + lines({"250-mx.test", "250-PIPELINING", "250-SIZE 1000", "250-8BITMIME",
                             "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250 AUTH PLAIN LOGIN",
                             "552 5.3.4 Message size exceeds fixed limit",
                             "552 5.3.4 Message size exceeds fixed limit",
                             "501 5.5.4 Bad SIZE parameter syntax", "250 2.1.0 Ok"}));
}

TEST_CASE("data: max_recipients: the (max+1)th gets 452", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.maxRecipients = 3;
  Outcome o = transcript(s, {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<r1@x.y>\r\n"
                                  "RCPT TO:<r2@x.y>\r\nRCPT TO:<r3@x.y>\r\nRCPT TO:<r4@x.y>\r\n"
                                  "DATA\r\n.\r\n"),
                             delivered("Q")});
  REQUIRE(o.trace == kGreeting + ehloTls() +
                         lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                                "452 4.5.3 Error: too many recipients",
                                "354 End data with <CR><LF>.<CR><LF>"}) +
                         "<Deliver>" + lines({"250 2.0.0 Ok: queued as Q"}));
  REQUIRE(o.messages.at(0).envelope.rcptTo.size() == 3);
}

TEST_CASE("data: MAIL and RCPT syntax", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 100;
  Outcome o = transcript(
      s,
      {send("EHLO a\r\nMAIL FROM:a@b.c\r\nMAIL TO:<a@b.c>\r\nMAIL FROM:<a b@c.d>\r\n"
            "MAIL FROM:<a@b.c> FOO=1\r\nMAIL FROM:<a@b.c> BODY=BINARYMIME\r\nMAIL FROM:<a@b.c>x\r\n"
            "MAIL FROM: <@r1.example,@r2.example:a@b.c> BODY=7BIT RET=HDRS ENVID=x1\r\n"
            "MAIL FROM:<x@y.z>\r\nRCPT TO:<>\r\nRCPT TO:d@e.f\r\nRCPT TO:<d@e..f>\r\n"
            "RCPT TO:<d@e.f> NOTIFY=NEVER\r\nRCPT TO: <Postmaster>\r\nRCPT "
            "TO:<\xc3\xa9@\xc3\xa9.fr>\r\n"
            "DATA x\r\nDATA\r\n.\r\n"),
       delivered("Q")});
  REQUIRE(
      o.trace ==
      kGreeting + ehloTls() +
          lines({"501 5.5.4 Syntax: MAIL FROM:<address>", "501 5.5.4 Syntax: MAIL FROM:<address>",
                 "501 5.1.7 Bad sender address syntax", "555 5.5.4 Unsupported option: FOO=1",
                 "555 5.5.4 Unsupported option: BODY=BINARYMIME",
                 "501 5.5.4 Syntax: MAIL FROM:<address>", "250 2.1.0 Ok",
                 "503 5.5.1 Error: nested MAIL command", "501 5.1.3 Bad recipient address syntax",
                 "501 5.5.4 Syntax: RCPT TO:<address>", "501 5.1.3 Bad recipient address syntax",
                 "555 5.5.4 Unsupported option: NOTIFY=NEVER", "250 2.1.5 Ok", "250 2.1.5 Ok",
                 "501 5.5.4 Syntax: DATA", "354 End data with <CR><LF>.<CR><LF>"}) +
          "<Deliver>" + lines({"250 2.0.0 Ok: queued as Q"}));
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].envelope.mailFrom == "a@b.c");
  CHECK(o.messages[0].envelope.mailParams ==
        std::vector<std::string>{"BODY=7BIT", "RET=HDRS", "ENVID=x1"});
  CHECK(o.messages[0].envelope.rcptTo ==
        std::vector<std::string>{"Postmaster", "\xc3\xa9@\xc3\xa9.fr"});
}

TEST_CASE("data: SMTPUTF8 only where it is offered", "[smtp][data]") {
  Outcome tls = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c> SMTPUTF8\r\n")});
  REQUIRE(tls.trace == kGreeting + ehloTls() + lines({"250 2.1.0 Ok"}));
  SessionSettings s = testSettings();
  s.requireTls = false;
  Outcome plain = transcript(s, {send("EHLO a\r\nMAIL FROM:<a@b.c> SMTPUTF8\r\n")});
  REQUIRE(plain.trace ==
          kGreeting + ehloPlain() + lines({"555 5.5.4 Unsupported option: SMTPUTF8"}));
}

TEST_CASE("data: DATA without RCPT, MAIL before EHLO, nested MAIL", "[smtp][data]") {
  Outcome o =
      transcript(tlsSettings(), {send("MAIL FROM:<a@b.c>\r\nDATA\r\nEHLO a\r\n"
                                      "MAIL FROM:<a@b.c>\r\nDATA\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.trace == kGreeting +
                         lines({"503 5.5.1 Error: send HELO/EHLO first",
                                "503 5.5.1 Error: need RCPT command"}) +
                         ehloTls() +
                         lines({"250 2.1.0 Ok", "554 5.5.1 Error: no valid recipients",
                                "503 5.5.1 Error: nested MAIL command"}));
}

TEST_CASE("data: HELO sessions are not ESMTP", "[smtp][data]") {
  Outcome o = transcript(tlsSettings(), {send("HELO old.example\r\nMAIL FROM:<a@b.c>\r\n"
                                              "RCPT TO:<d@e.f>\r\nDATA\r\nx\r\n.\r\n"),
                                         delivered("Q")});
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].helo == "old.example");
  CHECK_FALSE(o.messages[0].esmtp);
}

TEST_CASE("data: everything pipelined in one chunk", "[smtp][data]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  Actions a = session.onBytes(
      "EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n"
      "Subject: x\r\n\r\nline\r\n.\r\nQUIT\r\n");
  // One Write with every reply so far, the timer disarmed for the wait, then the message.
  REQUIRE(a.size() == 3);
  REQUIRE(std::get<Write>(a[0]).bytes ==
          ehloTls() + lines({"250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                             "354 End data with <CR><LF>.<CR><LF>"}));
  REQUIRE(std::get<SetTimeout>(a[1]).seconds == 0);
  const Message& m = std::get<Deliver>(a[2]).message;
  CHECK(m.content == "Subject: x\r\n\r\nline\r\n");
  CHECK(m.envelope.rcptTo.size() == 2);
  REQUIRE(session.waiting());
  REQUIRE(session.bufferedBytes() == 6);  // "QUIT\r\n" waits for the result
  a = session.onDeliveryResult({true, "ABC", ""});
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<Write>(a[0]).bytes == lines({"250 2.0.0 Ok: queued as ABC", "221 2.0.0 Bye"}));
  REQUIRE(std::holds_alternative<Close>(a[1]));
}

TEST_CASE("data: timers follow the mode", "[smtp][data]") {
  SessionSettings s = tlsSettings();
  s.commandTimeoutS = 300;
  s.dataTimeoutS = 180;
  SmtpSession session(s);
  session.onTlsEstablished();
  session.start();
  Actions a = session.onBytes("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[1]).seconds == 180);
  a = session.onBytes("body\r\n");
  REQUIRE(a.empty());
  a = session.onBytes(".\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[0]).seconds == 0);
  a = session.onDeliveryResult({true, "Q", ""});
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[1]).seconds == 300);
}

TEST_CASE("data: a large message arrives intact in any chunking", "[smtp][data]") {
  std::string body;
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    std::string line = (i % 7 == 0 ? "." : "") + std::string(static_cast<std::size_t>(i % 90), 'm');
    body += (i % 7 == 0 ? "." : "") + line + "\r\n";
    expected += line + "\r\n";
  }
  Outcome o = transcript(tlsSettings(), {send(kOpen + body + ".\r\n"), delivered("Q")});
  REQUIRE(o.messages.size() == 1);
  REQUIRE(o.messages[0].content == expected);
}

}  // namespace
}  // namespace smtpgate::smtp
