// Relay mode of SmtpSession (SPEC section 6): the backend link's events, the FIFO of awaited
// replies (RFC 2920 pipelining toward the backend), and DATA streamed as the decoder re-stuffs it.
// The action sequences the connection sees are described in actions.h.

#include <cctype>
#include <optional>
#include <string>
#include <utility>

#include "gateway/smtp/data_encoder.h"
#include "gateway/smtp/replies.h"
#include "gateway/smtp/sasl.h"
#include "gateway/smtp/smtp_session.h"

namespace smtpgate::smtp {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// "ddd" followed by nothing, a space or a hyphen: the code at the start of a reply line.
bool hasCode(std::string_view line) {
  return line.size() >= 3 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '-');
}

// A backend reply made safe to forward: split at every CRLF, bare CR and bare LF (so nothing
// but CRLF ever ends a line toward the client), empty lines dropped, every line carrying the
// first line's code, "-" on all but the last. nullopt when the first line has no 2xx-5xx code.
std::optional<std::string> cleanReply(std::string_view raw) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= raw.size(); ++i) {
    if (i == raw.size() || raw[i] == '\r' || raw[i] == '\n') {
      if (i > start) {
        lines.push_back(raw.substr(start, i - start));
      }
      start = i + 1;
    }
  }
  if (lines.empty() || !hasCode(lines.front()) || lines.front()[0] < '2' ||
      lines.front()[0] > '5') {
    return std::nullopt;
  }
  const std::string_view code = lines.front().substr(0, 3);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view text = lines[i];
    // "334 " (an empty SASL challenge) keeps its space: only a bare "250" has none.
    bool separator = !text.empty();
    if (hasCode(text)) {
      separator = text.size() > 3;
      text.remove_prefix(separator ? 4 : 3);
    }
    const bool last = i + 1 == lines.size();
    out.append(code);
    if (!last) {
      out.append("-");
      out.append(text);
      out.append("\r\n");
    } else if (separator) {
      out.append(" ");
      out.append(text);
    }
  }
  return out;
}

// The trace header from the connection, with every line end a CRLF and a final CRLF, so that
// it cannot run into the content or hide a bare line end.
std::string crlfLines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = i;
    while (end < text.size() && text[end] != '\r' && text[end] != '\n') {
      ++end;
    }
    out.append(text.substr(i, end - i));  // the run up to the next CR or LF, whole
    if (end == text.size()) {
      break;
    }
    out += "\r\n";
    i = end + (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1);
  }
  if (!out.empty() && !out.ends_with("\r\n")) {
    out += "\r\n";
  }
  return out;
}

}  // namespace

void SmtpSession::learnRelayCapabilities() {
  for (const std::string& capability : settings_.relayCapabilities) {
    const std::string word = upper(capability);
    if (word == "SMTPUTF8") {
      offers_.smtputf8 = true;
    } else if (word == "DSN") {
      offers_.dsn = true;
    } else if (word == "PIPELINING") {
      offers_.pipelining = true;
    } else if (word.starts_with("AUTH ")) {
      std::string_view rest = std::string_view(word).substr(5);
      while (!rest.empty()) {
        const std::size_t space = rest.find(' ');
        const std::string_view mechanism = rest.substr(0, space);
        offers_.plain = offers_.plain || mechanism == "PLAIN";
        offers_.login = offers_.login || mechanism == "LOGIN";
        offers_.xoauth2 = offers_.xoauth2 || mechanism == "XOAUTH2";
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      }
    }
  }
}

void SmtpSession::relayEhloCapabilities() {
  std::vector<std::string_view> keywords;
  for (const std::string& capability : settings_.relayCapabilities) {
    bool clean = !capability.empty();
    for (char c : capability) {
      clean = clean && c != '\r' && c != '\n';
    }
    if (clean) {
      keywords.push_back(capability);
    }
  }
  if (keywords.empty()) {
    reply("250 " + settings_.hostname);
    return;
  }
  reply("250-" + settings_.hostname);
  for (std::size_t i = 0; i < keywords.size(); ++i) {
    std::string line(i + 1 == keywords.size() ? "250 " : "250-");
    line += keywords[i];
    reply(line);
  }
}

void SmtpSession::sendBackend(std::string line, Awaited::Kind kind, Actions& out,
                              std::string recipient) {
  awaited_.push_back(Awaited{kind, std::move(recipient), {}});
  if (kind == Awaited::Kind::Rcpt) {
    ++pendingRcpts_;
  }
  if (backend_ != Backend::Open) {
    queuedLines_.push_back(std::move(line));
    if (backend_ == Backend::Closed) {
      backend_ = Backend::Opening;
      flush(out);
      out.emplace_back(OpenBackend{});
    }
    return;
  }
  flush(out);
  out.emplace_back(BackendCommand{std::move(line)});
}

bool SmtpSession::relayBlocked() const {
  if (backend_ == Backend::Opening) {
    return true;
  }
  if (awaited_.empty()) {
    return false;
  }
  // Only RCPTs and a final DATA join a batch behind MAIL/RCPT (RFC 2920, and only toward a
  // backend that offers PIPELINING): everything else needs the state that the awaited replies
  // decide, and DATA must be the last command of a group.
  if (!offers_.pipelining || state_ != State::Command) {
    return true;
  }
  for (const Awaited& entry : awaited_) {
    if (entry.kind != Awaited::Kind::Mail && entry.kind != Awaited::Kind::Rcpt) {
      return true;
    }
  }
  const std::optional<std::string_view> line = framer_.peekLine();
  if (!line || line->size() < 4) {
    return true;
  }
  const std::string verb = upper(line->substr(0, 4));
  const std::size_t end = line->ends_with("\r\n") ? line->size() - 2 : line->size() - 1;
  if (verb == "DATA" && end == 4) {
    // Answered by the replies still awaited when they leave no recipient (cmdData() and
    // pipelinedDataRefused()); a DATA with an argument is refused locally after them.
    return false;
  }
  // At the recipient limit the replies still awaited decide whether this one fits.
  if (envelope_.rcptTo.size() + pendingRcpts_ >= settings_.maxRecipients) {
    return true;
  }
  return line->size() < 5 || (*line)[4] != ' ' || verb != "RCPT";
}

void SmtpSession::abortBackend(Actions& out) {
  out.emplace_back(AbortBackend{});
  failBackend();
}

void SmtpSession::failBackend() {
  backend_ = Backend::Closed;
  for (std::string& line : queuedLines_) {
    secureWipe(line);
  }
  queuedLines_.clear();
  secureWipe(relayPassword_);
  relayHead_.clear();
  std::deque<Awaited> awaited = std::move(awaited_);
  awaited_.clear();
  pendingRcpts_ = 0;
  const std::string lost = hostReply("451 4.4.1", "Error: backend connection lost");
  for (Awaited& entry : awaited) {
    switch (entry.kind) {
      case Awaited::Kind::Silent:
        break;
      case Awaited::Kind::Rset:
        replyNow(replies::kOk);  // reset it is: no transaction is left anywhere
        break;
      case Awaited::Kind::Auth:
      case Awaited::Kind::AuthLoginUser:
      case Awaited::Kind::AuthChallengeable:
        authUserPending_.clear();
        replyNow(lost);
        break;
      default:
        replyNow(lost);  // never a 250 for what the backend did not confirm
        break;
    }
    pending_ += entry.after;
  }
  if (state_ == State::Data && dataFate_ == DataFate::Relay) {
    dataFate_ = DataFate::Lost;  // read on to the end of the data, then 451
  }
  resetTransaction();
}

Actions SmtpSession::onBackendReady(bool ok) {
  Actions out;
  if (closed_ || backend_ != Backend::Opening) {
    return out;
  }
  if (!ok) {
    backend_ = Backend::Closed;
    awaited_.clear();  // only the command that asked for the backend: nothing was accepted
    pendingRcpts_ = 0;
    for (std::string& line : queuedLines_) {
      secureWipe(line);
    }
    queuedLines_.clear();
    secureWipe(relayPassword_);
    authUserPending_.clear();
    resetTransaction();
    replyNow(hostReply("421 4.4.2", "Error: backend not available"));
    closeNow(out);
    return out;
  }
  backend_ = Backend::Open;
  flush(out);
  for (std::string& line : queuedLines_) {
    out.emplace_back(BackendCommand{std::move(line)});
  }
  queuedLines_.clear();
  resumeRelay(out);
  return out;
}

Actions SmtpSession::onBackendReply(std::string_view reply) {
  Actions out;
  if (closed_ || backend_ != Backend::Open || awaited_.empty()) {
    return out;  // nothing asked: the connection handles unsolicited replies (421) itself
  }
  Awaited entry = std::move(awaited_.front());
  awaited_.pop_front();
  if (entry.kind == Awaited::Kind::Rcpt) {
    --pendingRcpts_;
  }
  std::optional<std::string> text = cleanReply(reply);
  // 3xx replies belong only to DATA (354) and AUTH exchanges (334); one to MAIL, RCPT, RSET
  // or the final dot means the backend is out of step.
  using Kind = Awaited::Kind;
  if (text && (*text)[0] == '3' &&
      !(entry.kind == Kind::Data || entry.kind == Kind::Auth || entry.kind == Kind::AuthLoginUser ||
        entry.kind == Kind::AuthChallengeable)) {
    text.reset();
  }
  if (text) {
    handleBackendReply(std::move(entry), std::move(*text), out);
  } else {
    // Nothing that can be forwarded: the link is out of step, so it goes like a lost one.
    awaited_.push_front(std::move(entry));
    abortBackend(out);
  }
  resumeRelay(out);
  return out;
}

Actions SmtpSession::onBackendLost() {
  Actions out;
  if (closed_ || !settings_.relay || backend_ == Backend::Closed) {
    return out;  // after AbortBackend, or twice
  }
  if (backend_ == Backend::Opening) {
    return onBackendReady(false);
  }
  failBackend();
  resumeRelay(out);
  return out;
}

void SmtpSession::handleBackendReply(Awaited entry, std::string text, Actions& out) {
  const char kind = text[0];
  bool followUp = false;  // a new command continues this one; entry.after waits for it
  switch (entry.kind) {
    case Awaited::Kind::Mail:
      replyNow(text);
      if (kind != '2') {
        resetTransaction();  // RCPTs already sent get the backend's own (503) replies
      }
      break;
    case Awaited::Kind::Rcpt:
      replyNow(text);
      if (kind == '2' && inTransaction_) {
        envelope_.rcptTo.push_back(std::move(entry.recipient));
      }
      break;
    case Awaited::Kind::Data:
      if (pipelinedDataRefused(kind, out)) {
        break;
      }
      replyNow(text);
      if (kind == '3') {
        startRelayData(out);
      } else {
        // Whether the backend kept its transaction is its business: reset both sides.
        resetTransaction();
        sendBackend("RSET\r\n", Awaited::Kind::Silent, out);
        followUp = true;
      }
      break;
    case Awaited::Kind::EndData:
    case Awaited::Kind::Rset:
      replyNow(text);
      break;
    case Awaited::Kind::Silent:
      break;
    case Awaited::Kind::Auth:
      if (kind == '3') {
        // A challenge where none belongs: the exchange is out of step.
        abortBackend(out);
        authUserPending_.clear();
        replyNow(replies::kAuthTemporaryFailure);
      } else {
        finishRelayAuth(text);
      }
      break;
    case Awaited::Kind::AuthLoginUser:
      if (kind == '3') {
        std::string encoded = base64Encode(relayPassword_);
        secureWipe(relayPassword_);
        std::string line;
        line.reserve(encoded.size() + 2);
        line.append(encoded);
        line.append("\r\n");
        secureWipe(encoded);
        sendBackend(std::move(line), Awaited::Kind::Auth, out);
        followUp = true;
      } else {
        secureWipe(relayPassword_);
        finishRelayAuth(text);
      }
      break;
    case Awaited::Kind::AuthChallengeable:
      if (kind == '3') {
        replyNow(text);  // XOAUTH2's error challenge: the client answers, we pass it back
        state_ = State::AuthRelayResponse;
      } else {
        finishRelayAuth(text);
      }
      break;
  }
  if (followUp && !awaited_.empty()) {
    awaited_.back().after.insert(0, entry.after);
  } else {
    pending_ += entry.after;
  }
}

bool SmtpSession::pipelinedDataRefused(char kind, Actions& out) {
  // A DATA sent behind its MAIL and RCPTs: when their replies left no transaction or no
  // recipient, the client gets what the same DATA sent alone gets, whatever the backend said.
  std::string_view refusal;
  if (!inTransaction_) {
    refusal = replies::kNeedRcpt;
  } else if (envelope_.rcptTo.empty()) {
    refusal = replies::kNoValidRecipients;
  } else {
    return false;
  }
  resetTransaction();
  if (kind == '3') {
    abortBackend(out);  // it waits for a message we will not send
  }
  error(refusal, out);  // nothing else is awaited (DATA ends a batch): the client has it now
  if (kind != '3' && !closed_) {
    sendBackend("RSET\r\n", Awaited::Kind::Silent, out);  // whatever it kept of the envelope
  }
  return true;
}

void SmtpSession::resumeRelay(Actions& out) {
  if (!closed_ && awaited_.empty() && backend_ != Backend::Opening) {
    if (closeDeferred_) {
      closeNow(out);
      return;
    }
    if (shutdownPending_) {
      replyNow(hostReply("421 4.3.2", "Service shutting down"));
      closeNow(out);
      return;
    }
  }
  process(out);
  flush(out);
}

void SmtpSession::startRelayData(Actions& out) {
  state_ = State::Data;
  // The CRLF that ended the DATA line may be the first of CRLF.CRLF (an empty message).
  data_.start(settings_.maxMessageBytes, dataCrlf_, DataDecoder::Output::Stuffed);
  dataFate_ = DataFate::Relay;
  if (!receivedHeader_) {
    return;
  }
  Message trace;
  trace.envelope = envelope_;
  trace.helo = helo_;
  trace.esmtp = esmtp_;
  trace.authUser = authUser_;
  const std::string header = crlfLines(receivedHeader_(trace));
  if (header.empty()) {
    return;
  }
  // Held back to go with the first content (one write upstream rather than two); stuffed
  // where needed, as content.
  DataEncoder encoder;
  relayHead_ = encoder.encode(header);
}

void SmtpSession::relayContent(Actions& out) {
  std::string content = data_.takeContent();
  if (dataFate_ != DataFate::Relay) {
    return;  // refused or lost already: read to the end, keep nothing
  }
  // A message refused locally must never be completed upstream: drop the link at once.
  if (data_.overflow()) {
    dataFate_ = DataFate::TooBig;
    abortBackend(out);
    return;
  }
  if (settings_.bareLf == BareLfPolicy::Reject && data_.sawBareLineEnd()) {
    dataFate_ = DataFate::BareLineEnd;
    abortBackend(out);
    return;
  }
  if (content.empty()) {
    return;
  }
  if (!relayHead_.empty()) {
    relayHead_.append(content);
    content = std::exchange(relayHead_, std::string());
  }
  flush(out);
  out.emplace_back(BackendData{std::move(content)});  // dot-stuffed by the decoder already
}

void SmtpSession::relayDataEnd(Actions& out) {
  state_ = State::Command;
  const DataFate fate = dataFate_;
  dataFate_ = DataFate::Relay;
  std::string head = std::exchange(relayHead_, std::string());  // an empty message's header
  resetTransaction();  // after DATA, whatever the outcome
  switch (fate) {
    case DataFate::Lost:
      reply(hostReply("451 4.4.1", "Error: backend connection lost"));
      return;
    case DataFate::TooBig:
      error(replies::kTooBig, out);
      return;
    case DataFate::BareLineEnd:
      error(replies::kBareLineEnd, out);
      return;
    case DataFate::Relay:
      break;
  }
  // No line end to add before the terminator that BackendEndData stands for: the decoder
  // reaches it only right after a CRLF of the content (or with no content at all), and the
  // Received: lines end with CRLF.
  awaited_.push_back(Awaited{Awaited::Kind::EndData, {}, {}});
  flush(out);
  if (!head.empty()) {
    out.emplace_back(BackendData{std::move(head)});
  }
  out.emplace_back(BackendEndData{});
}

unsigned SmtpSession::relayTimer() const {
  if (backend_ == Backend::Opening || !awaited_.empty()) {
    return 0;  // the client waits for us; the connection times the backend
  }
  return state_ == State::Data ? settings_.dataTimeoutS : settings_.commandTimeoutS;
}

}  // namespace smtpgate::smtp
