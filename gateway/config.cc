#include "gateway/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "gateway/json_validator.h"
#include "policy/ascii.h"

namespace smtpgate {

using json_schema::Handler;
using json_schema::Node;
using json_schema::ObjectSchema;

std::string ListenAddress::str() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

const char* endpointName(EndpointKind kind) {
  switch (kind) {
    case EndpointKind::Strict:
      return "strict";
    case EndpointKind::Legacy:
      return "legacy";
    case EndpointKind::BySni:
      return "by-sni";
  }
  return "?";
}

const char* tlsModeName(TlsMode mode) {
  return mode == TlsMode::Implicit ? "implicit" : "starttls";
}

bool parseListenAddress(std::string_view text, ListenAddress& out, std::string& error) {
  const char* kFormat = "must be \"IPV4:PORT\" or \"[IPV6]:PORT\"";
  std::string host;
  std::string_view portText;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string_view::npos) {
      error = kFormat;
      return false;
    }
    host = std::string(text.substr(1, close - 1));
    portText = text.substr(close + 2);
    v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = kFormat;
      return false;
    }
    host = std::string(text.substr(0, colon));
    portText = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      error = "IPv6 addresses must be in brackets, as in \"[::1]:25\"";
      return false;
    }
  }
  // Binary form first, then back to text: "[0:0::0]:25" and "[::]:25" are the same socket.
  unsigned char binary[16];
  char canonical[INET6_ADDRSTRLEN];
  int family = v6 ? AF_INET6 : AF_INET;
  if (inet_pton(family, host.c_str(), binary) != 1 ||
      inet_ntop(family, binary, canonical, sizeof canonical) == nullptr) {
    error = fmt::format("\"{}\" is not an {} address", host, v6 ? "IPv6" : "IPv4");
    return false;
  }
  unsigned long port = 0;
  bool portOk = !portText.empty() && portText.size() <= 5;
  for (char c : portText) {
    if (c < '0' || c > '9') {
      portOk = false;
      break;
    }
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (!portOk || port < 1 || port > 65535) {
    error = "port must be 1..65535";
    return false;
  }
  out.host = canonical;
  out.port = static_cast<uint16_t>(port);
  return true;
}

bool isDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  std::size_t labelLength = 0;
  char previous = '.';
  for (char c : name) {
    if (c == '.') {
      if (labelLength == 0 || previous == '-') {
        return false;
      }
      labelLength = 0;
    } else {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && !(c == '-' && labelLength > 0)) {
        return false;
      }
      if (++labelLength > 63) {
        return false;
      }
    }
    previous = c;
  }
  return labelLength > 0 && previous != '-';
}

namespace {

bool isListenerName(std::string_view name) {
  if (name.empty() || name.size() > 32) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

const std::vector<std::pair<std::string, EndpointKind>> kStrictOrLegacy = {
    {"strict", EndpointKind::Strict}, {"legacy", EndpointKind::Legacy}};

// The validation of one document. Holds what cross-field checks need (names and addresses
// seen so far) so that each problem is reported where it occurs, in document order.
class ConfigParser {
 public:
  ConfigParser(Config& config, std::string baseDir)
      : config_(config), baseDir_(std::move(baseDir)) {}

  void parse(const Node& root) {
    if (!root.value().is_object()) {
      root.error("the configuration must be a JSON object");
      return;
    }
    ObjectSchema schema;
    schema.field("hostname", dnsName(config_.hostname))
        .field("state_dir", json_schema::path(config_.stateDir, baseDir_))
        .field("workers", json_schema::integer(config_.workers, 0, 256))
        .field("listeners", [this](const Node& n) { listeners(n); })
        .field("hostnames", [this](const Node& n) { hostnames(n); })
        .field("default_endpoint", json_schema::oneOf(config_.defaultEndpoint, kStrictOrLegacy))
        .field("certificates", [this](const Node& n) { certificates(n); })
        .field("backend", [this](const Node& n) { backend(n); })
        .field("smtp", [this](const Node& n) { smtp(n); })
        .field("limits", [this](const Node& n) { limits(n); })
        .field("tenants", json_schema::path(config_.tenantsPath, baseDir_, true))
        .field("legacy_tls", [this](const Node& n) { legacyTls(n); })
        .field("trace", [this](const Node& n) { trace(n); })
        .field("store", [this](const Node& n) { store(n); })
        .field("admin", [this](const Node& n) { admin(n); })
        .field("user", [this](const Node& n) { user(n); });
    schema.apply(root);

    if (config_.store.cluster() && !config_.tenantsPath.empty()) {
      root.context().errors.push_back(
          {"/tenants", "not used with \"store\": {\"postgres\"}: the tenants live in "
                       "PostgreSQL (remove \"tenants\")"});
    }
    if (!config_.listeners.empty() && config_.certificates.empty()) {
      root.context().errors.push_back(
          {"/certificates", "at least one certificate is required when listeners are configured"});
    }
    // Without a backend section, messages are spooled under the state directory.
    if (config_.spool.dir.empty()) {
      config_.spool.dir =
          (std::filesystem::path(config_.stateDir) / "spool").lexically_normal().string();
    }
  }

 private:
  static Handler dnsName(std::string& out) {
    return [&out](const Node& n) {
      std::string value;
      if (!json_schema::readString(n, value)) {
        return;
      }
      if (!isDnsName(value)) {
        n.error("must be a DNS name");
        return;
      }
      out = value;
    };
  }

  void listeners(const Node& node) {
    json_schema::forEachElement(node, [this](const Node& element) { listener(element); });
  }

  void listener(const Node& node) {
    ListenerConfig l;
    ObjectSchema schema;
    schema.required("name", [this, &l](const Node& n) { listenerName(n, l); })
        .required("listen", [this, &l](const Node& n) { listenerAddress(n, l); })
        .field("tls", json_schema::oneOf(l.tls, {{"starttls", TlsMode::StartTls},
                                                 {"implicit", TlsMode::Implicit}}))
        .field("endpoint", json_schema::oneOf(l.endpoint, {{"strict", EndpointKind::Strict},
                                                           {"legacy", EndpointKind::Legacy},
                                                           {"by-sni", EndpointKind::BySni}}))
        .field("require_tls", json_schema::boolean(l.requireTls))
        .field("proxy_protocol", [&l](const Node& n) { proxyProtocol(n, l); });
    if (schema.apply(node)) {
      config_.listeners.push_back(std::move(l));
    }
  }

  static void proxyProtocol(const Node& node, ListenerConfig& l) {
    ObjectSchema schema;
    schema.required("trusted", [&l](const Node& list) {
      bool any = false;
      bool ok = json_schema::forEachElement(list, [&](const Node& element) {
        any = true;
        std::string text;
        if (!json_schema::readString(element, text)) {
          return;
        }
        std::optional<policy::Cidr> cidr = policy::Cidr::parse(text);
        if (!cidr) {
          element.error(fmt::format("\"{}\" is not an IPv4 or IPv6 network (CIDR such as "
                                    "\"10.0.0.0/8\")",
                                    text));
          return;
        }
        l.proxyTrusted.push_back(*cidr);
      });
      if (ok && !any) {
        list.error("must list at least one network (CIDR) of the load balancers");
      }
    });
    schema.apply(node);
  }

  void listenerName(const Node& n, ListenerConfig& l) {
    std::string name;
    if (!json_schema::readString(n, name)) {
      return;
    }
    if (!isListenerName(name)) {
      n.error("must be 1 to 32 letters, digits, \"-\" or \"_\"");
      return;
    }
    auto [it, fresh] = listenerNames_.emplace(name, n.pointer());
    if (!fresh) {
      n.error(fmt::format("duplicate listener name \"{}\" (also {})", name, it->second));
      return;
    }
    l.name = name;
  }

  void listenerAddress(const Node& n, ListenerConfig& l) { uniqueAddress(n, l.listen); }

  // A listen address no other listener (or the admin server) has; false after an error.
  bool uniqueAddress(const Node& n, ListenAddress& out) {
    std::string text;
    if (!json_schema::readString(n, text)) {
      return false;
    }
    std::string error;
    if (!parseListenAddress(text, out, error)) {
      n.error(error);
      return false;
    }
    auto [it, fresh] = listenAddresses_.emplace(out.str(), n.pointer());
    if (!fresh) {
      n.error(fmt::format("duplicate address {} (also {})", out.str(), it->second));
      return false;
    }
    return true;
  }

  void hostnames(const Node& node) {
    std::map<std::string, std::string> seen;  // lower-case name -> pointer
    json_schema::forEachMember(node, [&](const std::string& key, const Node& value) {
      if (!isDnsName(key)) {
        value.error("key must be a DNS name");
        return;
      }
      std::string name = policy::asciiLower(key);
      auto [it, fresh] = seen.emplace(name, value.pointer());
      if (!fresh) {
        value.error(fmt::format("same name as {}", it->second));
        return;
      }
      auto kind = EndpointKind::BySni;  // not a valid value here: marks "not set"
      json_schema::oneOf(kind, kStrictOrLegacy)(value);
      if (kind != EndpointKind::BySni) {
        config_.hostnames[name] = kind;
      }
    });
  }

  void certificates(const Node& node) {
    json_schema::forEachElement(node, [this](const Node& element) {
      CertificateConfig c;
      ObjectSchema schema;
      schema.required("cert", json_schema::path(c.cert, baseDir_))
          .required("key", json_schema::path(c.key, baseDir_));
      if (schema.apply(element)) {
        config_.certificates.push_back(std::move(c));
      }
    });
  }

  void backend(const Node& node) {
    auto& spool = config_.spool;
    auto& smtp = config_.smtpBackend;
    bool hasSmtp = false, hasSpool = false, hasUsers = false, hasRelayKeys = false;
    ObjectSchema schema;
    schema
        .field("spool",
               [&](const Node& n) {
                 hasSpool = true;
                 json_schema::path(spool.dir, baseDir_)(n);
               })
        .field("users",
               [&](const Node& n) {
                 hasUsers = true;
                 json_schema::path(spool.users, baseDir_, true)(n);
               })
        .field("smtp",
               [&](const Node& n) {
                 hasSmtp = true;
                 std::string text, error;
                 if (json_schema::readString(n, text) &&
                     !parseListenAddress(text, smtp.address, error)) {
                   n.error(error);
                 }
               })
        .field("handoff",
               [&](const Node& n) {
                 hasRelayKeys = true;
                 json_schema::oneOf(smtp.handoff, {{"xclient", Handoff::Xclient},
                                                   {"proxy-v1", Handoff::ProxyV1},
                                                   {"proxy-v2", Handoff::ProxyV2},
                                                   {"none", Handoff::None}})(n);
               })
        .field("tls", [&](const Node& n) {
          hasRelayKeys = true;
          json_schema::oneOf(smtp.startTls, {{"none", false}, {"starttls", true}})(n);
        });
    schema.apply(node);
    auto& errors = node.context().errors;
    if (hasSmtp && (hasSpool || hasUsers)) {
      errors.push_back({node.pointer(),
                        "either \"smtp\" (relay to an MTA) or \"spool\", not both; "
                        "with \"smtp\" the MTA checks AUTH credentials"});
    } else if (!hasSmtp && hasRelayKeys) {
      errors.push_back({node.pointer(), "\"handoff\" and \"tls\" need \"smtp\""});
    }
    config_.relay = hasSmtp;
  }

  void smtp(const Node& node) {
    auto& smtp = config_.smtp;
    ObjectSchema schema;
    schema.field("max_message_bytes", json_schema::integer(smtp.maxMessageBytes, 1024, 1 << 30))
        .field("max_recipients", json_schema::integer(smtp.maxRecipients, 1, 10000))
        .field("bare_lf",
               json_schema::oneOf(smtp.bareLfReject, {{"normalize", false}, {"reject", true}}))
        .field("received_header", json_schema::boolean(smtp.receivedHeader));
    schema.apply(node);
  }

  void limits(const Node& node) {
    auto& limits = config_.limits;
    auto& timeouts = limits.timeouts;
    ObjectSchema timeoutsSchema;
    timeoutsSchema.field("command", json_schema::integer(timeouts.command, 10, 3600))
        .field("data_block", json_schema::integer(timeouts.dataBlock, 10, 3600))
        .field("handshake", json_schema::integer(timeouts.handshake, 1, 600))
        .field("backend_connect", json_schema::integer(timeouts.backendConnect, 1, 300))
        .field("drain", json_schema::integer(timeouts.drain, 0, 3600))
        .field("data_total", json_schema::integer(timeouts.dataTotal, 10, 86400))
        .field("data_rate_window", json_schema::integer(timeouts.dataRateWindow, 1, 3600))
        .field("write", json_schema::integer(timeouts.write, 5, 3600));
    ObjectSchema schema;
    schema.field("max_connections", json_schema::integer(limits.maxConnections, 1, 1000000))
        .field("max_connections_per_ip",
               json_schema::integer(limits.maxConnectionsPerIp, 1, 100000))
        .field("max_errors", json_schema::integer(limits.maxErrors, 1, 1000))
        .field("new_connections_per_ip_per_minute",
               json_schema::integer(limits.newConnectionsPerIpPerMinute, 1, 100000))
        .field("new_tls_handshakes_per_ip_per_minute",
               json_schema::integer(limits.newTlsHandshakesPerIpPerMinute, 1, 100000))
        .field("min_data_rate_bps", json_schema::integer(limits.minDataRateBps, 0, 100000000))
        .field("error_delay_ms", json_schema::integer(limits.errorDelayMs, 0, 30000))
        .field("timeouts_s", [&timeoutsSchema](const Node& n) { timeoutsSchema.apply(n); });
    schema.apply(node);
  }

  void legacyTls(const Node& node) {
    auto& policy = config_.legacyTls;
    // policy.speedbump[k] is the document's step stepIndex[k]: steps that did not parse are left
    // out, and validate()'s pointers are mapped back so that they name the right element.
    std::vector<std::size_t> stepIndex;
    ObjectSchema schema;
    schema.field("default_allow", json_schema::boolean(policy.defaultAllow))
        .field("speedbump", [this, &stepIndex](const Node& n) { speedbump(n, stepIndex); })
        .field("strict_cutoff", [this](const Node& n) { strictCutoff(n); })
        .field("after_cutoff",
               json_schema::oneOf(policy.afterCutoff,
                                  {{"refuse-handshake", policy::AfterCutoff::RefuseHandshake},
                                   {"reply", policy::AfterCutoff::Reply}}))
        .field("help_url", [this](const Node& n) { helpUrl(n); });
    if (!schema.apply(node)) {
      return;
    }
    for (const auto& [pointer, message] : policy.validate()) {
      std::string where =
          pointer.empty() ? node.pointer() : relocate(pointer, node.pointer(), stepIndex);
      node.context().errors.push_back({where, relocate(message, node.pointer(), stepIndex)});
    }
  }

  // validate()'s pointers, in its messages too ("must be later than /speedbump/0/from"), are
  // relative to legacy_tls and count only the steps that parsed: make them absolute, with the
  // steps numbered as in the document.
  static std::string relocate(const std::string& text, const std::string& base,
                              const std::vector<std::size_t>& stepIndex) {
    static const char* const kKeys[] = {"default_allow", "speedbump", "strict_cutoff",
                                        "after_cutoff", "help_url"};
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t end = text.find_first_of(" ),;", pos);
      end = end == std::string::npos ? text.size() : end;
      std::string word = text.substr(pos, end - pos);
      bool isPointer = false;
      for (const char* key : kKeys) {
        std::string token = std::string("/") + key;
        isPointer = isPointer || word == token || word.rfind(token + "/", 0) == 0;
      }
      out += isPointer ? base + mapStepPointer(word, stepIndex) : word;
      if (end < text.size()) {
        out += text[end];
      }
      pos = end + 1;
    }
    return out;
  }

  void speedbump(const Node& node, std::vector<std::size_t>& stepIndex) {
    auto& steps = config_.legacyTls.speedbump;
    steps.clear();
    stepIndex.clear();
    std::size_t index = 0;
    json_schema::forEachElement(node, [&](const Node& element) {
      policy::SpeedbumpStep step;
      bool fromOk = false;
      bool percentOk = false;
      ObjectSchema schema;
      // The range of reject_percent and the order of the steps are validate()'s to check.
      schema
          .required("from",
                    [&](const Node& n) { fromOk = json_schema::readTimestamp(n, step.from); })
          .required("reject_percent", [&](const Node& n) {
            percentOk = json_schema::readNumber(n, step.rejectPercent);
          });
      if (schema.apply(element) && fromOk && percentOk) {
        steps.push_back(step);
        stepIndex.push_back(index);
      }
      ++index;
    });
  }

  // "/speedbump/K/..." of the parsed steps -> "/speedbump/<document index>/...".
  static std::string mapStepPointer(const std::string& pointer,
                                    const std::vector<std::size_t>& stepIndex) {
    const std::string prefix = "/speedbump/";
    if (pointer.rfind(prefix, 0) != 0) {
      return pointer;
    }
    std::size_t end = pointer.find('/', prefix.size());
    std::string token = pointer.substr(
        prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
    std::size_t k = 0;
    for (char c : token) {
      if (c < '0' || c > '9') {
        return pointer;
      }
      k = k * 10 + static_cast<std::size_t>(c - '0');
    }
    if (token.empty() || k >= stepIndex.size()) {
      return pointer;
    }
    return prefix + std::to_string(stepIndex[k]) +
           (end == std::string::npos ? "" : pointer.substr(end));
  }

  void strictCutoff(const Node& n) {
    // null spells out "no cutoff" (the embedded default does, to document the key).
    if (n.value().is_null()) {
      config_.legacyTls.strictCutoff.reset();
      return;
    }
    int64_t cutoff = 0;
    if (json_schema::readTimestamp(n, cutoff)) {
      config_.legacyTls.strictCutoff = cutoff;
    }
  }

  void trace(const Node& node) {
    auto& trace = config_.trace;
    ObjectSchema schema;
    schema.field("store", json_schema::oneOf(trace.sqlite, {{"sqlite", true}, {"none", false}}))
        .field("retention_days", json_schema::integer(trace.retentionDays, 1, 3650))
        .field("events_jsonl", [this](const Node& n) {
          std::string value;
          if (!json_schema::readString(n, value)) {
            return;
          }
          // "" (off) and "-" (stdout) are not paths: resolving them would name a directory.
          config_.trace.eventsJsonl =
              value.empty() || value == "-" ? value : json_schema::resolvePath(value, baseDir_);
        });
    schema.apply(node);
  }

  void store(const Node& node) {
    auto& store = config_.store;
    ObjectSchema schema;
    schema.field("postgres", [&store](const Node& n) {
          std::string value;
          if (!json_schema::readString(n, value)) {
            return;
          }
          if (value.empty() || value.find('\0') != std::string::npos) {
            n.error("must be a PostgreSQL connection string (\"host=... dbname=...\" or "
                    "postgresql://...)");
            return;
          }
          store.postgres = value;
        })
        .field("buffer_records", json_schema::integer(store.bufferRecords, 1000, 10000000))
        .field("refresh_s", json_schema::integer(store.refreshS, 1, 3600));
    schema.apply(node);
    if (store.postgres.empty() && node.value().is_object()) {
      node.error("\"postgres\" is required in \"store\"");
    }
  }

  // SPEC section 8: the user to run as once the ports are bound and the keys read.
  void user(const Node& n) {
    std::string name;
    if (!json_schema::readString(n, name)) {
      return;
    }
    bool ok = !name.empty() && name.size() <= 32 &&
              (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_');
    for (char c : name) {
      ok = ok && (std::islower(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    }
    if (!ok) {
      n.error("must be a user name (lower-case letters, digits, \"_\" or \"-\", at most 32)");
      return;
    }
    config_.user = name;
  }

  void admin(const Node& node) {
    auto& admin = config_.admin;
    bool listenGiven = false;
    ObjectSchema schema;
    schema
        .required("listen", [this, &admin, &listenGiven](
                                const Node& n) { listenGiven = uniqueAddress(n, admin.listen); })
        .required("token_file", json_schema::path(admin.tokenFile, baseDir_));
    admin.enabled = schema.apply(node) && listenGiven && !admin.tokenFile.empty();
  }

  void helpUrl(const Node& n) {
    std::string url;
    if (!json_schema::readString(n, url)) {
      return;
    }
    // Printable ASCII only: CR, LF, spaces or UTF-8 would break or forge the reply line.
    bool ok = url.size() > 8 && policy::asciiLower(url.substr(0, 8)) == "https://" &&
              url[8] != '/' && url[8] != '?' && url[8] != '#';
    for (char c : url) {
      ok = ok && static_cast<unsigned char>(c) > ' ' && static_cast<unsigned char>(c) < 0x7f;
    }
    if (!ok) {
      n.error("must be an https:// URL such as https://aka.ms/smtp_auth_tls");
      return;
    }
    // It ends up inside a 421 reply line, which must stay within SMTP's 512 octets.
    if (url.size() > 300) {
      n.error("must be at most 300 characters");
      return;
    }
    config_.legacyTls.helpUrl = url;
  }

  Config& config_;
  std::string baseDir_;
  std::map<std::string, std::string> listenerNames_;    // name -> pointer of first use
  std::map<std::string, std::string> listenAddresses_;  // "host:port" -> pointer of first use
};

}  // namespace

Config parseConfig(const std::string& jsonText, const std::string& baseDir,
                   std::vector<ConfigError>& errors) {
  Config config;
  // Relative to the configuration file, not to the working directory.
  config.stateDir = json_schema::resolvePath(config.stateDir, baseDir);
  json_schema::Context context{errors, {}};
  json_schema::Json document;
  if (!json_schema::parseJson(jsonText, document, context)) {
    return config;
  }
  ConfigParser parser(config, baseDir);
  parser.parse(Node(document, "", context));
  return config;
}

Config loadConfigFile(const std::string& path, std::vector<ConfigError>& errors) {
  std::string text;
  std::string error;
  if (!json_schema::readFile(path, text, error)) {
    errors.push_back({"", error});
    return Config{};
  }
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  std::string baseDir =
      ec ? std::filesystem::path(path).parent_path().string() : absolute.parent_path().string();
  Config config = parseConfig(text, baseDir, errors);
  config.sourcePath = path;
  return config;
}

const char* embeddedDefaultJson() {
  // SPEC section 9. Every knob is spelled out so that `run --print-default` documents them.
  return R"json({
  "hostname": "localhost",
  "state_dir": "./var",
  "workers": 0,
  "listeners": [
    {"name": "strict-starttls", "listen": "127.0.0.1:2587", "tls": "starttls",
     "endpoint": "strict", "require_tls": true},
    {"name": "strict-implicit", "listen": "127.0.0.1:2465", "tls": "implicit",
     "endpoint": "strict", "require_tls": true},
    {"name": "legacy-starttls", "listen": "127.0.0.1:2588", "tls": "starttls",
     "endpoint": "legacy", "require_tls": true}
  ],
  "hostnames": {},
  "default_endpoint": "strict",
  "certificates": [
    {"cert": "./var/tls/ecdsa.pem", "key": "./var/tls/ecdsa.key"},
    {"cert": "./var/tls/rsa.pem", "key": "./var/tls/rsa.key"}
  ],
  "backend": {"spool": "./var/spool", "users": "./var/users.txt"},
  "tenants": "./var/tenants.json",
  "legacy_tls": {"default_allow": true, "speedbump": [], "strict_cutoff": null,
                 "after_cutoff": "refuse-handshake", "help_url": "https://aka.ms/smtp_auth_tls"},
  "smtp": {"max_message_bytes": 36700160, "max_recipients": 100, "bare_lf": "normalize",
           "received_header": true},
  "limits": {"max_connections": 20000, "max_connections_per_ip": 100, "max_errors": 10,
             "timeouts_s": {"command": 300, "data_block": 180, "handshake": 30, "drain": 60}},
  "trace": {"store": "sqlite", "retention_days": 90, "events_jsonl": ""},
  "admin": {"listen": "127.0.0.1:8025", "token_file": "./var/admin.token"}
})json";
}

Config embeddedDefaultConfig(const std::string& baseDir) {
  std::vector<ConfigError> errors;
  Config config = parseConfig(embeddedDefaultJson(), baseDir, errors);
  if (!errors.empty()) {
    // A bug in the binary, not in anything the user wrote.
    throw std::logic_error("embedded default configuration is invalid: " + errors.front().str());
  }
  return config;
}

}  // namespace smtpgate
