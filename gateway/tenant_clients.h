#pragma once

// The two ways `smtpgate tenant` reaches the tenants: the running gateway's admin API, or the
// tenants file itself (--offline). Both speak the API's requests and answers, so the commands
// are written once.

#include <map>
#include <string>

#include "gateway/admin_client.h"
#include "gateway/tenant_admin.h"

namespace smtpgate {

struct TenantReply {
  int status = 0;
  TenantJson body;  // discarded when the answer was not JSON
};

// Prints an error answer to stderr: the message, then every validation error with its pointer.
// Returns 1, the exit code of an operational error.
int printTenantFailure(const TenantReply& reply);

class TenantClient {
 public:
  virtual ~TenantClient() = default;
  // A GET; false when the gateway cannot be asked at all (the reason is printed).
  virtual bool get(const std::string& path, const std::multimap<std::string, std::string>& query,
                   TenantReply& reply) = 0;
  // A read-modify-write of one tenant; false when the gateway cannot be asked at all.
  virtual bool edit(const std::string& id, const TenantMutation& mutate, TenantReply& reply) = 0;
  // Where a change took effect, for the command's output.
  virtual std::string appliedNote() const = 0;
};

// Edits the tenants file under its lock, as the API does (tenant_admin.h).
class OfflineClient : public TenantClient {
 public:
  explicit OfflineClient(TenantAdminContext ctx) : ctx_(std::move(ctx)) {}
  bool get(const std::string& path, const std::multimap<std::string, std::string>& query,
           TenantReply& reply) override;
  bool edit(const std::string& id, const TenantMutation& mutate, TenantReply& reply) override;
  std::string appliedNote() const override;

 private:
  TenantAdminContext ctx_;
};

// GET, change, PUT with the revision read, through the admin API: a change made by someone else
// in between is not overwritten (409 "current_revision": read again and redo, a few times).
class ApiClient : public TenantClient {
 public:
  ApiClient(const ListenAddress& listen, std::string token, std::string actor)
      : http_(listen, std::move(token), std::move(actor)) {}
  bool get(const std::string& path, const std::multimap<std::string, std::string>& query,
           TenantReply& reply) override;
  bool edit(const std::string& id, const TenantMutation& mutate, TenantReply& reply) override;
  std::string appliedNote() const override { return "applied to new sessions now"; }

 private:
  bool call(evhttp_cmd_type method, const std::string& uri, const std::string& body,
            TenantReply& reply);
  AdminClient http_;
};

}  // namespace smtpgate
