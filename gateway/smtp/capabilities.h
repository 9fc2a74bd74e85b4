#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/reply_parser.h"

namespace smtpgate::smtp {

// One EHLO keyword line of the backend (RFC 5321 §4.1.1.1): "AUTH PLAIN LOGIN" is keyword
// "AUTH" with params {"PLAIN", "LOGIN"}.
struct Capability {
  std::string keyword;              // upper-cased
  std::vector<std::string> params;  // as announced, split at spaces

  // "KEYWORD param param".
  std::string line() const;
  bool operator==(const Capability&) const = default;
};
using Capabilities = std::vector<Capability>;

// The keywords of an EHLO reply, in the backend's order. The first line (the server's name
// and greeting text) is not a keyword. Empty lines and repeated keywords (the second one) are
// left out.
Capabilities parseEhlo(const Reply& reply);

// What the post-TLS EHLO offers clients (SPEC section 5), in the backend's order: an
// allow-list, because an extension the gateway cannot relay must not be announced.
//  - kept: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, DSN, SMTPUTF8, AUTH (only the mechanisms
//    the session relays: PLAIN, LOGIN, XOAUTH2; upper-cased; dropped when none), SIZE (capped: none, 0 or above maxMessageBytes gives
//    maxMessageBytes; maxMessageBytes 0 means no cap of ours);
//  - CHUNKING and BINARYMIME only when relayBdat;
//  - dropped: STARTTLS (the gateway owns TLS), XCLIENT, XFORWARD and PROXY-related keywords
//    (meant for the gateway only), VRFY/ETRN/HELP/EXPN (answered by the gateway itself),
//    the old "AUTH=" form, every X- extension and every keyword not listed above.
std::vector<std::string> filterForClients(const Capabilities& caps, std::uint64_t maxMessageBytes,
                                          bool relayBdat = false);

// The backend announced `keyword` (case-insensitive).
bool has(const Capabilities& caps, std::string_view keyword);
// The backend announced AUTH with `mechanism` (case-insensitive).
bool offersAuth(const Capabilities& caps, std::string_view mechanism);
// The attributes of "XCLIENT NAME ADDR ..." upper-cased, in the backend's order; empty when
// XCLIENT is not announced.
std::vector<std::string> xclientAttributes(const Capabilities& caps);

}  // namespace smtpgate::smtp
