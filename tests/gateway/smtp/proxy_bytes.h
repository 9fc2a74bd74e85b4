#pragma once

// Byte strings for the PROXY protocol tests (writer and reader), spelled out by hand rather
// than taken from the code under test.

#include <initializer_list>
#include <string>

#include "gateway/smtp/proxy_header.h"

namespace smtpgate::smtp::proxy_test {

inline std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out += static_cast<char>(v);
  }
  return out;
}

inline const std::string kSignature =
    bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

// A client that came over TLS 1.3 with SNI, on IPv4.
inline ProxyInfo v4Info() {
  ProxyInfo info;
  info.clientIp = "192.0.2.10";
  info.clientPort = 56324;
  info.serverIp = "198.51.100.1";
  info.serverPort = 25;
  info.tlsVersion = "TLSv1.3";
  info.tlsCipher = "TLS_AES_256_GCM_SHA384";
  info.sni = "smtp.example.com";
  return info;
}

}  // namespace smtpgate::smtp::proxy_test
