#pragma once

// Tenant administration (SPEC sections 2, 3, 7): the `Set-TransportConfig -AllowLegacyTLSClients`
// of smtpgate. One code path for the admin API and for `smtpgate tenant --offline`:
//
//   lock TENANTS.lock (flock, exclusive) -> re-read the tenants file -> change one tenant ->
//   validate the whole new document with parseTenants -> write it atomically (temp file in the
//   same directory, fsync, rename, fsync the directory; the file's mode kept) -> apply it to the
//   running gateway -> append the audit entry (O_APPEND, fsync) -> unlock -> answer.
//
// The file is re-read inside the lock every time, so a hand edit made between two API calls is
// never overwritten by a stale in-memory view. In cluster mode the same steps run over
// PostgreSQL (TenantAdminContext::repository, gateway/pg_tenant_store.h): the lock is a row lock
// of the change's transaction, and the audit row and the NOTIFY are part of it.
//
// HTTP contract (bodies are JSON; tenant objects are those of the tenants file, keys in the file's
// order, each exception with an extra "index" on output that is ignored on input):
//   GET    /api/v1/tenants          200 {"tenants": [TENANT...]}
//   GET    /api/v1/tenants/ID       200 {"tenant": TENANT, "revision": "HEX"} | 404
//   PUT    /api/v1/tenants/ID[?revision=HEX]   body TENANT ("id" absent or equal to ID); a full
//          replacement: an absent "allow_legacy_tls_clients" is false, absent "exceptions" none
//          200 {"tenant": NEW, "revision": "HEX", "audit": ENTRY}
//          200 {"tenant": T, "revision": "HEX", "audit": null, "unchanged": true}  (no write)
//          201 as 200 when ID was unknown (created; revision "none" asserts it still is)
//          400 invalid JSON or not an object
//          409 {"error", "current_revision"}: the tenant changed since that revision was read
//          409 {"error", "errors"?}: no tenants file configured, or the file on disk is invalid
//          422 {"error": "...", "errors": ["/tenants/1/domains/0: ..."]} (document pointers)
//   DELETE /api/v1/tenants/ID[?revision=HEX]   200 {"deleted": "ID", "audit": ENTRY} | 404
//   GET    /api/v1/audit[?tenant=ID][&limit=N]  200 {"audit": [ENTRY...]} newest first
//          (N 1..10000, default 100; 400 otherwise)
//   other methods: 405 (with an Allow header); other paths: 404.
// ENTRY: {"time": "2026-11-28T01:02:03Z", "actor": "...", "tenant": "ID",
//         "action": "set|create|delete|exception add|exception remove",
//         "old": TENANT|null, "new": TENANT|null}

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "gateway/admin_http.h"
#include "gateway/tenant_repository.h"
#include "policy/tenants.h"

namespace smtpgate {

struct TenantAdminContext {
  std::string tenantsPath;  // Config::tenantsPath; "" = no tenants file (read-only, empty)
  std::string auditPath;    // STATE_DIR/audit.jsonl
  // Swaps the running runtime's tenants; empty offline (the gateway picks the file up on SIGHUP).
  std::function<void(const policy::TenantDirectory&)> apply;
  // Cluster mode: the tenants and the audit trail in PostgreSQL; null = the two files above.
  std::shared_ptr<TenantRepository> repository;
};

// Serves /api/v1/tenants, /api/v1/tenants/ID and /api/v1/audit (see above).
AdminResponse handleTenantRequest(const AdminRequest& req, const TenantAdminContext& ctx);

// What a change may refuse with: status 0 = go on; otherwise the HTTP status and message.
struct TenantMutationError {
  int status = 0;
  std::string message;
};

// Changes one tenant object in place (the file's format, without "index"): receives null when the
// tenant does not exist; leaving or making it null deletes it.
using TenantMutation = std::function<TenantMutationError(TenantJson& tenant)>;

// The read-modify-write of one tenant under the lock, validated, written, applied and audited.
// `expectedRevision` ("" = any) guards against lost updates: 409 when the tenant changed since.
// The answer is that of PUT (200/201 with "tenant", "revision", "audit"; 200 {"deleted"} when the
// mutation deleted it; errors as above). The action in the audit entry is inferred from old and
// new: create, delete, "exception add"/"exception remove" (exactly one exception more/less and
// nothing else changed), else set.
AdminResponse editTenant(const TenantAdminContext& ctx, const std::string& id,
                         const std::string& actor, const TenantMutation& mutate,
                         const std::string& expectedRevision = "");

// The revision of a tenant object as GET returns it (a hash of its canonical form; "none" for a
// tenant that does not exist).
std::string tenantRevision(const TenantJson& tenant);

// "offline USER@HOST" (effective user and host name), the actor of `smtpgate tenant --offline`.
std::string offlineActor();

}  // namespace smtpgate
