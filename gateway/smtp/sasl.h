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

// Google's XOAUTH2 client response (no RFC; decoded from base64):
//   "user=" USER ^A "auth=Bearer " TOKEN ^A ^A
// Strict: exactly these two fields in this order, a non-empty USER without control
// characters, a non-empty RFC 6750 b64token, nothing after the final ^A^A. The scheme name
// "Bearer" is matched case-insensitively (RFC 7235 §2.1). Returns USER (the token is for the
// backend that verifies it).
std::optional<std::string> xoauth2User(std::string_view decoded);

// Overwrites a secret's bytes before clearing it (the compiler may not drop the stores), so
// credentials do not linger in freed memory.
void secureWipe(std::string& secret);

}  // namespace smtpgate::smtp
