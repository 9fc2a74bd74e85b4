#pragma once

// Cluster mode: keeps this instance's tenants in step with PostgreSQL. A thread of its own (never
// an event loop) holds a dedicated connection that LISTENs on smtpgate_tenants; a NOTIFY, a
// reconnection and every `refresh` interval (the safety net for a lost notification) re-read the
// snapshot, and a newer version is handed to `install` (the server installs it as SIGHUP does).
// While PostgreSQL is away the last installed tenants stay in force; the thread reconnects with
// a growing pause (0.1 s doubling to 5 s).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/pg_tenant_store.h"

namespace smtpgate {

// The newest tenants this instance knows from PostgreSQL, with their version: the watcher, the
// admin API and reloads go through it, so that an older snapshot never replaces a newer one.
class TenantView {
 public:
  // Keeps `directory` when `version` is newer than what is kept (or nothing is kept yet).
  bool offer(int64_t version, const policy::TenantDirectory& directory);
  policy::TenantDirectory current() const;
  int64_t version() const;

 private:
  mutable std::mutex mutex_;
  bool any_ = false;
  int64_t version_ = 0;
  policy::TenantDirectory directory_;
};

// Connects, checks that the schema is the one this binary needs (schemaProblem) and reads the
// tenants into a new view. Null with `error` otherwise: `run` refuses to start then.
std::shared_ptr<TenantView> openTenantView(const std::string& conninfo, std::string& error);

class TenantWatcher {
 public:
  using Install = std::function<void(const TenantSnapshot&)>;
  TenantWatcher(std::string conninfo, std::chrono::milliseconds refresh, Install install);
  ~TenantWatcher();  // stops and joins (within about 0.25 s)
  TenantWatcher(const TenantWatcher&) = delete;
  TenantWatcher& operator=(const TenantWatcher&) = delete;

  void start();
  bool connected() const { return connected_.load(); }

 private:
  void run();
  void refresh(PgConnection& db);
  // Sleeps up to `d`, returns early (false) when stopping.
  bool pause(std::chrono::milliseconds d);

  std::string conninfo_;
  std::chrono::milliseconds refresh_;
  Install install_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace smtpgate
