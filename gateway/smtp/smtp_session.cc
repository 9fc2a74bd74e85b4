#include "gateway/smtp/smtp_session.h"

#include <cctype>
#include <utility>

#include "gateway/smtp/replies.h"
#include "gateway/smtp/sasl.h"

// Timer policy: the session emits SetTimeout only when the wanted inactivity timer changes
// (commandTimeoutS in command mode, dataTimeoutS inside DATA, 0 while an Authenticate or
// Deliver result is awaited: then the client waits for us, not we for it), plus always from
// start() and onTlsEstablished(). The SetTimeout follows the Write of the same batch. The
// connection re-arms the latest value on every input. In relay mode the wanted value follows
// from the state at each flush: 0 while the backend opens or a backend reply is awaited (the
// connection applies its backend timeouts then), dataTimeoutS in DATA, else commandTimeoutS.

namespace smtpgate::smtp {

namespace {

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) !=
        std::toupper(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// Cross-protocol attacks (a browser made to POST to port 25): recognise HTTP and hang up.
// XCLIENT, XFORWARD and PROXY from a client (not from a trusted proxy): refused, counted.
constexpr std::string_view kNotAllowed = "550 5.7.1 Command not allowed";

bool looksLikeHttp(std::string_view line) {
  static constexpr std::string_view kPrefixes[] = {"GET ", "POST ", "CONNECT ",   "HEAD ",
                                                   "PUT ", "HOST:", "USER-AGENT:"};
  for (std::string_view prefix : kPrefixes) {
    if (startsWithNoCase(line, prefix)) {
      return true;
    }
  }
  return false;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

SmtpSession::SmtpSession(SessionSettings settings) : settings_(std::move(settings)) {
  if (settings_.relay) {
    learnRelayCapabilities();
  }
}

std::string SmtpSession::hostReply(std::string_view code, std::string_view text) const {
  std::string out(code);
  out += ' ';
  out += settings_.hostname;
  out += ' ';
  out += text;
  return out;
}

std::string SmtpSession::policyReply(std::string_view text, std::string fallback) {
  // The reply is written as one line: a trailing terminator would add an empty one.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text.empty() ? std::move(fallback) : std::string(text);
}

void SmtpSession::rejectNextCommand(std::string reply) {
  if (closed_) {
    return;
  }
  // Kept across onTlsEstablished(): a call in the wrong order must not let the client in.
  rejectNext_ = policyReply(reply, hostReply("421 4.7.0", "Error: refused by policy"));
}

Actions SmtpSession::start() {
  Actions out;
  if (closed_) {
    return out;
  }
  reply("220 " + settings_.hostname + " ESMTP");
  wantTimer(settings_.commandTimeoutS, true);
  flush(out);
  return out;
}

Actions SmtpSession::onBytes(std::string_view bytes) {
  Actions out;
  // During the handshake the session must see nothing; plaintext sent then is an attack.
  if (closed_ || closeDeferred_ || tlsStarting_) {
    return out;
  }
  bool fed = false;
  if (state_ == State::Data && framer_.idle() && waiting_ == Waiting::None && !tarpit_) {
    // Message bytes go straight to the decoder, not through the framer's buffer first; only
    // what follows the end of the data (pipelined commands) is buffered.
    bytes.remove_prefix(feedData(bytes, out));
    if (data_.done()) {
      handleDataEnd(out);
    }
    fed = true;
  }
  framer_.append(bytes);
  if (waiting_ != Waiting::None || tarpit_) {
    if (fed) {
      flush(out);
    }
    return out;  // answered, in order, once the result is in or the tarpit is over
  }
  process(out);
  flush(out);
  return out;
}

Actions SmtpSession::onTlsEstablished() {
  Actions out;
  if (closed_) {
    return out;
  }
  tls_ = true;
  tlsStarting_ = false;
  framer_.clear();
  resetSession();
  wantTimer(settings_.commandTimeoutS, true);
  flush(out);
  return out;
}

Actions SmtpSession::onAuthResult(bool ok) {
  Actions out;
  if (closed_ || waiting_ != Waiting::Auth) {
    return out;
  }
  waiting_ = Waiting::None;
  wantTimer(settings_.commandTimeoutS);
  if (ok) {
    authUser_ = std::move(authUserPending_);
    reply(replies::kAuthOk);
  } else {
    error(replies::kAuthFailed, out);
  }
  authUserPending_.clear();
  resumeAfterResult(out);
  return out;
}

Actions SmtpSession::onDeliveryResult(const DeliveryResult& result) {
  Actions out;
  if (closed_ || waiting_ != Waiting::Delivery) {
    return out;
  }
  waiting_ = Waiting::None;
  wantTimer(settings_.commandTimeoutS);
  if (result.ok) {
    reply("250 2.0.0 Ok: queued as " + result.queueId);
  } else {
    // The backend's own reply, passed through (possibly multi-line); not a client error.
    std::string_view text = result.reply;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.remove_suffix(1);
    }
    reply(text.empty() ? replies::kDeliveryFailed : text);
  }
  resumeAfterResult(out);
  return out;
}

void SmtpSession::resumeAfterResult(Actions& out) {
  if (!closed_ && shutdownPending_) {
    reply(hostReply("421 4.3.2", "Service shutting down"));
    close(out);
    return;
  }
  process(out);
  flush(out);
}

Actions SmtpSession::onTimeout() {
  Actions out;
  if (closed_) {
    return out;
  }
  if (!tlsStarting_) {
    replyNow(hostReply("421 4.4.2", "Error: timeout exceeded"));
  }
  closeNow(out);  // replies still awaited from the backend are abandoned with it
  return out;
}

Actions SmtpSession::onDataTooSlow() {
  Actions out;
  if (closed_) {
    return out;
  }
  replyNow(hostReply("421 4.4.2", "Data transfer too slow"));
  closeNow(out);  // in DATA under relay: AbortBackend, the message never ends upstream
  return out;
}

Actions SmtpSession::resume() {
  Actions out;
  if (closed_ || !tarpit_) {
    return out;
  }
  tarpit_ = false;
  if (waiting_ != Waiting::None) {
    return out;  // a result is awaited: its arrival resumes the input
  }
  process(out);
  flush(out);
  return out;
}

Actions SmtpSession::onShutdown() {
  Actions out;
  if (closed_) {
    return out;
  }
  if (waiting()) {
    shutdownPending_ = true;  // the client is owed a reply first
    return out;
  }
  if (!tlsStarting_) {  // no plaintext into a running handshake
    reply(hostReply("421 4.3.2", "Service shutting down"));
  }
  close(out);
  return out;
}

void SmtpSession::process(Actions& out) {
  while (!closed_ && !closeDeferred_ && !tlsStarting_ && !tarpit_ && waiting_ == Waiting::None) {
    if (state_ == State::Data) {
      std::string_view input = framer_.peek();
      if (input.empty()) {
        return;
      }
      framer_.consume(feedData(input, out));
      if (!data_.done()) {
        return;
      }
      handleDataEnd(out);
      continue;
    }
    if (settings_.relay && relayBlocked()) {
      return;
    }
    const bool command = state_ == State::Command;
    LineFramer::Frame frame =
        framer_.next(command ? LineFramer::Mode::Command : LineFramer::Mode::AuthResponse);
    if (frame.status == LineFramer::Status::NeedMore) {
      return;
    }
    ++progress_;
    if (rejectNext_) {
      // D2/D3: whatever the line is (even an over-long one), the policy's reply answers it.
      reply(*rejectNext_);
      rejectNext_.reset();
      close(out);
      return;
    }
    if (frame.status == LineFramer::Status::TooLong) {
      if (state_ == State::AuthRelayResponse) {
        abortBackend(out);  // the backend waits for an answer to its challenge
      }
      state_ = State::Command;  // an over-long SASL response ends the exchange too
      authUserPending_.clear();
      error(replies::kLineTooLong, out);
      continue;
    }
    const bool secret = !command || startsWithNoCase(frame.text, "AUTH ");
    if (command) {
      handleCommand(frame.text, frame.crlf, out);
    } else {
      handleAuthLine(frame.text, out);
    }
    if (secret) {
      secureWipe(frame.text);
    }
  }
}

std::size_t SmtpSession::feedData(std::string_view input, Actions& out) {
  if (settings_.relay) {
    data_.reserve(input.size());  // one buffer per chunk, handed on whole to the backend
  }
  const std::size_t used = data_.feed(input);
  progress_ += used;
  if (settings_.relay) {
    relayContent(out);  // streamed as it comes: no whole message in memory
  }
  return used;
}

void SmtpSession::handleCommand(std::string_view line, bool crlf, Actions& out) {
  if (looksLikeHttp(line)) {
    reply(hostReply("421 4.7.0", "Error: this is an SMTP server"));
    close(out);
    return;
  }
  if (line.find('\r') != std::string_view::npos) {
    error(replies::kBareCrInCommand, out);
    return;
  }
  const std::size_t space = line.find(' ');
  const std::string verb = upper(line.substr(0, space));
  const std::string_view arg =
      space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1));

  if (verb == "EHLO" || verb == "HELO") {
    cmdEhlo(arg, verb == "EHLO", out);
  } else if (verb == "STARTTLS") {
    cmdStartTls(arg, out);
  } else if (verb == "AUTH") {
    cmdAuth(arg, out);
  } else if (verb == "MAIL") {
    cmdMail(arg, out);
  } else if (verb == "RCPT") {
    cmdRcpt(arg, out);
  } else if (verb == "DATA") {
    cmdData(arg, crlf, out);
  } else if (verb == "RSET") {
    cmdRset(out);
  } else if (verb == "NOOP") {
    reply(replies::kOk);
  } else if (verb == "QUIT") {
    reply(replies::kBye);
    close(out);
  } else if (verb == "VRFY") {
    error(replies::kVrfyDisabled, out);
  } else if (verb == "EXPN") {
    error(replies::kExpnDisabled, out);
  } else if (verb == "HELP") {
    reply(replies::kHelp);
  } else if (verb == "XCLIENT" || verb == "XFORWARD" || verb == "PROXY") {
    // Only trusted peers may claim another client's identity (Postfix's
    // smtpd_authorized_xclient_hosts, the listener's proxy_protocol.trusted): from a client
    // these are attempts to spoof the address the policy and the backend see.
    error(kNotAllowed, out);
  } else if (verb == "BDAT" || verb == "ETRN" || verb == "TURN" || verb == "ATRN" ||
             verb == "SEND" || verb == "SOML" || verb == "SAML" || verb == "VERB") {
    error(replies::kNotImplemented, out);
  } else {
    error(replies::kUnknownCommand, out);
  }
}

void SmtpSession::handleDataEnd(Actions& out) {
  if (settings_.relay) {
    relayDataEnd(out);
    return;
  }
  state_ = State::Command;
  wantTimer(settings_.commandTimeoutS);
  if (data_.overflow()) {
    data_.takeContent();
    resetTransaction();
    error(replies::kTooBig, out);
    return;
  }
  if (settings_.bareLf == BareLfPolicy::Reject && data_.sawBareLineEnd()) {
    data_.takeContent();
    resetTransaction();
    error(replies::kBareLineEnd, out);
    return;
  }
  Deliver deliver;
  deliver.message.envelope = std::move(envelope_);
  deliver.message.content = data_.takeContent();
  deliver.message.helo = helo_;
  deliver.message.esmtp = esmtp_;
  deliver.message.authUser = authUser_;
  resetTransaction();
  waiting_ = Waiting::Delivery;
  wantTimer(0);
  flush(out);
  out.emplace_back(std::move(deliver));
}

void SmtpSession::reply(std::string_view text) {
  std::string& to = awaited_.empty() ? pending_ : awaited_.back().after;
  to.append(text);
  to.append("\r\n");
}

void SmtpSession::replyNow(std::string_view text) {
  pending_.append(text);
  pending_.append("\r\n");
}

void SmtpSession::error(std::string_view text, Actions& out) {
  reply(text);
  ++errors_;
  if (settings_.maxErrors > 0 && errors_ >= settings_.maxErrors) {
    reply(hostReply("421 4.7.0", "Error: too many errors"));
    close(out);
    return;
  }
  if (settings_.errorDelayMs > 0 && errors_ > kTarpitFreeErrors) {
    tarpit_ = true;  // process() stops after this line; the connection calls resume()
  }
}

void SmtpSession::flush(Actions& out) {
  if (settings_.relay && !closed_) {
    timerWanted_ = relayTimer();
  }
  if (!pending_.empty()) {
    out.emplace_back(Write{std::move(pending_)});
    pending_.clear();
  }
  if (!closed_ && (timerForce_ || timerWanted_ != timerArmed_)) {
    out.emplace_back(SetTimeout{timerWanted_});
    timerArmed_ = timerWanted_;
    timerForce_ = false;
  }
}

void SmtpSession::close(Actions& out) {
  if (!awaited_.empty()) {
    // Relay: earlier commands still wait for the backend's replies; the client gets them
    // first, then what was queued behind them (this closing reply), then Close.
    closeDeferred_ = true;
    framer_.clear();
    return;
  }
  closeNow(out);
}

void SmtpSession::closeNow(Actions& out) {
  // The connection QUITs an idle backend itself; one in the middle of an exchange (opening,
  // a reply awaited, DATA, a SASL challenge) cannot take a QUIT and is dropped instead.
  const bool abort = backend_ == Backend::Opening ||
                     (backend_ == Backend::Open && (!awaited_.empty() || state_ == State::Data ||
                                                    state_ == State::AuthRelayResponse));
  closed_ = true;  // first: flush() then leaves the timer alone
  flush(out);
  if (abort) {
    out.emplace_back(AbortBackend{});
  }
  backend_ = Backend::Closed;
  awaited_.clear();
  for (std::string& line : queuedLines_) {
    secureWipe(line);
  }
  queuedLines_.clear();
  secureWipe(relayPassword_);
  pendingRcpts_ = 0;
  closeDeferred_ = false;
  out.emplace_back(Close{});
  framer_.clear();
  state_ = State::Command;
}

void SmtpSession::resetTransaction() {
  inTransaction_ = false;
  envelope_ = Envelope{};
}

void SmtpSession::resetSession() {
  resetTransaction();
  state_ = State::Command;
  helo_.clear();
  esmtp_ = false;
  authUser_.clear();
  authUserPending_.clear();
}

void SmtpSession::wantTimer(unsigned seconds, bool force) {
  timerWanted_ = seconds;
  timerForce_ = timerForce_ || force;
}

void SmtpSession::requestAuth(std::string mechanism, std::string authzid, std::string user,
                              std::string password, Actions& out) {
  if (settings_.relay) {
    relayCredentials(std::move(authzid), std::move(user), std::move(password), out);
    return;
  }
  authUserPending_ = user;
  waiting_ = Waiting::Auth;
  wantTimer(0);
  flush(out);
  out.emplace_back(
      Authenticate{std::move(mechanism), std::move(authzid), std::move(user), std::move(password)});
}

}  // namespace smtpgate::smtp
