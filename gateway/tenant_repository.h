#pragma once

// Where the tenants and their audit trail live: the tenants file with STATE_DIR/audit.jsonl
// (tenant_admin.cc), or PostgreSQL in cluster mode (pg_tenant_store.h). tenant_admin.h runs the
// same read-modify-validate-write over either, so the API, the page and `smtpgate tenant` behave
// the same whatever the store.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/tenants.h"

namespace smtpgate {

using TenantJson = nlohmann::ordered_json;

// One exclusive change in progress: the store is locked from begin() until the object goes.
class TenantChange {
 public:
  virtual ~TenantChange() = default;  // releases the lock; an uncommitted change is undone
  // The tenants as they are now, inside the lock (canonical tenant objects in document order).
  virtual const TenantJson& tenants() const = 0;
  // Stores the validated directory with its audit entry, both or neither. False with `error`.
  virtual bool commit(const policy::TenantDirectory& next, const TenantJson& auditEntry,
                      std::string& error) = 0;
};

class TenantRepository {
 public:
  virtual ~TenantRepository() = default;
  // Every tenant (canonical tenant objects in document order). False when the store cannot be
  // read: `status` (409 invalid store, 503 unreachable, 500 otherwise), `error` and, for an
  // invalid document, the validation `errors`.
  virtual bool read(TenantJson& tenants, int& status, std::string& error,
                    std::vector<std::string>& errors) = 0;
  // Starts a change, or null with the same failure fields as read().
  virtual std::unique_ptr<TenantChange> begin(int& status, std::string& error,
                                              std::vector<std::string>& errors) = 0;
  // The audit entries of `tenant` ("" = all, compared case-insensitively), newest first.
  virtual bool audit(const std::string& tenant, int limit, std::vector<TenantJson>& entries,
                     std::string& error) = 0;
};

}  // namespace smtpgate
