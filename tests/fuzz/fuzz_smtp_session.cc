// libFuzzer target: the SMTP server session (gateway/smtp/smtp_session.h), spool and relay mode.
//
// Input: byte 0 = settings (bit 0 relay, 1 implicit TLS, 2 TLS not required, 3 bare_lf=reject,
// 4 policy hooks, 5 small limits, 6 AUTH fails, 7 delivery fails); byte 1 = split seed; then a
// script: client bytes, where 0xFF 0xFF is a literal 0xFF and 0xFF <event> ends a segment and
// plays a connection event (see Event below). After every segment the harness answers what is
// outstanding, as the connection would (TLS established, AUTH/delivery results, backend ready,
// one fake backend reply per command), until nothing is.
//
// The script is played three ways: each segment whole, one byte per call, and in chunks derived
// from the split seed. Checked: every action is well-formed (Writes are CRLF lines with a 2xx-5xx
// code, backend command lines are one CRLF line, BackendData is dot-stuffed with CRLF only and
// never holds the terminator, delivered content has CRLF line ends only and respects the size
// limit), nothing follows Close, no MAIL/AUTH reaches a backend or the spool in plaintext when
// TLS is required, the buffered input stays bounded, and all three ways give the same replies,
// messages and backend traffic.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/smtp/actions.h"
#include "gateway/smtp/line_framer.h"
#include "gateway/smtp/smtp_session.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace smtpgate::smtp;

constexpr const char* kTarget = "fuzz_smtp_session";
#define CHECK FUZZ_CHECK
using smtpgate::fuzz::fail;
[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) { fail(kTarget, what, detail); }

enum class Event : std::uint8_t {
  Segment,        // only a segment boundary
  Timeout,        // onTimeout()
  Shutdown,       // onShutdown()
  BackendLost,    // onBackendLost() (relay)
  RejectNext,     // rejectNextCommand() (D2/D3)
  BackendOk,      // fake backend: accept everything (the default)
  BackendTemp,    // fake backend: 451 to everything
  BackendPerm,    // fake backend: 550 to everything
  BackendGarbage, // fake backend: replies without a code
  OpenFails,      // the next OpenBackend fails
  ToggleAuth,     // AUTH results flip between ok and failed
  ToggleDelivery, // delivery results flip
  CustomReply,    // 0xFF 0x0C <len> <len bytes>: the next backend reply, as sent (raw)
  HoldReplies,    // toggle: backend replies are held until the next segment boundary
  kCount,
};

struct Segment {
  std::string bytes;
  Event event = Event::Segment;
  std::string custom;  // CustomReply
};

struct Script {
  std::uint8_t flags = 0;
  std::uint8_t seed = 0;
  std::vector<Segment> segments;
};

Script parse(const std::uint8_t* data, std::size_t size) {
  Script s;
  if (size >= 1) s.flags = data[0];
  if (size >= 2) s.seed = data[1];
  s.segments.emplace_back();
  for (std::size_t i = 2; i < size; ++i) {
    if (data[i] != 0xFF || i + 1 >= size) {
      s.segments.back().bytes += static_cast<char>(data[i]);
      continue;
    }
    const std::uint8_t e = data[++i];
    if (e == 0xFF) {
      s.segments.back().bytes += '\xff';
      continue;
    }
    s.segments.back().event = static_cast<Event>(e % static_cast<unsigned>(Event::kCount));
    if (s.segments.back().event == Event::CustomReply && i + 1 < size) {
      const std::size_t len = data[++i];
      const std::size_t n = std::min(len, size - i - 1);
      s.segments.back().custom.assign(reinterpret_cast<const char*>(data + i + 1), n);
      i += n;
    }
    s.segments.emplace_back();
  }
  return s;
}

class FakePolicy : public PolicyHooks {
 public:
  Verdict onAuthIdentity(std::string_view user) override {
    if (user.find("deny") != std::string_view::npos) {
      refusedUsers.emplace_back(user);
      return {Verdict::Kind::RejectAndClose, "550 5.7.1 legacy TLS not allowed\r\n"};
    }
    return {};
  }
  Verdict onRecipient(std::string_view address) override {
    if (address.find("close") != std::string_view::npos) {
      return {Verdict::Kind::RejectAndClose, "550 5.7.1 closing"};
    }
    if (address.find("deny") != std::string_view::npos) {
      return {Verdict::Kind::RejectRecipient, ""};  // empty: the session's fallback reply
    }
    return {};
  }
  void onPlaintextRefused(std::string_view) override {}
  std::vector<std::string> refusedUsers;
};

// One reply, as the client reads it, must be CRLF lines "ddd-text" ... "ddd text" (or "ddd").
void checkWrite(std::string_view bytes) {
  CHECK(!bytes.empty());
  std::size_t pos = 0;
  int code = -1;  // inside a multi-line reply: its code
  while (pos < bytes.size()) {
    const std::size_t lf = bytes.find('\n', pos);
    CHECK(lf != std::string_view::npos, bytes);  // a complete line
    CHECK(lf > pos && bytes[lf - 1] == '\r', bytes);
    const std::string_view line = bytes.substr(pos, lf - 1 - pos);
    CHECK(line.find('\r') == std::string_view::npos, bytes);
    CHECK(line.size() >= 3, bytes);
    CHECK(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
              line[2] >= '0' && line[2] <= '9',
          bytes);
    const int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    CHECK(line.size() == 3 || line[3] == ' ' || line[3] == '-', bytes);
    if (code >= 0) {
      CHECK(c == code, bytes);  // continuation lines keep the code
    }
    code = line.size() > 3 && line[3] == '-' ? c : -1;
    pos = lf + 1;
  }
  CHECK(code < 0, bytes);  // the last line ends its reply
}

// CRLF line ends only: no CR without LF after it, no LF without CR before it.
bool crlfOnly(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

struct Outcome {
  std::string trace;     // Writes and markers of the other actions, in order
  std::string backend;   // backend traffic: commands, data (concatenated), end-of-data
  std::vector<std::string> messages;
  bool closed = false;
};

class Player {
 public:
  Player(const Script& script, SessionSettings settings, bool policy)
      : script_(script), settings_(settings), session_(settings) {
    if (policy) session_.setPolicy(&policy_);
    authOk_ = !(script.flags & 0x40);
    deliveryOk_ = !(script.flags & 0x80);
    if (script.flags & 0x10) {
      session_.setReceivedHeader([](const Message& m) {
        return "Received: from " + m.helo + "\nby mx.test\r";  // sloppy line ends on purpose
      });
    }
  }

  // how: 0 whole segments, 1 one byte per call, 2 chunks from the seed.
  Outcome play(int how) {
    std::uint32_t rng = 0x9e3779b9u ^ script_.seed;
    if (settings_.implicitTls) {
      record(session_.onTlsEstablished());
    }
    record(session_.start());
    for (const Segment& seg : script_.segments) {
      std::string_view rest = seg.bytes;
      while (!rest.empty()) {
        std::size_t n = rest.size();
        if (how == 1) {
          n = 1;
        } else if (how == 2) {
          rng = rng * 1103515245u + 12345u;
          n = std::min<std::size_t>(rest.size(), 1 + (rng >> 16) % 23);
        }
        record(session_.onBytes(rest.substr(0, n)));
        rest.remove_prefix(n);
        checkBounded();
      }
      settle();
      event(seg);
      settle();
    }
    return std::move(out_);
  }

 private:
  void checkBounded() {
    // Unprocessed input stays below one maximal AUTH line unless the session waits for a
    // result (then the connection's read watermark bounds it).
    if (!session_.waiting() && !session_.closed()) {
      CHECK(session_.bufferedBytes() <= LineFramer::kAuthLimit + 2);
    }
  }

  void event(const Segment& seg) {
    switch (seg.event) {
      case Event::Segment:
      case Event::kCount:
        break;
      case Event::Timeout:
        out_.trace += "<timeout>";
        record(session_.onTimeout());
        break;
      case Event::Shutdown:
        out_.trace += "<shutdown>";
        record(session_.onShutdown());
        break;
      case Event::BackendLost:
        if (backendOpen_ || opening_) {
          out_.trace += "<lost>";
          backendOpen_ = opening_ = false;
          awaited_.clear();
          data_.clear();
          inData_ = false;
          record(session_.onBackendLost());
        }
        break;
      case Event::RejectNext:
        session_.rejectNextCommand("554 5.7.1 no\r\n");
        break;
      case Event::BackendOk:
      case Event::BackendTemp:
      case Event::BackendPerm:
      case Event::BackendGarbage:
        mood_ = seg.event;
        break;
      case Event::OpenFails:
        openFails_ = true;
        break;
      case Event::ToggleAuth:
        authOk_ = !authOk_;
        break;
      case Event::ToggleDelivery:
        deliveryOk_ = !deliveryOk_;
        break;
      case Event::CustomReply:
        custom_.push_back(seg.custom);
        break;
      case Event::HoldReplies:
        hold_ = !hold_;
        break;
    }
  }

  // Answer what the session waits for, as the connection would, until nothing is left.
  void settle() {
    for (int rounds = 0; rounds < 10000; ++rounds) {
      if (session_.closed()) return;
      if (tlsStarting_) {
        tlsStarting_ = false;
        out_.trace += "<tls>";
        record(session_.onTlsEstablished());
        continue;
      }
      if (authPending_) {
        authPending_ = false;
        record(session_.onAuthResult(authOk_));
        continue;
      }
      if (deliveryPending_) {
        deliveryPending_ = false;
        SmtpSession::DeliveryResult r;
        r.ok = deliveryOk_;
        r.queueId = "Q1";
        r.reply = deliveryOk_ ? "" : "451-4.3.0 one\r\n451 4.3.0 two\r\n";
        record(session_.onDeliveryResult(r));
        continue;
      }
      if (opening_) {
        opening_ = false;
        const bool ok = !openFails_;
        openFails_ = false;
        backendOpen_ = ok;
        out_.trace += ok ? "<ready>" : "<open failed>";
        record(session_.onBackendReady(ok));
        continue;
      }
      if (!awaited_.empty() && !hold_) {
        std::string command = std::move(awaited_.front());
        awaited_.pop_front();
        record(session_.onBackendReply(backendReply(command)));
        continue;
      }
      return;
    }
    fail("settle() does not converge");
  }

  std::string backendReply(const std::string& command) {
    if (!custom_.empty()) {
      std::string r = std::move(custom_.front());
      custom_.pop_front();
      return r;
    }
    if (mood_ == Event::BackendGarbage) return "hello there\r\n";
    if (mood_ == Event::BackendTemp) return "451 4.3.0 Try again later\r\n";
    if (mood_ == Event::BackendPerm && command != "." && command.rfind("RSET", 0) != 0) {
      return "550-5.7.1 Refused\r\n550 5.7.1 really\r\n";
    }
    auto starts = [&](std::string_view prefix) { return command.rfind(prefix, 0) == 0; };
    if (command == ".") return "250 2.0.0 Ok: queued as BACKEND1\r\n";
    if (starts("DATA")) return "354 End data with <CR><LF>.<CR><LF>\r\n";
    if (starts("MAIL")) return "250 2.1.0 Ok\r\n";
    if (starts("RCPT")) return "250 2.1.5 Ok\r\n";
    if (starts("AUTH LOGIN")) return "334 UGFzc3dvcmQ6\r\n";
    if (starts("AUTH XOAUTH2") && command.size() % 2 == 0) return "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n";
    if (starts("AUTH") || !starts("RSET")) return "235 2.7.0 Authentication successful\r\n";
    return "250 2.0.0 Ok\r\n";
  }

  void record(const Actions& actions) {
    bool previousWrite = false;
    for (const Action& action : actions) {
      CHECK(!out_.closed);  // nothing after Close
      if (const auto* w = std::get_if<Write>(&action)) {
        CHECK(!previousWrite);
        checkWrite(w->bytes);
        out_.trace += w->bytes;
        previousWrite = true;
        continue;
      }
      previousWrite = false;
      if (std::holds_alternative<StartTls>(action)) {
        CHECK(!session_.tlsActive() && !settings_.implicitTls);
        out_.trace += "<StartTls>";
        tlsStarting_ = true;
      } else if (std::holds_alternative<Close>(action)) {
        out_.trace += "<Close>";
        out_.closed = true;
      } else if (const auto* a = std::get_if<Authenticate>(&action)) {
        CHECK(!settings_.relay);
        CHECK(session_.tlsActive() || !settings_.requireTls);
        for (const std::string& refused : policy_.refusedUsers) {
          CHECK(a->user != refused, a->user);
        }
        out_.trace += "<Auth " + a->mechanism + " " + a->user + ">";
        authPending_ = true;
      } else if (const auto* d = std::get_if<Deliver>(&action)) {
        CHECK(!settings_.relay);
        CHECK(session_.tlsActive() || !settings_.requireTls);
        const Message& m = d->message;
        CHECK(crlfOnly(m.content), m.content);
        CHECK(m.content.empty() || m.content.size() >= 2);
        CHECK(m.content.size() <= settings_.maxMessageBytes + 1024, m.content);
        CHECK(!m.envelope.rcptTo.empty());
        CHECK(m.envelope.rcptTo.size() <= settings_.maxRecipients);
        out_.trace += "<Deliver>";
        out_.messages.push_back(m.envelope.mailFrom + "|" + m.content);
        deliveryPending_ = true;
      } else if (std::holds_alternative<SetTimeout>(action)) {
        // batching depends on the split: not compared
      } else if (std::holds_alternative<OpenBackend>(action)) {
        CHECK(settings_.relay);
        CHECK(!backendOpen_ && !opening_);
        CHECK(session_.tlsActive() || !settings_.requireTls);
        out_.trace += "<OpenBackend>";
        opening_ = true;
      } else if (const auto* c = std::get_if<BackendCommand>(&action)) {
        CHECK(settings_.relay && backendOpen_ && !inData_, c->line);
        const std::string& line = c->line;
        CHECK(line.size() >= 2 && line.compare(line.size() - 2, 2, "\r\n") == 0, line);
        const std::string_view body(line.data(), line.size() - 2);
        CHECK(body.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos, line);
        CHECK(line.size() <= LineFramer::kAuthLimit + 64, line);
        if (body.rfind("MAIL", 0) == 0 || body.rfind("AUTH", 0) == 0) {
          CHECK(session_.tlsActive() || !settings_.requireTls, line);
        }
        out_.backend += "C:" + std::string(body) + "\n";
        awaited_.push_back(std::string(body));
      } else if (const auto* b = std::get_if<BackendData>(&action)) {
        CHECK(settings_.relay && backendOpen_);
        CHECK(!b->bytes.empty());
        data_ += b->bytes;
        inData_ = true;
        out_.backend += b->bytes;
      } else if (std::holds_alternative<BackendEndData>(action)) {
        CHECK(settings_.relay && backendOpen_);
        checkBackendData();
        out_.backend += "<.>\n";
        awaited_.push_back(".");
      } else if (std::holds_alternative<AbortBackend>(action)) {
        CHECK(settings_.relay);
        out_.trace += "<Abort>";
        out_.backend += "<abort>\n";
        backendOpen_ = opening_ = false;
        awaited_.clear();
        data_.clear();
        inData_ = false;
      }
    }
  }

  // The message as the backend gets it: dot-stuffed, CRLF only, ending with CRLF, and never a
  // "." line (which would end it early: SMTP smuggling).
  void checkBackendData() {
    CHECK(crlfOnly(data_), data_);
    CHECK(data_.empty() || data_.size() >= 2, data_);
    if (!data_.empty()) {
      CHECK(data_.compare(data_.size() - 2, 2, "\r\n") == 0, data_);
    }
    CHECK(data_.rfind(".\r\n", 0) != 0, data_);
    CHECK(data_.find("\r\n.\r\n") == std::string::npos, data_);
    data_.clear();
    inData_ = false;
  }

  const Script& script_;
  SessionSettings settings_;
  SmtpSession session_;
  FakePolicy policy_;
  Outcome out_;
  bool tlsStarting_ = false;
  bool authPending_ = false;
  bool deliveryPending_ = false;
  bool opening_ = false;
  bool backendOpen_ = false;
  bool openFails_ = false;
  bool authOk_ = true;
  bool deliveryOk_ = true;
  bool hold_ = false;
  bool inData_ = false;
  Event mood_ = Event::BackendOk;
  std::deque<std::string> awaited_;
  std::deque<std::string> custom_;
  std::string data_;
};

SessionSettings settingsFor(std::uint8_t flags, std::uint8_t seed) {
  SessionSettings s;
  s.hostname = "mx.fuzz.test";
  s.relay = flags & 0x01;
  s.implicitTls = flags & 0x02;
  s.requireTls = !(flags & 0x04);
  s.bareLf = (flags & 0x08) ? BareLfPolicy::Reject : BareLfPolicy::Normalize;
  if (flags & 0x20) {
    s.maxMessageBytes = 64 + seed % 64;
    s.maxRecipients = 1 + seed % 3;
    s.maxErrors = 1 + seed % 4;
  } else {
    s.maxErrors = 50;  // let the fuzzer go deep before the session gives up
  }
  if (s.relay) {
    switch (seed % 4) {
      case 0:
        s.relayCapabilities = {"PIPELINING", "SIZE 10240000", "8BITMIME", "DSN", "SMTPUTF8",
                               "AUTH PLAIN LOGIN XOAUTH2", "ENHANCEDSTATUSCODES"};
        break;
      case 1:
        s.relayCapabilities = {"PIPELINING", "AUTH LOGIN"};
        break;
      case 2:
        s.relayCapabilities = {"AUTH XOAUTH2", "SIZE 1000"};
        break;
      default:
        s.relayCapabilities = {};
        break;
    }
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) {
    return -1;  // byte-by-byte replay of huge inputs is slow and finds nothing new
  }
  const Script script = parse(data, size);
  const SessionSettings settings = settingsFor(script.flags, script.seed);
  const bool policy = script.flags & 0x10;

  Player whole(script, settings, policy);
  const Outcome reference = whole.play(0);
  if (std::getenv("FUZZ_SESSION_TRACE") != nullptr) {  // for writing seeds: what they reach
    std::fprintf(stderr, "%s\n----- backend:\n%s\n", reference.trace.c_str(),
                 reference.backend.c_str());
  }
  for (int how : {1, 2}) {
    Player other(script, settings, policy);
    const Outcome o = other.play(how);
    if (o.trace != reference.trace) {
      std::fprintf(stderr, "whole:\n%s\n----- split %d:\n%s\n", reference.trace.c_str(), how,
                   o.trace.c_str());
      fail("the client's replies depend on how the input was split");
    }
    CHECK(o.closed == reference.closed);
    CHECK(o.messages == reference.messages);
    if (o.backend != reference.backend) {
      // BackendData chunking may differ, the bytes may not: compare without it.
      std::fprintf(stderr, "whole:\n%s\n----- split %d:\n%s\n", reference.backend.c_str(), how,
                   o.backend.c_str());
      fail("the backend traffic depends on how the input was split");
    }
  }
  return 0;
}
