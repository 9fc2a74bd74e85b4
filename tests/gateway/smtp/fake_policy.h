#pragma once

// A PolicyHooks for session tests: answers from its tables (Accept when absent) and records
// every call, so a test can tell what the session asked and in which order.

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/smtp_session.h"
#include "tests/gateway/smtp/transcript.h"

namespace smtpgate::smtp::testing {

// The texts of SPEC section 4 with a test help URL.
inline const std::string kT1 =
    "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support "
    "TLS 1.2. Visit https://help.test/tls";
inline const std::string kT2 =
    "421 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 client "
    "with the regular endpoint. Visit https://help.test/tls";
inline const std::string kRcpt450 =
    "450 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 client "
    "with the regular endpoint. Visit https://help.test/tls";

class FakePolicy : public PolicyHooks {
 public:
  std::map<std::string, Verdict, std::less<>> authVerdicts;
  std::map<std::string, Verdict, std::less<>> rcptVerdicts;
  // "auth USER", "rcpt ADDRESS", "plaintext COMMAND", in call order.
  std::vector<std::string> calls;

  static Verdict closeWith(std::string reply) {
    return Verdict{Verdict::Kind::RejectAndClose, std::move(reply)};
  }
  static Verdict refuseRecipient(std::string reply) {
    return Verdict{Verdict::Kind::RejectRecipient, std::move(reply)};
  }

  Verdict onAuthIdentity(std::string_view user) override {
    calls.push_back("auth " + std::string(user));
    return lookup(authVerdicts, user);
  }
  Verdict onRecipient(std::string_view address) override {
    calls.push_back("rcpt " + std::string(address));
    return lookup(rcptVerdicts, address);
  }
  void onPlaintextRefused(std::string_view command) override {
    calls.push_back("plaintext " + std::string(command));
  }

 private:
  static Verdict lookup(const std::map<std::string, Verdict, std::less<>>& table,
                        std::string_view key) {
    auto it = table.find(key);
    return it == table.end() ? Verdict{} : it->second;
  }
};

struct PolicyOutcome {
  Outcome outcome;
  std::vector<std::string> calls;  // the policy calls of the run (the same for every split)
};

// transcript() with a fresh copy of `policy` set on each run's session; every split must ask
// the policy the same questions in the same order.
inline PolicyOutcome policyTranscript(const SessionSettings& settings, std::vector<Step> steps,
                                      const FakePolicy& policy) {
  std::vector<FakePolicy> runs(3, policy);
  Outcome outcome =
      transcript(settings, std::move(steps),
                 [&runs](SmtpSession& s, std::size_t run) { s.setPolicy(&runs.at(run)); });
  for (std::size_t run = 1; run < runs.size(); ++run) {
    INFO("run " << run);
    REQUIRE(runs[run].calls == runs[0].calls);
  }
  return {std::move(outcome), runs[0].calls};
}

}  // namespace smtpgate::smtp::testing
