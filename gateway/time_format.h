#pragma once

#include <cstdint>
#include <string>

namespace smtpgate {

// UTC text forms of Unix-millisecond times, one implementation for the spool, the trace store,
// the report and the configuration (a time before 1970 still lands on the right day).
std::string utcDay(int64_t unixMs);         // "2026-11-27": the trace store's `day`
std::string isoUtcSeconds(int64_t unixMs);  // "2026-11-27T22:14:07Z"
std::string isoUtcMillis(int64_t unixMs);   // "2026-11-27T22:14:07.123Z"

}  // namespace smtpgate
