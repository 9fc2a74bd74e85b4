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
// session says what to send and gets every reply back, in order. The sequences it sees:
//
//   lazy open    ... OpenBackend. Nothing more for the link until onBackendReady(): true →
//                BackendCommand(s) of the command(s) that waited; false → Write(421 4.4.2),
//                Close. Calling onBackendLost() while opening is the same as false.
//   MAIL/RCPT    BackendCommand per command; MAIL and the RCPTs complete in the client's
//                buffer come in one batch (RFC 2920), each answered by one onBackendReply()
//                in order. Everything else waits until every earlier reply is in.
//   DATA         BackendCommand("DATA\r\n") only when no reply is outstanding. On a 3xx reply:
//                Write(the 354), BackendData(Received: line, if any), then BackendData as the
//                client's content arrives (any number, never the terminator), then at the
//                client's end of data BackendData("\r\n") if the content did not end with
//                a CRLF (decoded content always does, so in practice none) and BackendEndData;
//                the reply to BackendEndData is the message's final reply, for the client.
//                On another reply: Write(it), BackendCommand("RSET\r\n") whose reply the
//                client never sees.
//   refused DATA too large or a bare line end under bare_lf=reject: AbortBackend as soon as it
//                is known, often before the client has finished sending; the 552/550 Write
//                follows at the client's end of data. No BackendEndData for that message.
//   AUTH         BackendCommand("AUTH PLAIN <b64>\r\n") → final reply; or, to a LOGIN-only
//                backend, BackendCommand("AUTH LOGIN <b64 user>\r\n") → on 334
//                BackendCommand("<b64 password>\r\n") → final reply; XOAUTH2: the client's
//                line as sent, a 334 goes to the client and its answer comes back as one more
//                BackendCommand. Lines carrying credentials: wipe them once written.
//   RSET         BackendCommand("RSET\r\n") with the backend open, else a local 250.
//   EHLO         in a transaction: BackendCommand("RSET\r\n"), reply not shown to the client.
//   STARTTLS     with a backend open: AbortBackend before StartTls.
//   QUIT, Close  Close with an idle backend: the connection QUITs it. When the session closes
//                while the link is in the middle of something (opening, a reply awaited, DATA,
//                a SASL challenge; e.g. a timeout), AbortBackend comes right before Close.
//
// After AbortBackend the session considers the link gone: it never calls for it again, and
// onBackendLost()/onBackendReply() for it are ignored; the next MAIL/AUTH emits OpenBackend.
//
// Open the backend (connect, greeting, EHLO, XCLIENT or PROXY header, optional STARTTLS, EHLO
// again), then call session.onBackendReady(). Emitted at the first command that needs the
// backend (AUTH, MAIL), never for sessions that only handshake, are refused, or quit.
struct OpenBackend {};
// One command line for the backend, CRLF-terminated, nothing else in it; its reply comes back
// through session.onBackendReply(). Several may be emitted in a row (pipelining): replies come
// back in the same order.
struct BackendCommand {
  std::string line;
};
// Message bytes for the backend during DATA, already encoded for the wire (CRLF line ends,
// dot-stuffed). No reply. Never contains the terminating "." line.
struct BackendData {
  std::string bytes;
};
// The end of the message: the connection sends exactly ".\r\n" (the BackendData before it
// ended with CRLF); the reply comes back through onBackendReply(). Only emitted for a message
// the gateway accepted completely.
struct BackendEndData {};
// Drop the backend connection at once, without a final "." (a message cut short, too large,
// or refused by bare_lf must never be completed upstream). The next MAIL opens a new one.
struct AbortBackend {};

using Action = std::variant<Write, StartTls, Close, Authenticate, Deliver, SetTimeout, OpenBackend,
                            BackendCommand, BackendData, BackendEndData, AbortBackend>;
using Actions = std::vector<Action>;

}  // namespace smtpgate::smtp
