#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gateway/admin_http.h"

namespace smtpgate {

// What the admin API reaches of the running gateway. Functions rather than objects so that the
// routing below is tested without a server, and so that each door (metrics, tenants, page) is
// owned by its own file.
struct AdminContext {
  std::string databasePath;                  // STATE_DIR/traces.sqlite; "" when traces are off
  std::string postgres;                      // cluster mode: the reports read PostgreSQL
  std::function<void()> flushTraces;         // commit what is queued before a report query
  std::function<std::string()> metricsText;  // Prometheus text
  std::function<bool()> draining;            // /healthz says 503 while the gateway stops
  // "" when the configuration was reloaded, else why not (one error per element).
  std::function<std::vector<std::string>()> reload;
  // /api/v1/tenants[/ID] and /api/v1/audit.
  std::function<AdminResponse(const AdminRequest&)> tenants;
  // The page's static files; false when `path` is not one.
  std::function<bool(const std::string& path, AdminResponse& out)> asset;
};

// Routes one request (SPEC section 7):
//   GET  /healthz                 "ok" (503 "draining" while stopping); no token needed
//   GET  /metrics                 Prometheus text format 0.0.4
//   GET  /api/v1/report           ?since=7d|24h|2026-11-01 &until=2026-11-28 &tenant= &endpoint=
//                                 &tls=1.0,1.1 &by=day|client|sender &format=json|csv
//   GET  /api/v1/messages         the same filters plus &date= &client_ip= &limit= &offset=
//                                 (JSON: 100 rows unless limit says otherwise); newest first
//   GET  /api/v1/clients          the legacy-client inventory, filters and paging as above
//   GET|PUT|DELETE /api/v1/tenants[/ID], GET /api/v1/audit    -> context.tenants
//   POST /api/v1/reload           SIGHUP's reload; 422 with the errors when refused
//   GET  /, /assets/*             the report page
// Unknown paths are 404, known paths with another method 405. `nowMs` is the clock of the
// report's "since" and "until".
AdminResponse handleAdminRequest(const AdminRequest& request, const AdminContext& context,
                                 int64_t nowMs);

}  // namespace smtpgate
