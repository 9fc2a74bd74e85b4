// The strict endpoint's schedule: phases at their boundaries and validation of legacy_tls.
#include "policy/legacy_tls.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "policy/decision.h"
#include "tests/policy/policy_fakes.h"

using namespace smtpgate::policy;
using namespace smtpgate::policy::testing;

using Problems = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("phases: open, speedbump steps and closed at the second") {
  const LegacyTlsPolicy p = scheduledPolicy();
  CHECK(p.phaseAt(kStep0 - 1).phase == Phase::Open);
  CHECK(p.phaseAt(0).phase == Phase::Open);

  PhaseState s = p.phaseAt(kStep0);
  CHECK(s.phase == Phase::Speedbump);
  CHECK(s.rejectPercent == 5);
  s = p.phaseAt(kStep1 - 1);
  CHECK(s.phase == Phase::Speedbump);
  CHECK(s.rejectPercent == 5);
  s = p.phaseAt(kStep1);
  CHECK(s.phase == Phase::Speedbump);
  CHECK(s.rejectPercent == 50);
  s = p.phaseAt(kCutoff - 1);
  CHECK(s.phase == Phase::Speedbump);
  CHECK(s.rejectPercent == 50);

  CHECK(p.phaseAt(kCutoff).phase == Phase::Closed);
  CHECK(p.phaseAt(kCutoff + 1).phase == Phase::Closed);
}

TEST_CASE("phases without a full schedule") {
  SECTION("no steps, no cutoff: always open") {
    const LegacyTlsPolicy p;
    CHECK(p.phaseAt(0).phase == Phase::Open);
    CHECK(p.phaseAt(kCutoff * 2).phase == Phase::Open);
  }
  SECTION("a cutoff only: open, then closed") {
    LegacyTlsPolicy p;
    p.strictCutoff = kCutoff;
    CHECK(p.phaseAt(kCutoff - 1).phase == Phase::Open);
    CHECK(p.phaseAt(kCutoff).phase == Phase::Closed);
  }
  SECTION("steps only: the last step lasts for ever") {
    LegacyTlsPolicy p;
    p.speedbump = {{kStep0, 20}};
    CHECK(p.phaseAt(kCutoff * 2).phase == Phase::Speedbump);
    CHECK(p.phaseAt(kCutoff * 2).rejectPercent == 20);
  }
  SECTION("out-of-order steps (refused by validate) still give the latest step begun") {
    LegacyTlsPolicy p;
    p.speedbump = {{kStep1, 50}, {kStep0, 5}};
    CHECK(p.phaseAt(kStep0).rejectPercent == 5);
    CHECK(p.phaseAt(kStep1).rejectPercent == 50);
    CHECK(p.phaseAt(kStep0 - 1).phase == Phase::Open);
  }
}

TEST_CASE("decisions follow the phase boundaries of a fake clock") {
  LegacyTlsPolicy p;
  p.speedbump = {{kStep0, 100}};
  p.strictCutoff = kCutoff;
  SessionView s;
  s.endpoint = Endpoint::Strict;
  s.version = TlsVersion::V1_0;
  const TenantDirectory none;
  auto first = [&](int64_t now) {
    ScriptedRandom random({0});
    return decide(Checkpoint::FirstCommand, s, "", p, none, now, random).rule;
  };
  auto hello = [&](int64_t now) {
    ScriptedRandom random;
    return decide(Checkpoint::ClientHello, s, "", p, none, now, random).rule;
  };
  CHECK(first(kStep0 - 1) == Rule::D8);
  CHECK(first(kStep0) == Rule::D3);
  CHECK(first(kCutoff - 1) == Rule::D3);
  CHECK(first(kCutoff) == Rule::D2);
  CHECK(hello(kCutoff - 1) == Rule::D8);
  CHECK(hello(kCutoff) == Rule::D1);
}

TEST_CASE("validate: a good legacy_tls has no problems") {
  CHECK(LegacyTlsPolicy{}.validate().empty());
  CHECK(scheduledPolicy().validate().empty());
  LegacyTlsPolicy p = scheduledPolicy();
  p.speedbump = {{kStep0, 0}, {kStep1, 100}};
  p.helpUrl = "HTTP://help.example:8080/tls?lang=en";
  CHECK(p.validate().empty());
  p.speedbump.clear();  // a cutoff without steps is fine
  CHECK(p.validate().empty());
}

TEST_CASE("validate: steps must be in strict time order") {
  LegacyTlsPolicy p = scheduledPolicy();
  p.speedbump = {{kStep0, 5}, {kStep0, 10}};
  CHECK(p.validate() == Problems{{"/speedbump/1/from", "must be later than /speedbump/0/from"}});
  p.speedbump = {{kStep0, 5}, {kStep1, 10}, {kStep0 + 1, 20}};
  CHECK(p.validate() == Problems{{"/speedbump/2/from", "must be later than /speedbump/1/from"}});
}

TEST_CASE("validate: reject_percent must be 0..100") {
  LegacyTlsPolicy p = scheduledPolicy();
  for (double bad : {-0.01, 100.01, -50.0, std::nan("")}) {
    p.speedbump = {{kStep0, 5}, {kStep1, bad}};
    CHECK(p.validate() == Problems{{"/speedbump/1/reject_percent", "must be 0..100"}});
  }
  p.speedbump = {{kStep0, 12.5}};
  CHECK(p.validate().empty());
}

TEST_CASE("validate: strict_cutoff must be later than the last step") {
  LegacyTlsPolicy p = scheduledPolicy();
  for (int64_t cutoff : {kStep1, kStep1 - 1, kStep0}) {
    p.strictCutoff = cutoff;
    CHECK(p.validate() ==
          Problems{{"/strict_cutoff", "must be later than the last speedbump step"}});
  }
  p.strictCutoff = kStep1 + 1;
  CHECK(p.validate().empty());
}

TEST_CASE("validate: help_url must be an http(s) URL fit for a reply line") {
  LegacyTlsPolicy p;
  for (const char* bad :
       {"", "aka.ms/smtp_auth_tls", "ftp://help.example/", "https://", "http:///path",
        "https://help example/", "https://x\r\n250 ok", "https://help.example/\xc3\xa9"}) {
    p.helpUrl = bad;
    CHECK(p.validate() == Problems{{"/help_url", "must be an http(s) URL"}});
  }
}

TEST_CASE("validate: every problem is reported at once") {
  LegacyTlsPolicy p;
  p.speedbump = {{kStep1, 150}, {kStep0, 5}};
  p.strictCutoff = kStep0;
  p.helpUrl = "mailto:help@example.com";
  const Problems expected = {
      {"/speedbump/0/reject_percent", "must be 0..100"},
      {"/speedbump/1/from", "must be later than /speedbump/0/from"},
      {"/strict_cutoff", "must be later than the last speedbump step"},
      {"/help_url", "must be an http(s) URL"},
  };
  CHECK(p.validate() == expected);
}
