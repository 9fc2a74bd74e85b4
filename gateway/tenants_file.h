#pragma once

// The tenants file (SPEC section 3): which domains form a tenant, whether the tenant lets
// legacy TLS clients in, and its exceptions.
//
//   {"tenants": [
//     {"id": "contoso", "domains": ["contoso.com", "contoso.org"],
//      "allow_legacy_tls_clients": false,
//      "exceptions": [{"client": "192.0.2.10/32", "reason": "scanner", "expires": "2027-03-31"},
//                     {"user": "printer@contoso.com"}]}
//   ]}
//
// Hand-edited and rewritten by the admin API, so every problem is reported with the JSON
// pointer of the offending value inside the file, all of them, in document order.

#include <string>
#include <vector>

#include "gateway/config.h"
#include "policy/tenants.h"

namespace smtpgate {

// Parses and validates a tenants document. On success replaces `out` and returns true; on any
// problem appends the errors ("/tenants/0/exceptions/1/client: \"192.0.2.300/32\" is not an
// IPv4 or IPv6 network"), leaves `out` untouched (a bad reload keeps the tenants in force) and
// returns false.
//
// An exception's "expires" is a date "YYYY-MM-DD" (the exception holds through the end of that
// day UTC, so expires = the next midnight UTC) or an RFC 3339 time.
bool parseTenants(const std::string& jsonText, policy::TenantDirectory& out,
                  std::vector<ConfigError>& errors);
// Reads `path` and parses it; an unreadable file or invalid JSON is one error with an empty
// pointer ("cannot read /x/tenants.json: No such file or directory", "invalid JSON at ...").
bool loadTenantsFile(const std::string& path, policy::TenantDirectory& out,
                     std::vector<ConfigError>& errors);

// The directory as a tenants document that parseTenants reads back to the same directory:
// two-space indentation, one exception per line, keys in a fixed order. An expiry at midnight
// UTC is written as the date of the day before ("2027-03-31" for 2027-04-01T00:00:00Z),
// any other as an RFC 3339 time in UTC.
std::string tenantsToJson(const policy::TenantDirectory& directory);

}  // namespace smtpgate
