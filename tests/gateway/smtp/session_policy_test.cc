// The TLS decision's hooks in the session (SPEC section 4): D2/D3 rejectNextCommand, D4/D5 at
// AUTH, D6 per recipient, D7 reported.

#include <catch2/catch.hpp>

#include "gateway/smtp/sasl.h"
#include "tests/gateway/smtp/fake_policy.h"
#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

std::string written(const Actions& actions) {
  std::string out;
  for (const Action& action : actions) {
    if (const auto* w = std::get_if<Write>(&action)) {
      out += w->bytes;
    }
  }
  return out;
}

bool hasClose(const Actions& actions) {
  for (const Action& action : actions) {
    if (std::holds_alternative<Close>(action)) {
      return true;
    }
  }
  return false;
}

// ---- D2/D3: rejectNextCommand ----

TEST_CASE("policy: the first command after STARTTLS gets the reply and Close", "[smtp][policy]") {
  for (const char* command : {"EHLO b\r\n", "NOOP\r\n", "QUIT\r\n", "MAIL FROM:<a@b.c>\r\n",
                              "GET / HTTP/1.1\r\n", "XYZZY\r\n"}) {
    INFO(command);
    SessionSettings s = testSettings();
    s.maxErrors = 1;  // a counted error would add "too many errors"
    Outcome o = transcript(s, {send("EHLO a\r\nSTARTTLS\r\n"), tlsEstablished(), rejectNext(kT1),
                               send(std::string(command) + "NOOP\r\n")});
    REQUIRE(o.trace == kGreeting + ehloPlain() + lines({"220 2.0.0 Ready to start TLS"}) +
                           "<StartTls>" + lines({kT1}) + "<Close>");
  }
}

TEST_CASE("policy: pipelined commands after the rejected one are never answered",
          "[smtp][policy]") {
  Outcome o = transcript(tlsSettings(), {rejectNext(kT1), send("EHLO a\r\nMAIL FROM:<a@b.c>\r\n"
                                                               "RCPT TO:<d@e.f>\r\nQUIT\r\n")});
  REQUIRE(o.trace == kGreeting + lines({kT1}) + "<Close>");
  REQUIRE(o.closed);
  REQUIRE(o.messages.empty());
}

TEST_CASE("policy: implicit TLS, rejectNextCommand before start()", "[smtp][policy]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.rejectNextCommand(kT1);
  REQUIRE(written(session.start()) == kGreeting);
  Actions a = session.onBytes("EHL");
  REQUIRE(a.empty());  // only a complete line is answered
  a = session.onBytes("O a\r\nNOOP\r\n");
  REQUIRE(written(a) == kT1 + "\r\n");
  REQUIRE(hasClose(a));
  REQUIRE(session.closed());
  REQUIRE(session.errors() == 0);
  REQUIRE(session.onBytes("NOOP\r\n").empty());
}

TEST_CASE("policy: an over-long first line gets the policy's reply too", "[smtp][policy]") {
  Outcome o =
      transcript(tlsSettings(), {rejectNext(kT1), send(std::string(600, 'x') + "\r\nNOOP\r\n")});
  REQUIRE(o.trace == kGreeting + lines({kT1}) + "<Close>");
}

TEST_CASE("policy: rejectNextCommand applies once, to the next command only", "[smtp][policy]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  session.rejectNextCommand("421 4.7.66 first\r\n");  // a trailing CRLF is not doubled
  REQUIRE(written(session.onBytes("NOOP\r\n")) == "421 4.7.66 first\r\n");
  SmtpSession empty(tlsSettings());
  empty.onTlsEstablished();
  empty.start();
  empty.rejectNextCommand("");  // never an empty line on the wire
  REQUIRE(written(empty.onBytes("NOOP\r\n")) == "421 4.7.0 mx.test Error: refused by policy\r\n");
}

// ---- D4/D5: AUTH identity ----

FakePolicy refusingAuth(const std::string& user, const std::string& reply) {
  FakePolicy p;
  p.authVerdicts[user] = FakePolicy::closeWith(reply);
  return p;
}

TEST_CASE("policy: AUTH PLAIN initial response refused: reply, Close, no Authenticate",
          "[smtp][policy]") {
  PolicyOutcome r = policyTranscript(
      tlsSettings(),
      {send("EHLO a\r\nAUTH PLAIN " + plain("", "alice@contoso.com", "s3cret") + "\r\nNOOP\r\n")},
      refusingAuth("alice@contoso.com", kT2));
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() + lines({kT2}) + "<Close>");
  REQUIRE(r.outcome.auths.empty());
  REQUIRE(r.calls == std::vector<std::string>{"auth alice@contoso.com"});
}

TEST_CASE("policy: AUTH PLAIN after the 334 challenge refused", "[smtp][policy]") {
  PolicyOutcome r = policyTranscript(
      tlsSettings(),
      {send("EHLO a\r\nAUTH PLAIN\r\n" + plain("admin", "bob@fabrikam.com", "pw") + "\r\n")},
      refusingAuth("bob@fabrikam.com", kT1));
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() + lines({"334 ", kT1}) + "<Close>");
  REQUIRE(r.outcome.auths.empty());
  // The authcid decides, not the authzid.
  REQUIRE(r.calls == std::vector<std::string>{"auth bob@fabrikam.com"});
}

TEST_CASE("policy: AUTH LOGIN refused right after the user name, before the password prompt",
          "[smtp][policy]") {
  PolicyOutcome r =
      policyTranscript(tlsSettings(),
                       {send("EHLO a\r\nAUTH LOGIN\r\n" + base64Encode("carol@contoso.com") +
                             "\r\n" + base64Encode("pw") + "\r\n")},
                       refusingAuth("carol@contoso.com", kT2));
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() + lines({"334 VXNlcm5hbWU6", kT2}) + "<Close>");
  REQUIRE(r.outcome.auths.empty());
  REQUIRE(r.calls == std::vector<std::string>{"auth carol@contoso.com"});
}

TEST_CASE("policy: AUTH LOGIN with an initial user refused", "[smtp][policy]") {
  PolicyOutcome r =
      policyTranscript(tlsSettings(),
                       {send("EHLO a\r\nAUTH LOGIN " + base64Encode("dave@contoso.com") + "\r\n" +
                             base64Encode("pw") + "\r\n")},
                       refusingAuth("dave@contoso.com", kT2));
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() + lines({kT2}) + "<Close>");
  REQUIRE(r.outcome.auths.empty());
}

TEST_CASE("policy: a refused AUTH is not a client error and leaves no user behind",
          "[smtp][policy]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 1;
  FakePolicy policy = refusingAuth("u@b.c", kT2);
  SmtpSession session(s);
  session.setPolicy(&policy);
  session.onTlsEstablished();
  session.start();
  session.onBytes("EHLO a\r\nAUTH LOGIN\r\n");
  Actions a = session.onBytes(base64Encode("u@b.c") + "\r\n");
  REQUIRE(written(a) == kT2 + "\r\n");
  REQUIRE(hasClose(a));
  REQUIRE(session.errors() == 0);
  REQUIRE(session.authUser().empty());
  REQUIRE_FALSE(session.waiting());
}

TEST_CASE("policy: an accepted AUTH goes on as without a policy", "[smtp][policy]") {
  const std::vector<Step> steps = {
      send("EHLO a\r\nAUTH LOGIN\r\n" + base64Encode("erin@contoso.com") + "\r\n" +
           base64Encode("pw1") + "\r\n"),
      authResult(false), send("AUTH PLAIN " + plain("", "erin@contoso.com", "pw2") + "\r\n"),
      authResult(true)};
  Outcome without = transcript(tlsSettings(), steps);
  PolicyOutcome with = policyTranscript(tlsSettings(), steps, FakePolicy{});
  REQUIRE(with.outcome.trace == without.trace);
  REQUIRE(with.outcome.trace ==
          kGreeting + ehloTls() + lines({"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"}) + "<Auth LOGIN>" +
              lines({"535 5.7.8 Error: authentication failed"}) + "<Auth PLAIN>" +
              lines({"235 2.7.0 Authentication successful"}));
  REQUIRE(with.outcome.auths.size() == 2);
  CHECK(with.outcome.auths[1].password == "pw2");
  REQUIRE(with.calls == std::vector<std::string>{"auth erin@contoso.com", "auth erin@contoso.com"});
}

TEST_CASE("policy: malformed AUTH responses never reach the policy", "[smtp][policy]") {
  PolicyOutcome r = policyTranscript(
      tlsSettings(), {send("EHLO a\r\nAUTH PLAIN Zm9v\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN\r\n!!\r\n")},
      FakePolicy{});
  REQUIRE(r.calls.empty());
}

TEST_CASE("policy: AUTH XOAUTH2 is not offered yet: 504 and no identity check", "[smtp][policy]") {
  const std::string response = base64Encode(
      "user=frank@contoso.com\x01"
      "auth=Bearer abc\x01\x01");
  PolicyOutcome r = policyTranscript(
      tlsSettings(), {send("EHLO a\r\nAUTH XOAUTH2 " + response + "\r\n")}, FakePolicy{});
  REQUIRE(r.outcome.trace ==
          kGreeting + ehloTls() + lines({"504 5.5.4 Unrecognized authentication type"}));
  REQUIRE(r.calls.empty());
}

// ---- D6: per recipient without AUTH ----

const std::string kMailTx = "EHLO a\r\nMAIL FROM:<a@b.c>\r\n";

TEST_CASE("policy: a refused recipient does not stop the others", "[smtp][policy]") {
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::refuseRecipient(kRcpt450);
  PolicyOutcome r = policyTranscript(
      tlsSettings(),
      {send(kMailTx + "RCPT TO:<alice@modern.test>\r\nRCPT TO:<bob@legacy.test>\r\nDATA\r\n"
                      "hi\r\n.\r\n"),
       delivered("Q1")},
      policy);
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() +
                                 lines({"250 2.1.0 Ok", "250 2.1.5 Ok", kRcpt450,
                                        "354 End data with <CR><LF>.<CR><LF>"}) +
                                 "<Deliver>" + lines({"250 2.0.0 Ok: queued as Q1"}));
  REQUIRE(r.outcome.messages.size() == 1);
  CHECK(r.outcome.messages[0].envelope.rcptTo == std::vector<std::string>{"alice@modern.test"});
  REQUIRE(r.calls == std::vector<std::string>{"rcpt alice@modern.test", "rcpt bob@legacy.test"});
}

TEST_CASE("policy: DATA after only refused recipients is 554", "[smtp][policy]") {
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::refuseRecipient(kRcpt450);
  PolicyOutcome r = policyTranscript(
      tlsSettings(), {send(kMailTx + "RCPT TO:<bob@legacy.test>\r\nDATA\r\nhi\r\n.\r\n")}, policy);
  REQUIRE(r.outcome.trace ==
          kGreeting + ehloTls() +
              lines({"250 2.1.0 Ok", kRcpt450, "554 5.5.1 Error: no valid recipients",
                     "500 5.5.2 Error: command not recognized",
                     "500 5.5.2 Error: command not recognized"}));
  REQUIRE(r.outcome.messages.empty());
}

TEST_CASE("policy: refused recipients are not client errors", "[smtp][policy]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 3;
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::refuseRecipient(kRcpt450);
  std::string input = kMailTx;
  std::string expected = kGreeting + ehloTls() + lines({"250 2.1.0 Ok"});
  for (int i = 0; i < 6; ++i) {
    input += "RCPT TO:<bob@legacy.test>\r\n";
    expected += lines({kRcpt450});
  }
  input += "NOOP\r\n";
  expected += lines({"250 2.0.0 Ok"});
  PolicyOutcome r = policyTranscript(s, {send(input)}, policy);
  REQUIRE(r.outcome.trace == expected);
  REQUIRE_FALSE(r.outcome.closed);
  REQUIRE(r.calls.size() == 6);
}

TEST_CASE("policy: max_recipients counts accepted recipients only, checked before the policy",
          "[smtp][policy]") {
  SessionSettings s = tlsSettings();
  s.maxRecipients = 1;
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::refuseRecipient(kRcpt450);
  PolicyOutcome r = policyTranscript(
      s,
      {send(kMailTx + "RCPT TO:<bob@legacy.test>\r\nRCPT TO:<alice@modern.test>\r\n"
                      "RCPT TO:<carol@modern.test>\r\nRCPT TO:<bad address>\r\n")},
      policy);
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() +
                                 lines({"250 2.1.0 Ok", kRcpt450, "250 2.1.5 Ok",
                                        "452 4.5.3 Error: too many recipients",
                                        "501 5.1.3 Bad recipient address syntax"}));
  // Neither the recipient over the limit nor the malformed one was put to the policy.
  REQUIRE(r.calls == std::vector<std::string>{"rcpt bob@legacy.test", "rcpt alice@modern.test"});
}

TEST_CASE("policy: a recipient verdict may close the session", "[smtp][policy]") {
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::closeWith(kT1);
  PolicyOutcome r = policyTranscript(
      tlsSettings(), {send(kMailTx + "RCPT TO:<bob@legacy.test>\r\nRCPT TO:<a@modern.test>\r\n")},
      policy);
  REQUIRE(r.outcome.trace == kGreeting + ehloTls() + lines({"250 2.1.0 Ok", kT1}) + "<Close>");
}

TEST_CASE("policy: with AUTH the recipients are not put to the policy", "[smtp][policy]") {
  FakePolicy policy;
  policy.rcptVerdicts["bob@legacy.test"] = FakePolicy::refuseRecipient(kRcpt450);
  PolicyOutcome r = policyTranscript(
      tlsSettings(),
      {send("EHLO a\r\nAUTH PLAIN " + plain("", "erin@contoso.com", "pw") + "\r\n"),
       authResult(true),
       send("MAIL FROM:<erin@contoso.com>\r\nRCPT TO:<bob@legacy.test>\r\nDATA\r\nx\r\n.\r\n"),
       delivered("Q2")},
      policy);
  REQUIRE(r.outcome.messages.size() == 1);
  CHECK(r.outcome.messages[0].envelope.rcptTo == std::vector<std::string>{"bob@legacy.test"});
  REQUIRE(r.calls == std::vector<std::string>{"auth erin@contoso.com"});
}

// ---- D7: plaintext refusals are reported ----

TEST_CASE("policy: plaintext MAIL, RCPT and AUTH on require_tls are reported", "[smtp][policy]") {
  PolicyOutcome r = policyTranscript(
      testSettings(),
      {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nAUTH PLAIN AGEAYg==\r\nNOOP\r\n")},
      FakePolicy{});
  REQUIRE(r.outcome.trace ==
          kGreeting + ehloPlain() +
              lines({"530 5.7.0 Must issue a STARTTLS command first",
                     "530 5.7.0 Must issue a STARTTLS command first",
                     "530 5.7.0 Must issue a STARTTLS command first", "250 2.0.0 Ok"}));
  REQUIRE(r.calls ==
          std::vector<std::string>{"plaintext MAIL", "plaintext RCPT", "plaintext AUTH"});
}

TEST_CASE("policy: without require_tls only the plaintext AUTH is refused and reported",
          "[smtp][policy]") {
  SessionSettings s = testSettings();
  s.requireTls = false;
  PolicyOutcome r = policyTranscript(
      s, {send("EHLO a\r\nAUTH LOGIN\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n")}, FakePolicy{});
  REQUIRE(r.outcome.trace == kGreeting + ehloPlain() +
                                 lines({"530 5.7.0 Must issue a STARTTLS command first",
                                        "250 2.1.0 Ok", "250 2.1.5 Ok"}));
  // The plaintext recipient still goes through D6 (the connection decides what it means).
  REQUIRE(r.calls == std::vector<std::string>{"plaintext AUTH", "rcpt d@e.f"});
}

}  // namespace
}  // namespace smtpgate::smtp
