#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smtpgate::policy {

// A literal IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:192.0.2.1, how dual-stack sockets
// report IPv4 peers) is read as IPv4, so that one client has one spelling everywhere: in the
// policy's CIDR matches and in what the backend is told.
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4: the first four

  // No brackets, prefix or zone; nullopt when `text` is not an address.
  static std::optional<IpAddress> parse(std::string_view text);
  // The canonical text (RFC 5952 for IPv6).
  std::string str() const;
  // The same address as IPv4-mapped IPv6 (IPv6 stays as it is).
  IpAddress asV6() const;
};

// ::ffff:a.b.c.d
bool isV4Mapped(const std::array<std::uint8_t, 16>& bytes);
// ::ffff:a.b.c.d -> a.b.c.d in the first four bytes.
std::array<std::uint8_t, 16> foldMapped(const std::array<std::uint8_t, 16>& mapped);

}  // namespace smtpgate::policy
