#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/legacy_tls.h"
#include "policy/tenants.h"
#include "policy/tls_version.h"

namespace smtpgate::policy {

// The rules of SPEC section 4, in table order.
enum class Rule { D1 = 1, D2, D3, D4, D5, D6, D7, D8 };
std::string_view ruleName(Rule rule);  // "D1".."D8"

// Where in a session a decision is taken.
enum class Checkpoint {
  ClientHello,   // D1: before version negotiation; facts.version = highest version offered
  FirstCommand,  // D2, D3: the first command after the handshake
  Auth,          // D4, D5: `domain` = domain of the AUTH identity
  Recipient,     // D6: `domain` = domain of the RCPT address (sessions without AUTH)
  Plaintext,     // D7: MAIL, RCPT or AUTH without TLS
};

enum class Outcome {
  Accept,           // D8 (or "not my rule here")
  RefuseHandshake,  // D1: fail the handshake with a protocol_version alert
  RejectAndClose,   // D2..D5: the reply (421) then close; credentials are never passed on
  RejectRecipient,  // D6: the reply (450) for this recipient only
  RequireTls,       // D7: the reply (530)
};

// What the policy knows of a session at a checkpoint.
struct SessionView {
  Endpoint endpoint = Endpoint::Strict;
  TlsVersion version = TlsVersion::None;  // negotiated (at ClientHello: highest offered)
  bool requireTls = true;
  std::string clientIp;         // "192.0.2.10", "2001:db8::1"
  std::string ehlo;             // EHLO/HELO argument, "" before it
  std::string authUser;         // AUTH identity, "" without AUTH
  std::string clientCertSha256; // lower-case hex, "" without a client certificate
};

struct Decision {
  Outcome outcome = Outcome::Accept;
  Rule rule = Rule::D8;
  std::string reply;   // the full reply line without CRLF ("" on Accept)
  std::string tenant;  // the tenant id the decision used, "" for none/unknown
};

// A source of uniform 32-bit random numbers: BoringSSL's RAND_bytes in production, a seeded
// generator in tests.
class Random {
 public:
  virtual ~Random() = default;
  virtual uint32_t next() = 0;
};

// The rule table D1..D8 as one function. `now` is Unix seconds. Pure: same inputs (and the
// same random draws) give the same decision.
Decision decide(Checkpoint checkpoint, const SessionView& session, std::string_view domain,
                const LegacyTlsPolicy& legacyTls, const TenantDirectory& tenants, int64_t now,
                Random& random);

// The texts of SPEC section 4 with {help_url} filled in.
std::string textT1(const std::string& helpUrl);  // "421 4.7.66 TLS 1.0 and 1.1 are not supported. ..."
std::string textT2(const std::string& helpUrl);  // "421 4.7.66 Legacy TLS clients are not allowed ..."

}  // namespace smtpgate::policy
