#include "gateway/tenants_file.h"
#include "policy/ascii.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "gateway/json_validator.h"

namespace smtpgate {

using json_schema::Json;
using json_schema::Node;
using json_schema::ObjectSchema;
using Kind = policy::TenantException::Kind;

namespace {

constexpr int64_t kSecondsPerDay = 86400;
constexpr std::size_t kMaxReasonCharacters = 200;

// A JSON string literal, for quoting user input in messages and in the serializer.
std::string jsonQuoted(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool isTenantId(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool isPrintableWithoutSpaces(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f) {
      return false;
    }
  }
  return true;
}

// user@domain: a local part without spaces or control characters, and a DNS name.
bool isUserAddress(std::string_view text) {
  auto at = text.rfind('@');
  return at != std::string_view::npos && at > 0 && at <= 64 &&
         isPrintableWithoutSpaces(text.substr(0, at)) && isDnsName(text.substr(at + 1));
}

// A domain or an address literal as clients send it in EHLO; compared case-insensitively.
bool isEhloName(std::string_view text) {
  return !text.empty() && text.size() <= 255 && isPrintableWithoutSpaces(text);
}

// Characters, not bytes: UTF-8 continuation bytes do not count.
std::size_t characterCount(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) {
    count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  }
  return count;
}

// The validation of one tenants document. Keeps what the uniqueness checks need (ids and
// domains seen so far, with their pointers) so that each clash is reported where it occurs.
class TenantsParser {
 public:
  void parse(const Node& root) {
    if (!root.value().is_object()) {
      root.error("the tenants file must be a JSON object");
      return;
    }
    ObjectSchema schema;
    schema.required("tenants", [this](const Node& list) {
      json_schema::forEachElement(list, [this](const Node& element) {
        current_ = ids_.size();
        ids_.emplace_back();
        tenant(element);
      });
    });
    schema.apply(root);
  }

  std::vector<policy::Tenant>& tenants() { return tenants_; }

 private:
  struct DomainOwner {
    std::size_t tenant = 0;  // index in the document
    std::string pointer;
  };

  void tenant(const Node& node) {
    policy::Tenant t;
    ObjectSchema schema;
    schema.required("id", [this, &t](const Node& n) { tenantId(n, t); })
        .required("domains", [this, &t](const Node& n) { domains(n, t); })
        .field("allow_legacy_tls_clients", json_schema::boolean(t.allowLegacyTlsClients))
        .field("exceptions", [this, &t](const Node& n) {
          json_schema::forEachElement(n, [this, &t](const Node& e) { exception(e, t); });
        });
    if (schema.apply(node)) {
      tenants_.push_back(std::move(t));
    }
  }

  void tenantId(const Node& n, policy::Tenant& t) {
    std::string id;
    if (!json_schema::readString(n, id)) {
      return;
    }
    if (!isTenantId(id)) {
      n.error(R"(must be 1 to 64 letters, digits, ".", "_" or "-")");
      return;
    }
    // Case-insensitively unique: "Contoso" and "contoso" as two tenants would only confuse.
    auto [it, fresh] = idPointers_.emplace(policy::asciiLower(id), n.pointer());
    if (!fresh) {
      n.error(fmt::format("duplicate tenant id {} (also {})", jsonQuoted(id), it->second));
      return;
    }
    t.id = id;
    ids_[current_] = id;
  }

  void domains(const Node& n, policy::Tenant& t) {
    bool isArray = json_schema::forEachElement(n, [this, &t](const Node& element) {
      std::string domain;
      if (!json_schema::readString(element, domain)) {
        return;
      }
      if (!isDnsName(domain)) {
        element.error("must be a DNS name");
        return;
      }
      domain = policy::asciiLower(domain);
      auto [it, fresh] = domainOwners_.emplace(domain, DomainOwner{current_, element.pointer()});
      if (!fresh) {
        const DomainOwner& owner = it->second;
        if (owner.tenant == current_) {
          element.error(fmt::format("{} is listed twice (also {})", domain, owner.pointer));
        } else if (!ids_[owner.tenant].empty()) {
          element.error(fmt::format("{} already belongs to tenant {} ({})", domain,
                                    jsonQuoted(ids_[owner.tenant]), owner.pointer));
        } else {
          element.error(fmt::format("{} already belongs to /tenants/{} ({})", domain, owner.tenant,
                                    owner.pointer));
        }
        return;
      }
      t.domains.push_back(domain);
    });
    if (isArray && n.value().empty()) {
      n.error("must list at least one domain");
    }
  }

  void exception(const Node& node, policy::Tenant& t) {
    int kinds = 0;
    Kind kind = Kind::Client;
    std::string value;
    bool valueOk = false;
    std::optional<int64_t> expires;
    bool expiresOk = true;
    std::string reason;
    bool reasonOk = true;
    auto kindField = [&](Kind k, bool (*check)(const Node&, std::string&)) {
      return [&, k, check](const Node& n) {
        ++kinds;
        kind = k;
        valueOk = check(n, value);
      };
    };
    ObjectSchema schema;
    schema.field("client", kindField(Kind::Client, clientValue))
        .field("user", kindField(Kind::User, userValue))
        .field("ehlo", kindField(Kind::Ehlo, ehloValue))
        .field("cert_sha256", kindField(Kind::CertSha256, certValue))
        .field("expires", [&](const Node& n) { expiresOk = expiry(n, expires); })
        .field("reason", [&](const Node& n) { reasonOk = reasonText(n, reason); });
    if (!schema.apply(node)) {
      return;
    }
    if (kinds != 1) {
      node.error(R"(exactly one of "client", "user", "ehlo", "cert_sha256" is required)");
      return;
    }
    if (!valueOk || !expiresOk || !reasonOk) {
      return;
    }
    // make() normalises the value (canonical network, lower case, bare hex) as matching expects.
    std::string error;
    auto made = policy::TenantException::make(kind, value, expires, reason, &error);
    if (!made) {
      node.error(error);
      return;
    }
    t.exceptions.push_back(std::move(*made));
  }

  static bool clientValue(const Node& n, std::string& out) {
    if (!json_schema::readString(n, out)) {
      return false;
    }
    if (!policy::Cidr::parse(out)) {
      n.error(fmt::format("{} is not an IPv4 or IPv6 network", jsonQuoted(out)));
      return false;
    }
    return true;
  }

  static bool userValue(const Node& n, std::string& out) {
    if (!json_schema::readString(n, out)) {
      return false;
    }
    if (!isUserAddress(out)) {
      n.error("must be an address such as user@example.com");
      return false;
    }
    return true;
  }

  static bool ehloValue(const Node& n, std::string& out) {
    if (!json_schema::readString(n, out)) {
      return false;
    }
    if (!isEhloName(out)) {
      n.error("must be an EHLO name: 1 to 255 printable characters without spaces");
      return false;
    }
    return true;
  }

  static bool certValue(const Node& n, std::string& out) {
    if (!json_schema::readString(n, out)) {
      return false;
    }
    if (!policy::normalizeCertSha256(out)) {
      n.error("must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
      return false;
    }
    return true;
  }

  static bool expiry(const Node& n, std::optional<int64_t>& out) {
    const Json& value = n.value();
    int64_t at = 0;
    if (value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      // A date means "through the end of that day": the exception ends at the next midnight.
      if (json_schema::parseDate(text, at)) {
        out = at + kSecondsPerDay;
        return true;
      }
      if (json_schema::parseRfc3339(text, at)) {
        out = at;
        return true;
      }
    }
    n.error("must be a date such as 2027-03-31 or an RFC 3339 time such as 2027-03-31T18:00:00Z");
    return false;
  }

  static bool reasonText(const Node& n, std::string& out) {
    if (!json_schema::readString(n, out)) {
      return false;
    }
    if (characterCount(out) > kMaxReasonCharacters) {
      n.error(fmt::format("must be at most {} characters", kMaxReasonCharacters));
      return false;
    }
    return true;
  }

  std::vector<policy::Tenant> tenants_;
  std::size_t current_ = 0;                          // document index of the tenant at hand
  std::vector<std::string> ids_;                     // id per document index, "" if invalid
  std::map<std::string, std::string> idPointers_;    // lower-case id -> pointer of first use
  std::map<std::string, DomainOwner> domainOwners_;  // domain -> where it was first listed
};

// An expiry as the file spells it: midnight UTC is the end of the day before (a date).
std::string expiresText(int64_t expires) {
  int64_t secondOfDay = ((expires % kSecondsPerDay) + kSecondsPerDay) % kSecondsPerDay;
  if (secondOfDay == 0) {
    return json_schema::formatDate(expires - kSecondsPerDay);
  }
  return json_schema::formatRfc3339(expires);
}

const char* kindKey(Kind kind) {
  switch (kind) {
    case Kind::Client:
      return "client";
    case Kind::User:
      return "user";
    case Kind::Ehlo:
      return "ehlo";
    case Kind::CertSha256:
      return "cert_sha256";
  }
  return "client";
}

std::string exceptionJson(const policy::TenantException& e) {
  // A hand-built Client exception may carry only its cidr.
  std::string value = e.kind == Kind::Client && e.value.empty() ? e.cidr.str() : e.value;
  std::string out = fmt::format("{{\"{}\": {}", kindKey(e.kind), jsonQuoted(value));
  if (e.expires) {
    out += fmt::format(", \"expires\": {}", jsonQuoted(expiresText(*e.expires)));
  }
  if (!e.reason.empty()) {
    out += fmt::format(", \"reason\": {}", jsonQuoted(e.reason));
  }
  return out + "}";
}

}  // namespace

bool parseTenants(const std::string& jsonText, policy::TenantDirectory& out,
                  std::vector<ConfigError>& errors) {
  std::size_t errorsBefore = errors.size();
  json_schema::Context context{errors, {}};
  json_schema::Json document;
  if (!json_schema::parseJson(jsonText, document, context)) {
    return false;
  }
  TenantsParser parser;
  parser.parse(Node(document, "", context));
  if (errors.size() != errorsBefore) {
    return false;
  }
  // The parser has checked what add() checks; a refusal here would be a bug, still reported.
  policy::TenantDirectory directory;
  auto& tenants = parser.tenants();
  for (std::size_t i = 0; i < tenants.size(); ++i) {
    std::string conflict;
    if (!directory.add(std::move(tenants[i]), &conflict)) {
      errors.push_back({fmt::format("/tenants/{}", i), conflict});
      return false;
    }
  }
  out = std::move(directory);
  return true;
}

bool loadTenantsFile(const std::string& path, policy::TenantDirectory& out,
                     std::vector<ConfigError>& errors) {
  std::string text;
  std::string error;
  if (!json_schema::readFile(path, text, error)) {
    errors.push_back({"", error});
    return false;
  }
  return parseTenants(text, out, errors);
}

std::string tenantsToJson(const policy::TenantDirectory& directory) {
  const auto& tenants = directory.all();
  if (tenants.empty()) {
    return "{\n  \"tenants\": []\n}\n";
  }
  std::string out = "{\n  \"tenants\": [\n";
  for (std::size_t i = 0; i < tenants.size(); ++i) {
    const policy::Tenant& t = tenants[i];
    std::string domains;
    for (std::size_t d = 0; d < t.domains.size(); ++d) {
      domains += (d > 0 ? ", " : "") + jsonQuoted(t.domains[d]);
    }
    out += "    {\n";
    out += fmt::format("      \"id\": {},\n", jsonQuoted(t.id));
    out += fmt::format("      \"domains\": [{}],\n", domains);
    out += fmt::format("      \"allow_legacy_tls_clients\": {},\n",
                       t.allowLegacyTlsClients ? "true" : "false");
    if (t.exceptions.empty()) {
      out += "      \"exceptions\": []\n";
    } else {
      out += "      \"exceptions\": [\n";
      for (std::size_t e = 0; e < t.exceptions.size(); ++e) {
        out += "        " + exceptionJson(t.exceptions[e]) +
               (e + 1 < t.exceptions.size() ? ",\n" : "\n");
      }
      out += "      ]\n";
    }
    out += i + 1 < tenants.size() ? "    },\n" : "    }\n";
  }
  return out + "  ]\n}\n";
}

}  // namespace smtpgate
