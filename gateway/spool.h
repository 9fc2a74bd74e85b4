#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "gateway/smtp/message.h"

namespace smtpgate {

// The facts of the session a message came from, stored beside it in ID.json.
struct SessionFacts {
  std::string sessionId;
  std::string listener;
  std::string endpoint;  // "strict" | "legacy"
  std::string clientIp;
  unsigned clientPort = 0;
  std::string tlsVersion;  // "1.0".."1.3", "" for plaintext
  std::string tlsCipher;   // IANA name
  std::string sni;
  std::string tlsMaxOffered;  // highest version the client offered
  std::string tenant;         // tenant of the session's last decision that named one
  std::string rule;           // rule of the session's last TLS decision ("D8" when accepted)
};

// The maildir-like spool of the embedded default: each message is written to DIR/tmp/ID.eml
// and DIR/tmp/ID.json, both fsynced, then renamed into DIR/new/ (the JSON first: the .eml's
// rename is the commit point, so a reader never finds an .eml without its envelope), and
// DIR/new fsynced.
class Spool {
 public:
  explicit Spool(std::string dir) : dir_(std::move(dir)) {}
  // Creates DIR, DIR/tmp, DIR/new (mode 0700, parents too) and proves tmp/ writable with a
  // probe file. Returns "" or an error sentence.
  std::string prepare() const;
  // Blocking: call it off the event loop; thread-safe. Returns true and sets `id`, or false
  // with `error` (a sentence with the errno text) and nothing left in tmp/ or new/.
  // A non-empty `id` on entry (from makeId, e.g. already named in the Received: line) is used
  // as is; an empty one is filled with a fresh id.
  // `content` is the message as it is stored (the Received: line already prepended).
  bool store(const smtp::Message& message, const std::string& content, const SessionFacts& facts,
             std::string& id, std::string& error) const;
  // A fresh queue id: 19 upper-case Crockford base-32 characters, 11 from the timestamp (so
  // ids sort by time) and 8 from `random` (an entropy source chosen by the caller), so that
  // concurrent stores in one microsecond still get distinct ids.
  static std::string makeId(uint64_t unixMicros, uint64_t random);
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace smtpgate
