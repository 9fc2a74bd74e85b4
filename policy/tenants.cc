#include "policy/tenants.h"
#include "policy/ascii.h"

#include <utility>

namespace smtpgate::policy {
namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// ASCII only: user names and EHLO names are compared as the admin typed them, and a locale
// must not change who matches.
bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

bool isHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

std::string normalizeDomain(std::string_view domain) {
  if (!domain.empty() && domain.back() == '.') {
    domain.remove_suffix(1);
  }
  return asciiLower(domain);
}

std::optional<std::string> normalizeCertSha256(std::string_view text) {
  std::string out;
  out.reserve(64);
  for (char c : text) {
    if (c == ':') {
      continue;
    }
    c = lowerAscii(c);
    if (!isHexDigit(c)) {
      return std::nullopt;
    }
    out.push_back(c);
  }
  if (out.size() != 64) {
    return std::nullopt;
  }
  return out;
}

std::string domainOf(std::string_view address) {
  // Tolerate the angle brackets of a path.
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = address.substr(1, address.size() - 2);
  }
  // The last '@': a quoted local part may contain '@' itself ("a@b"@example.com).
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) {
    return {};
  }
  return asciiLower(address.substr(at + 1));
}

bool TenantException::matches(const ClientIdentity& client, int64_t now) const {
  if (expires && now >= *expires) {
    return false;
  }
  switch (kind) {
    case Kind::Client: {
      // `value` is the configured truth. make() keeps `cidr` in step with it; a hand-built
      // exception whose cidr was left default must not turn into 0.0.0.0/0.
      if (cidr.str() == value) {
        return cidr.contains(client.clientIp);
      }
      std::optional<Cidr> parsed = Cidr::parse(value);
      return parsed && parsed->contains(client.clientIp);
    }
    case Kind::User:
      return !value.empty() && equalsIgnoreCase(value, client.authUser);
    case Kind::Ehlo:
      return !value.empty() && equalsIgnoreCase(value, client.ehlo);
    case Kind::CertSha256: {
      std::optional<std::string> configured = normalizeCertSha256(value);
      std::optional<std::string> presented = normalizeCertSha256(client.clientCertSha256);
      return configured && presented && *configured == *presented;
    }
  }
  return false;
}

std::optional<TenantException> TenantException::make(Kind kind, std::string_view value,
                                                     std::optional<int64_t> expires,
                                                     std::string reason, std::string* error) {
  auto fail = [error](std::string message) -> std::optional<TenantException> {
    if (error != nullptr) {
      *error = std::move(message);
    }
    return std::nullopt;
  };
  TenantException e;
  e.kind = kind;
  e.expires = expires;
  e.reason = std::move(reason);
  switch (kind) {
    case Kind::Client: {
      std::optional<Cidr> cidr = Cidr::parse(value);
      if (!cidr) {
        return fail("must be an IPv4 or IPv6 address or network (192.0.2.0/24, 2001:db8::/32)");
      }
      e.cidr = *cidr;
      e.value = cidr->str();
      break;
    }
    case Kind::User:
    case Kind::Ehlo:
      if (value.empty()) {
        return fail("must not be empty");
      }
      e.value = asciiLower(value);
      break;
    case Kind::CertSha256: {
      std::optional<std::string> hex = normalizeCertSha256(value);
      if (!hex) {
        return fail("must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
      }
      e.value = *hex;
      break;
    }
  }
  return e;
}

const TenantException* Tenant::matchingException(const ClientIdentity& client, int64_t now) const {
  for (const TenantException& e : exceptions) {
    if (e.matches(client, now)) {
      return &e;
    }
  }
  return nullptr;
}

bool TenantDirectory::add(Tenant tenant, std::string* conflict) {
  auto refuse = [conflict](std::string message) {
    if (conflict != nullptr) {
      *conflict = std::move(message);
    }
    return false;
  };
  if (tenant.id.empty()) {
    return refuse("tenant id must not be empty");
  }
  if (byId_.count(tenant.id) != 0) {
    return refuse("tenant id \"" + tenant.id + "\" is already taken");
  }
  // Check every domain before touching the maps, so that a refusal adds nothing.
  std::vector<std::string> domains;
  for (const std::string& raw : tenant.domains) {
    std::string domain = normalizeDomain(raw);
    if (domain.empty()) {
      // An empty key would claim every address without a domain.
      return refuse("tenant \"" + tenant.id + "\" has an empty domain");
    }
    auto owner = byDomain_.find(domain);
    if (owner != byDomain_.end()) {
      return refuse("domain \"" + domain + "\" of tenant \"" + tenant.id +
                    "\" already belongs to tenant \"" + tenants_[owner->second].id + "\"");
    }
    for (const std::string& seen : domains) {
      if (seen == domain) {
        return refuse("domain \"" + domain + "\" is listed twice in tenant \"" + tenant.id + "\"");
      }
    }
    domains.push_back(std::move(domain));
  }
  const std::size_t index = tenants_.size();
  for (const std::string& domain : domains) {
    byDomain_.emplace(domain, index);
  }
  byId_.emplace(tenant.id, index);
  tenant.domains = std::move(domains);
  tenants_.push_back(std::move(tenant));
  return true;
}

const Tenant* TenantDirectory::forDomain(std::string_view domain) const {
  auto it = byDomain_.find(normalizeDomain(domain));
  return it == byDomain_.end() ? nullptr : &tenants_[it->second];
}

const Tenant* TenantDirectory::byId(std::string_view id) const {
  auto it = byId_.find(std::string(id));
  return it == byId_.end() ? nullptr : &tenants_[it->second];
}

}  // namespace smtpgate::policy
