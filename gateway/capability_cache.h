#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace smtpgate {

// The backend's EHLO keywords, filtered for clients (SPEC section 6): learnt at start-up by a
// probe and refreshed from every backend session, so that the post-TLS EHLO is answered without
// opening a backend connection. Shared by all workers.
class CapabilityCache {
 public:
  // Until the backend has been seen: a conservative list every MTA we front supports.
  std::vector<std::string> get(uint64_t maxMessageBytes) const;
  void set(std::vector<std::string> keywords);
  bool known() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> keywords_;
  bool known_ = false;
};

}  // namespace smtpgate
