// Relay mode AUTH: PLAIN and LOGIN relayed as PLAIN (or as LOGIN to a LOGIN-only backend),
// XOAUTH2 passed through, the backend's replies unchanged, D4/D5 before anything goes out.

#include <catch2/catch.hpp>

#include "gateway/smtp/sasl.h"
#include "tests/gateway/smtp/relay_transcript.h"

namespace smtpgate::smtp {
namespace {

using namespace testing;

const std::string kHello = "EHLO client.example\r\n";
// base64("\0alice@contoso.com\0s3cret")
const std::string kAlicePlain = "AGFsaWNlQGNvbnRvc28uY29tAHMzY3JldA==";
const std::string kAliceUser = "YWxpY2VAY29udG9zby5jb20=";  // base64("alice@contoso.com")
const std::string kAlicePassword = "czNjcmV0";              // base64("s3cret")
// base64("user=alice@contoso.com\1auth=Bearer ya29.token\1\1")
const std::string kXoauth2 = "dXNlcj1hbGljZUBjb250b3NvLmNvbQFhdXRoPUJlYXJlciB5YTI5LnRva2VuAQE=";
// base64 of {"status":"401","schemes":"bearer"}
const std::string kXoauth2Error = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=";

std::string opened() { return kGreeting + ehloRelay(); }

SessionSettings withAuth(std::string authLine) {
  SessionSettings s = relaySettings();
  s.relayCapabilities = {"PIPELINING", std::move(authLine)};
  return s;
}

std::string ehloWith(const std::string& authLine) {
  return lines({"250-mx.test", "250-PIPELINING", "250 " + authLine});
}

TEST_CASE("relay auth: PLAIN goes to the backend as sent, its 235 to the client", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"235 2.7.0 Authentication successful\r\n", "250 2.1.0 Ok\r\n"};
  FakePolicy policy;
  RelayOptions options;
  options.policy = &policy;
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kHello + "AUTH PLAIN " + kAlicePlain +
                                         "\r\nMAIL FROM:<alice@contoso.com>\r\n"
                                         "AUTH PLAIN =\r\n")},
                                   options);
  REQUIRE(o.trace == opened() + "<Open><Ready>[AUTH PLAIN " + kAlicePlain + "]" +
                         lines({"235 2.7.0 Authentication successful"}) +
                         "[MAIL FROM:<alice@contoso.com>]" +
                         lines({"250 2.1.0 Ok", "503 5.5.1 Error: already authenticated"}));
  REQUIRE(o.calls == std::vector<std::string>{"auth alice@contoso.com"});
}

TEST_CASE("relay auth: PLAIN after the empty challenge, with an authzid", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"235 2.7.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(relaySettings(), b,
                                   {send(kHello + "AUTH PLAIN\r\nYWRtaW4AYm9iQGIuYwBwdw==\r\n")});
  REQUIRE(o.client == opened() + lines({"334 ", "235 2.7.0 Ok"}));
  REQUIRE(o.backend == "<open>AUTH PLAIN YWRtaW4AYm9iQGIuYwBwdw==\r\n");  // admin, bob@b.c, pw
}

TEST_CASE("relay auth: LOGIN from the client goes to the backend as PLAIN", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"235 2.7.0 Authentication successful\r\n"};
  RelayOutcome o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "AUTH LOGIN\r\n" + kAliceUser + "\r\n" + kAlicePassword + "\r\n")});
  REQUIRE(o.client == opened() + lines({"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6",
                                        "235 2.7.0 Authentication successful"}));
  REQUIRE(o.backend == "<open>AUTH PLAIN " + kAlicePlain + "\r\n");
  // LOGIN with the user in the AUTH line.
  o = relayTranscript(
      relaySettings(), b,
      {send(kHello + "AUTH LOGIN " + kAliceUser + "\r\n" + kAlicePassword + "\r\n")});
  REQUIRE(o.backend == "<open>AUTH PLAIN " + kAlicePlain + "\r\n");
}

TEST_CASE("relay auth: a LOGIN-only backend gets LOGIN in two steps", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"334 UGFzc3dvcmQ6\r\n", "235 2.7.0 Authentication successful\r\n"};
  const SessionSettings s = withAuth("AUTH LOGIN");
  RelayOutcome o =
      relayTranscript(s, b, {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\nNOOP\r\n")});
  REQUIRE(o.trace == kGreeting + ehloWith("AUTH LOGIN") + "<Open><Ready>[AUTH LOGIN " + kAliceUser +
                         "][" + kAlicePassword + "]" +
                         lines({"235 2.7.0 Authentication successful", "250 2.0.0 Ok"}));
  // The backend refuses the user already: its reply, and no password sent.
  b.replies = {"535 5.7.8 Error: authentication failed: no such user\r\n"};
  o = relayTranscript(s, b, {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\n")});
  REQUIRE(o.client == kGreeting + ehloWith("AUTH LOGIN") +
                          lines({"535 5.7.8 Error: authentication failed: no such user"}));
  REQUIRE(o.backend == "<open>AUTH LOGIN " + kAliceUser + "\r\n");
  // LOGIN cannot carry another authorization identity.
  o = relayTranscript(s, {}, {send(kHello + "AUTH PLAIN YWRtaW4AYm9iQGIuYwBwdw==\r\n")});
  REQUIRE(o.client ==
          kGreeting + ehloWith("AUTH LOGIN") + lines({"535 5.7.8 Error: authentication failed"}));
  REQUIRE(o.opens == 0);
}

TEST_CASE("relay auth: the backend's failure passes through and is not a client error",
          "[smtp][relay]") {
  SessionSettings s = relaySettings();
  s.maxErrors = 1;
  BackendScript b;
  b.replies = {
      "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
      "535 5.7.8  https://support.example/answer/14257\r\n",
      "235 2.7.0 Ok\r\n", "250 2.1.0 Ok\r\n"};
  RelayOutcome o = relayTranscript(s, b,
                                   {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\nAUTH PLAIN " +
                                         kAlicePlain + "\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.client == opened() + b.replies[0] + lines({"235 2.7.0 Ok", "250 2.1.0 Ok"}));
  REQUIRE(o.opens == 1);
}

TEST_CASE("relay auth: refused by D4/D5, nothing reaches the backend", "[smtp][relay]") {
  FakePolicy policy;
  policy.authVerdicts["alice@contoso.com"] = FakePolicy::closeWith(kT2);
  RelayOptions options;
  options.policy = &policy;
  for (const std::string& auth :
       {"AUTH PLAIN " + kAlicePlain + "\r\n", "AUTH LOGIN " + kAliceUser + "\r\n",
        "AUTH LOGIN\r\n" + kAliceUser + "\r\n", "AUTH XOAUTH2 " + kXoauth2 + "\r\n"}) {
    INFO(auth);
    const SessionSettings s = withAuth("AUTH PLAIN LOGIN XOAUTH2");
    RelayOutcome o =
        relayTranscript(s, {}, {send(kHello + auth + kAlicePassword + "\r\n")}, options);
    REQUIRE(o.client.ends_with(kT2 + "\r\n<Close>"));
    REQUIRE(o.opens == 0);
    REQUIRE(o.backend.empty());
  }
}

TEST_CASE("relay auth: XOAUTH2 passed through, the error challenge included", "[smtp][relay]") {
  const SessionSettings s = withAuth("AUTH PLAIN LOGIN XOAUTH2");
  BackendScript b;
  b.replies = {"334 " + kXoauth2Error + "\r\n",
               "535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more\r\n",
               "235 2.7.0 Accepted\r\n"};
  FakePolicy policy;
  RelayOptions options;
  options.policy = &policy;
  RelayOutcome o =
      relayTranscript(s, b,
                      {send(kHello + "AUTH XOAUTH2 " + kXoauth2 + "\r\n\r\nAUTH XOAUTH2\r\n" +
                            kXoauth2 + "\r\nAUTH PLAIN =\r\n")},
                      options);
  REQUIRE(o.client ==
          kGreeting + ehloWith("AUTH PLAIN LOGIN XOAUTH2") +
              lines({"334 " + kXoauth2Error, "535-5.7.8 Username and Password not accepted.",
                     "535 5.7.8 Learn more", "334 ", "235 2.7.0 Accepted",
                     "503 5.5.1 Error: already authenticated"}));
  REQUIRE(o.backend ==
          "<open>AUTH XOAUTH2 " + kXoauth2 + "\r\n\r\nAUTH XOAUTH2 " + kXoauth2 + "\r\n");
  REQUIRE(o.calls == std::vector<std::string>{"auth alice@contoso.com", "auth alice@contoso.com"});
}

TEST_CASE("relay auth: an empty challenge of the backend keeps its form", "[smtp][relay]") {
  const SessionSettings s = withAuth("AUTH XOAUTH2");
  BackendScript b;
  b.replies = {"334 \r\n", "535 5.7.8 Error\r\n"};
  RelayOutcome o = relayTranscript(s, b, {send(kHello + "AUTH XOAUTH2 " + kXoauth2 + "\r\n*\r\n")});
  REQUIRE(o.client == kGreeting + ehloWith("AUTH XOAUTH2") + lines({"334 ", "535 5.7.8 Error"}));
  REQUIRE(o.backend == "<open>AUTH XOAUTH2 " + kXoauth2 + "\r\n*\r\n");
}

TEST_CASE("relay auth: mechanisms follow the backend's AUTH keyword", "[smtp][relay]") {
  // XOAUTH2 only where the backend offers it; a malformed one never goes out.
  RelayOutcome o =
      relayTranscript(relaySettings(), {}, {send(kHello + "AUTH XOAUTH2 " + kXoauth2 + "\r\n")});
  REQUIRE(o.client == opened() + lines({"504 5.5.4 Unrecognized authentication type"}));
  const SessionSettings x = withAuth("AUTH XOAUTH2");
  o = relayTranscript(x, {},
                      {send(kHello + "AUTH XOAUTH2 " + base64Encode("user=a\1\1") +
                            "\r\nAUTH XOAUTH2\r\n*\r\nAUTH PLAIN " + kAlicePlain + "\r\n")});
  REQUIRE(o.client ==
          kGreeting + ehloWith("AUTH XOAUTH2") +
              lines({"501 5.5.2 Cannot decode response", "334 ", "501 5.7.0 Authentication aborted",
                     "504 5.5.4 Unrecognized authentication type"}));
  REQUIRE(o.opens == 0);
  // No AUTH keyword from the backend: no AUTH at all.
  SessionSettings none = relaySettings();
  none.relayCapabilities = {"PIPELINING"};
  o = relayTranscript(none, {}, {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\n")});
  REQUIRE(o.client == kGreeting + lines({"250-mx.test", "250 PIPELINING"}) +
                          lines({"503 5.5.1 Error: authentication not enabled"}));
}

TEST_CASE("relay auth: an unexpected challenge drops the backend", "[smtp][relay]") {
  BackendScript b;
  b.replies = {"334 \r\n", "250 2.1.0 Ok\r\n"};
  RelayOutcome o =
      relayTranscript(relaySettings(), b,
                      {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\nMAIL FROM:<a@b.c>\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"454 4.7.0 Temporary authentication failure", "250 2.1.0 Ok"}));
  REQUIRE(o.backend ==
          "<open>AUTH PLAIN " + kAlicePlain + "\r\n<abort><open>MAIL FROM:<a@b.c>\r\n");
}

TEST_CASE("relay auth: a bad answer to the backend's challenge drops the backend",
          "[smtp][relay]") {
  const SessionSettings s = withAuth("AUTH XOAUTH2");
  BackendScript b;
  b.replies = {"334 " + kXoauth2Error + "\r\n"};
  RelayOutcome o =
      relayTranscript(s, b, {send(kHello + "AUTH XOAUTH2 " + kXoauth2 + "\r\n!!\r\nNOOP\r\n")});
  REQUIRE(o.client ==
          kGreeting + ehloWith("AUTH XOAUTH2") +
              lines({"334 " + kXoauth2Error, "501 5.5.2 Cannot decode response", "250 2.0.0 Ok"}));
  REQUIRE(o.backend == "<open>AUTH XOAUTH2 " + kXoauth2 + "\r\n<abort>");
}

TEST_CASE("relay auth: the backend lost during AUTH", "[smtp][relay]") {
  RelayOutcome o = relayTranscript(
      relaySettings(), {},
      {send(kHello + "AUTH PLAIN " + kAlicePlain + "\r\n"), backendLost(), send("NOOP\r\n")});
  REQUIRE(o.client ==
          opened() + lines({"451 4.4.1 mx.test Error: backend connection lost", "250 2.0.0 Ok"}));
}

TEST_CASE("relay auth: no Authenticate action, the user is known after 235", "[smtp][relay]") {
  SmtpSession session(relaySettings());
  session.onTlsEstablished();
  session.start();
  session.onBytes(kHello);
  Actions a = session.onBytes("AUTH PLAIN " + kAlicePlain + "\r\n");
  for (const Action& action : a) {
    REQUIRE_FALSE(std::holds_alternative<Authenticate>(action));
  }
  session.onBackendReady(true);
  REQUIRE(session.authUser().empty());
  session.onBackendReply("235 2.7.0 Ok\r\n");
  REQUIRE(session.authUser() == "alice@contoso.com");
}

}  // namespace
}  // namespace smtpgate::smtp
