#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace smtpgate {

// Per-key rates "N per minute" as token buckets: a key starts with N tokens, each event takes
// one, and tokens come back at N per minute. Memory is bounded: a key untouched for a minute
// has a full bucket again and is forgotten, and above `maxKeys` the least recently used key is
// evicted (it then starts with a full bucket: under a flood of addresses the table forgives
// rather than grows). Not thread-safe; Admission locks around it.
class RateTable {
 public:
  static constexpr std::size_t kDefaultMaxKeys = 65536;
  explicit RateTable(std::size_t maxKeys = kDefaultMaxKeys) : maxKeys_(maxKeys) {}

  // Takes a token for `key` at `nowMs` (a monotonic clock) if one is left.
  bool take(const std::string& key, uint32_t perMinute, uint64_t nowMs);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    double tokens = 0;
    uint64_t lastMs = 0;
    std::list<std::string>::iterator order;
  };
  void expire(uint64_t nowMs);

  std::size_t maxKeys_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // most recently used first
};

// Connection counts and rates shared by all workers: the total and per client IP (limits
// max_connections and max_connections_per_ip), new connections and new TLS handshakes per IP
// per minute. Admit before the session starts, release when the connection is gone.
class Admission {
 public:
  enum class Verdict { Admitted, TooManyTotal, TooManyFromIp, TooManyNewFromIp };

  explicit Admission(std::size_t maxTrackedAddresses = RateTable::kDefaultMaxKeys)
      : newConnections_(maxTrackedAddresses), newHandshakes_(maxTrackedAddresses) {}

  Verdict admit(const std::string& ip, uint32_t maxTotal, uint32_t maxPerIp);
  // Also the rate of new connections: every attempt takes a token, refused ones included.
  Verdict admit(const std::string& ip, uint32_t maxTotal, uint32_t maxPerIp,
                uint32_t newPerMinute, uint64_t nowMs);
  // A TLS handshake may begin (STARTTLS or implicit TLS): false over the per-minute rate.
  bool admitHandshake(const std::string& ip, uint32_t perMinute, uint64_t nowMs);
  void release(const std::string& ip);
  uint32_t total() const;
  uint32_t fromIp(const std::string& ip) const;
  // Addresses the rate tables remember (bounded; for tests).
  std::size_t trackedAddresses() const;

  // The key of the rate tables: the address itself for IPv4, the /64 for IPv6 (one host
  // commonly holds a whole /64).
  static std::string rateKey(const std::string& ip);

 private:
  mutable std::mutex mutex_;
  uint32_t total_ = 0;
  std::unordered_map<std::string, uint32_t> perIp_;
  RateTable newConnections_;
  RateTable newHandshakes_;
};

}  // namespace smtpgate
