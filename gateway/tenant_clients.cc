#include "gateway/tenant_clients.h"

#include <fmt/format.h>

#include <cstdio>

namespace smtpgate {
namespace {

using Json = TenantJson;
using Reply = TenantReply;

constexpr int kRetries = 3;  // lost-update retries of one change through the API

Reply toReply(const AdminResponse& response) {
  Reply r;
  r.status = response.status;
  r.body = Json::parse(response.body, nullptr, false);
  return r;
}

}  // namespace

int printTenantFailure(const TenantReply& reply) {
  std::string message = reply.body.is_object() && reply.body.contains("error")
                            ? reply.body["error"].get<std::string>()
                            : fmt::format("the gateway answered {}", reply.status);
  std::fprintf(stderr, "smtpgate tenant: %s\n", message.c_str());
  if (reply.body.is_object() && reply.body.contains("errors")) {
    for (const auto& e : reply.body["errors"]) {
      std::fprintf(stderr, "  %s\n",
                   e.is_string() ? e.get<std::string>().c_str() : e.dump().c_str());
    }
  }
  return 1;
}

bool OfflineClient::get(const std::string& path,
                        const std::multimap<std::string, std::string>& query, TenantReply& reply) {
  AdminRequest req;
  req.method = "GET";
  req.path = path;
  req.query = query;
  req.actor = offlineActor();
  reply = toReply(handleTenantRequest(req, ctx_));
  return true;
}

bool OfflineClient::edit(const std::string& id, const TenantMutation& mutate, TenantReply& reply) {
  reply = toReply(editTenant(ctx_, id, offlineActor(), mutate));
  return true;
}

std::string OfflineClient::appliedNote() const {
  if (ctx_.repository) {
    return "stored in PostgreSQL; every running instance applies it within a second";
  }
  return fmt::format("written to {}; a running gateway applies it on SIGHUP", ctx_.tenantsPath);
}

bool ApiClient::get(const std::string& path, const std::multimap<std::string, std::string>& query,
                    TenantReply& reply) {
  std::string uri = path;
  char sep = '?';
  for (const auto& [key, value] : query) {
    uri += sep + key + "=" + AdminClient::encode(value);
    sep = '&';
  }
  return call(EVHTTP_REQ_GET, uri, "", reply);
}

bool ApiClient::edit(const std::string& id, const TenantMutation& mutate, TenantReply& reply) {
  const std::string path = "/api/v1/tenants/" + id;
  // GET, change, PUT with the revision read: a change made by someone else in between is not
  // overwritten (409 with "current_revision"): read again and redo the change.
  for (int attempt = 0; attempt < kRetries; ++attempt) {
    if (!call(EVHTTP_REQ_GET, path, "", reply)) {
      return false;
    }
    Json tenant;
    std::string revision = "none";
    if (reply.status == 200 && reply.body.is_object() && reply.body.contains("tenant")) {
      tenant = reply.body["tenant"];
      revision = reply.body.value("revision", std::string("none"));
    } else if (reply.status != 404) {
      return true;
    }
    TenantMutationError refused = mutate(tenant);
    if (refused.status != 0) {
      reply.status = refused.status;
      reply.body = Json{{"error", refused.message}};
      return true;
    }
    const std::string uri = path + "?revision=" + AdminClient::encode(revision);
    bool ok = tenant.is_null() ? call(EVHTTP_REQ_DELETE, uri, "", reply)
                               : call(EVHTTP_REQ_PUT, uri, tenant.dump(), reply);
    if (!ok) {
      return false;
    }
    if (!(reply.status == 409 && reply.body.is_object() &&
          reply.body.contains("current_revision"))) {
      return true;
    }
  }
  return true;
}

bool ApiClient::call(evhttp_cmd_type method, const std::string& uri, const std::string& body,
                     TenantReply& reply) {
  AdminClient::Answer x = http_.request(method, uri, body);
  if (x.status == 0) {
    std::fprintf(stderr,
                 "smtpgate tenant: cannot reach the admin API at http://%s (%s); is the gateway "
                 "running? Use --offline to edit the tenants file directly\n",
                 http_.hostHeader().c_str(), x.error.empty() ? "no answer" : x.error.c_str());
    return false;
  }
  reply.status = x.status;
  reply.body = Json::parse(x.body, nullptr, false);
  if (reply.body.is_discarded()) {
    reply.body = Json{{"error", fmt::format("the admin API answered {} without JSON", x.status)}};
  }
  if (x.status == 401 || x.status == 403) {
    reply.body["error"] = fmt::format("the admin API refused the token ({}): {}", x.status,
                                      reply.body.value("error", std::string("unauthorized")));
  }
  return true;
}

}  // namespace smtpgate
