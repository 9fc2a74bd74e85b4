#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/admin_server.h"
#include "gateway/admission.h"
#include "gateway/trace_store.h"
#include "gateway/worker.h"

namespace smtpgate {
class PgTenantStore;
class TenantView;
class TenantWatcher;
struct TenantSnapshot;
}  // namespace smtpgate

namespace smtpgate {

// Runs the workers and handles signals on the main thread:
//   SIGHUP: rebuild the runtime from `reload` (a bad configuration is refused, the running
//           one stays); SIGTERM/SIGINT: stop accepting, let sessions finish for
//           timeouts_s.drain, then 421 them; a second SIGTERM/SIGINT: 421 at once.
class Server {
 public:
  // `reload` builds a fresh runtime, or returns null after logging why and appending it to
  // the errors.
  using Reloader = std::function<std::shared_ptr<const Runtime>(std::vector<std::string>&)>;
  Server(std::shared_ptr<const Runtime> runtime, Reloader reload);
  ~Server();

  // Opens the trace store of the configuration (traces.sqlite under state_dir, events_jsonl).
  // Returns "" or the error. Without it (trace.store "none" and no events) nothing is traced.
  std::string openTraces();
  // Cluster mode ("store": {"postgres"}): the tenants of `view` (already in the runtime) come
  // from PostgreSQL; the admin API edits them there and a watcher thread, started by run(),
  // installs every change made through any instance. Call before startAdmin().
  void useClusterStore(std::shared_ptr<TenantView> view);
  // Binds every listener in every worker. Returns "" or the error.
  std::string bind();
  // Starts the admin HTTP server when the configuration has one. Returns "" or the error.
  std::string startAdmin();
  // Thread-safe (signal handler and admin API): rebuilds the runtime; returns the errors of a
  // refused reload (the running configuration stays), empty on success.
  std::vector<std::string> reload();

  // Runs until all workers ended after a stop signal. Returns the exit code.
  int run();

 private:
  static void onSignal(uv_signal_t* handle, int signum);
  static void onPoll(uv_timer_t* timer);
  static void onReloadRetry(uv_timer_t* timer);
  void reloadFromSignal();
  std::vector<std::string> reloadLocked();  // caller holds updateMutex_
  void stop(bool now);
  // New decisions use these tenants from now on (the admin API wrote them). Caller holds
  // updateMutex_.
  void installTenants(const policy::TenantDirectory& tenants);
  // Cluster mode: installs a snapshot newer than the one in force. The first takes
  // updateMutex_ (the watcher thread), the second expects it held (the admin API).
  void installFromCluster(const TenantSnapshot& snapshot);
  void installClusterLocked(int64_t version, const policy::TenantDirectory& tenants);

  RuntimeHolder runtime_;
  std::mutex updateMutex_;              // one reload or tenant change at a time
  std::unique_ptr<TraceStore> traces_;  // destroyed after the workers: it flushes last
  Reloader reloader_;
  Admission admission_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uv_loop_t loop_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t poll_{};
  uv_timer_t reloadRetry_{};  // SIGHUP while a tenant change holds updateMutex_
  std::atomic<bool> stopping_{false};
  std::shared_ptr<TenantView> clusterView_;
  std::shared_ptr<PgTenantStore> clusterTenants_;
  std::unique_ptr<TenantWatcher> watcher_;  // stopped before the workers are joined
  std::unique_ptr<AdminServer> admin_;  // stopped first: its handlers use the rest
};

unsigned workerCount(uint32_t configured);

}  // namespace smtpgate
