#include "gateway/smtp/backend_session.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gateway/smtp/xtext.h"

namespace smtpgate::smtp {
namespace {

// A backend script: bytes from the backend, or "the TLS handshake toward it finished".
struct Step {
  bool tls = false;
  std::string bytes;
};
Step backend(std::string bytes) { return Step{false, std::move(bytes)}; }
Step tlsUp() { return Step{true, {}}; }

void record(const BackendSession::Result& r, std::string& trace) {
  trace += r.toSend;
  for (const Reply& reply : r.replies) {
    trace += "[" + reply.firstLine() + "]";
  }
  switch (r.event) {
    case BackendSession::Event::None:
      break;
    case BackendSession::Event::Ready:
      trace += "<Ready>";
      break;
    case BackendSession::Event::StartTls:
      trace += "<StartTls>";
      break;
    case BackendSession::Event::Failed:
      trace += "<Failed: " + r.reason + (r.reply ? " | " + r.reply->firstLine() : "") + ">";
      break;
  }
}

// Plays the script and returns what the gateway sent, with the events as markers. Byte by
// byte feeds every backend octet in its own call.
std::string play(BackendSession& session, const std::vector<Step>& script, bool byteByByte) {
  std::string trace = session.start();
  for (const Step& step : script) {
    if (step.tls) {
      record(session.onTlsEstablished(), trace);
    } else if (byteByByte) {
      for (char c : step.bytes) {
        record(session.onBytes(std::string(1, c)), trace);
      }
    } else {
      record(session.onBytes(step.bytes), trace);
    }
  }
  return trace;
}

// Both ways must give `expected`; returns the session fed whole, for further checks.
BackendSession check(const BackendOptions& options, const std::vector<Step>& script,
                     const std::string& expected) {
  BackendSession bytes(options);
  CHECK(play(bytes, script, true) == expected);
  BackendSession whole(options);
  CHECK(play(whole, script, false) == expected);
  return whole;
}

ClientFacts facts() {
  ClientFacts f;
  f.ip = "192.0.2.10";
  f.port = 56324;
  f.helo = "client.example";
  f.esmtp = true;
  f.serverIp = "198.51.100.1";
  f.serverPort = 587;
  f.tlsVersion = "TLSv1.3";
  f.tlsCipher = "TLS_AES_256_GCM_SHA384";
  f.sni = "smtp.example.com";
  return f;
}

BackendOptions options(Handoff handoff, bool startTls = false) {
  return BackendOptions{"gw.example", handoff, startTls, facts()};
}

const std::string kGreeting = "220 mx.example ESMTP Postfix\r\n";
const std::string kEhloPlain =
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
    "250-XCLIENT NAME ADDR PROTO HELO PORT LOGIN\r\n250 8BITMIME\r\n";
const std::string kEhloTls =
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-XCLIENT NAME ADDR PROTO HELO PORT LOGIN\r\n250 8BITMIME\r\n";
const std::string kEhloFinal =
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 20480000\r\n250 AUTH PLAIN\r\n";
const std::string kXclient =
    "XCLIENT ADDR=192.0.2.10 PORT=56324 NAME=[UNAVAILABLE] HELO=client.example PROTO=ESMTP\r\n";

TEST_CASE("backend session: no handoff, then replies pass through", "[smtp][backend]") {
  BackendSession s = check(options(Handoff::None),
                           {backend(kGreeting), backend(kEhloPlain), backend("250 2.1.0 Ok\r\n"),
                            backend("250 2.1.5 Ok\r\n354 go\r\n")},
                           "EHLO gw.example\r\n<Ready>[250 2.1.0 Ok][250 2.1.5 Ok][354 go]");
  CHECK(s.ready());
  CHECK(s.greeting() == "220 mx.example ESMTP Postfix");
  CHECK(has(s.capabilities(), "XCLIENT"));
  CHECK(s.capabilities().size() == 5);
}

TEST_CASE("backend session: XCLIENT, then EHLO as the client", "[smtp][backend]") {
  BackendSession s = check(options(Handoff::Xclient),
                           {backend(kGreeting), backend(kEhloPlain),
                            backend("220 mx.example ESMTP Postfix\r\n"), backend(kEhloFinal)},
                           "EHLO gw.example\r\n" + kXclient + "EHLO client.example\r\n<Ready>");
  // The capabilities are those of the last EHLO.
  CHECK(filterForClients(s.capabilities(), 36700160) ==
        std::vector<std::string>{"PIPELINING", "SIZE 20480000", "AUTH PLAIN"});
  CHECK_FALSE(has(s.capabilities(), "XCLIENT"));
}

TEST_CASE("backend session: STARTTLS, then XCLIENT", "[smtp][backend]") {
  BackendSession s =
      check(options(Handoff::Xclient, true),
            {backend(kGreeting), backend(kEhloPlain), backend("220 2.0.0 Ready to start TLS\r\n"),
             tlsUp(), backend(kEhloTls), backend("220 mx.example ESMTP\r\n"), backend(kEhloFinal)},
            "EHLO gw.example\r\nSTARTTLS\r\n<StartTls>EHLO gw.example\r\n" + kXclient +
                "EHLO client.example\r\n<Ready>");
  CHECK(s.ready());
  CHECK(offersAuth(s.capabilities(), "PLAIN"));
}

TEST_CASE("backend session: STARTTLS without handoff forgets the plaintext EHLO",
          "[smtp][backend]") {
  BackendSession s = check(options(Handoff::None, true),
                           {backend(kGreeting), backend(kEhloPlain), backend("220 Go ahead\r\n"),
                            tlsUp(), backend(kEhloFinal)},
                           "EHLO gw.example\r\nSTARTTLS\r\n<StartTls>EHLO gw.example\r\n<Ready>");
  CHECK_FALSE(has(s.capabilities(), "STARTTLS"));
  CHECK(has(s.capabilities(), "AUTH"));
}

TEST_CASE("backend session: PROXY v1 and v2 headers come first", "[smtp][backend]") {
  check(options(Handoff::ProxyV1), {backend(kGreeting), backend(kEhloFinal)},
        "PROXY TCP4 192.0.2.10 198.51.100.1 56324 587\r\nEHLO client.example\r\n<Ready>");

  BackendSession v2(options(Handoff::ProxyV2, true));
  const std::string header = v2.start();
  REQUIRE(header.size() > 16);
  CHECK(header.substr(12, 2) == "\x21\x11");
  CHECK(header.find("TLS_AES_256_GCM_SHA384") != std::string::npos);
  check(options(Handoff::ProxyV2, true),
        {backend(kGreeting), backend(kEhloPlain), backend("220 2.0.0 Ready\r\n"), tlsUp(),
         backend(kEhloFinal)},
        header + "EHLO client.example\r\nSTARTTLS\r\n<StartTls>EHLO client.example\r\n<Ready>");
}

TEST_CASE("backend session: a client HELO unfit for a command line is not forwarded",
          "[smtp][backend]") {
  BackendOptions o = options(Handoff::ProxyV1);
  o.facts.helo = "two words";
  check(o, {backend(kGreeting), backend(kEhloFinal)},
        "PROXY TCP4 192.0.2.10 198.51.100.1 56324 587\r\nEHLO gw.example\r\n<Ready>");
  o.facts.helo = "";
  check(o, {backend(kGreeting), backend(kEhloFinal)},
        "PROXY TCP4 192.0.2.10 198.51.100.1 56324 587\r\nEHLO gw.example\r\n<Ready>");
}

TEST_CASE("backend session: the greeting refuses", "[smtp][backend]") {
  check(options(Handoff::Xclient),
        {backend("554-5.7.1 No SMTP service here\r\n554 5.7.1 Go away\r\n"), backend(kEhloPlain)},
        "<Failed: backend refused the connection: 554 5.7.1 No SMTP service here | "
        "554 5.7.1 No SMTP service here>");
  BackendSession s(options(Handoff::None));
  BackendSession::Result r = s.onBytes("421 4.3.2 Service shutting down\r\n");
  CHECK(r.event == BackendSession::Event::Failed);
  REQUIRE(r.reply);
  CHECK(r.reply->code == 421);
  CHECK(r.reply->raw == "421 4.3.2 Service shutting down\r\n");
  CHECK(r.toSend.empty());
  CHECK(s.failed());
  // Only 220 opens a session (RFC 5321 §4.2: the greeting is 220 or 554).
  check(options(Handoff::None), {backend("250 mx.example\r\n")},
        "<Failed: backend refused the connection: 250 mx.example | 250 mx.example>");
}

TEST_CASE("backend session: EHLO refused", "[smtp][backend]") {
  check(options(Handoff::None),
        {backend(kGreeting), backend("502 5.5.2 Error: command not recognized\r\n")},
        "EHLO gw.example\r\n<Failed: backend refused EHLO: 502 5.5.2 Error: command not "
        "recognized | 502 5.5.2 Error: command not recognized>");
  // A one-line EHLO reply (no extensions at all) is still a 250.
  check(options(Handoff::None), {backend(kGreeting), backend("250 mx.example\r\n")},
        "EHLO gw.example\r\n<Ready>");
}

TEST_CASE("backend session: XCLIENT not offered or refused", "[smtp][backend]") {
  check(options(Handoff::Xclient), {backend(kGreeting), backend(kEhloFinal)},
        "EHLO gw.example\r\n<Failed: backend does not authorise XCLIENT for the gateway "
        "(Postfix: smtpd_authorized_xclient_hosts)>");
  check(options(Handoff::Xclient),
        {backend(kGreeting), backend(kEhloPlain),
         backend("550 5.7.0 Error: insufficient authorization\r\n")},
        "EHLO gw.example\r\n" + kXclient +
            "<Failed: backend refused XCLIENT: 550 5.7.0 Error: insufficient authorization | "
            "550 5.7.0 Error: insufficient authorization>");
  check(options(Handoff::Xclient),
        {backend(kGreeting), backend("250-mx\r\n250 XCLIENT REVERSE_NAME\r\n")},
        "EHLO gw.example\r\n<Failed: backend's XCLIENT lists no attribute the gateway sends>");
}

TEST_CASE("backend session: STARTTLS not offered or refused", "[smtp][backend]") {
  check(options(Handoff::None, true), {backend(kGreeting), backend(kEhloFinal)},
        "EHLO gw.example\r\n<Failed: backend does not offer STARTTLS>");
  check(options(Handoff::None, true),
        {backend(kGreeting), backend(kEhloPlain),
         backend("454 4.7.0 TLS not available due to local problem\r\n")},
        "EHLO gw.example\r\nSTARTTLS\r\n<Failed: backend refused STARTTLS: 454 4.7.0 TLS not "
        "available due to local problem | 454 4.7.0 TLS not available due to local problem>");
}

TEST_CASE("backend session: plaintext after the STARTTLS reply is never taken", "[smtp][backend]") {
  // In the same read as the 220: a reply injected before TLS.
  BackendSession s(options(Handoff::None, true));
  s.onBytes(kGreeting);
  s.onBytes(kEhloPlain);
  BackendSession::Result r = s.onBytes("220 Ready\r\n250-mx\r\n250 AUTH PLAIN\r\n");
  CHECK(r.event == BackendSession::Event::Failed);
  CHECK(r.reason == "backend sent more than the reply awaited");
  CHECK(r.toSend.empty());
  // In a later read, before the handshake finished.
  check(options(Handoff::None, true),
        {backend(kGreeting), backend(kEhloPlain), backend("220 Ready\r\n"), backend("250 x\r\n"),
         tlsUp()},
        "EHLO gw.example\r\nSTARTTLS\r\n<StartTls><Failed: backend sent plaintext after its "
        "STARTTLS reply>");
}

TEST_CASE("backend session: the handshake is lock-step", "[smtp][backend]") {
  BackendSession s(options(Handoff::None));
  BackendSession::Result r = s.onBytes(kGreeting + kEhloPlain);
  CHECK(r.event == BackendSession::Event::Failed);
  CHECK(r.toSend.empty());
  REQUIRE(r.reply);
  CHECK(r.reply->code == 250);
  // A partial line after the awaited reply counts too.
  BackendSession t(options(Handoff::None));
  CHECK(t.onBytes(kGreeting + "2").event == BackendSession::Event::Failed);
  // After the final EHLO nothing was asked yet.
  BackendSession u(options(Handoff::None));
  u.onBytes(kGreeting);
  CHECK(u.onBytes(kEhloFinal + "250 ok\r\n").event == BackendSession::Event::Failed);
  // onTlsEstablished without STARTTLS.
  BackendSession v(options(Handoff::None));
  CHECK(v.onTlsEstablished().event == BackendSession::Event::Failed);
}

TEST_CASE("backend session: a broken backend is a protocol error", "[smtp][backend]") {
  check(options(Handoff::None), {backend("SSH-2.0-OpenSSH_9.2\r\n"), backend(kGreeting)},
        "<Failed: backend protocol error: reply line without a three-digit code: "
        "\"SSH-2.0-OpenSSH_9.2\">");
  // After Ready: the replies before the error still come back.
  check(options(Handoff::None),
        {backend(kGreeting), backend(kEhloFinal), backend("250 2.1.0 Ok\r\n250-a\r\n251 b\r\n")},
        "EHLO gw.example\r\n<Ready>[250 2.1.0 Ok]<Failed: backend protocol error: reply code "
        "changed from 250 to 251 within one reply>");
}

TEST_CASE("backend session: XCLIENT command lines", "[smtp][backend]") {
  const std::vector<std::string> all = {"NAME", "ADDR",  "PROTO",    "HELO",    "REVERSE_NAME",
                                        "PORT", "LOGIN", "DESTADDR", "DESTPORT"};
  ClientFacts f = facts();
  CHECK(BackendSession::xclientCommand(all, f) ==
        "XCLIENT ADDR=192.0.2.10 PORT=56324 NAME=[UNAVAILABLE] HELO=client.example PROTO=ESMTP "
        "DESTADDR=198.51.100.1 DESTPORT=587\r\n");

  f.ip = "2001:DB8::1";
  f.serverIp = "::ffff:198.51.100.1";
  f.reverseName = "host.client.example";
  f.login = "user@example.com";
  f.esmtp = false;
  CHECK(BackendSession::xclientCommand(all, f) ==
        "XCLIENT ADDR=IPV6:2001:db8::1 PORT=56324 NAME=host.client.example HELO=client.example "
        "PROTO=SMTP LOGIN=user@example.com DESTADDR=198.51.100.1 DESTPORT=587\r\n");

  // xtext: spaces, "+" and "=" cannot split or forge an attribute.
  f = facts();
  f.helo = "my host+x=y";
  CHECK(BackendSession::xclientCommand({"HELO"}, f) == "XCLIENT HELO=my+20host+2Bx+3Dy\r\n");
  f.helo = "";
  f.ip = "not an address";
  f.port = 0;
  CHECK(BackendSession::xclientCommand({"ADDR", "PORT", "HELO"}, f) ==
        "XCLIENT ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] HELO=[UNAVAILABLE]\r\n");
  // Only what the backend lists; LOGIN/DESTADDR/DESTPORT only when known.
  f = facts();
  f.serverIp = "";
  f.serverPort = 0;
  CHECK(BackendSession::xclientCommand({"ADDR", "LOGIN", "DESTADDR", "DESTPORT"}, f) ==
        "XCLIENT ADDR=192.0.2.10\r\n");
  CHECK(BackendSession::xclientCommand({"REVERSE_NAME"}, f).empty());
  CHECK(BackendSession::xclientCommand({}, f).empty());
}

TEST_CASE("xtext: RFC 3461 encoding and decoding", "[smtp][backend]") {
  CHECK(xtextEncode("client.example") == "client.example");
  CHECK(xtextEncode("a b+c=d") == "a+20b+2Bc+3Dd");
  CHECK(xtextEncode(std::string("\x00\x7f\xc3\xa9~!", 6)) == "+00+7F+C3+A9~!");
  CHECK(xtextDecode("a+20b+2Bc+3Dd") == "a b+c=d");
  CHECK(xtextDecode("+c3+a9") == "\xc3\xa9");
  CHECK(xtextDecode("") == "");
  CHECK_FALSE(xtextDecode("a+2"));
  CHECK_FALSE(xtextDecode("a+"));
  CHECK_FALSE(xtextDecode("a+G0"));
  CHECK_FALSE(xtextDecode("a=b"));
  CHECK_FALSE(xtextDecode("a b"));
  const std::string all = [] {
    std::string s;
    for (int c = 0; c < 256; ++c) {
      s += static_cast<char>(c);
    }
    return s;
  }();
  CHECK(xtextDecode(xtextEncode(all)) == all);
}

TEST_CASE("backend session: after XCLIENT an unusable client HELO gives the gateway's",
          "[smtp][backend]") {
  BackendOptions o = options(Handoff::Xclient);
  o.facts.helo = "bad helo";
  check(o, {backend(kGreeting), backend(kEhloPlain), backend("220 mx\r\n"), backend(kEhloFinal)},
        "EHLO gw.example\r\nXCLIENT ADDR=192.0.2.10 PORT=56324 NAME=[UNAVAILABLE] "
        "HELO=bad+20helo PROTO=ESMTP\r\nEHLO gw.example\r\n<Ready>");
}

Reply parse(std::string_view bytes) {
  ReplyParser parser;
  std::vector<Reply> replies = parser.feed(bytes);
  REQUIRE(replies.size() == 1);
  return replies.front();
}

TEST_CASE("backend session: queue ids of Postfix, Exim, Sendmail and others", "[smtp][backend]") {
  CHECK(BackendSession::queueIdFrom(parse("250 2.0.0 Ok: queued as 4ABCD123\r\n")) == "4ABCD123");
  CHECK(BackendSession::queueIdFrom(parse("250 2.0.0 Ok: queued as 4fT9yZ1kQxz3mR7\r\n")) ==
        "4fT9yZ1kQxz3mR7");
  CHECK(BackendSession::queueIdFrom(parse("250 OK id=1abcDE-000123-XY\r\n")) == "1abcDE-000123-XY");
  CHECK(BackendSession::queueIdFrom(parse("250 OK id=1tMpDm-00000000Lqo-2Qn1\r\n")) ==
        "1tMpDm-00000000Lqo-2Qn1");
  CHECK(BackendSession::queueIdFrom(parse(
            "250 2.0.0 4AB1cD2e012345 Message accepted for delivery\r\n")) == "4AB1cD2e012345");
  CHECK(BackendSession::queueIdFrom(parse("250-Thanks\r\n250 Message queued as <AB12>.\r\n")) ==
        "AB12");
  CHECK(BackendSession::queueIdFrom(parse("250 accepted (id=xyz.9)\r\n")) == "xyz.9");
  CHECK(BackendSession::queueIdFrom(parse("250 2.0.0 Ok\r\n")).empty());
  CHECK(BackendSession::queueIdFrom(parse("250 2.0.0 Ok msgid=<a@b>\r\n")).empty());
  CHECK(BackendSession::queueIdFrom(parse("451 4.3.0 queued as nothing\r\n")).empty());
}

}  // namespace
}  // namespace smtpgate::smtp
