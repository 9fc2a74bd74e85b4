#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace smtpgate::policy {

// An IPv4 or IPv6 network ("192.0.2.0/24", "2001:db8::/32"; a bare address is a /32 or /128).
// IPv4-mapped IPv6 client addresses (::ffff:192.0.2.1) match IPv4 networks.
struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> address{};
  int prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(std::string_view ip) const;
  std::string str() const;
};

// What an exception is matched against.
struct ClientIdentity {
  std::string clientIp;
  std::string authUser;          // "" without AUTH
  std::string ehlo;
  std::string clientCertSha256;  // lower-case hex
};

struct TenantException {
  enum class Kind { Client, User, Ehlo, CertSha256 };
  Kind kind = Kind::Client;
  std::string value;  // as configured; user/ehlo/cert lower-cased
  Cidr cidr;          // for Kind::Client
  std::optional<int64_t> expires;  // Unix seconds: the exception applies while now < expires
  std::string reason;

  bool matches(const ClientIdentity& client, int64_t now) const;

  // Builds a checked exception: a Client value must parse as a Cidr (value becomes its
  // canonical text), User/Ehlo must be non-empty (lower-cased), CertSha256 must be 64 hex
  // digits, colons allowed (stored lower-case without colons). nullopt and *error otherwise.
  static std::optional<TenantException> make(Kind kind, std::string_view value,
                                             std::optional<int64_t> expires = std::nullopt,
                                             std::string reason = {}, std::string* error = nullptr);
};

struct Tenant {
  std::string id;
  std::vector<std::string> domains;  // lower-case
  bool allowLegacyTlsClients = false;
  std::vector<TenantException> exceptions;

  // The first exception that matches and has not expired, or nullptr.
  const TenantException* matchingException(const ClientIdentity& client, int64_t now) const;
};

// Tenants by id and by domain. Domains are matched exactly, case-insensitively, with a
// trailing dot ignored.
class TenantDirectory {
 public:
  // Adds a tenant; returns false (and adds nothing) when its id or one of its domains is taken.
  bool add(Tenant tenant, std::string* conflict = nullptr);
  const Tenant* forDomain(std::string_view domain) const;
  const Tenant* byId(std::string_view id) const;
  const std::vector<Tenant>& all() const { return tenants_; }

 private:
  std::vector<Tenant> tenants_;
  std::unordered_map<std::string, std::size_t> byDomain_;
  std::unordered_map<std::string, std::size_t> byId_;
};

// The domain part of an address ("User@Example.COM" -> "example.com"), "" when none.
std::string domainOf(std::string_view address);

// A domain as the directory keys it: lower-case, one trailing dot removed.
std::string normalizeDomain(std::string_view domain);

// A certificate fingerprint as exceptions compare it: ':' removed, lower-case; nullopt unless
// exactly 64 hex digits remain.
std::optional<std::string> normalizeCertSha256(std::string_view text);

}  // namespace smtpgate::policy
