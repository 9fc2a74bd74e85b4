#include "gateway/time_format.h"

#include <fmt/format.h>

#include <chrono>

namespace smtpgate {
namespace {

struct UtcParts {
  int year;
  unsigned month, day, hour, minute, second, millis;
};

UtcParts split(int64_t unixMs) {
  using namespace std::chrono;
  // Floor, not truncation: a time before 1970 still lands on the right day.
  auto ms = sys_time<milliseconds>(milliseconds(unixMs));
  auto days = floor<std::chrono::days>(ms);
  year_month_day ymd(days);
  auto sinceMidnight = ms - days;
  auto h = duration_cast<hours>(sinceMidnight);
  auto m = duration_cast<minutes>(sinceMidnight - h);
  auto s = duration_cast<seconds>(sinceMidnight - h - m);
  auto rest = duration_cast<milliseconds>(sinceMidnight - h - m - s);
  return {static_cast<int>(ymd.year()),     static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), static_cast<unsigned>(h.count()),
          static_cast<unsigned>(m.count()), static_cast<unsigned>(s.count()),
          static_cast<unsigned>(rest.count())};
}

}  // namespace

std::string utcDay(int64_t unixMs) {
  UtcParts p = split(unixMs);
  return fmt::format("{:04}-{:02}-{:02}", p.year, p.month, p.day);
}

std::string isoUtcSeconds(int64_t unixMs) {
  UtcParts p = split(unixMs);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", p.year, p.month, p.day, p.hour,
                     p.minute, p.second);
}

std::string isoUtcMillis(int64_t unixMs) {
  UtcParts p = split(unixMs);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", p.year, p.month, p.day, p.hour,
                     p.minute, p.second, p.millis);
}

}  // namespace smtpgate
