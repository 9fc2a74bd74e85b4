#include "gateway/smtp/proxy_header.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "tests/gateway/smtp/proxy_bytes.h"

namespace smtpgate::smtp {
namespace {

using proxy_test::bytes;
using proxy_test::kSignature;
using proxy_test::v4Info;

TEST_CASE("ip address: parse, canonical text, IPv4-mapped folded", "[smtp][proxy_header]") {
  CHECK(IpAddress::parse("192.0.2.1")->str() == "192.0.2.1");
  CHECK_FALSE(IpAddress::parse("192.0.2.1")->v6);
  CHECK(IpAddress::parse("2001:DB8:0:0::1")->str() == "2001:db8::1");
  CHECK(IpAddress::parse("2001:DB8:0:0::1")->v6);
  CHECK(IpAddress::parse("::ffff:192.0.2.1")->str() == "192.0.2.1");
  CHECK_FALSE(IpAddress::parse("::FFFF:c000:0201")->v6);
  CHECK(IpAddress::parse("192.0.2.1")->asV6().str() == "::ffff:192.0.2.1");
  CHECK_FALSE(IpAddress::parse(""));
  CHECK_FALSE(IpAddress::parse("[2001:db8::1]"));
  CHECK_FALSE(IpAddress::parse("192.0.2.256"));
  CHECK_FALSE(IpAddress::parse("fe80::1%eth0"));
  CHECK_FALSE(IpAddress::parse("mx.example.com"));
}

TEST_CASE("proxy v1: TCP4, TCP6, mixed families and UNKNOWN", "[smtp][proxy_header]") {
  ProxyHeader h = proxyV1(v4Info());
  CHECK(h.bytes == "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n");
  CHECK(h.addressesKnown);

  ProxyInfo info = v4Info();
  info.clientIp = "2001:DB8::1";
  info.clientPort = 40000;
  info.serverIp = "2001:db8::25";
  info.serverPort = 465;
  CHECK(proxyV1(info).bytes == "PROXY TCP6 2001:db8::1 2001:db8::25 40000 465\r\n");

  // A dual-stack listener reports IPv4 clients as mapped addresses: still TCP4.
  info = v4Info();
  info.clientIp = "::ffff:192.0.2.10";
  info.serverIp = "::ffff:198.51.100.1";
  CHECK(proxyV1(info).bytes == "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n");

  // One side of each family: the IPv4 side is sent mapped.
  info = v4Info();
  info.serverIp = "2001:db8::25";
  CHECK(proxyV1(info).bytes == "PROXY TCP6 ::ffff:192.0.2.10 2001:db8::25 56324 25\r\n");

  // The gateway address not known: the unspecified address of the client's family.
  info = v4Info();
  info.serverIp = "";
  CHECK(proxyV1(info).bytes == "PROXY TCP4 192.0.2.10 0.0.0.0 56324 25\r\n");
  info.clientIp = "2001:db8::1";
  CHECK(proxyV1(info).bytes == "PROXY TCP6 2001:db8::1 :: 56324 25\r\n");

  info = v4Info();
  info.clientIp = "not-an-address";
  h = proxyV1(info);
  CHECK(h.bytes == "PROXY UNKNOWN\r\n");
  CHECK_FALSE(h.addressesKnown);
  info = v4Info();
  info.serverIp = "999.1.1.1";
  CHECK(proxyV1(info).bytes == "PROXY UNKNOWN\r\n");
}

TEST_CASE("proxy v2: IPv4 with SNI and the SSL TLVs, exact bytes", "[smtp][proxy_header]") {
  const std::string expected = kSignature +
                               bytes({0x21, 0x11, 0x00, 0x4A,        // PROXY, TCP/IPv4, 74 octets
                                      0xC0, 0x00, 0x02, 0x0A,        // 192.0.2.10
                                      0xC6, 0x33, 0x64, 0x01,        // 198.51.100.1
                                      0xDC, 0x04, 0x00, 0x19,        // 56324, 25
                                      0x02, 0x00, 0x10}) +           // AUTHORITY, 16
                               "smtp.example.com" +                  //
                               bytes({0x20, 0x00, 0x28,              // SSL, 40
                                      0x01, 0x00, 0x00, 0x00, 0x00,  // PP2_CLIENT_SSL, verify 0
                                      0x21, 0x00, 0x07}) +           // SSL_VERSION, 7
                               "TLSv1.3" +                           //
                               bytes({0x23, 0x00, 0x16}) +           // SSL_CIPHER, 22
                               "TLS_AES_256_GCM_SHA384";
  ProxyHeader h = proxyV2(v4Info());
  CHECK(h.addressesKnown);
  REQUIRE(h.bytes.size() == 16 + 74);
  CHECK(h.bytes == expected);
}

TEST_CASE("proxy v2: IPv6 without SNI, exact bytes", "[smtp][proxy_header]") {
  ProxyInfo info;
  info.clientIp = "2001:db8::1";
  info.clientPort = 40000;
  info.serverIp = "2001:db8::25";
  info.serverPort = 465;
  info.tlsVersion = "TLSv1.2";
  info.tlsCipher = "ECDHE-RSA-AES128-GCM-SHA256";
  const std::string expected =
      kSignature + bytes({0x21, 0x21, 0x00, 0x54,  // PROXY, TCP/IPv6, 84 octets
                          0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00,  // 2001:db8::1
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  //
                          0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00,  // 2001:db8::25
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x25,  //
                          0x9C, 0x40, 0x01, 0xD1,                          // 40000, 465
                          0x20, 0x00, 0x2D,                                // SSL, 45
                          0x01, 0x00, 0x00, 0x00, 0x00,                    //
                          0x21, 0x00, 0x07}) +                             // SSL_VERSION, 7
      "TLSv1.2" +
      bytes({0x23, 0x00, 0x1B}) +  // SSL_CIPHER, 27
      "ECDHE-RSA-AES128-GCM-SHA256";
  ProxyHeader h = proxyV2(info);
  REQUIRE(h.bytes.size() == 16 + 84);
  CHECK(h.bytes == expected);
}

TEST_CASE("proxy v2: plaintext, mapped and unusable addresses", "[smtp][proxy_header]") {
  // No TLS, no SNI: addresses only. A mapped client is IPv4.
  ProxyInfo info;
  info.clientIp = "::ffff:192.0.2.10";
  info.clientPort = 1;
  info.serverIp = "10.0.0.1";
  info.serverPort = 10025;
  CHECK(proxyV2(info).bytes ==
        kSignature + bytes({0x21, 0x11, 0x00, 0x0C, 0xC0, 0x00, 0x02, 0x0A, 0x0A, 0x00, 0x00, 0x01,
                            0x00, 0x01, 0x27, 0x29}));

  // A bad client address: AF_UNSPEC with the PROXY command, the TLVs still there.
  info.clientIp = "unknown";
  info.tlsVersion = "TLSv1";
  ProxyHeader h = proxyV2(info);
  CHECK_FALSE(h.addressesKnown);
  CHECK(h.bytes == kSignature +
                       bytes({0x21, 0x00, 0x00, 0x10, 0x20, 0x00, 0x0D, 0x01, 0x00, 0x00, 0x00,
                              0x00, 0x21, 0x00, 0x05}) +
                       "TLSv1");

  // An absurd SNI is left out rather than sent half.
  info = v4Info();
  info.sni = std::string(256, 'a');
  info.tlsVersion = "";
  CHECK(proxyV2(info).bytes.size() == 16 + 12);
}

}  // namespace
}  // namespace smtpgate::smtp
