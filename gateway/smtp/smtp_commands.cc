// The command handlers of SmtpSession (the core loop is in smtp_session.cc).

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/smtp/address.h"
#include "gateway/smtp/replies.h"
#include "gateway/smtp/sasl.h"
#include "gateway/smtp/smtp_session.h"

namespace smtpgate::smtp {

namespace {

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsNoCase(s.substr(0, prefix.size()), prefix);
}

bool hasControl(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

enum class ParamCheck { Ok, TooBig, BadSize, BadValue, Unsupported };

// One MAIL parameter (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 4954 AUTH,
// RFC 3461 RET/ENVID).
ParamCheck checkMailParam(std::string_view param, std::size_t maxBytes, bool utf8Offered) {
  const std::size_t eq = param.find('=');
  const std::string_view key = param.substr(0, eq);
  const bool hasValue = eq != std::string_view::npos;
  const std::string_view value = hasValue ? param.substr(eq + 1) : std::string_view();
  if (equalsNoCase(key, "SIZE")) {
    std::uint64_t size = 0;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, size);
    if (value.empty() || ptr != end) {
      return ParamCheck::BadSize;
    }
    if (ec == std::errc::result_out_of_range) {
      return ParamCheck::TooBig;  // too many digits for 64 bits: still a size, far too big
    }
    return size > maxBytes ? ParamCheck::TooBig : ParamCheck::Ok;
  }
  if (equalsNoCase(key, "BODY")) {
    if (equalsNoCase(value, "7BIT") || equalsNoCase(value, "8BITMIME")) {
      return ParamCheck::Ok;
    }
    return hasValue && !value.empty() ? ParamCheck::Unsupported : ParamCheck::BadValue;
  }
  if (equalsNoCase(key, "SMTPUTF8")) {
    if (!utf8Offered) {
      return ParamCheck::Unsupported;
    }
    return hasValue ? ParamCheck::BadValue : ParamCheck::Ok;
  }
  if (equalsNoCase(key, "RET")) {
    return equalsNoCase(value, "FULL") || equalsNoCase(value, "HDRS") ? ParamCheck::Ok
                                                                      : ParamCheck::BadValue;
  }
  if (equalsNoCase(key, "AUTH") || equalsNoCase(key, "ENVID")) {
    return value.empty() ? ParamCheck::BadValue : ParamCheck::Ok;
  }
  return ParamCheck::Unsupported;
}

// RCPT parameters of RFC 3461 §4 (relay mode, when the backend offers DSN): NOTIFY=NEVER or a
// list of SUCCESS, FAILURE, DELAY; ORCPT=addr-type;xtext.
ParamCheck checkDsnParam(std::string_view param) {
  const std::size_t eq = param.find('=');
  const std::string_view key = param.substr(0, eq);
  const std::string_view value =
      eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
  if (equalsNoCase(key, "NOTIFY")) {
    if (equalsNoCase(value, "NEVER")) {
      return ParamCheck::Ok;
    }
    std::string_view rest = value;
    while (true) {
      const std::size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      if (!equalsNoCase(item, "SUCCESS") && !equalsNoCase(item, "FAILURE") &&
          !equalsNoCase(item, "DELAY")) {
        return ParamCheck::BadValue;
      }
      if (comma == std::string_view::npos) {
        return ParamCheck::Ok;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  if (equalsNoCase(key, "ORCPT")) {
    const std::size_t semi = value.find(';');
    if (semi == std::string_view::npos || semi == 0 || semi + 1 == value.size()) {
      return ParamCheck::BadValue;
    }
    for (char ch : value) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 33 || c > 126 || c == '=') {
        return ParamCheck::BadValue;
      }
    }
    return ParamCheck::Ok;
  }
  return ParamCheck::Unsupported;
}

}  // namespace

void SmtpSession::cmdEhlo(std::string_view arg, bool esmtp, Actions& out) {
  if (arg.empty() || hasControl(arg)) {
    error(esmtp ? replies::kEhloSyntax : replies::kHeloSyntax, out);
    return;
  }
  if (settings_.relay && inTransaction_ && backend_ == Backend::Open) {
    sendBackend("RSET\r\n", Awaited::Kind::Silent, out);  // the backend's transaction goes too
  }
  resetTransaction();  // RFC 5321 §4.1.4: EHLO/HELO imply RSET
  helo_.assign(arg);
  esmtp_ = esmtp;
  if (!esmtp) {
    reply("250 " + settings_.hostname);
    return;
  }
  if (settings_.relay && tls_) {
    relayEhloCapabilities();
    return;
  }
  reply("250-" + settings_.hostname);
  std::string_view caps[8];
  std::size_t count = 0;
  const std::string size = "SIZE " + std::to_string(settings_.maxMessageBytes);
  caps[count++] = "PIPELINING";
  caps[count++] = size;
  caps[count++] = "8BITMIME";
  if (tls_) {
    caps[count++] = "SMTPUTF8";
  }
  caps[count++] = "ENHANCEDSTATUSCODES";
  if (tls_) {
    if (settings_.authAvailable) {
      caps[count++] = "AUTH PLAIN LOGIN";  // never offered before TLS
    }
  } else if (!settings_.implicitTls) {
    caps[count++] = "STARTTLS";
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::string line(i + 1 == count ? "250 " : "250-");
    line += caps[i];
    reply(line);
  }
}

void SmtpSession::cmdStartTls(std::string_view arg, Actions& out) {
  if (tls_ || settings_.implicitTls) {
    error(replies::kTlsActive, out);
    return;
  }
  if (!arg.empty()) {
    error(replies::kStartTlsSyntax, out);
    return;
  }
  if (startTlsGate_ && !startTlsGate_()) {
    // Our limit, not the client's error: the session goes on in plaintext (where
    // require_tls listeners refuse MAIL, RCPT and AUTH).
    reply("454 4.7.0 TLS not available: too many TLS handshakes from your address");
    return;
  }
  reply(replies::kReadyTls);
  // RFC 3207 §4.2 and CVE-2011-0411: whatever followed the STARTTLS line in plaintext is
  // thrown away unanswered, and nothing learnt before TLS survives it.
  framer_.clear();
  resetSession();
  tlsStarting_ = true;
  if (backend_ != Backend::Closed) {
    // The backend was told the plaintext facts (XCLIENT, PROXY): the next MAIL opens a new one.
    out.emplace_back(AbortBackend{});
    backend_ = Backend::Closed;
  }
  flush(out);
  out.emplace_back(StartTls{});
}

void SmtpSession::mustStartTls(std::string_view command, Actions& out) {
  if (policy_ != nullptr) {
    policy_->onPlaintextRefused(command);
  }
  error(replies::kMustStartTls, out);
}

bool SmtpSession::authIdentityRefused(std::string_view user, Actions& out) {
  if (policy_ == nullptr) {
    return false;
  }
  const PolicyHooks::Verdict verdict = policy_->onAuthIdentity(user);
  if (verdict.kind == PolicyHooks::Verdict::Kind::Accept) {
    return false;
  }
  // Any refusal closes: a per-recipient verdict means nothing here, so fail closed. A policy
  // refusal is not the client's error; the credentials never reach the backend.
  authUserPending_.clear();
  reply(policyReply(verdict.reply, hostReply("421 4.7.0", "Error: refused by policy")));
  close(out);
  return true;
}

void SmtpSession::cmdAuth(std::string_view arg, Actions& out) {
  if (!tls_) {
    mustStartTls("AUTH", out);  // AUTH is never offered in plaintext
    return;
  }
  // Relay mode offers what the backend's AUTH keyword names (PLAIN and LOGIN stand in for
  // each other: the session has the password either way).
  const bool plainLogin = !settings_.relay || offers_.plain || offers_.login;
  const bool xoauth2 = settings_.relay && offers_.xoauth2;
  if (settings_.relay ? !plainLogin && !xoauth2 : !settings_.authAvailable) {
    error(replies::kAuthNotEnabled, out);
    return;
  }
  if (helo_.empty()) {
    error(replies::kSendHeloFirst, out);
    return;
  }
  if (!authUser_.empty()) {
    error(replies::kAlreadyAuthenticated, out);
    return;
  }
  if (inTransaction_) {
    error(replies::kAuthInTransaction, out);
    return;
  }
  const std::size_t space = arg.find(' ');
  const std::string_view mechanism = arg.substr(0, space);
  std::string_view initial;
  bool hasInitial = false;
  if (space != std::string_view::npos) {
    initial = arg.substr(space + 1);
    while (!initial.empty() && initial.front() == ' ') {
      initial.remove_prefix(1);
    }
    hasInitial = true;
    if (initial.find(' ') != std::string_view::npos) {
      error(replies::kAuthSyntax, out);
      return;
    }
  }
  if (mechanism.empty()) {
    error(replies::kAuthSyntax, out);
    return;
  }
  if (plainLogin && equalsNoCase(mechanism, "PLAIN")) {
    if (!hasInitial) {
      reply(replies::kAuthPlainChallenge);
      state_ = State::AuthPlainResponse;
      return;
    }
    handleAuthLine(initial, out);  // same decoding as a continuation line
    return;
  }
  if (plainLogin && equalsNoCase(mechanism, "LOGIN")) {
    if (!hasInitial) {
      reply(replies::kAuthLoginUser);
      state_ = State::AuthLoginUser;
      return;
    }
    std::optional<std::string> user = decodeSaslResponse(initial);
    if (!user) {
      error(replies::kAuthCannotDecode, out);
      return;
    }
    // Asked before the password prompt, so a refused client never sends its password.
    if (authIdentityRefused(*user, out)) {
      return;
    }
    authUserPending_ = std::move(*user);
    reply(replies::kAuthLoginPassword);
    state_ = State::AuthLoginPassword;
    return;
  }
  if (xoauth2 && equalsNoCase(mechanism, "XOAUTH2")) {
    if (!hasInitial) {
      reply(replies::kAuthPlainChallenge);
      state_ = State::AuthXoauth2Response;
      return;
    }
    relayXoauth2(initial, out);
    return;
  }
  error(replies::kAuthUnknownMechanism, out);
}

void SmtpSession::handleAuthLine(std::string_view line, Actions& out) {
  const State state = state_;
  state_ = State::Command;
  if (state == State::AuthRelayResponse) {
    relayAuthResponse(line, out);  // the backend's challenge: its answer goes back as sent
    return;
  }
  if (state == State::AuthXoauth2Response) {
    relayXoauth2(line, out);
    return;
  }
  if (line == "*") {
    authUserPending_.clear();
    error(replies::kAuthAborted, out);
    return;
  }
  std::optional<std::string> decoded = decodeSaslResponse(line);
  if (!decoded) {
    authUserPending_.clear();
    error(replies::kAuthCannotDecode, out);
    return;
  }
  switch (state) {
    case State::Command:  // AUTH PLAIN with an initial response
    case State::AuthPlainResponse: {
      std::optional<PlainCredentials> creds = parsePlain(*decoded);
      if (!creds) {
        error(replies::kAuthCannotDecode, out);
        return;
      }
      if (authIdentityRefused(creds->authcid, out)) {
        return;  // the credentials die with `creds` and `decoded`, never passed on
      }
      requestAuth("PLAIN", std::move(creds->authzid), std::move(creds->authcid),
                  std::move(creds->password), out);
      return;
    }
    case State::AuthLoginUser:
      if (authIdentityRefused(*decoded, out)) {
        return;  // before the password prompt: the password is never sent
      }
      authUserPending_ = std::move(*decoded);
      reply(replies::kAuthLoginPassword);
      state_ = State::AuthLoginPassword;
      return;
    case State::AuthLoginPassword: {
      std::string user = std::move(authUserPending_);
      authUserPending_.clear();
      requestAuth("LOGIN", std::string(), std::move(user), std::move(*decoded), out);
      return;
    }
    case State::Data:
    case State::AuthXoauth2Response:
    case State::AuthRelayResponse:
      return;
  }
}

void SmtpSession::cmdMail(std::string_view arg, Actions& out) {
  if (settings_.requireTls && !tls_) {
    mustStartTls("MAIL", out);
    return;
  }
  if (helo_.empty()) {
    error(replies::kSendHeloFirst, out);
    return;
  }
  if (inTransaction_) {
    error(replies::kNestedMail, out);
    return;
  }
  if (!startsWithNoCase(arg, "FROM:")) {
    error(replies::kMailSyntax, out);
    return;
  }
  ParsedPath path = parsePath(arg.substr(5));
  if (path.status == PathStatus::Syntax) {
    error(replies::kMailSyntax, out);
    return;
  }
  if (path.status == PathStatus::BadAddress ||
      (!path.address.empty() && !isValidMailbox(path.address))) {
    error(replies::kBadSender, out);
    return;
  }
  std::vector<std::string> params;
  const bool utf8Offered = settings_.relay ? tls_ && offers_.smtputf8 : tls_;
  for (std::string_view param : splitParams(path.params)) {
    switch (checkMailParam(param, settings_.maxMessageBytes, utf8Offered)) {
      case ParamCheck::Ok:
        params.emplace_back(param);
        break;
      case ParamCheck::TooBig:
        error(replies::kTooBig, out);
        return;
      case ParamCheck::BadSize:
        error(replies::kBadSizeParam, out);
        return;
      case ParamCheck::BadValue:
        error(std::string(replies::kBadParam) + std::string(param), out);
        return;
      case ParamCheck::Unsupported:
        error(std::string(replies::kUnsupportedOption) + std::string(param), out);
        return;
    }
  }
  inTransaction_ = true;
  envelope_.mailFrom = std::move(path.address);
  envelope_.mailParams = std::move(params);
  envelope_.rcptTo.clear();
  if (settings_.relay) {
    // Rebuilt from what was checked, never the client's line. The transaction counts as open
    // at once, so that pipelined RCPTs can follow; a refusal by the backend resets it.
    std::string line = "MAIL FROM:<" + envelope_.mailFrom + ">";
    for (const std::string& param : envelope_.mailParams) {
      line += ' ';
      line += param;
    }
    line += "\r\n";
    sendBackend(std::move(line), Awaited::Kind::Mail, out);
    return;
  }
  reply(replies::kMailOk);
}

void SmtpSession::cmdRcpt(std::string_view arg, Actions& out) {
  if (settings_.requireTls && !tls_) {
    mustStartTls("RCPT", out);
    return;
  }
  if (!inTransaction_) {
    error(replies::kNeedMail, out);
    return;
  }
  if (!startsWithNoCase(arg, "TO:")) {
    error(replies::kRcptSyntax, out);
    return;
  }
  ParsedPath path = parsePath(arg.substr(3));
  if (path.status == PathStatus::Syntax) {
    error(replies::kRcptSyntax, out);
    return;
  }
  // RFC 5321 §4.1.1.3: "Postmaster" without a domain must be accepted.
  if (path.status == PathStatus::BadAddress ||
      (!isValidMailbox(path.address) && !equalsNoCase(path.address, "postmaster"))) {
    error(replies::kBadRecipient, out);
    return;
  }
  // No RCPT extension is offered, and the envelope has no room for one; relay mode passes
  // DSN's on when the backend offers DSN.
  std::string relayParams;
  for (std::string_view param : splitParams(path.params)) {
    const ParamCheck check =
        settings_.relay && offers_.dsn ? checkDsnParam(param) : ParamCheck::Unsupported;
    if (check == ParamCheck::Ok) {
      relayParams += ' ';
      relayParams += param;
      continue;
    }
    error(std::string(check == ParamCheck::BadValue ? replies::kBadParam
                                                    : replies::kUnsupportedOption) +
              std::string(param),
          out);
    return;
  }
  // Only accepted recipients are in the envelope, so only they count towards the limit (in
  // relay mode with those still awaited from the backend).
  if (envelope_.rcptTo.size() + pendingRcpts_ >= settings_.maxRecipients) {
    error(replies::kTooManyRecipients, out);
    return;
  }
  // D6: without AUTH each recipient's tenant decides; with AUTH its identity already did.
  if (policy_ != nullptr && authUser_.empty()) {
    const PolicyHooks::Verdict verdict = policy_->onRecipient(path.address);
    if (verdict.kind == PolicyHooks::Verdict::Kind::RejectAndClose) {
      reply(policyReply(verdict.reply, hostReply("421 4.7.0", "Error: refused by policy")));
      close(out);
      return;
    }
    if (verdict.kind == PolicyHooks::Verdict::Kind::RejectRecipient) {
      // Not the client's fault: no error count; the other recipients are unaffected.
      reply(policyReply(verdict.reply, "450 4.7.0 Error: recipient refused by policy"));
      return;
    }
  }
  if (settings_.relay) {
    std::string line = "RCPT TO:<" + path.address + ">" + relayParams + "\r\n";
    sendBackend(std::move(line), Awaited::Kind::Rcpt, out, std::move(path.address));
    return;
  }
  envelope_.rcptTo.push_back(std::move(path.address));
  reply(replies::kRcptOk);
}

void SmtpSession::cmdData(std::string_view arg, bool crlf, Actions& out) {
  // Pipelined behind MAIL and RCPTs whose replies are still awaited (relayBlocked()): it goes
  // with them, and their replies decide (pipelinedDataRefused()).
  const bool batched = settings_.relay && !awaited_.empty() && arg.empty();
  if (!inTransaction_ && !batched) {
    error(replies::kNeedRcpt, out);
    return;
  }
  if (envelope_.rcptTo.empty() && !batched) {
    error(replies::kNoValidRecipients, out);
    return;
  }
  if (!arg.empty()) {
    error(replies::kDataSyntax, out);
    return;
  }
  if (settings_.relay) {
    dataCrlf_ = crlf;  // for the decoder, once the backend said 354
    sendBackend("DATA\r\n", Awaited::Kind::Data, out);
    return;
  }
  reply(replies::kStartData);
  // The CRLF that ended the DATA line may be the first of CRLF.CRLF (an empty message).
  data_.start(settings_.maxMessageBytes, crlf);
  state_ = State::Data;
  wantTimer(settings_.dataTimeoutS);
}

void SmtpSession::cmdRset(Actions& out) {
  resetTransaction();
  if (settings_.relay && backend_ == Backend::Open) {
    sendBackend("RSET\r\n", Awaited::Kind::Rset, out);
    return;
  }
  reply(replies::kOk);
}

}  // namespace smtpgate::smtp
