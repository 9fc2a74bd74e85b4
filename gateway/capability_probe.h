#pragma once

#include <uv.h>

#include "gateway/backend_link.h"
#include "gateway/capability_cache.h"
#include "gateway/runtime.h"

namespace smtpgate {

// At start-up, one backend session (no client behind it, so no handoff) learns what the
// backend announces, so that the first clients' post-TLS EHLO already shows the backend's
// capabilities. Frees itself when done; a backend that is down only costs a warning.
class CapabilityProbe : private BackendLink::Owner {
 public:
  static void start(uv_loop_t* loop, const Runtime& runtime, CapabilityCache& cache);

 private:
  CapabilityProbe(CapabilityCache& cache, uint64_t maxMessageBytes)
      : cache_(cache), maxMessageBytes_(maxMessageBytes) {}
  void onBackendReady(bool ok, const std::string& reason,
                      const smtp::Capabilities& capabilities) override;
  void onBackendReply(const smtp::Reply&) override {}
  void onBackendLost(const std::string&) override {}
  void onBackendWritable() override {}

  CapabilityCache& cache_;
  uint64_t maxMessageBytes_;
  BackendLink* link_ = nullptr;
};

}  // namespace smtpgate
