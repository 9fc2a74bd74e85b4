#include "gateway/admin_api.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "gateway/admin_server.h"

using namespace smtpgate;
using Json = nlohmann::json;

namespace {

constexpr int64_t kNow = 1795737600000;  // 2026-11-27T00:00:00Z

AdminRequest get(const std::string& path, std::multimap<std::string, std::string> query = {}) {
  AdminRequest r;
  r.method = "GET";
  r.path = path;
  r.query = std::move(query);
  r.actor = "api 127.0.0.1";
  return r;
}

// A database path that does not exist: every report is empty, which is enough for routing.
AdminContext emptyContext() {
  AdminContext c;
  c.databasePath = "/nonexistent/smtpgate-admin-test/traces.sqlite";
  c.metricsText = [] { return std::string("# TYPE smtpgate_up gauge\nsmtpgate_up 1\n"); };
  return c;
}

}  // namespace

TEST_CASE("admin API: healthz, metrics and unknown paths", "[admin]") {
  AdminContext c = emptyContext();
  bool draining = false;
  c.draining = [&draining] { return draining; };
  AdminResponse health = handleAdminRequest(get("/healthz"), c, kNow);
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  draining = true;
  CHECK(handleAdminRequest(get("/healthz"), c, kNow).status == 503);

  AdminResponse metrics = handleAdminRequest(get("/metrics"), c, kNow);
  CHECK(metrics.status == 200);
  CHECK(metrics.contentType == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body.find("smtpgate_up 1") != std::string::npos);

  AdminResponse missing = handleAdminRequest(get("/api/v1/nothing"), c, kNow);
  CHECK(missing.status == 404);
  CHECK(Json::parse(missing.body)["error"] == "no such resource: /api/v1/nothing");

  AdminRequest post = get("/api/v1/report");
  post.method = "POST";
  AdminResponse wrong = handleAdminRequest(post, c, kNow);
  CHECK(wrong.status == 405);
  CHECK(wrong.headers["Allow"] == "GET");
}

TEST_CASE("admin API: report, messages and clients read their filters", "[admin]") {
  AdminContext c = emptyContext();
  int flushed = 0;
  c.flushTraces = [&flushed] { ++flushed; };
  AdminResponse day = handleAdminRequest(get("/api/v1/report", {{"since", "30d"}}), c, kNow);
  REQUIRE(day.status == 200);
  CHECK(flushed == 1);  // what was counted is committed before the query
  Json body = Json::parse(day.body);
  CHECK(body["totals"]["all"] == 0);
  CHECK(body["days"].empty());

  Json messages = Json::parse(handleAdminRequest(get("/api/v1/messages"), c, kNow).body);
  CHECK(messages["total"] == 0);
  CHECK(messages["limit"] == 100);  // a page by default
  CHECK(messages["messages"].empty());
  Json clients = Json::parse(
      handleAdminRequest(get("/api/v1/clients", {{"limit", "5"}, {"offset", "10"}}), c, kNow).body);
  CHECK(clients["limit"] == 5);
  CHECK(clients["offset"] == 10);

  AdminResponse csv =
      handleAdminRequest(get("/api/v1/messages", {{"format", "csv"}, {"tls", "1.0"}}), c, kNow);
  CHECK(csv.status == 200);
  CHECK(csv.contentType == "text/csv; charset=utf-8");
  CHECK(csv.headers["Content-Disposition"] ==
        "attachment; filename=\"smtpgate-messages-2026-11-27.csv\"");
  CHECK(csv.body.rfind("time,client_ip,", 0) == 0);

  struct Bad {
    std::multimap<std::string, std::string> query;
    std::string error;
  };
  for (const Bad& bad : {
           Bad{{{"tls", "1.4"}}, "--tls: '1.4' is not one of none, 1.0, 1.1, 1.2, 1.3"},
           Bad{{{"endpoint", "both"}}, "endpoint must be strict or legacy"},
           Bad{{{"by", "week"}}, "by week: must be day, client, sender or message"},
           Bad{{{"format", "xml"}}, "format must be json or csv"},
           Bad{{{"until", "tomorrow"}}, "until 'tomorrow' must be a date such as 2026-11-28"},
           Bad{{{"limit", "0"}}, "limit '0' must be a number 1..100000"},
           Bad{{{"client_ip", "x"}}, "client 'x' is not an IPv4 or IPv6 address"},
       }) {
    AdminResponse r = handleAdminRequest(get("/api/v1/report", bad.query), c, kNow);
    CHECK(r.status == 400);
    CHECK(Json::parse(r.body)["error"] == bad.error);
  }

  c.databasePath.clear();  // trace.store "none"
  CHECK(handleAdminRequest(get("/api/v1/report"), c, kNow).status == 404);
}

TEST_CASE("admin API: reload reports the refusal with every error", "[admin]") {
  AdminContext c = emptyContext();
  std::vector<std::string> errors;
  c.reload = [&errors] { return errors; };
  AdminRequest post = get("/api/v1/reload");
  post.method = "POST";
  CHECK(handleAdminRequest(post, c, kNow).status == 200);
  errors = {"/listeners/0/listen: port must be 1..65535", "/tenants: cannot read x"};
  AdminResponse refused = handleAdminRequest(post, c, kNow);
  CHECK(refused.status == 422);
  CHECK(Json::parse(refused.body)["errors"].size() == 2);
  CHECK(handleAdminRequest(get("/api/v1/reload"), c, kNow).status == 405);
}

TEST_CASE("admin API: tenants and the page go to their own handlers", "[admin]") {
  AdminContext c = emptyContext();
  std::string seen;
  c.tenants = [&seen](const AdminRequest& r) {
    seen = r.method + " " + r.path;
    return AdminResponse::json("{}");
  };
  c.asset = [](const std::string& path, AdminResponse& out) {
    if (path != "/") {
      return false;
    }
    out.contentType = "text/html; charset=utf-8";
    out.body = "<!doctype html>";
    return true;
  };
  AdminRequest put = get("/api/v1/tenants/contoso");
  put.method = "PUT";
  handleAdminRequest(put, c, kNow);
  CHECK(seen == "PUT /api/v1/tenants/contoso");
  handleAdminRequest(get("/api/v1/audit"), c, kNow);
  CHECK(seen == "GET /api/v1/audit");
  CHECK(handleAdminRequest(get("/"), c, kNow).body == "<!doctype html>");
  CHECK(handleAdminRequest(get("/assets/none.js"), c, kNow).status == 404);
}

TEST_CASE("admin server: only the health check and the page's files are public", "[admin]") {
  CHECK(AdminServer::isPublic("GET", "/healthz"));
  CHECK(AdminServer::isPublic("GET", "/"));
  CHECK(AdminServer::isPublic("HEAD", "/index.html"));
  CHECK(AdminServer::isPublic("GET", "/assets/app.js"));
  CHECK_FALSE(AdminServer::isPublic("GET", "/metrics"));
  CHECK_FALSE(AdminServer::isPublic("GET", "/api/v1/report"));
  CHECK_FALSE(AdminServer::isPublic("PUT", "/assets/app.js"));
  CHECK_FALSE(AdminServer::isPublic("POST", "/healthz"));
}
