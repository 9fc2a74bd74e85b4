#pragma once

#include <string>
#include <variant>
#include <vector>

#include "gateway/smtp/message.h"

namespace smtpgate::smtp {

// What a session asks its connection to do. The connection carries actions out in order.
struct Write {
  std::string bytes;  // one or more complete replies, CRLF-terminated
};
// Begin the TLS handshake on the plaintext connection (the 220 was written just before).
struct StartTls {};
// Close the connection once every earlier Write has gone out (close_notify first under TLS).
struct Close {};
// Check credentials (off the event loop), then call session.onAuthResult().
struct Authenticate {
  std::string mechanism;  // "PLAIN" or "LOGIN"
  std::string authzid;
  std::string user;
  std::string password;
};
// Store / relay the message, then call session.onDeliveryResult().
struct Deliver {
  Message message;
};
// (Re)arm the inactivity timer: the session calls onTimeout() when `seconds` pass without
// input from the client. 0 disarms it.
struct SetTimeout {
  unsigned seconds;
};


// Relay mode (backend "smtp", SPEC section 6). The connection owns the backend link; the
// session says what to send and gets every reply back, in order.
//
// Open the backend (connect, greeting, EHLO, XCLIENT or PROXY header, optional STARTTLS, EHLO
// again), then call session.onBackendReady(). Emitted at the first command that needs the
// backend (AUTH, MAIL), never for sessions that only handshake, are refused, or quit.
struct OpenBackend {};
// One command line for the backend, CRLF-terminated; its reply comes back through
// session.onBackendReply(). Several may be emitted in a row (pipelining): replies come back in
// the same order.
struct BackendCommand {
  std::string line;
};
// Message bytes for the backend during DATA, already encoded for the wire (CRLF line ends,
// dot-stuffed). No reply.
struct BackendData {
  std::string bytes;
};
// The end of the message: the connection sends the final "." line; the reply comes back
// through onBackendReply(). Only emitted for a message the gateway accepted completely.
struct BackendEndData {};
// Drop the backend connection at once, without a final "." (a message cut short, too large,
// or refused by bare_lf must never be completed upstream). The next MAIL opens a new one.
struct AbortBackend {};

using Action = std::variant<Write, StartTls, Close, Authenticate, Deliver, SetTimeout, OpenBackend,
                            BackendCommand, BackendData, BackendEndData, AbortBackend>;
using Actions = std::vector<Action>;

}  // namespace smtpgate::smtp
