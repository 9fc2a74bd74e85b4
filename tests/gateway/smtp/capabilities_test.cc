#include "gateway/smtp/capabilities.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "gateway/smtp/reply_parser.h"

namespace smtpgate::smtp {
namespace {

using Lines = std::vector<std::string>;

Reply reply(std::string_view bytes) {
  ReplyParser parser;
  std::vector<Reply> replies = parser.feed(bytes);
  REQUIRE(replies.size() == 1);
  return replies.front();
}

// A Postfix 3.x EHLO reply to a host in smtpd_authorized_xclient_hosts, after STARTTLS.
const char* const kPostfixEhlo =
    "250-mx.example.com\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-VRFY\r\n"
    "250-ETRN\r\n"
    "250-STARTTLS\r\n"
    "250-AUTH PLAIN login\r\n"
    "250-AUTH=PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-SMTPUTF8\r\n"
    "250-CHUNKING\r\n"
    "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT\r\n"
    "250 XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n";

TEST_CASE("capabilities: an EHLO reply becomes keywords with parameters", "[smtp][capabilities]") {
  Capabilities caps =
      parseEhlo(reply("250-mx.example.com Hello [192.0.2.1]\r\n250-pipelining\r\n250-Size  100 \r\n"
                      "250-\r\n250-AUTH PLAIN LOGIN\r\n250-PIPELINING\r\n250 x-foo a=b\r\n"));
  REQUIRE(caps == Capabilities{{"PIPELINING", {}},
                               {"SIZE", {"100"}},
                               {"AUTH", {"PLAIN", "LOGIN"}},
                               {"X-FOO", {"a=b"}}});
  CHECK(caps[1].line() == "SIZE 100");
  CHECK(caps[3].line() == "X-FOO a=b");
  // A one-line EHLO reply has no keywords.
  CHECK(parseEhlo(reply("250 mx.example.com\r\n")).empty());
}

TEST_CASE("capabilities: the client list of a Postfix backend", "[smtp][capabilities]") {
  Capabilities caps = parseEhlo(reply(kPostfixEhlo));
  CHECK(filterForClients(caps, 36700160) == Lines{"PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN",
                                                  "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                                                  "SMTPUTF8"});
  CHECK(filterForClients(caps, 36700160, true) == Lines{"PIPELINING", "SIZE 10240000",
                                                        "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES",
                                                        "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"});
}

TEST_CASE("capabilities: SIZE is capped at the gateway's limit", "[smtp][capabilities]") {
  auto sizeLine = [](std::string_view ehlo, std::uint64_t ours) {
    Lines out = filterForClients(parseEhlo(reply(ehlo)), ours);
    REQUIRE(out.size() == 1);
    return out.front();
  };
  CHECK(sizeLine("250-mx\r\n250 SIZE 10240000\r\n", 36700160) == "SIZE 10240000");
  CHECK(sizeLine("250-mx\r\n250 SIZE 52428800\r\n", 36700160) == "SIZE 36700160");
  CHECK(sizeLine("250-mx\r\n250 SIZE 36700160\r\n", 36700160) == "SIZE 36700160");
  CHECK(sizeLine("250-mx\r\n250 SIZE\r\n", 36700160) == "SIZE 36700160");
  CHECK(sizeLine("250-mx\r\n250 SIZE 0\r\n", 36700160) == "SIZE 36700160");
  CHECK(sizeLine("250-mx\r\n250 SIZE 12k\r\n", 1000) == "SIZE 1000");
  CHECK(sizeLine("250-mx\r\n250 SIZE 99999999999999999999999\r\n", 1000) == "SIZE 1000");
  // No limit of ours: the backend's stands.
  CHECK(sizeLine("250-mx\r\n250 SIZE 52428800\r\n", 0) == "SIZE 52428800");
  CHECK(sizeLine("250-mx\r\n250 SIZE\r\n", 0) == "SIZE");
  // No SIZE from the backend: the gateway's limit is announced at the end.
  CHECK(filterForClients(parseEhlo(reply("250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n")), 500) ==
        Lines{"PIPELINING", "8BITMIME", "SIZE 500"});
  CHECK(filterForClients(parseEhlo(reply("250-mx\r\n250 PIPELINING\r\n")), 0) ==
        Lines{"PIPELINING"});
}

TEST_CASE("capabilities: what the gateway cannot relay is dropped", "[smtp][capabilities]") {
  Capabilities caps = parseEhlo(
      reply("250-exim.example Hello gateway [10.0.0.1]\r\n"
            "250-SIZE 52428800\r\n250-LIMITS MAILMAX=1000 RCPTMAX=50000\r\n250-8BITMIME\r\n"
            "250-PIPELINING\r\n250-PIPE_CONNECT\r\n250-X_PIPE_CONNECT\r\n250-XEXPS\r\n"
            "250-XPROXY\r\n250-STARTTLS\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250-EXPN\r\n"
            "250-HELP\r\n250-REQUIRETLS\r\n250-AUTH\r\n250-xforward NAME\r\n"
            "250-Xclient ADDR\r\n250 prdr\r\n"));
  CHECK(filterForClients(caps, 10000000) == Lines{"SIZE 10000000", "8BITMIME", "PIPELINING"});
  CHECK(filterForClients(caps, 100000000, true) ==
        Lines{"SIZE 52428800", "8BITMIME", "PIPELINING", "BINARYMIME", "CHUNKING"});
}

TEST_CASE("capabilities: AUTH mechanisms are upper-cased and kept in order",
          "[smtp][capabilities]") {
  Capabilities caps =
      parseEhlo(reply("250-mx\r\n250-auth cram-md5 plain Login xoauth2\r\n250 DSN\r\n"));
  CHECK(filterForClients(caps, 1000) ==
        Lines{"AUTH PLAIN LOGIN XOAUTH2", "DSN", "SIZE 1000"});
  // Nothing the session can relay: no AUTH line at all.
  CHECK(filterForClients(parseEhlo(reply("250-mx\r\n250 AUTH CRAM-MD5 GSSAPI\r\n")), 1000) ==
        Lines{"SIZE 1000"});
  CHECK(offersAuth(caps, "PLAIN"));
  CHECK(offersAuth(caps, "login"));
  CHECK(offersAuth(caps, "XOAUTH2"));
  CHECK_FALSE(offersAuth(caps, "GSSAPI"));
  CHECK_FALSE(offersAuth(parseEhlo(reply("250-mx\r\n250 AUTH=PLAIN\r\n")), "PLAIN"));
}

TEST_CASE("capabilities: has() and the XCLIENT attribute list", "[smtp][capabilities]") {
  Capabilities caps = parseEhlo(reply(kPostfixEhlo));
  CHECK(has(caps, "XCLIENT"));
  CHECK(has(caps, "starttls"));
  CHECK_FALSE(has(caps, "BINARYMIME"));
  CHECK(xclientAttributes(caps) == Lines{"NAME", "ADDR", "PROTO", "HELO", "REVERSE_NAME", "PORT",
                                         "LOGIN", "DESTADDR", "DESTPORT"});
  CHECK(xclientAttributes(parseEhlo(reply("250-mx\r\n250 xclient addr name\r\n"))) ==
        Lines{"ADDR", "NAME"});
  CHECK(xclientAttributes(parseEhlo(reply("250-mx\r\n250 PIPELINING\r\n"))).empty());
}

}  // namespace
}  // namespace smtpgate::smtp
