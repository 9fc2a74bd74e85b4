#pragma once

// The admin HTTP interface between the server (gateway/admin_server.cc: libevent's evhttp on its
// own thread, bearer-token check, limits) and the handlers that answer it. Handlers are plain
// functions of a request, so that unit tests call them without a socket.

#include <map>
#include <string>

namespace smtpgate {

struct AdminRequest {
  std::string method;  // "GET", "PUT", "POST", ...
  std::string path;    // decoded path without the query: "/api/v1/tenants/contoso"
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::string body;    // at most the server's body limit
  std::string actor;   // who asks, for the audit trail: "api 127.0.0.1" or the
                       // X-Smtpgate-Actor header of the CLI: "cli root@host (127.0.0.1)"

  // The first value of a query parameter, or `fallback`.
  std::string param(const std::string& name, const std::string& fallback = "") const {
    auto it = query.find(name);
    return it == query.end() ? fallback : it->second;
  }
  bool has(const std::string& name) const { return query.count(name) > 0; }
};

struct AdminResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers (Content-Disposition, Cache-Control)

  // {"error": message} with the status.
  static AdminResponse error(int status, const std::string& message);
  static AdminResponse json(const std::string& body, int status = 200);
};

}  // namespace smtpgate
