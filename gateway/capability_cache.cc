#include "gateway/capability_cache.h"

#include <fmt/format.h>

namespace smtpgate {

std::vector<std::string> CapabilityCache::get(uint64_t maxMessageBytes) const {
  std::lock_guard lock(mutex_);
  if (known_) {
    return keywords_;
  }
  return {"PIPELINING", fmt::format("SIZE {}", maxMessageBytes), "8BITMIME",
          "ENHANCEDSTATUSCODES"};
}

void CapabilityCache::set(std::vector<std::string> keywords) {
  std::lock_guard lock(mutex_);
  keywords_ = std::move(keywords);
  known_ = true;
}

bool CapabilityCache::known() const {
  std::lock_guard lock(mutex_);
  return known_;
}

}  // namespace smtpgate
