#pragma once

#include <string>
#include <vector>

namespace smtpgate {

// `smtpgate db migrate|status [--config FILE]`: the schema of the cluster store
// (gateway/db_migrations.h). Exit 0 done / up to date, 1 error (unreachable database, a schema
// newer than this binary, no "store" configured), 2 bad options, 3 (status only) migrations
// are pending.
int commandDb(const std::vector<std::string>& args);

}  // namespace smtpgate
