#include "gateway/db_cli.h"

#include <cstdio>

#include <fmt/format.h>

#include "gateway/config.h"
#include "gateway/db_migrations.h"
#include "gateway/pg_connection.h"

namespace smtpgate {
namespace {

constexpr const char* kUsage =
    "usage: smtpgate db migrate [--config FILE]\n"
    "       smtpgate db status [--config FILE]\n"
    "\n"
    "The PostgreSQL schema of cluster mode (\"store\": {\"postgres\": CONNINFO} in the\n"
    "configuration): tenants, their audit trail and the trace records of every instance.\n"
    "  migrate   runs the migrations this smtpgate carries that the database lacks, in order,\n"
    "            each in its own transaction; running it again does nothing. Refuses a\n"
    "            database whose schema is newer than this smtpgate. Run it before starting\n"
    "            (or upgrading) the instances: 'smtpgate run' refuses an older schema.\n"
    "  status    prints the database's schema version and the migrations still to run\n"
    "  --config FILE   the configuration; default: $SMTPGATE_CONFIG, else\n"
    "                  /etc/smtpgate/smtpgate.json if it exists\n"
    "\n"
    "exit status: 0 done (status: up to date), 1 error, 2 bad options, 3 (status) migrations\n"
    "are pending.\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "smtpgate db: %s\n", message.c_str());
  return 1;
}

}  // namespace

int commandDb(const std::vector<std::string>& args) {
  std::string sub;
  std::string configPath;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--config" && i + 1 < args.size()) {
      configPath = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      configPath = a.substr(9);
    } else if (sub.empty() && (a == "migrate" || a == "status")) {
      sub = a;
    } else {
      std::fprintf(stderr, "smtpgate db: unexpected argument '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (sub.empty()) {
    std::fprintf(stderr, "smtpgate db: migrate or status?\n\n%s", kUsage);
    return 2;
  }
  Config config;
  if (!loadCommandConfig(configPath, "db", config)) {
    return 1;
  }
  if (!config.store.cluster()) {
    return fail("the configuration has no \"store\": {\"postgres\": CONNINFO}; without it "
                "smtpgate keeps its data in local files and has no database schema");
  }
  std::string error;
  auto db = PgConnection::connect(config.store.postgres, error);
  if (!db) {
    return fail(error);
  }
  if (sub == "migrate") {
    std::vector<std::string> done;
    const bool ok = migrateSchema(*db, done, error);
    for (const auto& line : done) {
      std::printf("%s\n", line.c_str());
    }
    if (!ok) {
      return fail(error);
    }
    MigrationPlan plan;
    if (!schemaPlan(*db, plan, error)) {
      return fail(error);
    }
    std::printf("schema version %d: up to date%s\n", plan.current,
                done.empty() ? " (nothing to do)" : "");
    return 0;
  }
  MigrationPlan plan;
  if (!schemaPlan(*db, plan, error)) {
    return fail(error);
  }
  std::printf("schema version %d; this smtpgate needs version %d\n", plan.current, plan.latest);
  if (!plan.error.empty()) {
    return fail(plan.error);
  }
  for (const Migration* m : plan.pending) {
    std::printf("pending: %s\n", m->name.c_str());
  }
  if (!plan.pending.empty()) {
    std::printf("run 'smtpgate db migrate' to apply them\n");
    return 3;
  }
  std::printf("up to date\n");
  return 0;
}

}  // namespace smtpgate
