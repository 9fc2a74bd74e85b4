#include <catch2/catch.hpp>

#include "gateway/received_header.h"

using namespace smtpgate;

namespace {

smtp::Message message(std::vector<std::string> rcpts, std::string authUser = "") {
  smtp::Message m;
  m.envelope.mailFrom = "a@example.com";
  m.envelope.rcptTo = std::move(rcpts);
  m.helo = "client.example";
  m.esmtp = true;
  m.authUser = std::move(authUser);
  return m;
}

SessionFacts tlsFacts() {
  SessionFacts f;
  f.endpoint = "strict";
  f.clientIp = "192.0.2.10";
  f.tlsVersion = "1.3";
  f.tlsCipher = "TLS_AES_256_GCM_SHA384";
  return f;
}

}  // namespace

TEST_CASE("Received: names the client, the endpoint, the TLS version and the cipher") {
  // 2026-11-27 22:14:07 UTC
  std::string h = receivedHeader(message({"rcpt@example.org"}), tlsFacts(), "smtp.example.com",
                                 "0ABC", 1795817647);
  CHECK(h ==
        "Received: from client.example ([192.0.2.10])\r\n"
        "\tby smtp.example.com (smtpgate, endpoint strict, TLSv1.3) with ESMTPS\r\n"
        "\tid 0ABC for <rcpt@example.org>\r\n"
        "\ttls TLS_AES_256_GCM_SHA384;\r\n"
        "\tFri, 27 Nov 2026 22:14:07 +0000\r\n");
}

TEST_CASE("Received: protocol names follow RFC 3848 and Bcc recipients stay hidden") {
  auto facts = tlsFacts();
  std::string h = receivedHeader(message({"a@x.org", "b@x.org"}, "user@x.org"), facts, "gw", "1",
                                 0);
  CHECK(h.find("with ESMTPSA") != std::string::npos);
  CHECK(h.find(" for <") == std::string::npos);

  facts.tlsVersion.clear();
  facts.tlsCipher.clear();
  auto plain = message({"a@x.org"});
  h = receivedHeader(plain, facts, "gw", "1", 0);
  CHECK(h.find("with ESMTP\r\n") != std::string::npos);
  CHECK(h.find("\ttls ") == std::string::npos);
  plain.esmtp = false;
  CHECK(receivedHeader(plain, facts, "gw", "1", 0).find("with SMTP\r\n") != std::string::npos);
}

TEST_CASE("Received: hostile HELO names and IPv6 clients stay well-formed") {
  auto m = message({"a@x.org"});
  m.helo = "evil)\r\nX-Injected: yes (";
  auto facts = tlsFacts();
  facts.clientIp = "2001:db8::1";
  std::string h = receivedHeader(m, facts, "gw", "1", 0);
  CHECK(h.find("X-Injected: yes") == std::string::npos);
  CHECK(h.rfind("Received: from evil___X-Injected:_yes__ ([IPv6:2001:db8::1])\r\n", 0) == 0);
}

TEST_CASE("rfc5322Date formats UTC") { CHECK(rfc5322Date(0) == "Thu, 1 Jan 1970 00:00:00 +0000"); }
