#pragma once

// Transcript tests for SmtpSession: a client script (bytes and connection events) is played
// three ways (whole, pipelined in one chunk per run of bytes; one byte per call; one line per
// call) and every way must give the same replies, actions and messages.

#include <catch2/catch.hpp>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gateway/smtp/actions.h"
#include "gateway/smtp/sasl.h"
#include "gateway/smtp/smtp_session.h"

namespace smtpgate::smtp::testing {

struct Step {
  enum class Kind {
    Bytes,
    Start,
    Tls,
    AuthResult,
    DeliveryResult,
    Timeout,
    Shutdown,
    RejectNext,
    BackendLost,
    BackendReply,
  };
  Kind kind = Kind::Bytes;
  std::string bytes;
  bool ok = false;
  std::string queueId;
  std::string reply;
};

// The base64 AUTH PLAIN response for these credentials (RFC 4616).
inline std::string plain(std::string_view authzid, std::string_view user,
                         std::string_view password) {
  std::string raw(authzid);
  raw.push_back('\0');
  raw.append(user);
  raw.push_back('\0');
  raw.append(password);
  return base64Encode(raw);
}

inline Step send(std::string bytes) {
  return Step{Step::Kind::Bytes, std::move(bytes), false, {}, {}};
}
inline Step startStep() { return Step{Step::Kind::Start, {}, false, {}, {}}; }
inline Step tlsEstablished() { return Step{Step::Kind::Tls, {}, false, {}, {}}; }
inline Step authResult(bool ok) { return Step{Step::Kind::AuthResult, {}, ok, {}, {}}; }
inline Step delivered(std::string queueId) {
  return Step{Step::Kind::DeliveryResult, {}, true, std::move(queueId), {}};
}
inline Step deliveryFailed(std::string reply) {
  return Step{Step::Kind::DeliveryResult, {}, false, {}, std::move(reply)};
}
inline Step timeout() { return Step{Step::Kind::Timeout, {}, false, {}, {}}; }
inline Step shutdown() { return Step{Step::Kind::Shutdown, {}, false, {}, {}}; }
// Relay mode: the connection calls session.onBackendLost().
inline Step backendLost() { return Step{Step::Kind::BackendLost, {}, false, {}, {}}; }
// Relay mode: one more scripted backend reply becomes available from here on.
inline Step backendReply(std::string reply) {
  return Step{Step::Kind::BackendReply, {}, false, {}, std::move(reply)};
}
// The connection calls session.rejectNextCommand(reply) (D2/D3).
inline Step rejectNext(std::string reply) {
  return Step{Step::Kind::RejectNext, {}, false, {}, std::move(reply)};
}

enum class Split { Whole, Bytes, Lines };

struct Outcome {
  // Every Write concatenated, with the other actions (except SetTimeout, whose batching
  // depends on the split) as markers in between: "<StartTls>", "<Close>", "<Auth ...>",
  // "<Deliver>".
  std::string trace;
  std::string written;  // only the Write bytes
  std::vector<Message> messages;
  std::vector<Authenticate> auths;
  std::vector<unsigned> timeouts;
  bool closed = false;
};

// The replies as the client reads them: each line gets CRLF.
inline std::string lines(std::initializer_list<std::string_view> replies) {
  std::string out;
  for (std::string_view r : replies) {
    out.append(r);
    out.append("\r\n");
  }
  return out;
}

inline SessionSettings testSettings() {
  SessionSettings s;
  s.hostname = "mx.test";
  return s;
}

inline void record(const Actions& actions, Outcome& out) {
  bool previousWrite = false;
  for (const Action& action : actions) {
    // After Close nothing may follow; one call never yields two Writes in a row.
    REQUIRE_FALSE(out.closed);
    if (const auto* w = std::get_if<Write>(&action)) {
      REQUIRE_FALSE(previousWrite);
      REQUIRE_FALSE(w->bytes.empty());
      out.trace += w->bytes;
      out.written += w->bytes;
      previousWrite = true;
      continue;
    }
    previousWrite = false;
    if (std::holds_alternative<StartTls>(action)) {
      out.trace += "<StartTls>";
    } else if (std::holds_alternative<Close>(action)) {
      out.trace += "<Close>";
      out.closed = true;
    } else if (const auto* a = std::get_if<Authenticate>(&action)) {
      out.trace += "<Auth " + a->mechanism + ">";
      out.auths.push_back(*a);
    } else if (const auto* d = std::get_if<Deliver>(&action)) {
      out.trace += "<Deliver>";
      out.messages.push_back(d->message);
    } else if (const auto* t = std::get_if<SetTimeout>(&action)) {
      out.timeouts.push_back(t->seconds);
    }
  }
}

inline std::vector<std::string> chunks(const std::string& bytes, Split split) {
  std::vector<std::string> out;
  if (split == Split::Whole) {
    out.push_back(bytes);
  } else if (split == Split::Bytes) {
    for (char c : bytes) {
      out.emplace_back(1, c);
    }
  } else {
    std::size_t start = 0;
    while (start < bytes.size()) {
      std::size_t lf = bytes.find('\n', start);
      std::size_t end = lf == std::string::npos ? bytes.size() : lf + 1;
      out.push_back(bytes.substr(start, end - start));
      start = end;
    }
  }
  return out;
}

inline Outcome play(SmtpSession& session, const std::vector<Step>& steps, Split split) {
  Outcome out;
  std::string bytes;
  auto sendPending = [&] {
    for (const std::string& chunk : chunks(bytes, split)) {
      record(session.onBytes(chunk), out);
    }
    bytes.clear();
  };
  for (const Step& step : steps) {
    if (step.kind == Step::Kind::Bytes) {
      bytes += step.bytes;  // runs of bytes are merged: "whole" means pipelined
      continue;
    }
    sendPending();
    switch (step.kind) {
      case Step::Kind::Start:
        record(session.start(), out);
        break;
      case Step::Kind::Tls:
        record(session.onTlsEstablished(), out);
        break;
      case Step::Kind::AuthResult:
        record(session.onAuthResult(step.ok), out);
        break;
      case Step::Kind::DeliveryResult:
        record(session.onDeliveryResult({step.ok, step.queueId, step.reply}), out);
        break;
      case Step::Kind::Timeout:
        record(session.onTimeout(), out);
        break;
      case Step::Kind::Shutdown:
        record(session.onShutdown(), out);
        break;
      case Step::Kind::RejectNext:
        session.rejectNextCommand(step.reply);
        break;
      case Step::Kind::BackendLost:
        record(session.onBackendLost(), out);
        break;
      case Step::Kind::BackendReply:  // no backend in spool mode
      case Step::Kind::Bytes:
        break;
    }
  }
  sendPending();
  return out;
}

inline void requireSameMessages(const std::vector<Message>& a, const std::vector<Message>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].envelope.mailFrom == b[i].envelope.mailFrom);
    CHECK(a[i].envelope.mailParams == b[i].envelope.mailParams);
    CHECK(a[i].envelope.rcptTo == b[i].envelope.rcptTo);
    CHECK(a[i].content == b[i].content);
    CHECK(a[i].helo == b[i].helo);
    CHECK(a[i].esmtp == b[i].esmtp);
    CHECK(a[i].authUser == b[i].authUser);
  }
}

// Called on each run's session (run 0 whole, 1 byte by byte, 2 line by line) before the
// script, e.g. to set a policy per run.
using SessionSetup = std::function<void(SmtpSession&, std::size_t run)>;

// Plays the script three ways (after the greeting: start(), or for implicit TLS
// onTlsEstablished() then start()) and requires identical outcomes; returns the whole run.
inline Outcome transcript(const SessionSettings& settings, std::vector<Step> steps,
                          const SessionSetup& setup = {}) {
  std::vector<Step> script;
  if (settings.implicitTls) {
    script.push_back(tlsEstablished());
  }
  script.push_back(startStep());
  script.insert(script.end(), steps.begin(), steps.end());

  SmtpSession whole(settings);
  if (setup) {
    setup(whole, 0);
  }
  Outcome reference = play(whole, script, Split::Whole);
  std::size_t run = 0;
  for (Split split : {Split::Bytes, Split::Lines}) {
    SmtpSession session(settings);
    if (setup) {
      setup(session, ++run);
    }
    Outcome other = play(session, script, split);
    INFO("split " << (split == Split::Bytes ? "byte by byte" : "line by line"));
    REQUIRE(other.trace == reference.trace);
    REQUIRE(other.closed == reference.closed);
    requireSameMessages(other.messages, reference.messages);
    REQUIRE(other.auths.size() == reference.auths.size());
    for (std::size_t i = 0; i < other.auths.size(); ++i) {
      CHECK(other.auths[i].mechanism == reference.auths[i].mechanism);
      CHECK(other.auths[i].authzid == reference.auths[i].authzid);
      CHECK(other.auths[i].user == reference.auths[i].user);
      CHECK(other.auths[i].password == reference.auths[i].password);
    }
  }
  return reference;
}

// Common openings.
inline const char* const kGreeting = "220 mx.test ESMTP\r\n";

inline std::string ehloPlain() {
  return lines({"250-mx.test", "250-PIPELINING", "250-SIZE 36700160", "250-8BITMIME",
                "250-ENHANCEDSTATUSCODES", "250 STARTTLS"});
}

inline std::string ehloTls(bool auth = true) {
  if (!auth) {
    return lines({"250-mx.test", "250-PIPELINING", "250-SIZE 36700160", "250-8BITMIME",
                  "250-SMTPUTF8", "250 ENHANCEDSTATUSCODES"});
  }
  return lines({"250-mx.test", "250-PIPELINING", "250-SIZE 36700160", "250-8BITMIME",
                "250-SMTPUTF8", "250-ENHANCEDSTATUSCODES", "250 AUTH PLAIN LOGIN"});
}

// A session already under TLS (implicit TLS listener): the greeting is in every trace.
inline SessionSettings tlsSettings() {
  SessionSettings s = testSettings();
  s.implicitTls = true;
  return s;
}

}  // namespace smtpgate::smtp::testing
