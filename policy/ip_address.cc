#include "policy/ip_address.h"

#include <arpa/inet.h>

namespace smtpgate::policy {

bool isV4Mapped(const std::array<std::uint8_t, 16>& b) {
  for (std::size_t i = 0; i < 10; ++i) {
    if (b[i] != 0) {
      return false;
    }
  }
  return b[10] == 0xff && b[11] == 0xff;
}

std::array<std::uint8_t, 16> foldMapped(const std::array<std::uint8_t, 16>& mapped) {
  std::array<std::uint8_t, 16> v4{};
  for (std::size_t i = 0; i < 4; ++i) {
    v4[i] = mapped[12 + i];
  }
  return v4;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) {  // INET6_ADDRSTRLEN - 1
    return std::nullopt;
  }
  const std::string copy(text);  // inet_pton wants a NUL-terminated string
  IpAddress a;
  if (copy.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, copy.c_str(), a.bytes.data()) != 1) {
      return std::nullopt;
    }
    return a;
  }
  if (inet_pton(AF_INET6, copy.c_str(), a.bytes.data()) != 1) {
    return std::nullopt;
  }
  a.v6 = true;
  if (isV4Mapped(a.bytes)) {
    a.bytes = foldMapped(a.bytes);
    a.v6 = false;
  }
  return a;
}

std::string IpAddress::str() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof(text)) == nullptr) {
    return {};
  }
  return text;
}

IpAddress IpAddress::asV6() const {
  if (v6) {
    return *this;
  }
  IpAddress mapped;
  mapped.v6 = true;
  mapped.bytes[10] = 0xff;
  mapped.bytes[11] = 0xff;
  for (std::size_t i = 0; i < 4; ++i) {
    mapped.bytes[12 + i] = bytes[i];
  }
  return mapped;
}

}  // namespace smtpgate::policy
