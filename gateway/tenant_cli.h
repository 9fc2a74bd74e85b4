#pragma once

#include <string>
#include <vector>

namespace smtpgate {

// `smtpgate tenant list|show|set|exception add|exception remove|delete|audit` (SPEC section 2):
// through the running gateway's admin API, or on the tenants file itself with --offline.
// Returns the exit code: 0 done, 1 operational error, 2 bad usage.
int commandTenant(const std::vector<std::string>& args);

// The usage text of `smtpgate tenant --help`.
const char* tenantUsage();

}  // namespace smtpgate
