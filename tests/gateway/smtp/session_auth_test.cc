// AUTH PLAIN / LOGIN (RFC 4954, 4616) through the session, with the pause for the result.

#include <catch2/catch.hpp>

#include "gateway/smtp/sasl.h"
#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

TEST_CASE("auth: PLAIN with initial response, success", "[smtp][auth]") {
  Outcome o =
      transcript(tlsSettings(),
                 {send("EHLO a\r\nAUTH PLAIN " + plain("", "alice@contoso.com", "s3cret") + "\r\n"),
                  authResult(true), send("AUTH PLAIN =\r\n")});
  REQUIRE(o.trace == kGreeting + ehloTls() + "<Auth PLAIN>" +
                         lines({"235 2.7.0 Authentication successful",
                                "503 5.5.1 Error: already authenticated"}));
  REQUIRE(o.auths.size() == 1);
  CHECK(o.auths[0].mechanism == "PLAIN");
  CHECK(o.auths[0].authzid.empty());
  CHECK(o.auths[0].user == "alice@contoso.com");
  CHECK(o.auths[0].password == "s3cret");
}

TEST_CASE("auth: PLAIN after an empty challenge, with authzid", "[smtp][auth]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes("EHLO a\r\n");
  Actions a = session.onBytes("auth plain\r\n");
  REQUIRE(std::get<Write>(a.at(0)).bytes == "334 \r\n");
  a = session.onBytes(plain("admin", "bob", "pw") + "\r\n");
  REQUIRE(session.waiting());
  const Authenticate* auth = nullptr;
  for (const Action& action : a) {
    REQUIRE_FALSE(std::holds_alternative<Write>(action));
    if (const auto* x = std::get_if<Authenticate>(&action)) {
      auth = x;
    }
  }
  REQUIRE(auth != nullptr);
  CHECK(auth->authzid == "admin");
  CHECK(auth->user == "bob");
  CHECK(auth->password == "pw");
  a = session.onAuthResult(true);
  REQUIRE(std::get<Write>(a.at(0)).bytes == "235 2.7.0 Authentication successful\r\n");
  REQUIRE(session.authUser() == "bob");
}

TEST_CASE("auth: LOGIN with prompts and with an initial user", "[smtp][auth]") {
  Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nAUTH LOGIN\r\n" + base64Encode("carol") +
                                              "\r\n" + base64Encode("pw1") + "\r\n"),
                                         authResult(false),
                                         send("AUTH LOGIN " + base64Encode("dave") + "\r\n" +
                                              base64Encode("pw2") + "\r\n"),
                                         authResult(true)});
  REQUIRE(o.trace == kGreeting + ehloTls() + lines({"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"}) +
                         "<Auth LOGIN>" +
                         lines({"535 5.7.8 Error: authentication failed", "334 UGFzc3dvcmQ6"}) +
                         "<Auth LOGIN>" + lines({"235 2.7.0 Authentication successful"}));
  REQUIRE(o.auths.size() == 2);
  CHECK(o.auths[0].user == "carol");
  CHECK(o.auths[0].password == "pw1");
  CHECK(o.auths[1].user == "dave");
  CHECK(o.auths[1].password == "pw2");
}

TEST_CASE("auth: failure counts as an error", "[smtp][auth]") {
  SessionSettings s = tlsSettings();
  s.maxErrors = 2;
  Outcome o = transcript(s, {send("EHLO a\r\nAUTH PLAIN " + plain("", "u", "bad") + "\r\n"),
                             authResult(false), send("VRFY x\r\n")});
  REQUIRE(o.trace ==
          kGreeting + ehloTls() + "<Auth PLAIN>" +
              lines({"535 5.7.8 Error: authentication failed", "502 5.5.1 VRFY command is disabled",
                     "421 4.7.0 mx.test Error: too many errors"}) +
              "<Close>");
}

TEST_CASE("auth: cancel, bad base64, malformed PLAIN, unknown mechanism", "[smtp][auth]") {
  Outcome o = transcript(
      tlsSettings(), {send("EHLO a\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n!!!!\r\n"
                           "AUTH PLAIN Zm9v\r\nAUTH PLAIN " +
                           base64Encode(std::string("\0\0pw", 4)) +
                           "\r\n"
                           "AUTH LOGIN\r\n" +
                           base64Encode("u") + "\r\nabc\r\nAUTH CRAM-MD5\r\nAUTH\r\nNOOP\r\n")});
  REQUIRE(o.trace ==
          kGreeting + ehloTls() +
              lines({"334 VXNlcm5hbWU6", "501 5.7.0 Authentication aborted", "334 ",
                     "501 5.7.0 Authentication aborted", "334 ", "501 5.5.2 Cannot decode response",
                     "501 5.5.2 Cannot decode response", "501 5.5.2 Cannot decode response",
                     "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "501 5.5.2 Cannot decode response",
                     "504 5.5.4 Unrecognized authentication type",
                     "501 5.5.4 Syntax: AUTH mechanism", "250 2.0.0 Ok"}));
  REQUIRE(o.auths.empty());
}

TEST_CASE("auth: refused states", "[smtp][auth]") {
  SECTION("before EHLO") {
    Outcome o = transcript(tlsSettings(), {send("AUTH PLAIN =\r\n")});
    REQUIRE(o.trace == kGreeting + lines({"503 5.5.1 Error: send HELO/EHLO first"}));
  }
  SECTION("during a transaction") {
    Outcome o = transcript(tlsSettings(), {send("EHLO a\r\nMAIL FROM:<a@b.c>\r\nAUTH LOGIN\r\n")});
    REQUIRE(o.trace ==
            kGreeting + ehloTls() +
                lines({"250 2.1.0 Ok", "503 5.5.1 Error: MAIL transaction in progress"}));
  }
  SECTION("not enabled") {
    SessionSettings s = tlsSettings();
    s.authAvailable = false;
    Outcome o = transcript(s, {send("EHLO a\r\nAUTH PLAIN\r\n")});
    REQUIRE(o.trace ==
            kGreeting + ehloTls(false) + lines({"503 5.5.1 Error: authentication not enabled"}));
  }
}

TEST_CASE("auth: input during the wait is answered after the result, in order", "[smtp][auth]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes("EHLO a\r\n");
  Actions a = session.onBytes("AUTH PLAIN " + plain("", "erin", "pw") + "\r\nNOOP\r\nMAIL FROM");
  REQUIRE(session.waiting());
  REQUIRE(std::holds_alternative<Authenticate>(a.back()));
  // Bytes while waiting: buffered, not answered.
  REQUIRE(session.onBytes(":<erin@b.c>\r\nRCPT TO:<x@y.z>\r\n").empty());
  a = session.onAuthResult(true);
  std::string written;
  for (const Action& action : a) {
    if (const auto* w = std::get_if<Write>(&action)) {
      written += w->bytes;
    }
  }
  REQUIRE(written == lines({"235 2.7.0 Authentication successful", "250 2.0.0 Ok", "250 2.1.0 Ok",
                            "250 2.1.5 Ok"}));
  REQUIRE(session.authUser() == "erin");
  // The same as a transcript, split every way.
  Outcome o =
      transcript(tlsSettings(),
                 {send("EHLO a\r\nAUTH PLAIN " + plain("", "erin", "pw") + "\r\nNOOP\r\nMAIL FROM"),
                  send(":<erin@b.c>\r\nRCPT TO:<x@y.z>\r\n"), authResult(true)});
  REQUIRE(o.trace == kGreeting + ehloTls() + "<Auth PLAIN>" + written);
}

TEST_CASE("auth: the wait disarms the client timer and the result re-arms it", "[smtp][auth]") {
  SmtpSession session(tlsSettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes("EHLO a\r\n");
  Actions a = session.onBytes("AUTH PLAIN " + plain("", "u", "p") + "\r\n");
  REQUIRE(a.size() == 2);
  REQUIRE(std::get<SetTimeout>(a[0]).seconds == 0);
  REQUIRE(std::holds_alternative<Authenticate>(a[1]));
  a = session.onAuthResult(true);
  REQUIRE(a.size() == 2);
  REQUIRE(std::holds_alternative<Write>(a[0]));
  REQUIRE(std::get<SetTimeout>(a[1]).seconds == 300);
}

TEST_CASE("auth: a long initial response fits, a longer one does not", "[smtp][auth]") {
  const std::string longPassword(9000, 'p');
  Outcome o = transcript(tlsSettings(),
                         {send("EHLO a\r\nAUTH PLAIN " + plain("", "u@b.c", longPassword) + "\r\n"),
                          authResult(true)});
  REQUIRE(o.auths.size() == 1);
  REQUIRE(o.auths[0].password == longPassword);
  Outcome tooLong = transcript(
      tlsSettings(), {send("EHLO a\r\nAUTH PLAIN\r\n" + std::string(12287, 'A') + "\r\nNOOP\r\n")});
  REQUIRE(tooLong.trace ==
          kGreeting + ehloTls() + lines({"334 ", "500 5.5.6 Line too long", "250 2.0.0 Ok"}));
}

TEST_CASE("auth: the authenticated user goes into the message", "[smtp][auth]") {
  Outcome o = transcript(
      tlsSettings(),
      {send("EHLO a\r\nAUTH PLAIN " + plain("", "frank@b.c", "p") + "\r\n"), authResult(true),
       send("MAIL FROM:<frank@b.c> AUTH=<>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n"
            "hi\r\n.\r\n"),
       delivered("Q1")});
  REQUIRE(o.messages.size() == 1);
  CHECK(o.messages[0].authUser == "frank@b.c");
  CHECK(o.messages[0].envelope.mailParams == std::vector<std::string>{"AUTH=<>"});
}

}  // namespace
}  // namespace smtpgate::smtp
