#include "gateway/admission.h"

namespace smtpgate {

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

}  // namespace smtpgate
