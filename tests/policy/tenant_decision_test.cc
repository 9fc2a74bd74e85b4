// D4, D5 and D6 of SPEC section 4: the tenant of the AUTH identity or of each recipient.
#include <catch2/catch.hpp>

#include "policy/decision.h"
#include "tests/policy/policy_fakes.h"

using namespace smtpgate::policy;
using namespace smtpgate::policy::testing;

namespace {

const std::string kT1 = textT1(kHelpUrl);
const std::string kT2 = textT2(kHelpUrl);
const std::string kCertHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr int64_t kExpires = kStep1;  // the scanner's exception runs out at kStep1

TenantException exception(TenantException::Kind kind, std::string_view value,
                          std::optional<int64_t> expires = std::nullopt) {
  auto e = TenantException::make(kind, value, expires);
  REQUIRE(e);
  return *e;
}

// contoso has not opted in but has exceptions; fabrikam has opted in.
TenantDirectory directory() {
  TenantDirectory d;
  Tenant contoso;
  contoso.id = "contoso";
  contoso.domains = {"contoso.com", "contoso.org"};
  contoso.allowLegacyTlsClients = false;
  contoso.exceptions = {
      exception(TenantException::Kind::Client, "192.0.2.10/32", kExpires),
      exception(TenantException::Kind::Client, "2001:db8::/32"),
      exception(TenantException::Kind::User, "printer@contoso.com"),
      exception(TenantException::Kind::Ehlo, "scanner.contoso.com"),
      exception(TenantException::Kind::CertSha256, kCertHex),
  };
  Tenant fabrikam;
  fabrikam.id = "fabrikam";
  fabrikam.domains = {"fabrikam.com"};
  fabrikam.allowLegacyTlsClients = true;
  REQUIRE(d.add(contoso));
  REQUIRE(d.add(fabrikam));
  return d;
}

// A client that matches none of contoso's exceptions.
SessionView session(Endpoint endpoint, TlsVersion version, std::string authUser = {}) {
  SessionView s;
  s.endpoint = endpoint;
  s.version = version;
  s.clientIp = "198.51.100.7";
  s.ehlo = "laptop.example";
  s.authUser = std::move(authUser);
  return s;
}

Decision auth(const SessionView& s, const LegacyTlsPolicy& p = scheduledPolicy(),
              int64_t now = kStep0) {
  const TenantDirectory d = directory();
  ScriptedRandom random;
  Decision result = decide(Checkpoint::Auth, s, domainOf(s.authUser), p, d, now, random);
  CHECK(random.calls() == 0);
  return result;
}

Decision rcpt(const SessionView& s, std::string_view address,
              const LegacyTlsPolicy& p = scheduledPolicy(), int64_t now = kStep0) {
  const TenantDirectory d = directory();
  ScriptedRandom random;
  Decision result = decide(Checkpoint::Recipient, s, domainOf(address), p, d, now, random);
  CHECK(random.calls() == 0);
  return result;
}

LegacyTlsPolicy defaultAllow(bool allow) {
  LegacyTlsPolicy p = scheduledPolicy();
  p.defaultAllow = allow;
  return p;
}

}  // namespace

TEST_CASE("D4: AUTH on strict with legacy TLS for a tenant that has not opted in") {
  SECTION("hit: 421 T1 and close, with the tenant recorded") {
    for (TlsVersion v : {TlsVersion::V1_0, TlsVersion::V1_1}) {
      const Decision d = auth(session(Endpoint::Strict, v, "alice@contoso.com"));
      CHECK(d.outcome == Outcome::RejectAndClose);
      CHECK(d.rule == Rule::D4);
      CHECK(d.reply == kT1);
      CHECK(d.tenant == "contoso");
    }
  }
  SECTION("hit in every phase: D4 is about the tenant, not the schedule") {
    for (int64_t now : {kStep0 - 1, kStep1, kCutoff}) {
      CHECK(auth(session(Endpoint::Strict, TlsVersion::V1_0, "alice@contoso.com"),
                 scheduledPolicy(), now)
                .rule == Rule::D4);
    }
  }
  SECTION("exceptions never apply on the strict endpoint") {
    SessionView s = session(Endpoint::Strict, TlsVersion::V1_0, "printer@contoso.com");
    s.clientIp = "192.0.2.10";
    s.ehlo = "scanner.contoso.com";
    s.clientCertSha256 = kCertHex;
    CHECK(auth(s).rule == Rule::D4);
  }
  SECTION("the domain is looked up case-insensitively, a trailing dot ignored") {
    const Decision d = auth(session(Endpoint::Strict, TlsVersion::V1_0, "Alice@CONTOSO.org."));
    CHECK(d.rule == Rule::D4);
    CHECK(d.tenant == "contoso");
  }
  SECTION("unknown domain with default_allow false: D4 without a tenant") {
    const Decision d = auth(session(Endpoint::Strict, TlsVersion::V1_1, "bob@unknown.example"),
                            defaultAllow(false));
    CHECK(d.rule == Rule::D4);
    CHECK(d.reply == kT1);
    CHECK(d.tenant.empty());
  }
  SECTION("not for unknown domains with default_allow true, nor a user without a domain") {
    for (const char* user : {"bob@unknown.example", "printer"}) {
      const Decision d =
          auth(session(Endpoint::Strict, TlsVersion::V1_0, user), defaultAllow(true));
      CHECK(d.outcome == Outcome::Accept);
      CHECK(d.rule == Rule::D8);
      CHECK(d.tenant.empty());
    }
  }
  SECTION("not for a tenant that opted in") {
    const Decision d = auth(session(Endpoint::Strict, TlsVersion::V1_0, "carol@fabrikam.com"));
    CHECK(d.outcome == Outcome::Accept);
    CHECK(d.rule == Rule::D8);
    CHECK(d.tenant == "fabrikam");
  }
  SECTION("not for modern TLS") {
    for (TlsVersion v : {TlsVersion::V1_2, TlsVersion::V1_3}) {
      const Decision d =
          auth(session(Endpoint::Strict, v, "alice@contoso.com"), defaultAllow(false));
      CHECK(d.outcome == Outcome::Accept);
      CHECK(d.rule == Rule::D8);
      CHECK(d.reply.empty());
      CHECK(d.tenant == "contoso");
    }
  }
}

TEST_CASE("D5: AUTH on the legacy endpoint for a tenant that has not opted in, no exception") {
  SECTION("hit with any version, modern and plaintext included: 421 T2") {
    for (TlsVersion v : {TlsVersion::None, TlsVersion::V1_0, TlsVersion::V1_1, TlsVersion::V1_2,
                         TlsVersion::V1_3}) {
      const Decision d = auth(session(Endpoint::Legacy, v, "alice@contoso.com"));
      CHECK(d.outcome == Outcome::RejectAndClose);
      CHECK(d.rule == Rule::D5);
      CHECK(d.reply == kT2);
      CHECK(d.tenant == "contoso");
    }
  }
  SECTION("not when an exception of the tenant matches: each kind") {
    SessionView byClient = session(Endpoint::Legacy, TlsVersion::V1_0, "alice@contoso.com");
    byClient.clientIp = "192.0.2.10";
    SessionView byClientV6 = session(Endpoint::Legacy, TlsVersion::V1_0, "alice@contoso.com");
    byClientV6.clientIp = "2001:db8:1::5";
    SessionView byUser = session(Endpoint::Legacy, TlsVersion::V1_0, "Printer@Contoso.com");
    SessionView byEhlo = session(Endpoint::Legacy, TlsVersion::V1_1, "alice@contoso.com");
    byEhlo.ehlo = "SCANNER.contoso.com";
    SessionView byCert = session(Endpoint::Legacy, TlsVersion::V1_2, "alice@contoso.com");
    byCert.clientCertSha256 = kCertHex;
    for (const SessionView& s : {byClient, byClientV6, byUser, byEhlo, byCert}) {
      const Decision d = auth(s);
      CHECK(d.outcome == Outcome::Accept);
      CHECK(d.rule == Rule::D8);
      CHECK(d.tenant == "contoso");
    }
  }
  SECTION("an expired exception no longer helps") {
    SessionView s = session(Endpoint::Legacy, TlsVersion::V1_0, "alice@contoso.com");
    s.clientIp = "192.0.2.10";
    CHECK(auth(s, scheduledPolicy(), kExpires - 1).rule == Rule::D8);
    CHECK(auth(s, scheduledPolicy(), kExpires).rule == Rule::D5);
    CHECK(auth(s, scheduledPolicy(), kCutoff).rule == Rule::D5);
  }
  SECTION("near misses of the exceptions do not match") {
    SessionView s = session(Endpoint::Legacy, TlsVersion::V1_0, "printer2@contoso.com");
    s.clientIp = "2001:db9::1";
    s.ehlo = "scanner.contoso.com.evil";
    s.clientCertSha256 = std::string(64, 'f');
    CHECK(auth(s).rule == Rule::D5);
  }
  SECTION("unknown domain: default_allow decides, there are no exceptions") {
    SessionView s = session(Endpoint::Legacy, TlsVersion::V1_0, "bob@unknown.example");
    s.clientIp = "192.0.2.10";  // contoso's exception is not the unknown domain's
    const Decision refused = auth(s, defaultAllow(false));
    CHECK(refused.rule == Rule::D5);
    CHECK(refused.reply == kT2);
    CHECK(refused.tenant.empty());
    const Decision allowed = auth(s, defaultAllow(true));
    CHECK(allowed.rule == Rule::D8);
    CHECK(allowed.tenant.empty());
  }
  SECTION("not for a tenant that opted in, nor on the strict endpoint with modern TLS") {
    CHECK(auth(session(Endpoint::Legacy, TlsVersion::V1_0, "carol@fabrikam.com")).rule == Rule::D8);
    CHECK(auth(session(Endpoint::Legacy, TlsVersion::V1_3, "carol@fabrikam.com")).rule == Rule::D8);
    CHECK(auth(session(Endpoint::Strict, TlsVersion::V1_2, "alice@contoso.com")).rule == Rule::D8);
  }
}

TEST_CASE("D6: per recipient without AUTH: 450 with the T1 or T2 text") {
  const std::string t1As450 =
      "450 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
      "support TLS 1.2. Visit https://aka.ms/smtp_auth_tls";
  const std::string t2As450 =
      "450 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 "
      "client with the regular endpoint. Visit https://aka.ms/smtp_auth_tls";

  SECTION("legacy endpoint, tenant not opted in: 450 T2") {
    for (TlsVersion v : {TlsVersion::V1_0, TlsVersion::V1_2}) {
      const Decision d = rcpt(session(Endpoint::Legacy, v), "alice@contoso.com");
      CHECK(d.outcome == Outcome::RejectRecipient);
      CHECK(d.rule == Rule::D6);
      CHECK(d.reply == t2As450);
      CHECK(d.tenant == "contoso");
    }
  }
  SECTION("strict endpoint, legacy TLS, tenant not opted in: 450 T1") {
    const Decision d = rcpt(session(Endpoint::Strict, TlsVersion::V1_1), "<Alice@Contoso.ORG>");
    CHECK(d.outcome == Outcome::RejectRecipient);
    CHECK(d.rule == Rule::D6);
    CHECK(d.reply == t1As450);
    CHECK(d.tenant == "contoso");
  }
  SECTION("other recipients of the same session are unaffected") {
    const SessionView s = session(Endpoint::Legacy, TlsVersion::V1_0);
    CHECK(rcpt(s, "alice@contoso.com").rule == Rule::D6);
    const Decision other = rcpt(s, "carol@fabrikam.com");
    CHECK(other.outcome == Outcome::Accept);
    CHECK(other.rule == Rule::D8);
    CHECK(other.tenant == "fabrikam");
    CHECK(rcpt(s, "dave@unknown.example", defaultAllow(true)).rule == Rule::D8);
  }
  SECTION("unknown domains follow default_allow") {
    const Decision d = rcpt(session(Endpoint::Legacy, TlsVersion::V1_0), "dave@unknown.example",
                            defaultAllow(false));
    CHECK(d.rule == Rule::D6);
    CHECK(d.reply == t2As450);
    CHECK(d.tenant.empty());
    CHECK(rcpt(session(Endpoint::Strict, TlsVersion::V1_0), "dave@unknown.example",
               defaultAllow(false))
              .reply == t1As450);
  }
  SECTION("exceptions apply on the legacy endpoint: client, EHLO, certificate") {
    SessionView byClient = session(Endpoint::Legacy, TlsVersion::V1_0);
    byClient.clientIp = "::ffff:192.0.2.10";
    SessionView byEhlo = session(Endpoint::Legacy, TlsVersion::V1_0);
    byEhlo.ehlo = "scanner.contoso.com";
    SessionView byCert = session(Endpoint::Legacy, TlsVersion::V1_0);
    byCert.clientCertSha256 = kCertHex;
    for (const SessionView& s : {byClient, byEhlo, byCert}) {
      CHECK(rcpt(s, "alice@contoso.com").rule == Rule::D8);
    }
    // Expiry counts per recipient decision too.
    CHECK(rcpt(byClient, "alice@contoso.com", scheduledPolicy(), kExpires).rule == Rule::D6);
  }
  SECTION("a user exception cannot match without AUTH") {
    // printer@contoso.com as the recipient is not an AUTH identity.
    CHECK(rcpt(session(Endpoint::Legacy, TlsVersion::V1_0), "printer@contoso.com").rule ==
          Rule::D6);
  }
  SECTION("exceptions do not apply on the strict endpoint") {
    SessionView s = session(Endpoint::Strict, TlsVersion::V1_0);
    s.clientIp = "192.0.2.10";
    s.ehlo = "scanner.contoso.com";
    s.clientCertSha256 = kCertHex;
    CHECK(rcpt(s, "alice@contoso.com").reply == t1As450);
  }
  SECTION("not for modern TLS on strict, nor a recipient without a domain when allowed") {
    CHECK(rcpt(session(Endpoint::Strict, TlsVersion::V1_2), "alice@contoso.com").rule == Rule::D8);
    CHECK(rcpt(session(Endpoint::Strict, TlsVersion::V1_0), "postmaster").rule == Rule::D8);
  }
}
