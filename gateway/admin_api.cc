#include "gateway/admin_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "gateway/report.h"
#include "gateway/time_format.h"

namespace smtpgate {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kDefaultPage = 100;

AdminResponse methodNotAllowed(const std::string& allow) {
  AdminResponse r = AdminResponse::error(405, "method not allowed; use " + allow);
  r.headers["Allow"] = allow;
  return r;
}

std::string dumpJson(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// The report query of the request's parameters; false with a 400 in `error`.
bool reportQuery(const AdminRequest& req, ReportQuery::By by, int64_t nowMs, ReportQuery& q,
                 std::string& error) {
  q.by = by;
  if (req.has("by") && !parseReportBy(req.param("by"), q.by, error)) {
    return false;
  }
  if (!parseSince(req.param("since", "7d"), nowMs, q.sinceMs, error)) {
    return false;
  }
  q.untilMs = nowMs;
  if (req.has("until")) {
    // A date: through the end of that UTC day.
    int64_t start = 0;
    const std::string until = req.param("until");
    if (until.size() != 10 || !parseSince(until, nowMs, start, error)) {
      error = fmt::format("until '{}' must be a date such as 2026-11-28", until);
      return false;
    }
    q.untilMs = start + 86400000 - 1;
  }
  q.tenant = req.param("tenant");
  q.endpoint = req.param("endpoint");
  if (!q.endpoint.empty() && q.endpoint != "strict" && q.endpoint != "legacy") {
    error = "endpoint must be strict or legacy";
    return false;
  }
  if (req.has("tls") && !req.param("tls").empty() &&
      !parseTlsList(req.param("tls"), q.tls, error)) {
    return false;
  }
  q.clientIp = req.param("client_ip");
  q.day = req.param("date");
  if (!parseReportFilters(q, req.param("limit"), req.param("offset"), error)) {
    return false;
  }
  return true;
}

AdminResponse report(const AdminRequest& req, const AdminContext& ctx, ReportQuery::By by,
                     const char* name, int64_t nowMs) {
  if (req.method != "GET") {
    return methodNotAllowed("GET");
  }
  ReportQuery q;
  std::string error;
  if (!reportQuery(req, by, nowMs, q, error)) {
    return AdminResponse::error(400, error);
  }
  const std::string format = req.param("format", "json");
  if (format != "json" && format != "csv") {
    return AdminResponse::error(400, "format must be json or csv");
  }
  const bool paged = q.by == ReportQuery::By::Client || q.by == ReportQuery::By::Message;
  if (paged && q.limit == 0 && format == "json") {
    q.limit = kDefaultPage;  // a page, not the whole table; CSV exports everything
  }
  if (ctx.databasePath.empty() && ctx.postgres.empty()) {
    return AdminResponse::error(404, "traces are off (trace.store is \"none\")");
  }
  if (ctx.flushTraces) {
    ctx.flushTraces();  // what the gateway has counted is in the answer
  }
  Json result = runReport(ReportStore{ctx.databasePath, ctx.postgres}, q, error);
  if (!error.empty()) {
    // Cluster mode with PostgreSQL away: the database is unavailable, not broken.
    const bool unavailable = !ctx.postgres.empty() && reportStoreUnavailable(error);
    return AdminResponse::error(unavailable ? 503 : 500, error);
  }
  if (format == "json") {
    return AdminResponse::json(dumpJson(result));
  }
  AdminResponse r;
  r.contentType = "text/csv; charset=utf-8";
  r.body = formatCsv(result, q.by);
  r.headers["Content-Disposition"] =
      fmt::format("attachment; filename=\"smtpgate-{}-{}.csv\"", name, utcDay(nowMs));
  return r;
}

}  // namespace

AdminResponse handleAdminRequest(const AdminRequest& req, const AdminContext& ctx, int64_t nowMs) {
  const std::string& path = req.path;
  if (path == "/healthz") {
    if (req.method != "GET") {
      return methodNotAllowed("GET");
    }
    AdminResponse r;
    r.contentType = "text/plain; charset=utf-8";
    const bool draining = ctx.draining && ctx.draining();
    r.status = draining ? 503 : 200;
    r.body = draining ? "draining\n" : "ok\n";
    return r;
  }
  if (path == "/metrics") {
    if (req.method != "GET") {
      return methodNotAllowed("GET");
    }
    AdminResponse r;
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx.metricsText ? ctx.metricsText() : "";
    return r;
  }
  if (path == "/api/v1/report") {
    return report(req, ctx, ReportQuery::By::Day, "report", nowMs);
  }
  if (path == "/api/v1/messages") {
    return report(req, ctx, ReportQuery::By::Message, "messages", nowMs);
  }
  if (path == "/api/v1/clients") {
    return report(req, ctx, ReportQuery::By::Client, "clients", nowMs);
  }
  if (path == "/api/v1/reload") {
    if (req.method != "POST") {
      return methodNotAllowed("POST");
    }
    if (!ctx.reload) {
      return AdminResponse::error(503, "reload is not available");
    }
    if (ctx.draining && ctx.draining()) {
      return AdminResponse::error(503, "the gateway is stopping");
    }
    std::vector<std::string> errors = ctx.reload();
    if (errors.empty()) {
      return AdminResponse::json(dumpJson(Json{{"reloaded", true}}));
    }
    AdminResponse r =
        AdminResponse::error(422, "reload refused: the running configuration stays in force");
    Json body{{"error", "reload refused: the running configuration stays in force"},
              {"errors", errors}};
    r.body = dumpJson(body);
    return r;
  }
  if (path == "/api/v1/tenants" || path.rfind("/api/v1/tenants/", 0) == 0 ||
      path == "/api/v1/audit") {
    if (!ctx.tenants) {
      return AdminResponse::error(404, "tenant administration is not available");
    }
    return ctx.tenants(req);
  }
  if (req.method == "GET" && ctx.asset) {
    AdminResponse r;
    if (ctx.asset(path, r)) {
      return r;
    }
  }
  return AdminResponse::error(404, "no such resource: " + path);
}

}  // namespace smtpgate
