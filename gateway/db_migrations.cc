#include "gateway/db_migrations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "gateway/admin_page.h"
#include "gateway/pg_connection.h"

namespace smtpgate::migrations {
extern const EmbeddedFile kMigrationFiles[];
extern const std::size_t kMigrationFiles_count;
}  // namespace smtpgate::migrations

namespace smtpgate {
namespace {

// Any constant shared by every smtpgate: the advisory lock that serializes `db migrate` runs.
constexpr int64_t kMigrationLock = 0x736d747067617465;  // "smtpgate"

const char* const kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

bool readApplied(PgConnection& db, std::vector<int>& applied, std::string& error) {
  PgResult exists;
  if (!db.exec("SELECT to_regclass('schema_migrations') IS NOT NULL", {}, &exists, error)) {
    return false;
  }
  applied.clear();
  if (exists.rows() == 0 || exists.text(0, 0) != "t") {
    return true;
  }
  PgResult rows;
  if (!db.exec("SELECT version FROM schema_migrations ORDER BY version", {}, &rows, error)) {
    return false;
  }
  for (int r = 0; r < rows.rows(); ++r) {
    applied.push_back(static_cast<int>(rows.integer(r, 0)));
  }
  return true;
}

}  // namespace

bool parseMigrations(const std::vector<std::pair<std::string, std::string>>& files,
                     std::vector<Migration>& out, std::string& error) {
  out.clear();
  for (const auto& [file, sql] : files) {
    const bool shaped = file.size() > 9 && file.compare(file.size() - 4, 4, ".sql") == 0 &&
                        file[4] == '_' &&
                        std::all_of(file.begin(), file.begin() + 4,
                                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!shaped) {
      error = fmt::format("migration {}: the name must be NNNN_name.sql", file);
      return false;
    }
    Migration m;
    m.version = std::stoi(file.substr(0, 4));
    m.name = file.substr(0, file.size() - 4);
    m.sql = sql;
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i].version != static_cast<int>(i) + 1) {
      error = fmt::format("migration {}: expected version {} (versions start at 1, without gaps "
                          "or duplicates)",
                          out[i].name, i + 1);
      out.clear();
      return false;
    }
  }
  return true;
}

const std::vector<Migration>& builtinMigrations() {
  static const std::vector<Migration> all = [] {
    std::vector<std::pair<std::string, std::string>> files;
    for (std::size_t i = 0; i < migrations::kMigrationFiles_count; ++i) {
      const EmbeddedFile& f = migrations::kMigrationFiles[i];
      files.emplace_back(f.name, std::string(reinterpret_cast<const char*>(f.data), f.size));
    }
    std::vector<Migration> parsed;
    std::string error;
    if (!parseMigrations(files, parsed, error)) {
      parsed.clear();  // tests/gateway/db_migrations_test.cc fails the build's tests then
    }
    return parsed;
  }();
  return all;
}

MigrationPlan planMigrations(const std::vector<Migration>& available,
                             const std::vector<int>& applied) {
  MigrationPlan plan;
  plan.latest = available.empty() ? 0 : available.back().version;
  std::vector<int> sorted = applied;
  std::sort(sorted.begin(), sorted.end());
  plan.current = sorted.empty() ? 0 : sorted.back();
  if (plan.current > plan.latest) {
    plan.error = fmt::format(
        "the database schema is at version {}, newer than this smtpgate knows (version {}); "
        "run a newer smtpgate",
        plan.current, plan.latest);
    return plan;
  }
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] != static_cast<int>(i) + 1) {
      plan.error = fmt::format(
          "the database's schema_migrations lists versions out of sequence (found {} where {} "
          "was expected); it was not made by smtpgate db migrate",
          sorted[i], i + 1);
      return plan;
    }
  }
  for (const Migration& m : available) {
    if (m.version > plan.current) {
      plan.pending.push_back(&m);
    }
  }
  return plan;
}

bool schemaPlan(PgConnection& db, MigrationPlan& plan, std::string& error) {
  std::vector<int> applied;
  if (!readApplied(db, applied, error)) {
    return false;
  }
  plan = planMigrations(builtinMigrations(), applied);
  return true;
}

bool migrateSchema(PgConnection& db, std::vector<std::string>& done, std::string& error) {
  if (builtinMigrations().empty()) {
    error = "this smtpgate carries no valid migrations";
    return false;
  }
  PgParams lockKey;
  lockKey.integer(kMigrationLock);
  if (!db.exec("SELECT pg_advisory_lock($1)", lockKey, nullptr, error)) {
    return false;
  }
  auto unlock = [&db, &lockKey] {
    std::string ignored;
    db.exec("SELECT pg_advisory_unlock($1)", lockKey, nullptr, ignored);
  };
  MigrationPlan plan;
  if (!db.exec(kCreateTable, error) || !schemaPlan(db, plan, error)) {
    unlock();
    return false;
  }
  if (!plan.error.empty()) {
    error = plan.error;
    unlock();
    return false;
  }
  for (const Migration* m : plan.pending) {
    std::string ignored;
    PgParams record;
    record.integer(m->version).text(m->name);
    if (!db.exec("BEGIN", error) || !db.execScript(m->sql, error) ||
        !db.exec("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", record, nullptr,
                 error) ||
        !db.exec("COMMIT", error)) {
      db.exec("ROLLBACK", ignored);
      error = fmt::format("migration {} failed (rolled back): {}", m->name, error);
      unlock();
      return false;
    }
    done.push_back(fmt::format("applied {}", m->name));
  }
  unlock();
  return true;
}

std::string schemaProblem(PgConnection& db) {
  MigrationPlan plan;
  std::string error;
  if (!schemaPlan(db, plan, error)) {
    return error;
  }
  if (!plan.error.empty()) {
    return plan.error;
  }
  if (!plan.pending.empty()) {
    return fmt::format(
        "the database schema is at version {}, this smtpgate needs version {}; run "
        "'smtpgate db migrate' first",
        plan.current, plan.latest);
  }
  return "";
}

}  // namespace smtpgate
