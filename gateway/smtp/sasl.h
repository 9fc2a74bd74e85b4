#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpgate::smtp {

// RFC 4648 §4 base64, strict: the standard alphabet, length a multiple of 4, correct padding.
// SMTP AUTH (RFC 4954 §4) carries its responses this way; anything else is a client error.
std::optional<std::string> base64Decode(std::string_view text);
std::string base64Encode(std::string_view bytes);

// A SASL response line of RFC 4954 §4: "=" (or an empty line) is an empty response.
std::optional<std::string> decodeSaslResponse(std::string_view line);

// RFC 4616: message = [authzid] NUL authcid NUL passwd. The authcid must not be empty.
struct PlainCredentials {
  std::string authzid;
  std::string authcid;
  std::string password;
};
std::optional<PlainCredentials> parsePlain(std::string_view decoded);

}  // namespace smtpgate::smtp
