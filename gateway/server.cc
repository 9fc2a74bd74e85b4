#include "gateway/server.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include "gateway/admin_api.h"
#include "gateway/admin_page.h"
#include "gateway/capability_probe.h"
#include "gateway/log.h"
#include "gateway/pg_tenant_store.h"
#include "gateway/tenant_admin.h"
#include "gateway/tenant_watcher.h"

namespace smtpgate {
namespace {

constexpr int kKeepFreeHeapBytes = 8 * 1024 * 1024;

}  // namespace

unsigned workerCount(uint32_t configured) {
  if (configured > 0) {
    return configured;
  }
  unsigned cores = std::thread::hardware_concurrency();
  // One per core, as many as a configuration may name (session ids give the worker 2 hex digits).
  return cores == 0 ? 1 : std::min(cores, 256u);
}

Server::Server(std::shared_ptr<const Runtime> runtime, Reloader reload)
    : runtime_(std::move(runtime)), reloader_(std::move(reload)) {
  unsigned n = workerCount(runtime_.get()->config.workers);
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, runtime_, admission_, n > 1));
  }
  uv_loop_init(&loop_);
}

Server::~Server() {
  admin_.reset();
  watcher_.reset();
  for (auto& w : workers_) {
    w->join();
  }
  workers_.clear();
  traces_.reset();  // the workers are gone: every record is queued; this commits them
  uv_loop_close(&loop_);
}

std::string Server::openTraces() {
  const Config& c = runtime_.get()->config;
  if (!c.trace.sqlite && c.trace.eventsJsonl.empty()) {
    return "";
  }
  TraceStore::Options options;
  options.sqlite = c.trace.sqlite;
  options.databasePath = c.stateDir + "/traces.sqlite";
  options.retentionDays = c.trace.retentionDays;
  options.eventsJsonl = c.trace.eventsJsonl;
  if (c.store.cluster() && c.trace.sqlite) {
    options.postgres = c.store.postgres;
    options.queueLimit = c.store.bufferRecords;
  }
  std::string error;
  traces_ = TraceStore::open(options, error);
  if (!traces_) {
    return error;
  }
  runtime_.setTraces(traces_.get());
  return "";
}

std::string Server::bind() {
  for (auto& w : workers_) {
    std::string error = w->bind();
    if (!error.empty()) {
      return error;
    }
  }
  return "";
}

std::string Server::startAdmin() {
  auto runtime = runtime_.get();
  const AdminConfig& admin = runtime->config.admin;
  if (!admin.enabled) {
    return "";
  }
  std::string error;
  std::string token = readAdminToken(admin.tokenFile, error);
  if (token.empty()) {
    return "admin: " + error;
  }
  AdminContext context;
  if (runtime->config.trace.sqlite && runtime->config.store.cluster()) {
    context.postgres = runtime->config.store.postgres;
  } else if (runtime->config.trace.sqlite) {
    context.databasePath = runtime->config.stateDir + "/traces.sqlite";
  }
  context.flushTraces = [this] {
    if (traces_) {
      traces_->flush();
    }
  };
  context.draining = [this] { return stopping_.load(); };
  context.reload = [this] { return reload(); };
  context.metricsText = [this] { return runtime_.metrics().prometheusText(traces_.get()); };
  context.tenants = [this](const AdminRequest& request) {
    // One change or reload at a time: a reload that read the tenants file before this change
    // wrote it must not install the old tenants after the change was applied.
    std::lock_guard<std::mutex> lock(updateMutex_);
    // The tenants file of the configuration in force: a reload may name another one.
    const auto runtime = runtime_.get();
    TenantAdminContext tenants;
    tenants.tenantsPath = runtime->config.tenantsPath;
    tenants.auditPath = runtime->config.stateDir + "/audit.jsonl";
    tenants.apply = [this](const policy::TenantDirectory& directory) { installTenants(directory); };
    if (clusterTenants_) {
      tenants.repository = clusterTenants_;
      tenants.apply = [this](const policy::TenantDirectory& directory) {
        installClusterLocked(clusterTenants_->lastCommittedVersion(), directory);
      };
    }
    return handleTenantRequest(request, tenants);
  };
  context.asset = [](const std::string& path, AdminResponse& out) {
    const AdminAsset* asset = findAdminAsset(path);
    if (!asset) {
      return false;
    }
    out.contentType = std::string(asset->contentType);
    out.body = std::string(asset->body);
    out.headers["Cache-Control"] = "no-cache";
    return true;
  };
  auto handler = [this, context](const AdminRequest& request) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return handleAdminRequest(request, context, now);
  };
  admin_ = std::make_unique<AdminServer>(admin.listen, token, handler);
  error = admin_->start();
  if (!error.empty()) {
    admin_.reset();
    return error;
  }
  log::info("admin API on http://{}/", admin.listen.str());
  return "";
}

void Server::useClusterStore(std::shared_ptr<TenantView> view) {
  clusterView_ = std::move(view);
  const StoreConfig& store = runtime_.get()->config.store;
  clusterTenants_ = std::make_shared<PgTenantStore>(store.postgres);
  watcher_ = std::make_unique<TenantWatcher>(
      store.postgres, std::chrono::seconds(store.refreshS),
      [this](const TenantSnapshot& snapshot) { installFromCluster(snapshot); });
}

void Server::installFromCluster(const TenantSnapshot& snapshot) {
  std::lock_guard<std::mutex> lock(updateMutex_);
  installClusterLocked(snapshot.version, snapshot.directory);
}

void Server::installClusterLocked(int64_t version, const policy::TenantDirectory& tenants) {
  if (clusterView_ && clusterView_->offer(version, tenants)) {
    installTenants(tenants);
    log::info("tenants: version {} from PostgreSQL in force", version);
  }
}

void Server::installTenants(const policy::TenantDirectory& tenants) {
  auto next = std::make_shared<Runtime>(*runtime_.get());
  next->tenants = tenants;
  runtime_.set(std::move(next));
}

int Server::run() {
  signal(SIGPIPE, SIG_IGN);
  // Message chunks (64 KiB reads) are allocated and freed at every read of a large message:
  // glibc's default trims the heap top back to the kernel above 128 KiB free, and the next
  // chunk faults its pages in again (measured: about a tenth of the CPU of a 20 MB relay).
  // Up to a few MiB of freed heap per arena stays for reuse instead.
  mallopt(M_TRIM_THRESHOLD, kKeepFreeHeapBytes);
  for (auto* sig : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(&loop_, sig);
    sig->data = this;
  }
  uv_signal_start(&sigterm_, onSignal, SIGTERM);
  uv_signal_start(&sigint_, onSignal, SIGINT);
  uv_signal_start(&sighup_, onSignal, SIGHUP);
  uv_timer_init(&loop_, &poll_);
  poll_.data = this;
  uv_timer_init(&loop_, &reloadRetry_);
  reloadRetry_.data = this;
  auto runtime = runtime_.get();
  if (runtime->config.relay) {
    // Learn the backend's capabilities before the first client's EHLO (at most
    // backend_connect seconds): the loop returns once the probe's link has closed.
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
    for (auto* sig : {&sigterm_, &sigint_, &sighup_}) {
      uv_unref(reinterpret_cast<uv_handle_t*>(sig));
    }
    CapabilityProbe::start(&loop_, *runtime, runtime_.backendCapabilities());
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
    for (auto* sig : {&sigterm_, &sigint_, &sighup_}) {
      uv_ref(reinterpret_cast<uv_handle_t*>(sig));
    }
  }
  for (auto& w : workers_) {
    w->startThread();
  }
  if (watcher_) {
    watcher_->start();
  }
  log::info("smtpgate {} ready: {} worker(s)", SMTPGATE_VERSION, workers_.size());
  uv_run(&loop_, UV_RUN_DEFAULT);
  watcher_.reset();
  for (auto& w : workers_) {
    w->join();
  }
  admin_.reset();
  log::info("smtpgate stopped");
  return 0;
}

void Server::onSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGHUP) {
    log::info("SIGHUP");
    self->reloadFromSignal();
    return;
  }
  self->stop(self->stopping_);
}

std::vector<std::string> Server::reload() {
  if (stopping_) {
    return {"the gateway is stopping"};
  }
  std::lock_guard<std::mutex> lock(updateMutex_);
  return reloadLocked();
}

void Server::onReloadRetry(uv_timer_t* timer) {
  static_cast<Server*>(timer->data)->reloadFromSignal();
}

void Server::reloadFromSignal() {
  if (stopping_) {
    return;
  }
  // The main loop also handles SIGTERM: it never waits for a tenant change in progress on the
  // admin thread; it comes back a moment later.
  std::unique_lock<std::mutex> lock(updateMutex_, std::try_to_lock);
  if (!lock.owns_lock()) {
    uv_timer_start(&reloadRetry_, onReloadRetry, 100, 0);
    return;
  }
  reloadLocked();
}

std::vector<std::string> Server::reloadLocked() {
  log::info("reloading configuration");
  std::vector<std::string> errors;
  std::shared_ptr<const Runtime> fresh;
  try {
    fresh = reloader_ ? reloader_(errors) : nullptr;
  } catch (const std::exception& e) {
    // Loaders report errors, they should not throw; if one does, the reload is refused like
    // any bad configuration and the running one stays.
    errors.push_back(std::string("reload failed: ") + e.what());
    fresh = nullptr;
  }
  if (!fresh) {
    log::error("reload refused: the running configuration stays in force");
    if (errors.empty()) {
      errors.push_back("the configuration could not be loaded; see the gateway's log");
    }
    return errors;
  }
  const auto& before = runtime_.get()->config;
  bool listenersChanged = fresh->config.listeners.size() != before.listeners.size();
  for (std::size_t i = 0; !listenersChanged && i < before.listeners.size(); ++i) {
    listenersChanged = fresh->config.listeners[i].listen.str() != before.listeners[i].listen.str();
  }
  if (listenersChanged) {
    log::warning("reload: listener addresses changed; they take effect at the next restart");
  }
  if (fresh->config.store.postgres != before.store.postgres) {
    log::warning(
        "reload: the store's connection string changed; it takes effect at the next "
        "restart");
  }
  if (fresh->config.admin.enabled != before.admin.enabled) {
    log::warning("reload: the admin API is {} at the next restart",
                 fresh->config.admin.enabled ? "started" : "stopped");
  }
  if (admin_ && fresh->config.admin.enabled) {
    if (fresh->config.admin.listen.str() != before.admin.listen.str()) {
      log::warning("reload: the admin address changed; it takes effect at the next restart");
    }
    std::string error;
    std::string token = readAdminToken(fresh->config.admin.tokenFile, error);
    if (!token.empty()) {
      admin_->setToken(std::move(token));  // a rotated token is in force at once
    } else {
      log::warning("reload: the admin token stays as it was: {}", error);
    }
  }
  runtime_.set(std::move(fresh));
  log::info("reload done: new sessions use the new configuration");
  return {};
}

void Server::stop(bool now) {
  unsigned drainS = runtime_.get()->config.limits.timeouts.drain;
  if (!stopping_) {
    stopping_ = true;
    log::info("stopping: no new connections; sessions have {} s to finish", drainS);
    uv_timer_start(&poll_, onPoll, 50, 50);
  }
  for (auto& w : workers_) {
    if (now) {
      w->requestStop();
    } else {
      w->requestDrain(drainS);
    }
  }
  if (now) {
    log::info("second stop signal: closing every session now");
  }
}

void Server::onPoll(uv_timer_t* timer) {
  auto* self = static_cast<Server*>(timer->data);
  for (auto& w : self->workers_) {
    if (!w->finished()) {
      return;
    }
  }
  uv_timer_stop(&self->poll_);
  for (auto* h : {reinterpret_cast<uv_handle_t*>(&self->sigterm_),
                  reinterpret_cast<uv_handle_t*>(&self->sigint_),
                  reinterpret_cast<uv_handle_t*>(&self->sighup_),
                  reinterpret_cast<uv_handle_t*>(&self->poll_),
                  reinterpret_cast<uv_handle_t*>(&self->reloadRetry_)}) {
    uv_close(h, nullptr);
  }
}

}  // namespace smtpgate
