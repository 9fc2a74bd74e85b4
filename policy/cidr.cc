#include <arpa/inet.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "policy/ip_address.h"
#include "policy/tenants.h"

namespace smtpgate::policy {
namespace {


std::optional<int> parsePrefix(std::string_view text, int maxPrefix) {
  if (text.empty() || text.size() > 3) {
    return std::nullopt;
  }
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  if (value > maxPrefix) {
    return std::nullopt;
  }
  return value;
}

// Clears every bit after `prefix`: "192.0.2.10/24" is read as 192.0.2.0/24, as admins mean it.
void maskHostBits(std::array<uint8_t, 16>& bytes, int prefix) {
  for (std::size_t i = 0; i < 16; ++i) {
    const int bitsInByte = prefix - static_cast<int>(i) * 8;
    if (bitsInByte >= 8) {
      continue;
    }
    if (bitsInByte <= 0) {
      bytes[i] = 0;
    } else {
      bytes[i] &= static_cast<uint8_t>(0xff << (8 - bitsInByte));
    }
  }
}

bool samePrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  const auto fullBytes = static_cast<std::size_t>(prefix / 8);
  for (std::size_t i = 0; i < fullBytes; ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  const int rest = prefix % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[fullBytes] & mask) == (b[fullBytes] & mask);
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view addressText = text.substr(0, slash);
  // Not IpAddress::parse(): the prefix of a mapped network counts in IPv6 bits, so the folding to
  // IPv4 comes after the prefix is known.
  if (addressText.empty() || addressText.size() > 45) {
    return std::nullopt;
  }
  const std::string copy(addressText);
  Cidr cidr;
  cidr.v6 = copy.find(':') != std::string::npos;
  if (inet_pton(cidr.v6 ? AF_INET6 : AF_INET, copy.c_str(), cidr.address.data()) != 1) {
    return std::nullopt;
  }
  const int maxPrefix = cidr.v6 ? 128 : 32;
  if (slash == std::string_view::npos) {
    cidr.prefix = maxPrefix;
  } else {
    std::optional<int> prefix = parsePrefix(text.substr(slash + 1), maxPrefix);
    if (!prefix) {
      return std::nullopt;
    }
    cidr.prefix = *prefix;
  }
  // ::ffff:192.0.2.0/120 is an IPv4 network written in IPv6: store it as 192.0.2.0/24 so that
  // plain IPv4 clients match it too.
  if (cidr.v6 && cidr.prefix >= 96 && isV4Mapped(cidr.address)) {
    cidr.address = foldMapped(cidr.address);
    cidr.prefix -= 96;
    cidr.v6 = false;
  }
  maskHostBits(cidr.address, cidr.prefix);
  return cidr;
}

bool Cidr::contains(std::string_view ip) const {
  std::optional<IpAddress> client = IpAddress::parse(ip);
  if (!client || client->v6 != v6) {
    return false;
  }
  const int maxPrefix = v6 ? 128 : 32;
  if (prefix < 0 || prefix > maxPrefix) {
    return false;  // a hand-built Cidr out of range matches nothing
  }
  return samePrefix(client->bytes, address, prefix);
}

std::string Cidr::str() const {
  char buffer[64] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, address.data(), buffer, sizeof buffer) == nullptr) {
    return {};
  }
  return std::string(buffer) + "/" + std::to_string(prefix);
}

}  // namespace smtpgate::policy
