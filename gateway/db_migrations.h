#pragma once

// Versioned schema migrations of the cluster store (PostgreSQL). The migrations are the files
// gateway/db/migrations/NNNN_name.sql, embedded in the binary; the database records the ones it
// has run in schema_migrations. `smtpgate db migrate` runs the missing ones in order, each in its
// own transaction, under an advisory lock (two instances migrating at once take turns); a second
// run finds nothing to do. A database with a migration this binary does not know is refused:
// an older smtpgate never touches a newer schema.

#include <string>
#include <utility>
#include <vector>

namespace smtpgate {

class PgConnection;

struct Migration {
  int version = 0;   // NNNN of the file name, from 1
  std::string name;  // "0001_initial"
  std::string sql;
};

// Reads (file name, SQL) pairs into migrations sorted by version. Refuses names that are not
// NNNN_name.sql, duplicate versions and gaps (1, 2, 4), with the file name in `error`.
bool parseMigrations(const std::vector<std::pair<std::string, std::string>>& files,
                     std::vector<Migration>& out, std::string& error);

// The migrations embedded in this binary (parsed once; a bad set is a build error caught by the
// unit tests).
const std::vector<Migration>& builtinMigrations();

struct MigrationPlan {
  int current = 0;  // highest version applied, 0 for an empty database
  int latest = 0;   // highest version known to this binary
  std::vector<const Migration*> pending;  // in order
  std::string error;  // non-empty: refuse (newer schema, unknown or missing versions)
};

// What to run, given the versions the database has applied.
MigrationPlan planMigrations(const std::vector<Migration>& available,
                             const std::vector<int>& applied);

// Runs the pending migrations; `done` receives one line per migration run. False with `error`.
bool migrateSchema(PgConnection& db, std::vector<std::string>& done, std::string& error);

// Reads the applied versions (an empty list when schema_migrations does not exist yet) and
// plans against the built-in migrations.
bool schemaPlan(PgConnection& db, MigrationPlan& plan, std::string& error);

// "" when the database has exactly the schema of this binary; otherwise the reason for `run`
// to refuse, naming `smtpgate db migrate` when migrations are missing.
std::string schemaProblem(PgConnection& db);

}  // namespace smtpgate
