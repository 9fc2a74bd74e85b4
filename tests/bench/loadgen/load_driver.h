#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "tests/bench/loadgen/client_session.h"
#include "tests/bench/loadgen/options.h"
#include "tests/bench/loadgen/stats.h"

namespace smtpgate::loadgen {

// Runs every session of one run on one event loop: at most --concurrency sessions at once
// (in idle mode: at most that many being established), never more than the total, never
// longer than --duration-limit.
class LoadDriver : public SessionHost {
 public:
  LoadDriver(const Options& options, std::shared_ptr<tls::TlsContext> tls,
             const sockaddr_storage& address, std::vector<sockaddr_storage> sources,
             std::string authCommand);
  ~LoadDriver() override;
  LoadDriver(const LoadDriver&) = delete;
  LoadDriver& operator=(const LoadDriver&) = delete;

  // Runs to the end. False (with `error`) only when the loop cannot be set up.
  bool run(std::string& error);
  const Stats& stats() const { return stats_; }
  double elapsedSeconds() const { return static_cast<double>(endNs_ - startNs_) / 1e9; }
  int64_t messageWireSize() const { return static_cast<int64_t>(messageWire_.size()); }

  void onSessionHeld(ClientSession* session) override;
  void onSessionClosed(ClientSession* session) override;

 private:
  static void onDeadline(uv_timer_t* timer);
  static void onHoldOver(uv_timer_t* timer);
  static void onTimerClosed(uv_handle_t* handle);

  void startMore();
  void maybeStartHold();
  void endHold();
  void maybeFinish();

  const Options& options_;
  std::string messageWire_;
  SessionConfig config_;
  Stats stats_;
  std::vector<char> readBuffer_;
  uv_loop_t loop_{};
  uv_timer_t deadline_{};
  uv_timer_t hold_{};
  std::unordered_set<ClientSession*> live_;
  std::unordered_set<ClientSession*> held_;
  int64_t total_ = 0;
  int64_t started_ = 0;
  bool stopping_ = false;  // the duration limit: start nothing more
  bool holding_ = false;
  bool holdDone_ = false;
  bool finishing_ = false;
  uint64_t startNs_ = 0;
  uint64_t endNs_ = 0;
};

}  // namespace smtpgate::loadgen
