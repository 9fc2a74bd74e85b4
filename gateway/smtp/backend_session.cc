#include "gateway/smtp/backend_session.h"

#include <utility>

#include "gateway/smtp/proxy_header.h"
#include "gateway/smtp/xtext.h"

namespace smtpgate::smtp {

namespace {

constexpr std::string_view kUnavailable = "[UNAVAILABLE]";
constexpr std::string_view kNoStartTls = "backend does not offer STARTTLS";
constexpr std::string_view kNoXclient =
    "backend does not authorise XCLIENT for the gateway (Postfix: "
    "smtpd_authorized_xclient_hosts)";

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Case-insensitive search for an ASCII `needle`.
std::size_t findNoCase(std::string_view text, std::string_view needle, std::size_t from = 0) {
  if (needle.size() > text.size()) {
    return std::string_view::npos;
  }
  for (std::size_t i = from; i + needle.size() <= text.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(text[i + j]) == lower(needle[j])) {
      ++j;
    }
    if (j == needle.size()) {
      return i;
    }
  }
  return std::string_view::npos;
}

bool isIdChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '_' || c == '.';
}

// The queue id at text[pos]: letters, digits, "-", "_", "."; optionally in <>; a sentence's
// final "." is not part of it.
std::string idAt(std::string_view text, std::size_t pos) {
  if (pos < text.size() && text[pos] == '<') {
    ++pos;
  }
  std::size_t end = pos;
  while (end < text.size() && isIdChar(text[end])) {
    ++end;
  }
  while (end > pos && text[end - 1] == '.') {
    --end;
  }
  return std::string(text.substr(pos, end - pos));
}

// "id=X" where "id" starts a word (not "msgid=").
std::string idParam(std::string_view text) {
  for (std::size_t at = findNoCase(text, "id="); at != std::string_view::npos;
       at = findNoCase(text, "id=", at + 1)) {
    if (at == 0 || text[at - 1] == ' ' || text[at - 1] == '(' || text[at - 1] == '[') {
      std::string id = idAt(text, at + 3);
      if (!id.empty()) {
        return id;
      }
    }
  }
  return {};
}

// Sendmail: "2.0.0 4AB1cD2e012345 Message accepted for delivery".
std::string sendmailId(std::string_view text, std::string_view enhanced) {
  static constexpr std::string_view kTail = " Message accepted for delivery";
  const std::size_t tail = findNoCase(text, kTail);
  if (tail == std::string_view::npos) {
    return {};
  }
  std::string_view head = text.substr(0, tail);
  if (!enhanced.empty() && head.substr(0, enhanced.size()) == enhanced) {
    head.remove_prefix(enhanced.size());
  }
  while (!head.empty() && head.front() == ' ') {
    head.remove_prefix(1);
  }
  std::string id = idAt(head, 0);
  return id.size() == head.size() ? id : std::string();
}

// A line-safe HELO name: what the client sent, if it is one printable token.
bool usableHelo(std::string_view helo) {
  if (helo.empty() || helo.size() > 255) {
    return false;
  }
  for (char c : helo) {
    if (c <= ' ' || c > '~') {
      return false;
    }
  }
  return true;
}

// XCLIENT ADDR / DESTADDR: "192.0.2.10", "IPV6:2001:db8::1" (Postfix's form), or
// [UNAVAILABLE] for something that is not an address.
std::string xclientAddress(std::string_view ip) {
  std::optional<IpAddress> address = IpAddress::parse(ip);
  if (!address) {
    return std::string(kUnavailable);
  }
  return (address->v6 ? "IPV6:" : "") + address->str();
}

}  // namespace

BackendSession::BackendSession(BackendOptions options) : options_(std::move(options)) {}

std::string BackendSession::start() {
  const ClientFacts& f = options_.facts;
  ProxyInfo info{f.ip, f.port, f.serverIp, f.serverPort, f.tlsVersion, f.tlsCipher, f.sni};
  switch (options_.handoff) {
    case Handoff::ProxyV1:
      return proxyV1(info).bytes;
    case Handoff::ProxyV2:
      return proxyV2(info).bytes;
    case Handoff::None:
    case Handoff::Xclient:
      break;
  }
  return {};
}

BackendSession::Result BackendSession::onBytes(std::string_view bytes) {
  Result out;
  if (state_ == State::Failed || bytes.empty()) {
    return out;
  }
  if (state_ == State::TlsHandshake) {
    // Anything here was sent in plaintext after the 220 and would be read as if it came
    // under TLS (response injection, the client side of CVE-2011-0411).
    fail(out, "backend sent plaintext after its STARTTLS reply");
    return out;
  }
  std::vector<Reply> replies = parser_.feed(bytes);
  if (state_ == State::Ready) {
    out.replies = std::move(replies);
    if (parser_.failed()) {
      fail(out, "backend protocol error: " + parser_.error());
    }
    return out;
  }
  if (!replies.empty()) {
    step(replies.front(), out);
    if (out.event == Event::Failed) {
      return out;
    }
    // One command, one reply: more means a broken or hostile backend, and after STARTTLS or
    // XCLIENT it would be taken for the new session's.
    if (replies.size() > 1 || parser_.midReply()) {
      const Reply* extra = replies.size() > 1 ? &replies[1] : nullptr;
      fail(out, "backend sent more than the reply awaited", extra);
      return out;
    }
  }
  if (parser_.failed()) {
    fail(out, "backend protocol error: " + parser_.error());
  }
  return out;
}

BackendSession::Result BackendSession::onTlsEstablished() {
  Result out;
  if (state_ == State::Failed) {
    return out;  // reported once already
  }
  if (state_ != State::TlsHandshake) {
    fail(out, "TLS established without a STARTTLS in progress");
    return out;
  }
  // RFC 3207 §4.2: forget what the backend said before TLS; ask again.
  tlsDone_ = true;
  caps_.clear();
  parser_.reset();
  sendEhlo(out);
  return out;
}

void BackendSession::step(const Reply& reply, Result& out) {
  switch (state_) {
    case State::Greeting:
      greeting_ = reply.firstLine();
      if (reply.code != 220) {
        fail(out, "backend refused the connection: " + reply.firstLine(), &reply);
        return;
      }
      sendEhlo(out);
      return;
    case State::Ehlo:
      if (reply.code != 250) {
        fail(out, "backend refused EHLO: " + reply.firstLine(), &reply);
        return;
      }
      caps_ = parseEhlo(reply);
      afterEhlo(out);
      return;
    case State::StartTlsReply:
      if (reply.code != 220) {
        fail(out, "backend refused STARTTLS: " + reply.firstLine(), &reply);
        return;
      }
      state_ = State::TlsHandshake;
      out.event = Event::StartTls;
      return;
    case State::XclientReply:
      // Postfix answers with a new 220 greeting; 250 is accepted from older implementations.
      if (reply.code != 220 && reply.code != 250) {
        fail(out, "backend refused XCLIENT: " + reply.firstLine(), &reply);
        return;
      }
      xclientDone_ = true;
      sendEhlo(out);
      return;
    case State::TlsHandshake:
    case State::Ready:
    case State::Failed:
      return;
  }
}

void BackendSession::afterEhlo(Result& out) {
  if (options_.startTls && !tlsDone_) {
    if (!has(caps_, "STARTTLS")) {
      fail(out, std::string(kNoStartTls));
      return;
    }
    out.toSend += "STARTTLS\r\n";
    state_ = State::StartTlsReply;
    return;
  }
  if (options_.handoff == Handoff::Xclient && !xclientDone_) {
    if (!has(caps_, "XCLIENT")) {
      fail(out, std::string(kNoXclient));
      return;
    }
    std::string command = xclientCommand(xclientAttributes(caps_), options_.facts);
    if (command.empty()) {
      fail(out, "backend's XCLIENT lists no attribute the gateway sends");
      return;
    }
    out.toSend += command;
    state_ = State::XclientReply;
    return;
  }
  state_ = State::Ready;
  out.event = Event::Ready;
}

void BackendSession::sendEhlo(Result& out) {
  out.toSend += "EHLO " + ehloName() + "\r\n";
  state_ = State::Ehlo;
}

std::string BackendSession::ehloName() const {
  const bool backendSeesClient = options_.handoff == Handoff::ProxyV1 ||
                                 options_.handoff == Handoff::ProxyV2 ||
                                 (options_.handoff == Handoff::Xclient && xclientDone_);
  if (backendSeesClient && usableHelo(options_.facts.helo)) {
    return options_.facts.helo;
  }
  return options_.heloName;
}

void BackendSession::fail(Result& out, std::string reason, const Reply* reply) {
  state_ = State::Failed;
  out.toSend.clear();  // never send a command into a failed handshake
  out.event = Event::Failed;
  out.reason = std::move(reason);
  if (reply != nullptr) {
    out.reply = *reply;
  }
}

std::string BackendSession::queueIdFrom(const Reply& reply) {
  if (!reply.positive()) {
    return {};
  }
  for (const std::string& line : reply.lines) {
    const std::size_t queued = findNoCase(line, "queued as ");
    if (queued != std::string::npos) {
      std::string id = idAt(line, queued + 10);
      if (!id.empty()) {
        return id;
      }
    }
    if (std::string id = idParam(line); !id.empty()) {
      return id;
    }
    if (std::string id = sendmailId(line, reply.enhanced); !id.empty()) {
      return id;
    }
  }
  return {};
}

std::string BackendSession::xclientCommand(const std::vector<std::string>& attributes,
                                           const ClientFacts& facts) {
  auto offered = [&](std::string_view name) {
    for (const std::string& a : attributes) {
      if (a == name) {
        return true;
      }
    }
    return false;
  };
  std::string command = "XCLIENT";
  auto add = [&](std::string_view name, const std::string& value) {
    if (offered(name)) {
      command += ' ';
      command += name;
      command += '=';
      command += value;
    }
  };
  // The special values ("[UNAVAILABLE]", "IPV6:...") are xtext already.
  add("ADDR", xclientAddress(facts.ip));
  add("PORT", facts.port != 0 ? std::to_string(facts.port) : std::string(kUnavailable));
  add("NAME",
      facts.reverseName.empty() ? std::string(kUnavailable) : xtextEncode(facts.reverseName));
  add("HELO", facts.helo.empty() ? std::string(kUnavailable) : xtextEncode(facts.helo));
  add("PROTO", facts.esmtp ? "ESMTP" : "SMTP");
  if (!facts.login.empty()) {
    add("LOGIN", xtextEncode(facts.login));
  }
  if (!facts.serverIp.empty()) {
    add("DESTADDR", xclientAddress(facts.serverIp));
  }
  if (facts.serverPort != 0) {
    add("DESTPORT", std::to_string(facts.serverPort));
  }
  if (command == "XCLIENT") {
    return {};
  }
  return command + "\r\n";
}

}  // namespace smtpgate::smtp
