#pragma once

#include <string>
#include <vector>

namespace smtpgate {

// SPEC section 8: bind the (privileged) ports and read the keys as root, then run as `user`.
// The files the gateway keeps writing (the state directory, the spool, the trace database and
// the audit trail) are handed to the user first. Returns "" or why the switch failed; a
// failure is fatal at start-up (the gateway never runs as root by accident).
//
// `ownedPaths`: files and directories to chown to the user when they exist (not recursively).
// Not running as root: fine when already running as `user`, an error otherwise.
std::string dropPrivileges(const std::string& user, const std::vector<std::string>& ownedPaths);

}  // namespace smtpgate
