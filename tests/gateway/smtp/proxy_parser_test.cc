#include "gateway/smtp/proxy_parser.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "tests/gateway/smtp/proxy_bytes.h"

#include "gateway/smtp/proxy_header.h"

namespace smtpgate::smtp {
namespace {

using proxy_test::bytes;
using proxy_test::kSignature;

// A v2 header by hand: version/command, family/transport, then the payload.
std::string v2(int verCmd, int famProto, const std::string& payload) {
  return kSignature + bytes({verCmd, famProto, static_cast<int>(payload.size() >> 8),
                             static_cast<int>(payload.size() & 0xff)}) +
         payload;
}

const std::string kV4Payload = bytes({192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x00, 0x19});

// Whole, then one byte at a time, then in two halves: the verdict must be the same.
ProxyParser parseAll(const std::string& input, std::size_t chunk) {
  ProxyParser p;
  for (std::size_t at = 0; at < input.size() && p.status() == ProxyParser::Status::NeedMore;
       at += chunk) {
    p.feed(std::string_view(input).substr(at, chunk));
  }
  return p;
}

struct ErrorCase {
  std::string input;
  std::string error;
};

void expectSame(const std::string& input, ProxyParser::Status want);

// Each input is refused, whole and in pieces, with a reason naming what is wrong.
void expectErrors(std::initializer_list<ErrorCase> cases) {
  for (const ErrorCase& c : cases) {
    INFO(c.input << " / " << c.error);
    expectSame(c.input, ProxyParser::Status::Error);
    ProxyParser p;
    p.feed(c.input);
    CHECK_THAT(p.error(), Catch::Contains(c.error));
    CHECK(p.remainder().empty());
  }
}

void expectSame(const std::string& input, ProxyParser::Status want) {
  for (std::size_t chunk : {input.size(), std::size_t{1}, input.size() / 2 + 1}) {
    ProxyParser p = parseAll(input, chunk == 0 ? 1 : chunk);
    INFO("chunk " << chunk);
    REQUIRE(p.status() == want);
  }
}

TEST_CASE("proxy parser: v1 TCP4, the bytes after it are the session's", "[proxy_parser]") {
  const std::string header = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n";
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{200}}) {
    ProxyParser p = parseAll(header + "EHLO x\r\n", chunk);
    INFO("chunk " << chunk);
    REQUIRE(p.status() == ProxyParser::Status::Done);
    CHECK(p.source().version == 1);
    CHECK(p.source().hasAddress);
    CHECK(p.source().clientIp == "192.0.2.10");
    CHECK(p.source().clientPort == 56324);
    CHECK(p.source().serverIp == "198.51.100.1");
    CHECK(p.source().serverPort == 25);
    if (chunk == 200) {
      CHECK(p.remainder() == "EHLO x\r\n");
    } else {
      // Fed no further than the header's end, the rest is left to the caller.
      CHECK(p.remainder().size() <= chunk);
    }
  }
}

TEST_CASE("proxy parser: v1 TCP6, mapped IPv4 read as IPv4", "[proxy_parser]") {
  ProxyParser p;
  REQUIRE(p.feed("PROXY TCP6 2001:db8:0::1 2001:db8::2 1 65535\r\n") ==
          ProxyParser::Status::Done);
  CHECK(p.source().clientIp == "2001:db8::1");
  CHECK(p.source().clientPort == 1);
  CHECK(p.source().serverPort == 65535);
  ProxyParser mapped;
  REQUIRE(mapped.feed("PROXY TCP6 ::ffff:192.0.2.7 ::1 0 25\r\n") == ProxyParser::Status::Done);
  CHECK(mapped.source().clientIp == "192.0.2.7");
  CHECK(mapped.remainder().empty());
}

TEST_CASE("proxy parser: v1 UNKNOWN keeps the connection's address", "[proxy_parser]") {
  for (const char* h : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"}) {
    ProxyParser p;
    REQUIRE(p.feed(h) == ProxyParser::Status::Done);
    CHECK(p.source().version == 1);
    CHECK_FALSE(p.source().hasAddress);
  }
}

TEST_CASE("proxy parser: bad v1 headers", "[proxy_parser]") {
  const std::string longLine = "PROXY UNKNOWN " + std::string(100, 'x') + "\r\n";
  expectErrors({
           {"PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\n", "does not end in CRLF"},
           {"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n", "not IPv4"},
           {"PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n", "not IPv6"},
           {"PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", "port"},
           {"PROXY TCP4 192.0.2.1 192.0.2.2 025 2\r\n", "port"},
           {"PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n", "port"},
           {"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n", "five fields"},
           {"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n", "five fields"},
           {"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", "five fields"},
           {"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", "unknown protocol"},
           {"PROXY \r\n", "unknown protocol"},
           {longLine, "longer than 107"},
           {"EHLO client.example\r\n", "not a PROXY protocol header"},
           {"PROXI TCP4\r\n", "not a PROXY protocol header"},
           {"\x16\x03\x01\x02\x00", "not a PROXY protocol header"},
           {"GET / HTTP/1.1\r\n", "not a PROXY protocol header"},
  });
}

TEST_CASE("proxy parser: a v1 line of exactly 107 bytes passes, 108 does not",
          "[proxy_parser]") {
  std::string exact = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
  REQUIRE(exact.size() == 107);
  expectSame(exact, ProxyParser::Status::Done);
  std::string over = "PROXY UNKNOWN " + std::string(108 - 16, 'x') + "\r\n";
  expectSame(over, ProxyParser::Status::Error);
  // A line that never ends stops at 107 bytes: nothing beyond is held.
  ProxyParser p;
  CHECK(p.feed("PROXY TCP4 " + std::string(5000, '1')) == ProxyParser::Status::Error);
}

TEST_CASE("proxy parser: v2 TCP over IPv4 and IPv6 with TLVs skipped", "[proxy_parser]") {
  ProxyInfo info = proxy_test::v4Info();  // 192.0.2.10:56324 -> 198.51.100.1:25, TLS TLVs
  const std::string withTlvs = proxyV2(info).bytes;
  REQUIRE(withTlvs.size() > 16 + 12);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{13}, std::size_t{4096}}) {
    ProxyParser p = parseAll(withTlvs + "\x16\x03\x01", chunk);
    INFO("chunk " << chunk);
    REQUIRE(p.status() == ProxyParser::Status::Done);
    CHECK(p.source().version == 2);
    CHECK(p.source().hasAddress);
    CHECK_FALSE(p.source().local);
    CHECK(p.source().clientIp == "192.0.2.10");
    CHECK(p.source().clientPort == 56324);
    CHECK(p.source().serverIp == "198.51.100.1");
    CHECK(p.source().serverPort == 25);
    if (chunk == 4096) {
      CHECK(p.remainder() == "\x16\x03\x01");
    }
  }
  info.clientIp = "2001:db8::10";
  info.serverIp = "2001:db8::1";
  ProxyParser p6;
  REQUIRE(p6.feed(proxyV2(info).bytes) == ProxyParser::Status::Done);
  CHECK(p6.source().clientIp == "2001:db8::10");
  CHECK(p6.source().serverIp == "2001:db8::1");
  // An IPv4 client sent IPv4-mapped over IPv6 is the IPv4 client.
  std::string mapped(36, '\0');
  mapped[10] = mapped[11] = '\xff';
  mapped[12] = '\xc0';
  mapped[14] = '\x02';
  mapped[15] = '\x07';
  ProxyParser pm;
  REQUIRE(pm.feed(v2(0x21, 0x21, mapped)) == ProxyParser::Status::Done);
  CHECK(pm.source().clientIp == "192.0.2.7");
}

TEST_CASE("proxy parser: v2 LOCAL and unspecified families keep the connection's address",
          "[proxy_parser]") {
  ProxyParser local;
  REQUIRE(local.feed(v2(0x20, 0x00, "")) == ProxyParser::Status::Done);
  CHECK(local.source().local);
  CHECK_FALSE(local.source().hasAddress);
  // LOCAL with an address block (some balancers send one): ignored.
  ProxyParser localWithBlock;
  REQUIRE(localWithBlock.feed(v2(0x20, 0x11, kV4Payload)) == ProxyParser::Status::Done);
  CHECK(localWithBlock.source().local);
  CHECK_FALSE(localWithBlock.source().hasAddress);
  ProxyParser unspec;
  REQUIRE(unspec.feed(v2(0x21, 0x00, "")) == ProxyParser::Status::Done);
  CHECK_FALSE(unspec.source().local);
  CHECK_FALSE(unspec.source().hasAddress);
  ProxyParser unix;
  REQUIRE(unix.feed(v2(0x21, 0x31, std::string(216, '\0'))) == ProxyParser::Status::Done);
  CHECK_FALSE(unix.source().hasAddress);
}

TEST_CASE("proxy parser: bad v2 headers", "[proxy_parser]") {
  expectErrors({
           {v2(0x11, 0x11, kV4Payload), "version 1"},
           {v2(0x31, 0x11, kV4Payload), "version 3"},
           {v2(0x22, 0x11, kV4Payload), "unknown command"},
           {v2(0x21, 0x41, kV4Payload), "unknown address family"},
           {v2(0x21, 0x13, kV4Payload), "unknown address family or transport"},
           {v2(0x21, 0x12, kV4Payload), "other than TCP"},
           {v2(0x21, 0x11, kV4Payload.substr(0, 11)), "shorter than its address block"},
           {v2(0x21, 0x21, kV4Payload), "shorter than its address block"},
           {v2(0x21, 0x11, kV4Payload + bytes({0x02, 0x00})), "malformed TLV"},
           {v2(0x21, 0x11, kV4Payload + bytes({0x02, 0x00, 0x05, 'a'})), "malformed TLV"},
           {kSignature.substr(0, 5) + "X", "not a PROXY protocol header"},
  });
}

TEST_CASE("proxy parser: v2 length is capped and never over-read", "[proxy_parser]") {
  // Announced 0xffff bytes: refused at the 16th byte, before any of them is buffered.
  ProxyParser huge;
  CHECK(huge.feed(kSignature + bytes({0x21, 0x11, 0xff, 0xff})) == ProxyParser::Status::Error);
  CHECK_THAT(huge.error(), Catch::Contains("more than 2048"));
  // Exactly the cap: TLV padding (type 0x04, PP2_TYPE_NOOP) filling it is fine.
  std::string payload = kV4Payload;
  const std::size_t pad = ProxyParser::kMaxV2Length - payload.size() - 3;
  payload += bytes({0x04, static_cast<int>(pad >> 8), static_cast<int>(pad & 0xff)});
  payload += std::string(pad, '\0');
  expectSame(v2(0x21, 0x11, payload), ProxyParser::Status::Done);
  // Incomplete: still waiting, nothing decided.
  ProxyParser partial;
  CHECK(partial.feed(v2(0x21, 0x11, kV4Payload).substr(0, 20)) ==
        ProxyParser::Status::NeedMore);
  CHECK(partial.remainder().empty());
}

TEST_CASE("proxy parser: feeding after the verdict changes nothing", "[proxy_parser]") {
  ProxyParser bad;
  REQUIRE(bad.feed("HELO x\r\n") == ProxyParser::Status::Error);
  CHECK(bad.feed("PROXY UNKNOWN\r\n") == ProxyParser::Status::Error);
  ProxyParser good;
  REQUIRE(good.feed("PROXY UNKNOWN\r\n") == ProxyParser::Status::Done);
  CHECK(good.feed("garbage") == ProxyParser::Status::Done);
}

}  // namespace
}  // namespace smtpgate::smtp
