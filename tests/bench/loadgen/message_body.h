#pragma once

#include <cstdint>
#include <string>

namespace smtpgate::loadgen {

// One test message in its DATA wire form, generated once and shared by every session:
// RFC 5322 headers, then lines of 76 characters (CRLF), about `size` octets before
// dot-stuffing; every 40th line starts with a dot, so that dot-stuffing is exercised.
// The result is dot-stuffed and ends with the terminating ".\r\n".
std::string makeMessageWire(int64_t size, const std::string& from, const std::string& to);

}  // namespace smtpgate::loadgen
