#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/ip_address.h"

namespace smtpgate::smtp {

using IpAddress = policy::IpAddress;

// The v2 signature (proxy-protocol.txt section 2.2), for the writer and the reader
// (proxy_parser.h).
inline constexpr std::string_view kProxyV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

// What the PROXY header tells the backend (SPEC section 6): the client's connection to the
// gateway and, for v2, its TLS facts.
struct ProxyInfo {
  std::string clientIp;
  std::uint16_t clientPort = 0;
  std::string serverIp;  // the gateway address the client reached; "" = not known
  std::uint16_t serverPort = 0;
  std::string tlsVersion;  // "TLSv1.3"; "" = no TLS
  std::string tlsCipher;   // "TLS_AES_256_GCM_SHA384"
  std::string sni;         // "" = none sent
};

struct ProxyHeader {
  std::string bytes;
  // False when the addresses could not be used (UNKNOWN / AF_UNSPEC was sent: the backend
  // then logs the gateway's own address), for the caller to log.
  bool addressesKnown = false;
};

// HAProxy PROXY protocol (haproxy doc/proxy-protocol.txt).
//
// Addresses: the client address must parse, else v1 says "PROXY UNKNOWN" and v2 sends
// AF_UNSPEC (still with the PROXY command, so the receiver uses the real connection's
// addresses and keeps the TLVs). An empty serverIp stands for the unspecified address of the
// client's family (port as given); a non-empty one that does not parse counts as invalid.
// One IPv4 and one IPv6 side: the IPv4 one is sent IPv4-mapped, as HAProxy does.
//
// Version 1: "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n" (Exim, Postfix).
ProxyHeader proxyV1(const ProxyInfo& info);

// Version 2: the binary header, command PROXY (0x21), TCP over IPv4 (0x11) or IPv6 (0x21),
// then TLVs: PP2_TYPE_AUTHORITY (0x02) with the SNI when one was sent, and PP2_TYPE_SSL
// (0x20, only under TLS) = client PP2_CLIENT_SSL (0x01), verify 0 (no client certificates
// are asked for), sub-TLVs PP2_SUBTYPE_SSL_VERSION (0x21) and PP2_SUBTYPE_SSL_CIPHER (0x23).
// A TLV value above 255 octets (no sane SNI or cipher name) is left out. Lengths big-endian.
ProxyHeader proxyV2(const ProxyInfo& info);

}  // namespace smtpgate::smtp
