#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smtpgate::smtp {

// The path of MAIL FROM / RCPT TO (RFC 5321 §4.1.2), what follows the colon.
enum class PathStatus {
  Ok,
  Syntax,      // no <...>, or junk right after the '>'
  BadAddress,  // <...> present, but its content is not a valid mailbox (checked by the caller)
};
struct ParsedPath {
  PathStatus status = PathStatus::Syntax;
  std::string address;      // without <> and without an (ignored, §4.1.1.3) source route
  std::string_view params;  // the ESMTP parameters after the '>', leading spaces removed
};
// Spaces before the '<' are tolerated (clients write "MAIL FROM: <a@b>").
ParsedPath parsePath(std::string_view text);

// local@domain where local is a dot-string or a quoted string and domain a host name or an
// address literal ([192.0.2.1], [IPv6:...]). UTF-8 is allowed (RFC 6531) but must be well
// formed; spaces and control characters are refused outside quotes, control characters
// inside them too.
bool isValidMailbox(std::string_view address);
bool isValidDomain(std::string_view domain);

// ESMTP parameters separated by spaces.
std::vector<std::string_view> splitParams(std::string_view text);

}  // namespace smtpgate::smtp
