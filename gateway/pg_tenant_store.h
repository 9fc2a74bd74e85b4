#pragma once

// Cluster mode: the tenants and their audit trail in PostgreSQL (schema in
// gateway/db/migrations). A change runs in one transaction: lock tenant_state (FOR UPDATE),
// read the tenants, [the caller validates], rewrite the tenants, increment tenant_state.version,
// insert the audit entry, NOTIFY smtpgate_tenants with the new version, commit. Every instance
// LISTENs (tenant_watcher.h) and installs the new snapshot.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/pg_connection.h"
#include "gateway/tenant_repository.h"

namespace smtpgate {

inline constexpr const char* kTenantChannel = "smtpgate_tenants";

// A decoded snapshot: the version of tenant_state and the validated directory.
struct TenantSnapshot {
  int64_t version = 0;
  policy::TenantDirectory directory;
  TenantJson tenants = TenantJson::array();  // canonical tenant objects in document order
};

// Decodes the `doc` column of the tenants rows (in position order) into a snapshot: the same
// parser and the same checks as the tenants file. False with the errors (pointers into the
// document /tenants/N/...) when a row is not a valid tenant.
bool decodeTenantSnapshot(const std::vector<std::string>& docs, TenantSnapshot& out,
                          std::vector<std::string>& errors);

// Reads tenant_state.version and the tenants in one consistent read.
bool readTenantSnapshot(PgConnection& db, TenantSnapshot& out, std::vector<std::string>& errors,
                        std::string& error);

// INSERT INTO tenants (id, position, doc) VALUES ($1, $2, $3), ($4, $5, $6), ... for `rows`
// rows (at least 1): the values are always parameters.
std::string buildTenantInsert(std::size_t rows);

class PgTenantStore : public TenantRepository {
 public:
  explicit PgTenantStore(std::string conninfo) : conninfo_(std::move(conninfo)) {}

  bool read(TenantJson& tenants, int& status, std::string& error,
            std::vector<std::string>& errors) override;
  std::unique_ptr<TenantChange> begin(int& status, std::string& error,
                                      std::vector<std::string>& errors) override;
  bool audit(const std::string& tenant, int limit, std::vector<TenantJson>& entries,
             std::string& error) override;

  // The tenant_state version of this store's last committed change (0 before the first).
  int64_t lastCommittedVersion() const { return committed_.load(); }

 private:
  friend class PgTenantChange;
  // The connection, opened or reopened when needed; null with `error` when PostgreSQL is away.
  PgConnection* connection(std::string& error);

  std::string conninfo_;
  std::mutex mutex_;  // one user of the connection at a time; a change holds it throughout
  std::unique_ptr<PgConnection> db_;
  std::atomic<int64_t> committed_{0};
};

}  // namespace smtpgate
