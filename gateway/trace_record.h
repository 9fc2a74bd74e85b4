#pragma once

#include <cstdint>
#include <string>

namespace smtpgate {

// SPEC section 7: every session and every accepted message becomes a trace record. Strings are
// as the gateway saw them (client-controlled ones included: writers must escape); never a
// password. tlsVersion is "none", "1.0", "1.1", "1.2" or "1.3".

struct SessionTrace {
  std::string sessionId;
  int64_t startedMs = 0;  // Unix milliseconds
  int64_t endedMs = 0;
  std::string listener;
  std::string endpoint;   // "strict" | "legacy"
  std::string clientIp;
  unsigned clientPort = 0;
  std::string sni;
  std::string ehlo;
  std::string tlsVersion = "none";
  std::string tlsCipher;
  std::string tlsMaxOffered;  // highest version the client offered ("" for plaintext)
  std::string authUser;
  std::string tenant;
  std::string rule;        // the session's last TLS decision, "D1".."D8"
  std::string finalReply;  // the last reply line the gateway sent (e.g. the 421 of a refusal)
  unsigned messages = 0;   // messages accepted in this session
};

struct MessageTrace {
  std::string sessionId;
  int64_t receivedMs = 0;  // when the 250 was given
  std::string listener;
  std::string endpoint;
  std::string clientIp;
  std::string ehlo;
  std::string tlsVersion = "none";
  std::string tlsCipher;
  std::string authUser;
  std::string tenant;
  std::string sender;
  unsigned rcptCount = 0;
  uint64_t size = 0;
  std::string rule;
  std::string reply;    // the final reply (250 ...)
  std::string queueId;  // the spool's id or the backend's "queued as" id, "" when unknown
};

}  // namespace smtpgate
