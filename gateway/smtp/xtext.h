#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpgate::smtp {

// RFC 3461 §4 xtext: printable US-ASCII except "+" and "=" stands for itself, every other
// octet becomes "+" and two upper-case hex digits. Postfix expects XCLIENT values in it, so a
// HELO name with spaces or "=" cannot split or forge an attribute.
std::string xtextEncode(std::string_view text);

// The inverse; nullopt for a malformed "+XX" or a character xtext does not allow.
std::optional<std::string> xtextDecode(std::string_view xtext);

}  // namespace smtpgate::smtp
