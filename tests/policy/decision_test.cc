// The rule table of SPEC section 4 at the connection checkpoints: D1, D2, D3, D7, D8 and the
// texts. D4..D6 (tenants) are in tenant_decision_test.cc.
#include "policy/decision.h"

#include <catch2/catch.hpp>

#include "tests/policy/policy_fakes.h"

using namespace smtpgate::policy;
using namespace smtpgate::policy::testing;

namespace {

const std::string kT1 =
    "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support "
    "TLS 1.2. Visit https://aka.ms/smtp_auth_tls";
const std::string kT2 =
    "421 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 client "
    "with the regular endpoint. Visit https://aka.ms/smtp_auth_tls";

SessionView session(Endpoint endpoint, TlsVersion version) {
  SessionView s;
  s.endpoint = endpoint;
  s.version = version;
  s.clientIp = "192.0.2.10";
  s.ehlo = "client.example";
  return s;
}

Decision at(Checkpoint checkpoint, const SessionView& s, const LegacyTlsPolicy& p, int64_t now,
            Random& random) {
  const TenantDirectory none;
  return decide(checkpoint, s, "", p, none, now, random);
}

Decision at(Checkpoint checkpoint, const SessionView& s, const LegacyTlsPolicy& p, int64_t now) {
  ScriptedRandom random;
  Decision d = at(checkpoint, s, p, now, random);
  CHECK(random.calls() == 0);  // only the speedbump draws
  return d;
}

void checkAccepted(const Decision& d) {
  CHECK(d.outcome == Outcome::Accept);
  CHECK(d.rule == Rule::D8);
  CHECK(d.reply.empty());
  CHECK(d.tenant.empty());
}

}  // namespace

TEST_CASE("T1 and T2 are the exact texts of SPEC section 4 with help_url filled in") {
  CHECK(textT1(kHelpUrl) == kT1);
  CHECK(textT2(kHelpUrl) == kT2);
  CHECK(textT1("http://help.example/tls") ==
        "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
        "support TLS 1.2. Visit http://help.example/tls");
}

TEST_CASE("rule names are D1..D8") {
  CHECK(ruleName(Rule::D1) == "D1");
  CHECK(ruleName(Rule::D2) == "D2");
  CHECK(ruleName(Rule::D3) == "D3");
  CHECK(ruleName(Rule::D4) == "D4");
  CHECK(ruleName(Rule::D5) == "D5");
  CHECK(ruleName(Rule::D6) == "D6");
  CHECK(ruleName(Rule::D7) == "D7");
  CHECK(ruleName(Rule::D8) == "D8");
}

TEST_CASE("D1: strict endpoint, closed, refuse-handshake, client offers only TLS < 1.2") {
  const LegacyTlsPolicy p = scheduledPolicy();

  SECTION("hit: highest offered 1.0 or 1.1 at and after the cutoff") {
    for (TlsVersion v : {TlsVersion::V1_0, TlsVersion::V1_1}) {
      for (int64_t now : {kCutoff, kCutoff + 86400 * 365}) {
        const Decision d = at(Checkpoint::ClientHello, session(Endpoint::Strict, v), p, now);
        CHECK(d.outcome == Outcome::RefuseHandshake);
        CHECK(d.rule == Rule::D1);
        CHECK(d.reply.empty());
        CHECK(d.tenant.empty());
      }
    }
  }
  SECTION("not one second before the cutoff (speedbump)") {
    checkAccepted(
        at(Checkpoint::ClientHello, session(Endpoint::Strict, TlsVersion::V1_0), p, kCutoff - 1));
  }
  SECTION("not for strict in the open phase") {
    checkAccepted(
        at(Checkpoint::ClientHello, session(Endpoint::Strict, TlsVersion::V1_0), p, kStep0 - 1));
    checkAccepted(at(Checkpoint::ClientHello, session(Endpoint::Strict, TlsVersion::V1_0),
                     LegacyTlsPolicy{}, kCutoff));
  }
  SECTION("not on the legacy endpoint") {
    checkAccepted(
        at(Checkpoint::ClientHello, session(Endpoint::Legacy, TlsVersion::V1_0), p, kCutoff));
  }
  SECTION("not for a client that offers 1.2 or 1.3") {
    for (TlsVersion v : {TlsVersion::V1_2, TlsVersion::V1_3}) {
      checkAccepted(at(Checkpoint::ClientHello, session(Endpoint::Strict, v), p, kCutoff));
    }
  }
  SECTION("not with after_cutoff: reply") {
    LegacyTlsPolicy reply = p;
    reply.afterCutoff = AfterCutoff::Reply;
    checkAccepted(
        at(Checkpoint::ClientHello, session(Endpoint::Strict, TlsVersion::V1_1), reply, kCutoff));
  }
  SECTION("not at the other checkpoints") {
    const SessionView s = session(Endpoint::Strict, TlsVersion::V1_0);
    CHECK(at(Checkpoint::FirstCommand, s, p, kCutoff).rule == Rule::D2);
    CHECK(at(Checkpoint::Plaintext, s, p, kCutoff).rule == Rule::D8);
  }
}

TEST_CASE("D2: strict endpoint, legacy version, closed: 421 T1 at the first command") {
  LegacyTlsPolicy p = scheduledPolicy();

  SECTION("hit with after_cutoff: reply") {
    p.afterCutoff = AfterCutoff::Reply;
    for (TlsVersion v : {TlsVersion::V1_0, TlsVersion::V1_1}) {
      const Decision d = at(Checkpoint::FirstCommand, session(Endpoint::Strict, v), p, kCutoff);
      CHECK(d.outcome == Outcome::RejectAndClose);
      CHECK(d.rule == Rule::D2);
      CHECK(d.reply == kT1);
      CHECK(d.tenant.empty());
    }
  }
  SECTION("hit with refuse-handshake too, should a legacy handshake get through") {
    p.afterCutoff = AfterCutoff::RefuseHandshake;
    const Decision d =
        at(Checkpoint::FirstCommand, session(Endpoint::Strict, TlsVersion::V1_0), p, kCutoff);
    CHECK(d.outcome == Outcome::RejectAndClose);
    CHECK(d.rule == Rule::D2);
    CHECK(d.reply == kT1);
  }
  SECTION("the reply carries the configured help_url") {
    p.helpUrl = "https://help.example/tls";
    CHECK(at(Checkpoint::FirstCommand, session(Endpoint::Strict, TlsVersion::V1_0), p, kCutoff)
              .reply == textT1("https://help.example/tls"));
  }
  SECTION("not for modern versions") {
    for (TlsVersion v : {TlsVersion::V1_2, TlsVersion::V1_3}) {
      checkAccepted(at(Checkpoint::FirstCommand, session(Endpoint::Strict, v), p, kCutoff));
    }
  }
  SECTION("not on the legacy endpoint") {
    checkAccepted(
        at(Checkpoint::FirstCommand, session(Endpoint::Legacy, TlsVersion::V1_0), p, kCutoff));
  }
  SECTION("not before the cutoff: one second earlier is the speedbump (D3 or D8)") {
    ScriptedRandom noReject({9999});
    const Decision d = at(Checkpoint::FirstCommand, session(Endpoint::Strict, TlsVersion::V1_0), p,
                          kCutoff - 1, noReject);
    CHECK(d.rule == Rule::D8);
    CHECK(noReject.calls() == 1);
  }
  SECTION("not in the open phase") {
    checkAccepted(
        at(Checkpoint::FirstCommand, session(Endpoint::Strict, TlsVersion::V1_0), p, kStep0 - 1));
  }
}

TEST_CASE("D3: strict endpoint, legacy version, speedbump: reject with the step's probability") {
  const LegacyTlsPolicy p = scheduledPolicy();  // 50% from kStep1
  const SessionView legacy = session(Endpoint::Strict, TlsVersion::V1_1);

  SECTION("a draw below percent*100 rejects with T1") {
    for (uint32_t value : {0u, 4999u, 14999u}) {  // 14999 draws 4999: in range, no redraw
      ScriptedRandom random({value});
      const Decision d = at(Checkpoint::FirstCommand, legacy, p, kStep1, random);
      CHECK(d.outcome == Outcome::RejectAndClose);
      CHECK(d.rule == Rule::D3);
      CHECK(d.reply == kT1);
      CHECK(random.calls() == 1);
    }
  }
  SECTION("a draw at or above percent*100 accepts") {
    for (uint32_t value : {5000u, 9999u, 10000u + 5000u}) {
      ScriptedRandom random({value});
      checkAccepted(at(Checkpoint::FirstCommand, legacy, p, kStep1, random));
      CHECK(random.calls() == 1);
    }
  }
  SECTION("the latest step's percent applies: 5% before kStep1") {
    ScriptedRandom reject({499});
    CHECK(at(Checkpoint::FirstCommand, legacy, p, kStep1 - 1, reject).rule == Rule::D3);
    ScriptedRandom accept({500});
    CHECK(at(Checkpoint::FirstCommand, legacy, p, kStep1 - 1, accept).rule == Rule::D8);
  }
  SECTION("values in the biased tail of 2^32 are drawn again (no modulo bias)") {
    // 4294960000 is the largest multiple of 10000 below 2^32: it and above are redrawn.
    ScriptedRandom tailThenReject({4294960000u, 7});
    CHECK(at(Checkpoint::FirstCommand, legacy, p, kStep1, tailThenReject).rule == Rule::D3);
    CHECK(tailThenReject.calls() == 2);
    ScriptedRandom tailThenAccept({4294967295u, 4294965000u, 5000});
    CHECK(at(Checkpoint::FirstCommand, legacy, p, kStep1, tailThenAccept).rule == Rule::D8);
    CHECK(tailThenAccept.calls() == 3);
    ScriptedRandom lastUnbiased({4294959999u});  // draws 9999: accepted at once
    CHECK(at(Checkpoint::FirstCommand, legacy, p, kStep1, lastUnbiased).rule == Rule::D8);
    CHECK(lastUnbiased.calls() == 1);
  }
  SECTION("a generator stuck in the tail does not hang the decision") {
    ScriptedRandom stuck(std::vector<uint32_t>(1000, 4294967295u));
    at(Checkpoint::FirstCommand, legacy, p, kStep1, stuck);
    CHECK(stuck.calls() < 1000);
  }
  SECTION("no draw and no rejection for modern TLS, the legacy endpoint, or the open phase") {
    ScriptedRandom random({0});
    checkAccepted(at(Checkpoint::FirstCommand, session(Endpoint::Strict, TlsVersion::V1_2), p,
                     kStep1, random));
    checkAccepted(at(Checkpoint::FirstCommand, session(Endpoint::Legacy, TlsVersion::V1_0), p,
                     kStep1, random));
    checkAccepted(at(Checkpoint::FirstCommand, legacy, p, kStep0 - 1, random));
    CHECK(random.calls() == 0);
  }
  SECTION("no draw at the other checkpoints") {
    ScriptedRandom random({0});
    CHECK(at(Checkpoint::ClientHello, legacy, p, kStep1, random).rule == Rule::D8);
    CHECK(at(Checkpoint::Plaintext, legacy, p, kStep1, random).rule == Rule::D8);
    CHECK(random.calls() == 0);
  }
}

TEST_CASE("D3 statistics: a seeded generator rejects close to reject_percent") {
  const SessionView legacy = session(Endpoint::Strict, TlsVersion::V1_0);
  auto rejections = [&](double percent, int decisions, uint32_t seed) {
    LegacyTlsPolicy p;
    p.speedbump = {{kStep0, percent}};
    SeededRandom random(seed);
    int rejected = 0;
    for (int i = 0; i < decisions; ++i) {
      const Decision d = at(Checkpoint::FirstCommand, legacy, p, kStep0, random);
      if (d.rule == Rule::D3) {
        CHECK(d.outcome == Outcome::RejectAndClose);
        ++rejected;
      } else {
        CHECK(d.rule == Rule::D8);
      }
    }
    CHECK(random.calls() >= decisions);  // a fresh draw per connection
    return rejected;
  };

  SECTION("30%: 10,000 decisions within 28%..32%") {
    const int rejected = rejections(30, 10000, 20260101);
    CHECK(rejected >= 2800);
    CHECK(rejected <= 3200);
  }
  SECTION("0%: none of 1,000") { CHECK(rejections(0, 1000, 7) == 0); }
  SECTION("100%: all of 1,000") { CHECK(rejections(100, 1000, 11) == 1000); }
}

TEST_CASE("D7: plaintext MAIL/RCPT/AUTH with require_tls gets 530") {
  const LegacyTlsPolicy p = scheduledPolicy();
  SECTION("hit on both endpoints, whatever the phase") {
    for (Endpoint e : {Endpoint::Strict, Endpoint::Legacy}) {
      for (int64_t now : {kStep0 - 1, kStep1, kCutoff}) {
        SessionView s = session(e, TlsVersion::None);
        s.requireTls = true;
        const Decision d = at(Checkpoint::Plaintext, s, p, now);
        CHECK(d.outcome == Outcome::RequireTls);
        CHECK(d.rule == Rule::D7);
        CHECK(d.reply == "530 5.7.0 Must issue a STARTTLS command first");
        CHECK(d.tenant.empty());
      }
    }
  }
  SECTION("not without require_tls") {
    SessionView s = session(Endpoint::Strict, TlsVersion::None);
    s.requireTls = false;
    checkAccepted(at(Checkpoint::Plaintext, s, p, kCutoff));
  }
  SECTION("not once TLS is up, at any version") {
    for (TlsVersion v : {TlsVersion::V1_0, TlsVersion::V1_1, TlsVersion::V1_2, TlsVersion::V1_3}) {
      checkAccepted(at(Checkpoint::Plaintext, session(Endpoint::Strict, v), p, kStep0 - 1));
    }
  }
}

TEST_CASE("D8: modern TLS passes the connection checkpoints on both endpoints in every phase") {
  LegacyTlsPolicy p = scheduledPolicy();
  p.speedbump.back().rejectPercent = 100;
  for (AfterCutoff after : {AfterCutoff::RefuseHandshake, AfterCutoff::Reply}) {
    p.afterCutoff = after;
    for (Endpoint e : {Endpoint::Strict, Endpoint::Legacy}) {
      for (TlsVersion v : {TlsVersion::V1_2, TlsVersion::V1_3}) {
        for (int64_t now : {kStep0 - 1, kStep0, kStep1, kCutoff - 1, kCutoff}) {
          for (Checkpoint c :
               {Checkpoint::ClientHello, Checkpoint::FirstCommand, Checkpoint::Plaintext}) {
            checkAccepted(at(c, session(e, v), p, now));
          }
        }
      }
    }
  }
  // A default-constructed Decision is the D8 accept, so callers may start from it.
  checkAccepted(Decision{});
}
