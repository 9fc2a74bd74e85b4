#include "gateway/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/embedded_default.h"
#include "gateway/log.h"
#include "gateway/privileges.h"
#include "gateway/report.h"
#include "gateway/runtime.h"
#include "gateway/server.h"
#include "gateway/db_cli.h"
#include "gateway/tenant_cli.h"
#include "gateway/tenant_watcher.h"

namespace smtpgate {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: smtpgate [COMMAND] [OPTIONS]\n"
    "\n"
    "An SMTP TLS gateway: terminates STARTTLS and implicit TLS in front of a mail system and\n"
    "records the TLS facts of every session.\n"
    "\n"
    "commands:\n"
    "  run [--config FILE]        run the gateway in the foreground (the default command);\n"
    "                             without --config: the embedded default on 127.0.0.1\n"
    "  check-config FILE          validate a configuration and the files it names\n"
    "  report [OPTIONS]           the inbound messages report: messages per day and TLS\n"
    "                             version, the legacy-client inventory, senders\n"
    "  tenant SUBCOMMAND          list, show and change tenants: set ID\n"
    "                             --allow-legacy-tls-clients true|false, exception add|remove\n"
    "  db migrate|status          cluster mode (\"store\": {\"postgres\"}): bring the\n"
    "                             PostgreSQL schema up to date, or show its version\n"
    "\n"
    "options:\n"
    "  --help                     this text; 'smtpgate COMMAND --help' for one command\n"
    "  --version                  print the version\n";

constexpr const char* kRunUsage =
    "usage: smtpgate run [--config FILE] [--print-default]\n"
    "\n"
    "Runs the gateway in the foreground, logging to stderr.\n"
    "  --config FILE     the JSON configuration (see README.md); without it the embedded\n"
    "                    default: strict STARTTLS 127.0.0.1:2587, strict implicit TLS\n"
    "                    127.0.0.1:2465, legacy STARTTLS 127.0.0.1:2588, spool under ./var\n"
    "  --print-default   print the embedded default configuration and exit\n"
    "\n"
    "signals: SIGHUP reloads the configuration, certificates and users file (a bad one is\n"
    "refused and the running one stays); SIGTERM/SIGINT stop accepting, let sessions finish\n"
    "for limits.timeouts_s.drain seconds, then answer 421 and exit 0.\n";

constexpr const char* kCheckUsage =
    "usage: smtpgate check-config FILE\n"
    "\n"
    "Loads and validates the configuration and everything it names (certificates, keys, spool,\n"
    "users file) without binding. Prints 'configuration OK' (exit 0) or every error with its\n"
    "JSON pointer, one per line (exit 1).\n";

constexpr const char* kReportUsage =
    "usage: smtpgate report [--config FILE] [--since 7d|24h|30d|2026-11-01] [--tenant ID]\n"
    "                       [--endpoint strict|legacy] [--tls none,1.0,1.1,1.2,1.3]\n"
    "                       [--by day|client|sender|message] [--client IP] [--date DAY]\n"
    "                       [--limit N] [--format table|csv|json]\n"
    "\n"
    "The inbound messages report, read from STATE_DIR/traces.sqlite, or in cluster mode\n"
    "(\"store\": {\"postgres\"}) from PostgreSQL, covering every instance. A message counts\n"
    "once it was accepted (250); refused sessions count as decisions (by rule).\n"
    "  --config FILE    the configuration that names the state directory; default:\n"
    "                   $SMTPGATE_CONFIG, else /etc/smtpgate/smtpgate.json if it exists,\n"
    "                   else the embedded default (./var)\n"
    "  --since WHEN     N days (7d) or hours (24h) back, or a UTC date (2026-11-01);\n"
    "                   default 7d\n"
    "  --tenant ID      only this tenant's sessions and messages\n"
    "  --endpoint E     only the strict or the legacy endpoint\n"
    "  --tls LIST       only these TLS versions (comma-separated: none,1.0,1.1,1.2,1.3)\n"
    "  --by day         messages per UTC day and TLS version, with percentages and the\n"
    "                   refused sessions by rule (default)\n"
    "  --by client      the legacy-client inventory: client IP, EHLO, AUTH user, tenant,\n"
    "                   sessions per TLS version, messages, first/last seen, last rule;\n"
    "                   TLS 1.0/1.1 users first\n"
    "  --by sender      messages per envelope sender and TLS version\n"
    "  --by message     the accepted messages themselves, newest first (the drill-down)\n"
    "  --client IP      only this client address\n"
    "  --date DAY       only this UTC day (2026-11-27)\n"
    "  --limit N        at most N clients or messages\n"
    "  --format F       table (default), csv (RFC 4180) or json\n"
    "\n"
    "exit status: 0 done, 1 unreadable configuration or database, 2 bad options.\n";

bool wantsHelp(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      return true;
    }
  }
  return false;
}

void printErrors(const std::vector<ConfigError>& errors) {
  for (const auto& e : errors) {
    std::fprintf(stderr, "%s\n", e.str().c_str());
  }
}

// Loads, validates and builds the runtime of a configuration file; logs the errors and
// appends them to `out`.
// In cluster mode `cluster` holds the tenants from PostgreSQL (the configuration names no
// tenants file then).
std::shared_ptr<const Runtime> loadRuntime(const std::string& path, std::vector<std::string>& out,
                                           const TenantView* cluster = nullptr) {
  std::vector<ConfigError> errors;
  Config config = loadConfigFile(path, errors);
  if (errors.empty()) {
    checkConfigFiles(config, errors);
  }
  if (errors.empty() && config.store.cluster() != (cluster != nullptr)) {
    errors.push_back({"/store", "switching between PostgreSQL and the local files takes a "
                                "restart"});
  }
  std::shared_ptr<const Runtime> runtime;
  if (errors.empty()) {
    const policy::TenantDirectory tenants = cluster ? cluster->current() : policy::TenantDirectory();
    runtime = buildRuntime(config, errors, cluster ? &tenants : nullptr);
  }
  if (!errors.empty()) {
    for (const auto& e : errors) {
      log::error("{}: {}", path, e.str());
      out.push_back(e.str());
    }
    return nullptr;
  }
  return runtime;
}

std::shared_ptr<const Runtime> loadEmbedded(std::string& banner, std::vector<std::string>& out) {
  std::vector<ConfigError> errors;
  Config config = embeddedDefaultConfig(fs::current_path().string());
  std::string e = prepareEmbeddedDefault(config, banner);
  if (!e.empty()) {
    log::error("embedded default: {}", e);
    out.push_back(e);
    return nullptr;
  }
  auto runtime = buildRuntime(config, errors);
  for (const auto& err : errors) {
    log::error("embedded default: {}", err.str());
    out.push_back(err.str());
  }
  return errors.empty() ? runtime : nullptr;
}

int commandRun(const std::vector<std::string>& args) {
  std::string configPath;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      configPath = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      configPath = args[i].substr(9);
    } else if (args[i] == "--print-default") {
      std::printf("%s\n", embeddedDefaultJson());
      return 0;
    } else {
      std::fprintf(stderr, "smtpgate run: unexpected argument '%s'\n\n%s", args[i].c_str(),
                   kRunUsage);
      return 2;
    }
  }
  // Until the server's signal handlers are installed, a SIGHUP (a reload asked for while we
  // start) must not end the process, which is its default action.
  std::signal(SIGHUP, SIG_IGN);
  std::shared_ptr<const Runtime> runtime;
  std::shared_ptr<TenantView> cluster;
  Server::Reloader reloader;
  if (configPath.empty()) {
    std::string banner;
    std::vector<std::string> ignored;
    runtime = loadEmbedded(banner, ignored);
    if (runtime) {
      std::fprintf(stderr, "%s", banner.c_str());
    }
    reloader = [](std::vector<std::string>& errors) {
      std::string banner;
      return loadEmbedded(banner, errors);
    };
  } else {
    configPath = fs::absolute(configPath).string();
    std::vector<ConfigError> configErrors;
    const Config peek = loadConfigFile(configPath, configErrors);
    if (configErrors.empty() && peek.store.cluster()) {
      // Cluster mode: the schema must be the one of this binary and the tenants readable
      // before the first session; later outages keep the last known tenants.
      std::string error;
      cluster = openTenantView(peek.store.postgres, error);
      if (!cluster) {
        log::error("{}: store: {}", configPath, error);
        return 1;
      }
    }
    std::vector<std::string> ignored;
    runtime = loadRuntime(configPath, ignored, cluster.get());
    reloader = [configPath, cluster](std::vector<std::string>& errors) {
      return loadRuntime(configPath, errors, cluster.get());
    };
  }
  if (!runtime) {
    return 1;
  }
  Server server(runtime, reloader);
  if (cluster) {
    server.useClusterStore(cluster);
  }
  std::string error = server.openTraces();
  if (error.empty()) {
    error = server.bind();
  }
  if (error.empty()) {
    error = server.startAdmin();
  }
  const Config& config = runtime->config;
  if (error.empty() && !config.user.empty()) {
    // Ports are bound, keys and users read: from here on the gateway runs as `user`. What it
    // keeps writing is handed over first.
    const std::string traces = config.stateDir + "/traces.sqlite";
    std::vector<std::string> owned = {config.stateDir, config.stateDir + "/audit.jsonl", traces,
                                      traces + "-wal", traces + "-shm"};
    if (!config.relay) {
      owned.insert(owned.end(),
                   {config.spool.dir, config.spool.dir + "/tmp", config.spool.dir + "/new"});
    }
    if (!config.trace.eventsJsonl.empty() && config.trace.eventsJsonl != "-") {
      owned.push_back(config.trace.eventsJsonl);
    }
    error = dropPrivileges(config.user, owned);
    if (error.empty()) {
      log::info("running as user {}", config.user);
    }
  }
  if (!error.empty()) {
    log::error("{}", error);
    return 1;
  }
  for (const auto& l : runtime->config.listeners) {
    log::info("listening on {} ({}, {}, endpoint {})", l.listen.str(), l.name,
              l.tls == TlsMode::Implicit ? "implicit TLS" : "STARTTLS", endpointName(l.endpoint));
  }
  return server.run();
}

int commandCheckConfig(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    std::fprintf(stderr, "%s", kCheckUsage);
    return 2;
  }
  std::vector<ConfigError> errors;
  Config config = loadConfigFile(args[0], errors);
  if (errors.empty()) {
    checkConfigFiles(config, errors);
  }
  if (!errors.empty()) {
    printErrors(errors);
    return 1;
  }
  std::printf("configuration OK\n");
  return 0;
}

int commandReport(const std::vector<std::string>& args) {
  std::string configPath;
  std::string since = "7d";
  std::string by = "day";
  std::string format = "table";
  std::string tls;
  std::string limit;
  ReportQuery query;
  auto badValue = [](const std::string& message) {
    std::fprintf(stderr, "smtpgate report: %s\n", message.c_str());
    return 2;
  };
  bool tlsGiven = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    std::size_t eq = name.find('=');
    const bool inlineValue = name.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inlineValue) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string* target = name == "--config"     ? &configPath
                          : name == "--since"    ? &since
                          : name == "--tenant"   ? &query.tenant
                          : name == "--endpoint" ? &query.endpoint
                          : name == "--tls"      ? &tls
                          : name == "--by"       ? &by
                          : name == "--format"   ? &format
                          : name == "--client"   ? &query.clientIp
                          : name == "--date"     ? &query.day
                          : name == "--limit"    ? &limit
                                                 : nullptr;
    if (!target) {
      std::fprintf(stderr, "smtpgate report: unexpected argument '%s'\n\n%s", args[i].c_str(),
                   kReportUsage);
      return 2;
    }
    if (!inlineValue) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "smtpgate report: %s needs a value\n\n%s", name.c_str(), kReportUsage);
        return 2;
      }
      value = args[++i];
    }
    *target = value;
    tlsGiven = tlsGiven || name == "--tls";
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string error;
  if (!parseSince(since, now, query.sinceMs, error)) {
    return badValue(error);
  }
  query.untilMs = now;
  if (tlsGiven) {
    if (!parseTlsList(tls, query.tls, error)) {
      return badValue(error);
    }
  }
  if (!query.endpoint.empty() && query.endpoint != "strict" && query.endpoint != "legacy") {
    return badValue("--endpoint " + query.endpoint + ": must be strict or legacy");
  }
  if (!parseReportBy(by, query.by, error)) {
    return badValue("--" + error);
  }
  if (!parseReportFilters(query, limit, "", error)) {
    return badValue(error);
  }
  if (format != "table" && format != "csv" && format != "json") {
    return badValue("--format " + format + ": must be table, csv or json");
  }
  Config config;
  if (!loadCommandConfig(configPath, "report", config)) {
    return 1;
  }
  ReportStore store;
  if (config.store.cluster()) {
    store.postgres = config.store.postgres;
  } else {
    store.sqlitePath = (fs::path(config.stateDir) / "traces.sqlite").string();
  }
  nlohmann::ordered_json report = runReport(store, query, error);
  if (!error.empty()) {
    std::fprintf(stderr, "smtpgate report: %s\n", error.c_str());
    return 1;
  }
  std::string out =
      format == "json"
          ? report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"
      : format == "csv" ? formatCsv(report, query.by)
                        : formatTable(report, query.by);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int runCli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    return commandRun({});
  }
  const std::string command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--version" || command == "version") {
    std::printf("smtpgate %s\n", SMTPGATE_VERSION);
    return 0;
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  if (command == "run") {
    if (wantsHelp(rest)) {
      std::printf("%s", kRunUsage);
      return 0;
    }
    return commandRun(rest);
  }
  if (command == "check-config") {
    if (wantsHelp(rest)) {
      std::printf("%s", kCheckUsage);
      return 0;
    }
    return commandCheckConfig(rest);
  }
  if (command == "report") {
    if (wantsHelp(rest)) {
      std::printf("%s", kReportUsage);
      return 0;
    }
    return commandReport(rest);
  }
  if (command == "db") {
    return commandDb(rest);  // handles --help itself
  }
  if (command == "tenant") {
    return commandTenant(rest);  // handles --help itself, anywhere among its arguments
  }
  if (command.rfind("--config", 0) == 0) {
    return commandRun(args);  // "smtpgate --config FILE" is "smtpgate run --config FILE"
  }
  std::fprintf(stderr, "smtpgate: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace smtpgate
