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

using Action = std::variant<Write, StartTls, Close, Authenticate, Deliver, SetTimeout>;
using Actions = std::vector<Action>;

}  // namespace smtpgate::smtp
