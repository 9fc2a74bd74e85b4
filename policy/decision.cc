#include "policy/decision.h"

#include <utility>

namespace smtpgate::policy {
namespace {

constexpr uint32_t kDrawRange = 10000;  // reject_percent has two decimals of resolution
// The largest multiple of kDrawRange that fits in 2^32: values at or above it are redrawn, so
// every draw in [0, kDrawRange) is equally likely (no modulo bias).
constexpr uint64_t kDrawLimit = (uint64_t{1} << 32) - ((uint64_t{1} << 32) % kDrawRange);
// Only a broken generator is refused this often (each try fails with p < 2e-6); the cap keeps
// such a generator from hanging the event loop.
constexpr int kMaxDrawTries = 64;

uint32_t uniformDraw(Random& random) {
  uint32_t value = 0;
  for (int i = 0; i < kMaxDrawTries; ++i) {
    value = random.next();
    if (value < kDrawLimit) {
      break;
    }
  }
  return value % kDrawRange;
}

// D3: a fresh draw per connection; 0% never rejects, 100% always does.
bool speedbumpRejects(double rejectPercent, Random& random) {
  const uint32_t draw = uniformDraw(random);
  return static_cast<double>(draw) < rejectPercent * 100.0;
}

Decision accept(std::string tenant = {}) {
  Decision d;
  d.tenant = std::move(tenant);
  return d;
}

Decision make(Outcome outcome, Rule rule, std::string reply, std::string tenant = {}) {
  Decision d;
  d.outcome = outcome;
  d.rule = rule;
  d.reply = std::move(reply);
  d.tenant = std::move(tenant);
  return d;
}

// D6 answers one recipient with a temporary 450 instead of closing with 421.
std::string asRecipientReply(std::string text) { return text.replace(0, 3, "450"); }

Decision decideClientHello(const SessionView& session, const LegacyTlsPolicy& legacyTls,
                           int64_t now) {
  if (session.endpoint == Endpoint::Strict && classify(session.version) == VersionClass::Legacy &&
      legacyTls.afterCutoff == AfterCutoff::RefuseHandshake &&
      legacyTls.phaseAt(now).phase == Phase::Closed) {
    return make(Outcome::RefuseHandshake, Rule::D1, "");
  }
  return accept();
}

Decision decideFirstCommand(const SessionView& session, const LegacyTlsPolicy& legacyTls,
                            int64_t now, Random& random) {
  if (session.endpoint != Endpoint::Strict || classify(session.version) != VersionClass::Legacy) {
    return accept();
  }
  const PhaseState state = legacyTls.phaseAt(now);
  switch (state.phase) {
    case Phase::Closed:
      // With refuse-handshake D1 should have stopped this session already; if a legacy
      // handshake got through anyway, close it here rather than let it in.
      return make(Outcome::RejectAndClose, Rule::D2, textT1(legacyTls.helpUrl));
    case Phase::Speedbump:
      if (speedbumpRejects(state.rejectPercent, random)) {
        return make(Outcome::RejectAndClose, Rule::D3, textT1(legacyTls.helpUrl));
      }
      return accept();
    case Phase::Open:
      break;
  }
  return accept();
}

// D4/D5 (at AUTH) and D6 (per recipient) share their conditions; only the outcome differs.
Decision decideTenant(bool perRecipient, const SessionView& session, std::string_view domain,
                      const LegacyTlsPolicy& legacyTls, const TenantDirectory& tenants,
                      int64_t now) {
  const Tenant* tenant = tenants.forDomain(domain);
  std::string tenantId = tenant != nullptr ? tenant->id : std::string();
  const bool allowed = tenant != nullptr ? tenant->allowLegacyTlsClients : legacyTls.defaultAllow;

  std::string text;
  Rule closeRule = Rule::D8;
  if (session.endpoint == Endpoint::Strict) {
    // Exceptions never apply here: the strict endpoint is the migration path.
    if (classify(session.version) == VersionClass::Legacy && !allowed) {
      text = textT1(legacyTls.helpUrl);
      closeRule = Rule::D4;
    }
  } else if (!allowed) {
    // The legacy endpoint serves opted-in tenants only, whatever the version, unless an
    // unexpired exception of the tenant names this client. An unknown domain has none.
    const ClientIdentity client{session.clientIp, session.authUser, session.ehlo,
                                session.clientCertSha256};
    if (tenant == nullptr || tenant->matchingException(client, now) == nullptr) {
      text = textT2(legacyTls.helpUrl);
      closeRule = Rule::D5;
    }
  }
  if (text.empty()) {
    return accept(std::move(tenantId));
  }
  if (perRecipient) {
    return make(Outcome::RejectRecipient, Rule::D6, asRecipientReply(std::move(text)),
                std::move(tenantId));
  }
  return make(Outcome::RejectAndClose, closeRule, std::move(text), std::move(tenantId));
}

}  // namespace

std::string_view ruleName(Rule rule) {
  switch (rule) {
    case Rule::D1:
      return "D1";
    case Rule::D2:
      return "D2";
    case Rule::D3:
      return "D3";
    case Rule::D4:
      return "D4";
    case Rule::D5:
      return "D5";
    case Rule::D6:
      return "D6";
    case Rule::D7:
      return "D7";
    case Rule::D8:
      return "D8";
  }
  return "D8";
}

std::string textT1(const std::string& helpUrl) {
  return "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
         "support TLS 1.2. Visit " +
         helpUrl;
}

std::string textT2(const std::string& helpUrl) {
  return "421 4.7.66 Legacy TLS clients are not allowed for this organization. Use a TLS 1.2 "
         "client with the regular endpoint. Visit " +
         helpUrl;
}

Decision decide(Checkpoint checkpoint, const SessionView& session, std::string_view domain,
                const LegacyTlsPolicy& legacyTls, const TenantDirectory& tenants, int64_t now,
                Random& random) {
  switch (checkpoint) {
    case Checkpoint::ClientHello:
      return decideClientHello(session, legacyTls, now);
    case Checkpoint::FirstCommand:
      return decideFirstCommand(session, legacyTls, now, random);
    case Checkpoint::Auth:
      return decideTenant(false, session, domain, legacyTls, tenants, now);
    case Checkpoint::Recipient:
      return decideTenant(true, session, domain, legacyTls, tenants, now);
    case Checkpoint::Plaintext:
      if (session.version == TlsVersion::None && session.requireTls) {
        return make(Outcome::RequireTls, Rule::D7, "530 5.7.0 Must issue a STARTTLS command first");
      }
      return accept();
  }
  return accept();
}

}  // namespace smtpgate::policy
