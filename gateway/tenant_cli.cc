#include "gateway/tenant_cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/pg_tenant_store.h"
#include "gateway/tenant_admin.h"
#include "gateway/tenant_clients.h"
#include "gateway/tenants_file.h"
#include "gateway/text_table.h"

namespace smtpgate {
namespace {

namespace fs = std::filesystem;
using Json = TenantJson;

constexpr const char* kUsage =
    "usage: smtpgate tenant [--config FILE] [--offline] SUBCOMMAND ...\n"
    "\n"
    "  list [--format table|json]            every tenant: id, domains,\n"
    "                                        allow_legacy_tls_clients, exceptions\n"
    "  show ID [--format table|json]         one tenant with its numbered exceptions\n"
    "  set ID [--allow-legacy-tls-clients true|false] [--domains a.com,b.com]\n"
    "                                        change a tenant (the Set-TransportConfig\n"
    "                                        -AllowLegacyTLSClients of smtpgate); with\n"
    "                                        --domains an unknown ID is created\n"
    "  exception add ID --client CIDR|--user ADDR|--ehlo NAME|--cert-sha256 HEX\n"
    "                [--expires 2027-03-31|RFC3339] [--reason TEXT]\n"
    "                                        let one client use legacy TLS on the legacy\n"
    "                                        endpoint although its tenant has not opted in\n"
    "  exception remove ID N                 remove exception N (as 'show' numbers them)\n"
    "  delete ID                             remove a tenant\n"
    "  audit [ID] [--limit N] [--format table|json]\n"
    "                                        the changes, newest first (who, when, old -> new)\n"
    "\n"
    "  --config FILE   the gateway's configuration: its admin address and token, tenants file\n"
    "                  and state directory; default: $SMTPGATE_CONFIG, else\n"
    "                  /etc/smtpgate/smtpgate.json if it exists, else the embedded default\n"
    "  --offline       edit the tenants file directly (locked, validated, written atomically,\n"
    "                  audited) instead of asking the running gateway; a running gateway\n"
    "                  picks the change up on SIGHUP. In cluster mode (\"store\":\n"
    "                  {\"postgres\"}) it edits PostgreSQL directly and every running\n"
    "                  instance applies the change within a second\n"
    "\n"
    "Through the admin API a change applies to new decisions at once, without restart.\n"
    "exit status: 0 done, 1 operational error (gateway unreachable, refused, invalid change),\n"
    "2 bad usage.\n";

struct Options {
  std::string configPath;
  bool offline = false;
  std::map<std::string, std::string> values;  // "--domains" -> "a.com,b.com"
  std::vector<std::string> positional;
};

const std::set<std::string> kValueOptions = {
    "--config",  "--format",      "--allow-legacy-tls-clients",
    "--domains", "--client",      "--user",
    "--ehlo",    "--cert-sha256", "--expires",
    "--reason",  "--limit"};

int usageError(const std::string& message) {
  std::fprintf(stderr, "smtpgate tenant: %s\n(see 'smtpgate tenant --help')\n", message.c_str());
  return 2;
}

int operationalError(const std::string& message) {
  std::fprintf(stderr, "smtpgate tenant: %s\n", message.c_str());
  return 1;
}

bool isTenantId(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      out.push_back(item);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

// --- output --------------------------------------------------------------------------------

std::string joinStrings(const Json& list, const char* sep = ", ") {
  std::string out;
  if (list.is_array()) {
    for (const auto& item : list) {
      out += (out.empty() ? "" : sep) + (item.is_string() ? item.get<std::string>() : item.dump());
    }
  }
  return out;
}

// The first row is the header.
std::string renderRows(const std::vector<TextRow>& rows) {
  std::vector<TextRow> body(rows.begin() + 1, rows.end());
  for (auto& row : body) {
    for (auto& cell : row) {
      cell = log::escapeControls(cell);
    }
  }
  return renderTable(rows.front(), body);
}

const char* const kKinds[] = {"client", "user", "ehlo", "cert_sha256"};

std::pair<std::string, std::string> exceptionKind(const Json& e) {
  for (const char* kind : kKinds) {
    if (e.contains(kind)) {
      return {kind, e[kind].is_string() ? e[kind].get<std::string>() : e[kind].dump()};
    }
  }
  return {"?", ""};
}

std::string describeException(const Json& e) {
  auto [kind, value] = exceptionKind(e);
  std::string out = kind + " " + value;
  if (e.contains("expires")) {
    out += ", expires " + e["expires"].get<std::string>();
  }
  if (e.contains("reason")) {
    out += ", reason: " + e["reason"].get<std::string>();
  }
  return out;
}

std::string showTable(const Json& t) {
  std::string out;
  out += fmt::format("id:                        {}\n", t.value("id", std::string()));
  out += fmt::format("domains:                   {}\n", joinStrings(t.value("domains", Json())));
  out += fmt::format("allow_legacy_tls_clients:  {}\n",
                     t.value("allow_legacy_tls_clients", false) ? "true" : "false");
  const Json exceptions = t.value("exceptions", Json::array());
  if (exceptions.empty()) {
    return out + "exceptions:                none\n";
  }
  out += "exceptions:\n";
  std::vector<std::vector<std::string>> rows = {{"  index", "kind", "value", "expires", "reason"}};
  for (const auto& e : exceptions) {
    auto [kind, value] = exceptionKind(e);
    rows.push_back({"  " + std::to_string(e.value("index", 0)), kind, value,
                    e.value("expires", std::string("-")), e.value("reason", std::string())});
  }
  return out + renderRows(rows);
}

void printJson(const Json& body) {
  std::printf("%s\n", body.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
}

// --- subcommands ---------------------------------------------------------------------------

int runList(TenantClient& client, const std::string& format) {
  TenantReply reply;
  if (!client.get("/api/v1/tenants", {}, reply)) {
    return 1;
  }
  if (reply.status != 200) {
    return printTenantFailure(reply);
  }
  if (format == "json") {
    printJson(reply.body);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"id", "domains", "allow_legacy_tls_clients", "exceptions"}};
  for (const auto& t : reply.body.value("tenants", Json::array())) {
    rows.push_back({t.value("id", std::string()), joinStrings(t.value("domains", Json()), ","),
                    t.value("allow_legacy_tls_clients", false) ? "true" : "false",
                    std::to_string(t.value("exceptions", Json::array()).size())});
  }
  std::fputs(renderRows(rows).c_str(), stdout);
  return 0;
}

int runShow(TenantClient& client, const std::string& id, const std::string& format) {
  TenantReply reply;
  if (!client.get("/api/v1/tenants/" + id, {}, reply)) {
    return 1;
  }
  if (reply.status != 200) {
    return printTenantFailure(reply);
  }
  if (format == "json") {
    printJson(reply.body);
  } else {
    std::fputs(showTable(reply.body["tenant"]).c_str(), stdout);
  }
  return 0;
}

int runAudit(TenantClient& client, const std::string& id, const Options& o,
             const std::string& format) {
  std::multimap<std::string, std::string> query;
  if (!id.empty()) {
    query.emplace("tenant", id);
  }
  if (o.values.count("--limit")) {
    query.emplace("limit", o.values.at("--limit"));
  }
  TenantReply reply;
  if (!client.get("/api/v1/audit", query, reply)) {
    return 1;
  }
  if (reply.status != 200) {
    return printTenantFailure(reply);
  }
  if (format == "json") {
    printJson(reply.body);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"time", "tenant", "action", "actor"}};
  for (const auto& e : reply.body.value("audit", Json::array())) {
    rows.push_back({e.value("time", std::string()), e.value("tenant", std::string()),
                    e.value("action", std::string()), e.value("actor", std::string())});
  }
  std::fputs(renderRows(rows).c_str(), stdout);
  return 0;
}

// Runs a change and reports it: what changed, and where it took effect.
int runEdit(TenantClient& client, const std::string& id, const TenantMutation& mutate,
            const std::function<std::string(const Json& old, const Json& now)>& describe) {
  TenantReply reply;
  if (!client.edit(id, mutate, reply)) {
    return 1;
  }
  if (reply.status != 200 && reply.status != 201) {
    return printTenantFailure(reply);
  }
  const Json audit = reply.body.value("audit", Json());
  if (audit.is_null()) {
    std::printf("tenant %s: unchanged\n", id.c_str());
    return 0;
  }
  std::printf("tenant %s: %s\n%s (audited as %s)\n", audit.value("tenant", id).c_str(),
              describe(audit["old"], audit["new"]).c_str(), client.appliedNote().c_str(),
              audit.value("actor", std::string()).c_str());
  return 0;
}

std::string allowText(const Json& t) {
  return t.is_object() && t.value("allow_legacy_tls_clients", false) ? "true" : "false";
}

// A subcommand after its options were checked: runs against the API or the file.
using Plan = std::function<int(TenantClient&)>;
constexpr int kPlanned = -1;

int planSet(const std::string& id, const Options& o, Plan& plan) {
  std::optional<bool> allow;
  std::optional<std::vector<std::string>> domains;
  if (auto it = o.values.find("--allow-legacy-tls-clients"); it != o.values.end()) {
    std::string v = it->second;
    std::transform(v.begin(), v.end(), v.begin(), ::tolower);
    if (v == "true" || v == "$true") {
      allow = true;
    } else if (v == "false" || v == "$false") {
      allow = false;
    } else {
      return usageError("--allow-legacy-tls-clients " + it->second + ": must be true or false");
    }
  }
  if (auto it = o.values.find("--domains"); it != o.values.end()) {
    domains = splitList(it->second);
    if (domains->empty()) {
      return usageError("--domains: list at least one domain (a.com,b.com)");
    }
    for (const auto& d : *domains) {
      if (!isDnsName(d)) {
        return usageError("--domains: " + d + " is not a DNS name");
      }
    }
  }
  if (!allow && !domains) {
    return usageError("tenant set " + id +
                      ": give --allow-legacy-tls-clients true|false and/or "
                      "--domains a.com,b.com");
  }
  TenantMutation mutate = [id, allow, domains](Json& t) {
    if (t.is_null()) {
      if (!domains) {
        return TenantMutationError{
            404, fmt::format("no tenant \"{}\"; give --domains to create it", id)};
      }
      t = Json{{"id", id},
               {"domains", *domains},
               {"allow_legacy_tls_clients", allow.value_or(false)},
               {"exceptions", Json::array()}};
      return TenantMutationError{};
    }
    if (allow) {
      t["allow_legacy_tls_clients"] = *allow;
    }
    if (domains) {
      t["domains"] = *domains;
    }
    return TenantMutationError{};
  };
  auto describe = [](const Json& old, const Json& now) {
    if (old.is_null()) {
      return fmt::format("created with domains {}, allow_legacy_tls_clients {}",
                         joinStrings(now["domains"]), allowText(now));
    }
    std::string out;
    if (allowText(old) != allowText(now)) {
      out = fmt::format("allow_legacy_tls_clients {} -> {}", allowText(old), allowText(now));
    }
    if (old.value("domains", Json()) != now.value("domains", Json())) {
      out += fmt::format("{}domains {} -> {}", out.empty() ? "" : "; ", joinStrings(old["domains"]),
                         joinStrings(now["domains"]));
    }
    return out;
  };
  plan = [id, mutate, describe](TenantClient& client) {
    return runEdit(client, id, mutate, describe);
  };
  return kPlanned;
}

// Checks an exception locally with the tenants file's own rules, so that a bad value is a usage
// error naming the option ("--client 192.0.2.300/32: ... is not an IPv4 or IPv6 network").
std::string checkException(const Json& exception) {
  Json document = {{"tenants", Json::array({Json{{"id", "check"},
                                                 {"domains", Json::array({"check.invalid"})},
                                                 {"exceptions", Json::array({exception})}}})}};
  policy::TenantDirectory ignored;
  std::vector<ConfigError> errors;
  if (parseTenants(document.dump(), ignored, errors)) {
    return "";
  }
  std::string out;
  const std::string prefix = "/tenants/0/exceptions/0";
  for (const auto& e : errors) {
    std::string key = e.pointer.size() > prefix.size() ? e.pointer.substr(prefix.size() + 1) : "";
    std::string option = key.empty() ? "" : "--" + key;
    std::replace(option.begin(), option.end(), '_', '-');
    if (!option.empty() && exception.contains(key)) {
      option += " " + exception[key].get<std::string>();
    }
    out += (out.empty() ? "" : "; ") + (option.empty() ? e.message : option + ": " + e.message);
  }
  return out;
}

int planExceptionAdd(const std::string& id, const Options& o, Plan& plan) {
  Json exception = Json::object();
  int kinds = 0;
  for (const char* kind : kKinds) {
    std::string option = std::string("--") + kind;
    std::replace(option.begin(), option.end(), '_', '-');
    if (auto it = o.values.find(option); it != o.values.end()) {
      exception[kind] = it->second;
      ++kinds;
    }
  }
  if (kinds != 1) {
    return usageError(
        "tenant exception add: give exactly one of --client CIDR, --user ADDR, --ehlo NAME, "
        "--cert-sha256 HEX");
  }
  for (const char* extra : {"expires", "reason"}) {
    if (auto it = o.values.find(std::string("--") + extra); it != o.values.end()) {
      exception[extra] = it->second;
    }
  }
  std::string problem = checkException(exception);
  if (!problem.empty()) {
    return usageError(problem);
  }
  TenantMutation mutate = [id, exception](Json& t) {
    if (t.is_null()) {
      return TenantMutationError{404, fmt::format("no tenant \"{}\"", id)};
    }
    if (!t.contains("exceptions") || !t["exceptions"].is_array()) {
      t["exceptions"] = Json::array();
    }
    t["exceptions"].push_back(exception);
    return TenantMutationError{};
  };
  auto describe = [](const Json& old, const Json& now) {
    const Json list = now.value("exceptions", Json::array());
    if (list.size() != old.value("exceptions", Json::array()).size() + 1) {
      return std::string("exceptions changed");
    }
    return fmt::format("exception {} added: {}", list.size() - 1, describeException(list.back()));
  };
  plan = [id, mutate, describe](TenantClient& client) {
    return runEdit(client, id, mutate, describe);
  };
  return kPlanned;
}

int planExceptionRemove(const std::string& id, const std::string& number, Plan& plan) {
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(number.c_str(), &end, 10);
  if (number.empty() || !std::isdigit(static_cast<unsigned char>(number[0])) || *end != '\0' ||
      errno != 0 || n > 100000) {
    return usageError("tenant exception remove " + id + " " + number +
                      ": N must be an exception index as 'tenant show' lists them (0, 1, ...)");
  }
  // The first read decides which exception N is; when the change is retried after someone
  // else's change (409), that same exception is looked up by content, never by position again.
  auto removed = std::make_shared<Json>();
  TenantMutation mutate = [id, n, removed](Json& t) {
    if (t.is_null()) {
      return TenantMutationError{404, fmt::format("no tenant \"{}\"", id)};
    }
    Json& list = t["exceptions"];
    if (!list.is_array()) {
      list = Json::array();
    }
    auto sameAs = [](Json a, Json b) {
      a.erase("index");
      b.erase("index");
      return a == b;
    };
    std::size_t at = list.size();
    if (removed->is_null()) {
      if (n >= list.size()) {
        return TenantMutationError{
            404, list.empty() ? fmt::format("tenant \"{}\" has no exceptions", id)
                              : fmt::format("tenant \"{}\" has no exception {} (0..{})", id, n,
                                            list.size() - 1)};
      }
      at = n;
      *removed = list[n];
    } else {
      for (std::size_t i = 0; i < list.size() && at == list.size(); ++i) {
        at = sameAs(list[i], *removed) ? i : at;
      }
      if (at == list.size()) {
        return TenantMutationError{
            409, fmt::format("exception {} of tenant \"{}\" was changed meanwhile; run "
                             "'smtpgate tenant show {}' and try again",
                             n, id, id)};
      }
    }
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(at));
    return TenantMutationError{};
  };
  auto describe = [n, removed](const Json&, const Json&) {
    removed->erase("index");
    return fmt::format("exception {} removed: {}", n, describeException(*removed));
  };
  plan = [id, mutate, describe](TenantClient& client) {
    return runEdit(client, id, mutate, describe);
  };
  return kPlanned;
}

int runDelete(TenantClient& client, const std::string& id) {
  TenantMutation mutate = [&](Json& t) {
    if (t.is_null()) {
      return TenantMutationError{404, fmt::format("no tenant \"{}\"", id)};
    }
    t = nullptr;
    return TenantMutationError{};
  };
  return runEdit(client, id, mutate, [](const Json& old, const Json&) {
    return fmt::format("deleted (domains {})", joinStrings(old["domains"]));
  });
}

std::string cliActor() {
  std::string actor = offlineActor();  // "offline USER@HOST"
  return "cli" + actor.substr(actor.find(' '));
}

}  // namespace

const char* tenantUsage() { return kUsage; }

int commandTenant(const std::vector<std::string>& args) {
  Options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    if (name == "--help" || name == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (name == "--offline") {
      o.offline = true;
      continue;
    }
    if (name.rfind("-", 0) != 0 || name == "-") {
      o.positional.push_back(name);
      continue;
    }
    std::string value;
    std::size_t eq = name.find('=');
    bool inlineValue = name.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inlineValue) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (kValueOptions.count(name) == 0) {
      return usageError("unexpected option '" + args[i] + "'");
    }
    if (!inlineValue) {
      if (i + 1 >= args.size()) {
        return usageError(name + " needs a value");
      }
      value = args[++i];
    }
    if (name == "--config") {
      o.configPath = value;
    } else {
      o.values[name] = value;
    }
  }
  const auto& p = o.positional;
  if (p.empty()) {
    return usageError("a subcommand is missing: list, show, set, exception, delete or audit");
  }
  std::string sub = p[0];
  std::size_t idAt = 1;
  if (sub == "exception") {
    if (p.size() < 2 || (p[1] != "add" && p[1] != "remove")) {
      return usageError("tenant exception: use 'exception add ID ...' or 'exception remove ID N'");
    }
    sub += " " + p[1];
    idAt = 2;
  }
  // Which options and how many operands each subcommand takes.
  struct Shape {
    std::size_t operandsMin, operandsMax;
    std::set<std::string> options;
  };
  const std::map<std::string, Shape> shapes = {
      {"list", {0, 0, {"--format"}}},
      {"show", {1, 1, {"--format"}}},
      {"set", {1, 1, {"--allow-legacy-tls-clients", "--domains"}}},
      {"exception add",
       {1, 1, {"--client", "--user", "--ehlo", "--cert-sha256", "--expires", "--reason"}}},
      {"exception remove", {2, 2, {}}},
      {"delete", {1, 1, {}}},
      {"audit", {0, 1, {"--format", "--limit"}}},
  };
  auto shape = shapes.find(sub);
  if (shape == shapes.end()) {
    return usageError("unknown subcommand '" + sub + "'");
  }
  const std::size_t operands = p.size() - idAt;
  if (operands < shape->second.operandsMin) {
    return usageError(fmt::format(
        "tenant {}: {}", sub,
        operands == 0 ? "the tenant ID is missing" : "the exception index N is missing"));
  }
  if (operands > shape->second.operandsMax) {
    return usageError(fmt::format("tenant {}: unexpected argument '{}'", sub, p.back()));
  }
  for (const auto& [name, value] : o.values) {
    if (shape->second.options.count(name) == 0) {
      return usageError(fmt::format("tenant {}: {} does not apply here", sub, name));
    }
  }
  const std::string id = operands > 0 ? p[idAt] : "";
  if (!id.empty() && !isTenantId(id)) {
    return usageError("'" + id + "' is not a tenant ID (1 to 64 letters, digits, '.', '_', '-')");
  }
  std::string format = o.values.count("--format") ? o.values["--format"] : "table";
  if (format != "table" && format != "json") {
    return usageError("--format " + format + ": must be table or json");
  }
  if (o.values.count("--limit")) {
    const std::string& limit = o.values["--limit"];
    if (limit.empty() || limit.size() > 5 || !std::all_of(limit.begin(), limit.end(), ::isdigit) ||
        std::stoi(limit) < 1 || std::stoi(limit) > 10000) {
      return usageError("--limit " + limit + ": must be 1..10000");
    }
  }

  Plan plan;
  int planned = kPlanned;
  if (sub == "list") {
    plan = [format](TenantClient& c) { return runList(c, format); };
  } else if (sub == "show") {
    plan = [id, format](TenantClient& c) { return runShow(c, id, format); };
  } else if (sub == "set") {
    planned = planSet(id, o, plan);
  } else if (sub == "exception add") {
    planned = planExceptionAdd(id, o, plan);
  } else if (sub == "exception remove") {
    planned = planExceptionRemove(id, p[idAt + 1], plan);
  } else if (sub == "delete") {
    plan = [id](TenantClient& c) { return runDelete(c, id); };
  } else {
    plan = [id, o, format](TenantClient& c) { return runAudit(c, id, o, format); };
  }
  if (planned != kPlanned) {
    return planned;
  }

  Config config;
  if (!loadCommandConfig(o.configPath, "tenant", config)) {
    return 1;
  }
  std::unique_ptr<TenantClient> client;
  if (o.offline && config.store.cluster()) {
    // Cluster mode: "offline" edits PostgreSQL directly, in the transaction the API uses; every
    // running instance picks the change up through NOTIFY.
    log::setMinLevel(log::Level::Warning);
    TenantAdminContext ctx;
    ctx.repository = std::make_shared<PgTenantStore>(config.store.postgres);
    client = std::make_unique<OfflineClient>(std::move(ctx));
  } else if (o.offline) {
    if (config.tenantsPath.empty() && sub != "audit") {
      return operationalError(
          "the configuration names no tenants file (\"tenants\"); nothing to edit offline");
    }
    log::setMinLevel(log::Level::Warning);  // the outcome is printed below, not logged
    client = std::make_unique<OfflineClient>(TenantAdminContext{
        config.tenantsPath, (fs::path(config.stateDir) / "audit.jsonl").string(), {}, nullptr});
  } else {
    if (!config.admin.enabled) {
      return operationalError(
          "the configuration has no admin API (\"admin\": {\"listen\", \"token_file\"}); "
          "use --offline to edit the tenants file directly");
    }
    std::string error;
    std::string token = readAdminToken(config.admin.tokenFile, error);
    if (token.empty()) {
      return operationalError("cannot read the admin token: " + error);
    }
    client = std::make_unique<ApiClient>(config.admin.listen, token, cliActor());
  }
  return plan(*client);
}

}  // namespace smtpgate
