#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "gateway/admission.h"
#include "gateway/capability_cache.h"
#include "gateway/metrics.h"
#include "gateway/runtime.h"

namespace smtpgate {

class TraceStore;

class ClientConnection;

// The runtime snapshot all workers read; a reload swaps it in one step.
class RuntimeHolder {
 public:
  explicit RuntimeHolder(std::shared_ptr<const Runtime> runtime) : runtime_(std::move(runtime)) {}
  std::shared_ptr<const Runtime> get() const { return std::atomic_load(&runtime_); }
  void set(std::shared_ptr<const Runtime> runtime) { std::atomic_store(&runtime_, runtime); }
  // Survives reloads: what the backend announced is not configuration.
  CapabilityCache& backendCapabilities() { return capabilities_; }
  // The trace store (null when traces are off); outlives the workers. Set before they start.
  TraceStore* traces() const { return traces_; }
  void setTraces(TraceStore* traces) { traces_ = traces; }
  // The counters of GET /metrics; like the capabilities, they survive reloads.
  Metrics& metrics() { return metrics_; }

 private:
  std::shared_ptr<const Runtime> runtime_;
  CapabilityCache capabilities_;
  TraceStore* traces_ = nullptr;
  Metrics metrics_;
};

// One event-loop thread with its own listening sockets (SO_REUSEPORT when there are several
// workers) and the connections it accepted.
class Worker {
 public:
  Worker(unsigned index, RuntimeHolder& runtime, Admission& admission, bool reusePort);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds every listener of the current runtime; returns "" or an error sentence.
  std::string bind();
  void startThread();
  void join();
  // Thread-safe: stop accepting; sessions go on until drainS, then get 421.
  void requestDrain(unsigned drainS);
  // Thread-safe: 421 to every session now.
  void requestStop();

  uv_loop_t* loop() { return &loop_; }
  // The newest runtime: TLS decisions always use the current tenants and schedule, also in
  // sessions that started before a reload.
  std::shared_ptr<const Runtime> currentRuntime() const { return runtime_.get(); }
  CapabilityCache& backendCapabilities() { return runtime_.backendCapabilities(); }
  TraceStore* traces() const { return runtime_.traces(); }
  Metrics& metrics() { return runtime_.metrics(); }
  Admission& admission() { return admission_; }
  std::string& readBuffer() { return readBuffer_; }
  // Decrypted bytes of one read; like readBuffer(), consumed before the callback returns.
  std::string& plaintextBuffer() { return plaintextBuffer_; }
  // Output a connection produced in this loop iteration goes out once, after the iteration's
  // I/O callbacks (a uv_check handle; a uv_idle handle as well, so that output of a timer
  // callback never waits for the poll): the replies and relayed bytes of one read, or of one
  // batch of backend replies, leave in one write (one TLS record) rather than one each.
  void deferFlush(ClientConnection* connection);
  // The connection is closing: no flush for it any more.
  void cancelFlush(ClientConnection* connection);
  void connectionGone(ClientConnection* connection);
  // Admission (total and per-IP limits) for `ip`, then the session starts; refused: 421 on
  // STARTTLS listeners and close. Called at accept, or once a PROXY header named the client.
  void admit(ClientConnection& connection, const std::string& ip, unsigned port);
  std::size_t connections() const { return connectionCount_.load(); }
  bool finished() const { return finished_.load(); }

 private:
  struct Listener {
    uv_tcp_t tcp;
    Worker* worker;
    ListenerConfig config;
  };

  static void onConnection(uv_stream_t* server, int status);
  static void onAsync(uv_async_t* async);
  static void onDrainTimer(uv_timer_t* timer);
  static void onFlushCheck(uv_check_t* check);
  static void onFlushIdle(uv_idle_t* idle);
  void flushAll();
  void accept(Listener& listener);
  void closeListeners();
  void stopAll();
  std::string newSessionId();

  unsigned index_;
  RuntimeHolder& runtime_;
  Admission& admission_;
  bool reusePort_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t drainTimer_{};
  uv_check_t flushCheck_{};
  uv_idle_t flushIdle_{};
  // The loop thread's log lines (log::bufferThread), written after the I/O callbacks of each
  // iteration and before the loop blocks. Unreferenced: they never keep the loop alive.
  uv_check_t logCheck_{};
  uv_prepare_t logPrepare_{};
  std::vector<ClientConnection*> toFlush_;
  std::vector<ClientConnection*> flushing_;  // the list being flushed (kept for its capacity)
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_set<ClientConnection*> connections_;
  std::atomic<std::size_t> connectionCount_{0};
  std::atomic<bool> finished_{false};
  std::string readBuffer_;
  std::string plaintextBuffer_;
  std::thread thread_;
  std::mutex requestMutex_;
  bool drainRequested_ = false;
  unsigned drainS_ = 0;
  bool stopRequested_ = false;
  bool draining_ = false;
  uint64_t sessionCounter_ = 0;
};

}  // namespace smtpgate
