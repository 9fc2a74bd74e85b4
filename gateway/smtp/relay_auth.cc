// Relay mode AUTH (RFC 4954): the client's PLAIN or LOGIN credentials, once the policy
// accepted the identity (D4/D5), go to the backend as PLAIN when it offers PLAIN, else as
// LOGIN in two steps; XOAUTH2 is passed through, challenge included. The backend's final
// reply reaches the client unchanged; no Authenticate action is emitted. Secrets are wiped
// once the command lines are built.

#include <optional>
#include <string>
#include <utility>

#include "gateway/smtp/replies.h"
#include "gateway/smtp/sasl.h"
#include "gateway/smtp/smtp_session.h"

namespace smtpgate::smtp {

namespace {

// prefix + text + CRLF in one allocation, so that no stray copy of a secret is left behind.
std::string commandLine(std::string_view prefix, std::string_view text) {
  std::string line;
  line.reserve(prefix.size() + text.size() + 2);
  line.append(prefix);
  line.append(text);
  line.append("\r\n");
  return line;
}

}  // namespace

void SmtpSession::relayCredentials(std::string authzid, std::string user, std::string password,
                                   Actions& out) {
  if (offers_.plain) {
    std::string raw;
    raw.reserve(authzid.size() + user.size() + password.size() + 2);
    raw.append(authzid);
    raw.push_back('\0');
    raw.append(user);
    raw.push_back('\0');
    raw.append(password);
    std::string encoded = base64Encode(raw);
    std::string line = commandLine("AUTH PLAIN ", encoded);
    secureWipe(raw);
    secureWipe(encoded);
    secureWipe(password);
    authUserPending_ = std::move(user);
    sendBackend(std::move(line), Awaited::Kind::Auth, out);
    return;
  }
  // LOGIN has no authorization identity: only the client's own can be relayed.
  if (!authzid.empty() && authzid != user) {
    secureWipe(password);
    authUserPending_.clear();
    error(replies::kAuthFailed, out);
    return;
  }
  relayPassword_.assign(password);  // sent on the backend's 334, then wiped
  secureWipe(password);
  std::string line = commandLine("AUTH LOGIN ", base64Encode(user));
  authUserPending_ = std::move(user);
  sendBackend(std::move(line), Awaited::Kind::AuthLoginUser, out);
}

void SmtpSession::relayXoauth2(std::string_view response, Actions& out) {
  if (response == "*") {
    error(replies::kAuthAborted, out);
    return;
  }
  std::optional<std::string> decoded = decodeSaslResponse(response);
  std::optional<std::string> user;
  if (decoded) {
    user = xoauth2User(*decoded);
    secureWipe(*decoded);
  }
  if (!user) {
    error(replies::kAuthCannotDecode, out);
    return;
  }
  if (authIdentityRefused(*user, out)) {
    return;  // D4/D5: the token never reaches the backend
  }
  authUserPending_ = std::move(*user);
  sendBackend(commandLine("AUTH XOAUTH2 ", response), Awaited::Kind::AuthChallengeable, out);
}

void SmtpSession::relayAuthResponse(std::string_view line, Actions& out) {
  if (backend_ != Backend::Open) {
    authUserPending_.clear();
    reply(hostReply("451 4.4.1", "Error: backend connection lost"));
    return;
  }
  bool wellFormed = line == "*";
  if (!wellFormed) {
    std::optional<std::string> decoded = decodeSaslResponse(line);
    wellFormed = decoded.has_value();
    if (decoded) {
      secureWipe(*decoded);
    }
  }
  if (!wellFormed) {
    abortBackend(out);  // it waits for an answer we will not give
    authUserPending_.clear();
    error(replies::kAuthCannotDecode, out);
    return;
  }
  sendBackend(commandLine("", line), Awaited::Kind::Auth, out);
}

void SmtpSession::finishRelayAuth(const std::string& text) {
  replyNow(text);
  if (text[0] == '2') {
    authUser_ = std::move(authUserPending_);
  }
  authUserPending_.clear();
}

}  // namespace smtpgate::smtp
