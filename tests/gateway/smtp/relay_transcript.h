#pragma once

// Relay-mode transcripts: a client script (transcript.h's steps) against a scripted fake
// backend that answers each OpenBackend, BackendCommand and BackendEndData from queues.
// Every run -- client input whole, byte by byte and line by line, times backend replies
// arriving one by one as soon as asked or all at once after each client step -- must show
// the client the same bytes and put the same bytes on the backend link. The fake also holds
// the session to the protocol of the link (nothing before the backend is ready, DATA only
// with no reply outstanding, message bytes only after 354, nothing after AbortBackend).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/smtp/actions.h"
#include "gateway/smtp/smtp_session.h"
#include "tests/gateway/smtp/fake_policy.h"
#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp::testing {

struct BackendScript {
  std::deque<std::string> replies;  // one per BackendCommand / BackendEndData, in order
  std::deque<bool> opens;           // onBackendReady() per OpenBackend; true once used up
};

enum class BackendTiming {
  Batched,  // every reply the session waits for, all at once after each client step
  Eager,    // each reply as soon as it is asked for, before the next client byte
};

struct RelayOutcome {
  // Writes with markers: <Open> <Ready> <NotReady> [command line] <Data> (consecutive
  // BackendData merged) <End> <Abort> <Lost> <StartTls> <Close>. Depends on the timing.
  std::string trace;
  // What the client read, with <StartTls> and <Close>.
  std::string client;
  // What the backend link carried: "<open>", command lines, message bytes, ".\r\n" for
  // BackendEndData, "<abort>", "<lost>". The bytes of a message are added at BackendEndData:
  // those of an aborted or lost one (how many went out depends on the split) are not.
  std::string backend;
  bool closed = false;
  unsigned opens = 0;
  unsigned ends = 0;
  unsigned aborts = 0;
  std::size_t repliesLeft = 0;     // scripted replies never asked for
  std::vector<std::string> calls;  // the policy's calls
};

// A Received: line from the envelope, so that tests see it is built per message.
inline std::string testReceived(const Message& m) {
  std::string out = "Received: from " + m.helo;
  if (!m.authUser.empty()) {
    out += " (" + m.authUser + ")";
  }
  for (const std::string& rcpt : m.envelope.rcptTo) {
    out += " <" + rcpt + ">";
  }
  return out + "\r\n";
}

struct RelayOptions {
  const FakePolicy* policy = nullptr;
  std::function<std::string(const Message&)> received = testReceived;
  // Only the reference run (whole, batched): for scripts whose outcome depends on the timing.
  bool referenceOnly = false;
};

class RelayPlayer {
 public:
  RelayPlayer(SmtpSession& session, BackendScript script, BackendTiming timing)
      : session_(session), script_(std::move(script)), timing_(timing) {}

  RelayOutcome play(const std::vector<Step>& steps, Split split) {
    std::string bytes;
    auto sendPending = [&] {
      for (const std::string& chunk : chunks(bytes, split)) {
        record(session_.onBytes(chunk));
        if (timing_ == BackendTiming::Eager) {
          answer();
        }
      }
      bytes.clear();
      answer();
    };
    for (const Step& step : steps) {
      if (step.kind == Step::Kind::Bytes) {
        bytes += step.bytes;
        continue;
      }
      sendPending();
      switch (step.kind) {
        case Step::Kind::Start:
          record(session_.start());
          break;
        case Step::Kind::Tls:
          record(session_.onTlsEstablished());
          break;
        case Step::Kind::Timeout:
          record(session_.onTimeout());
          break;
        case Step::Kind::Shutdown:
          record(session_.onShutdown());
          break;
        case Step::Kind::RejectNext:
          session_.rejectNextCommand(step.reply);
          break;
        case Step::Kind::BackendLost:
          out_.trace += "<Lost>";
          out_.backend += "<lost>";
          link_ = Link::Closed;
          outstanding_.clear();
          openPending_ = false;
          message_.clear();
          record(session_.onBackendLost());
          break;
        case Step::Kind::BackendReply:
          script_.replies.push_back(step.reply);
          break;
        case Step::Kind::AuthResult:
        case Step::Kind::DeliveryResult:
        case Step::Kind::Bytes:
          FAIL("not a relay-mode step");
          break;
      }
      answer();
    }
    sendPending();
    out_.repliesLeft = script_.replies.size();
    return out_;
  }

 private:
  enum class Link { Closed, Opening, Open, InData };

  void record(const Actions& actions) {
    bool previousWrite = false;
    for (const Action& action : actions) {
      REQUIRE_FALSE(out_.closed);  // nothing after Close
      if (const auto* w = std::get_if<Write>(&action)) {
        REQUIRE_FALSE(previousWrite);
        REQUIRE_FALSE(w->bytes.empty());
        out_.trace += w->bytes;
        out_.client += w->bytes;
        previousWrite = true;
        continue;
      }
      previousWrite = false;
      if (std::holds_alternative<StartTls>(action)) {
        out_.trace += "<StartTls>";
        out_.client += "<StartTls>";
      } else if (std::holds_alternative<Close>(action)) {
        out_.trace += "<Close>";
        out_.client += "<Close>";
        out_.closed = true;
      } else if (std::holds_alternative<OpenBackend>(action)) {
        REQUIRE(link_ == Link::Closed);
        link_ = Link::Opening;
        openPending_ = true;
        ++out_.opens;
        out_.trace += "<Open>";
        out_.backend += "<open>";
      } else if (const auto* c = std::get_if<BackendCommand>(&action)) {
        REQUIRE(link_ == Link::Open);
        const std::string& line = c->line;
        REQUIRE(line.size() >= 2);
        REQUIRE(line.ends_with("\r\n"));
        REQUIRE(line.find_first_of("\r\n") == line.size() - 2);  // one line, CRLF only
        const bool data = line == "DATA\r\n";
        // RFC 2920: DATA ends a group, nothing goes after it before its reply.
        REQUIRE(std::find(outstanding_.begin(), outstanding_.end(), true) == outstanding_.end());
        outstanding_.push_back(data);
        out_.trace += "[" + line.substr(0, line.size() - 2) + "]";
        out_.backend += line;
      } else if (const auto* d = std::get_if<BackendData>(&action)) {
        REQUIRE(link_ == Link::InData);
        REQUIRE_FALSE(d->bytes.empty());
        if (!out_.trace.ends_with("<Data>")) {
          out_.trace += "<Data>";
        }
        message_ += d->bytes;
      } else if (std::holds_alternative<BackendEndData>(action)) {
        REQUIRE(link_ == Link::InData);
        link_ = Link::Open;
        outstanding_.push_back(false);
        ++out_.ends;
        out_.trace += "<End>";
        out_.backend += message_ + ".\r\n";
        message_.clear();
      } else if (std::holds_alternative<AbortBackend>(action)) {
        REQUIRE(link_ != Link::Closed);
        link_ = Link::Closed;
        outstanding_.clear();
        openPending_ = false;
        ++out_.aborts;
        out_.trace += "<Abort>";
        out_.backend += "<abort>";
        message_.clear();
      } else {
        // Spool-mode actions never appear in relay mode.
        REQUIRE((std::holds_alternative<SetTimeout>(action)));
      }
    }
  }

  // Answers whatever the session waits for and the script has, oldest first.
  void answer() {
    while (!out_.closed) {
      if (openPending_) {
        openPending_ = false;
        bool ok = true;
        if (!script_.opens.empty()) {
          ok = script_.opens.front();
          script_.opens.pop_front();
        }
        link_ = ok ? Link::Open : Link::Closed;
        out_.trace += ok ? "<Ready>" : "<NotReady>";
        record(session_.onBackendReady(ok));
        continue;
      }
      if (outstanding_.empty() || script_.replies.empty()) {
        return;
      }
      const bool data = outstanding_.front();
      outstanding_.pop_front();
      std::string reply = std::move(script_.replies.front());
      script_.replies.pop_front();
      if (data && reply.starts_with("3")) {
        link_ = Link::InData;
      }
      record(session_.onBackendReply(reply));
    }
  }

  SmtpSession& session_;
  BackendScript script_;
  BackendTiming timing_;
  RelayOutcome out_;
  Link link_ = Link::Closed;
  bool openPending_ = false;
  std::deque<bool> outstanding_;  // per awaited reply: does it answer DATA?
  std::string message_;           // BackendData since the 354
};

// Plays the script (after onTlsEstablished() for implicit TLS, and start()) in every way and
// requires the same client and backend bytes; returns the reference run (whole, batched).
inline RelayOutcome relayTranscript(const SessionSettings& settings, const BackendScript& backend,
                                    std::vector<Step> steps, const RelayOptions& options = {}) {
  std::vector<Step> script;
  if (settings.implicitTls) {
    script.push_back(tlsEstablished());
  }
  script.push_back(startStep());
  script.insert(script.end(), steps.begin(), steps.end());

  struct Run {
    Split split;
    BackendTiming timing;
  };
  std::vector<Run> runs = {{Split::Whole, BackendTiming::Batched}};
  if (!options.referenceOnly) {
    for (Split split : {Split::Whole, Split::Bytes, Split::Lines}) {
      for (BackendTiming timing : {BackendTiming::Batched, BackendTiming::Eager}) {
        if (split != Split::Whole || timing != BackendTiming::Batched) {
          runs.push_back({split, timing});
        }
      }
    }
  }
  RelayOutcome reference;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    FakePolicy policy = options.policy != nullptr ? *options.policy : FakePolicy{};
    SmtpSession session(settings);
    if (options.policy != nullptr) {
      session.setPolicy(&policy);
    }
    if (options.received) {
      session.setReceivedHeader(options.received);
    }
    RelayPlayer player(session, backend, runs[i].timing);
    RelayOutcome o = player.play(script, runs[i].split);
    o.calls = policy.calls;
    if (i == 0) {
      reference = std::move(o);
      continue;
    }
    INFO("split " << static_cast<int>(runs[i].split) << " (0 whole, 1 bytes, 2 lines), timing "
                  << (runs[i].timing == BackendTiming::Eager ? "eager" : "batched"));
    REQUIRE(o.client == reference.client);
    REQUIRE(o.backend == reference.backend);
    REQUIRE(o.closed == reference.closed);
    REQUIRE(o.opens == reference.opens);
    REQUIRE(o.ends == reference.ends);
    REQUIRE(o.aborts == reference.aborts);
    REQUIRE(o.repliesLeft == reference.repliesLeft);
    REQUIRE(o.calls == reference.calls);
  }
  return reference;
}

// Relay-mode settings on an implicit TLS listener, with a backend like Postfix's.
inline SessionSettings relaySettings() {
  SessionSettings s = tlsSettings();
  s.relay = true;
  s.relayCapabilities = {"PIPELINING",          "SIZE 10240000",    "8BITMIME",
                         "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN", "SMTPUTF8"};
  return s;
}

inline std::string ehloRelay() {
  return lines({"250-mx.test", "250-PIPELINING", "250-SIZE 10240000", "250-8BITMIME",
                "250-ENHANCEDSTATUSCODES", "250-AUTH PLAIN LOGIN", "250 SMTPUTF8"});
}

}  // namespace smtpgate::smtp::testing
