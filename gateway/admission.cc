#include "gateway/admission.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace smtpgate {
namespace {

// A bucket refills completely in one minute: an entry older than that is a full bucket.
constexpr uint64_t kRefillMs = 60'000;

}  // namespace

bool RateTable::take(const std::string& key, uint32_t perMinute, uint64_t nowMs) {
  expire(nowMs);
  const double capacity = perMinute;
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (maxKeys_ == 0) {
      return true;
    }
    while (entries_.size() >= maxKeys_) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
    order_.push_front(key);
    Entry entry;
    entry.tokens = capacity;
    entry.lastMs = nowMs;
    entry.order = order_.begin();
    it = entries_.emplace(key, entry).first;
  } else {
    Entry& e = it->second;
    // Workers' loop clocks may differ by a few ms: never let time run backwards.
    uint64_t elapsed = nowMs > e.lastMs ? nowMs - e.lastMs : 0;
    e.tokens = std::min(capacity, e.tokens + capacity * static_cast<double>(elapsed) / kRefillMs);
    e.lastMs = std::max(e.lastMs, nowMs);
    order_.splice(order_.begin(), order_, e.order);
  }
  Entry& e = it->second;
  if (e.tokens < 1.0) {
    return false;
  }
  e.tokens -= 1.0;
  return true;
}

void RateTable::expire(uint64_t nowMs) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.back());
    if (it != entries_.end() && it->second.lastMs + kRefillMs > nowMs) {
      return;  // the least recently used one is still refilling: so are all the others
    }
    if (it != entries_.end()) {
      entries_.erase(it);
    }
    order_.pop_back();
  }
}

std::string Admission::rateKey(const std::string& ip) {
  if (ip.find(':') == std::string::npos) {
    return ip;
  }
  in6_addr addr{};
  if (inet_pton(AF_INET6, ip.c_str(), &addr) != 1) {
    return ip;
  }
  std::memset(addr.s6_addr + 8, 0, 8);
  char text[INET6_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET6, &addr, text, sizeof text);
  return std::string(text) + "/64";
}

Admission::Verdict Admission::admit(const std::string& ip, uint32_t maxTotal, uint32_t maxPerIp) {
  std::lock_guard lock(mutex_);
  if (total_ >= maxTotal) {
    return Verdict::TooManyTotal;
  }
  uint32_t& count = perIp_[ip];
  if (count >= maxPerIp) {
    if (count == 0) {
      perIp_.erase(ip);
    }
    return Verdict::TooManyFromIp;
  }
  ++count;
  ++total_;
  return Verdict::Admitted;
}

Admission::Verdict Admission::admit(const std::string& ip, uint32_t maxTotal, uint32_t maxPerIp,
                                    uint32_t newPerMinute, uint64_t nowMs) {
  {
    std::lock_guard lock(mutex_);
    if (!newConnections_.take(rateKey(ip), newPerMinute, nowMs)) {
      return Verdict::TooManyNewFromIp;
    }
  }
  return admit(ip, maxTotal, maxPerIp);
}

bool Admission::admitHandshake(const std::string& ip, uint32_t perMinute, uint64_t nowMs) {
  std::lock_guard lock(mutex_);
  return newHandshakes_.take(rateKey(ip), perMinute, nowMs);
}

void Admission::release(const std::string& ip) {
  std::lock_guard lock(mutex_);
  auto it = perIp_.find(ip);
  if (it == perIp_.end()) {
    return;
  }
  if (--it->second == 0) {
    perIp_.erase(it);
  }
  --total_;
}

uint32_t Admission::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

uint32_t Admission::fromIp(const std::string& ip) const {
  std::lock_guard lock(mutex_);
  auto it = perIp_.find(ip);
  return it == perIp_.end() ? 0 : it->second;
}

std::size_t Admission::trackedAddresses() const {
  std::lock_guard lock(mutex_);
  return newConnections_.size() + newHandshakes_.size();
}

}  // namespace smtpgate
