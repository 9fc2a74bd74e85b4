#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace smtpgate {

// Connection counts shared by all workers: the total and per client IP (limits
// max_connections and max_connections_per_ip). Admit before the session starts, release when
// the connection is gone.
class Admission {
 public:
  enum class Verdict { Admitted, TooManyTotal, TooManyFromIp };

  Verdict admit(const std::string& ip, uint32_t maxTotal, uint32_t maxPerIp);
  void release(const std::string& ip);
  uint32_t total() const;
  uint32_t fromIp(const std::string& ip) const;

 private:
  mutable std::mutex mutex_;
  uint32_t total_ = 0;
  std::unordered_map<std::string, uint32_t> perIp_;
};

}  // namespace smtpgate
