#include "gateway/tenant_watcher.h"

#include <poll.h>

#include <algorithm>

#include "gateway/db_migrations.h"
#include "gateway/log.h"

namespace smtpgate {
namespace {

constexpr auto kTick = std::chrono::milliseconds(250);  // how soon a stop is seen
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

}  // namespace

bool TenantView::offer(int64_t version, const policy::TenantDirectory& directory) {
  std::lock_guard lock(mutex_);
  if (any_ && version <= version_) {
    return false;
  }
  any_ = true;
  version_ = version;
  directory_ = directory;
  return true;
}

policy::TenantDirectory TenantView::current() const {
  std::lock_guard lock(mutex_);
  return directory_;
}

int64_t TenantView::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

std::shared_ptr<TenantView> openTenantView(const std::string& conninfo, std::string& error) {
  auto db = PgConnection::connect(conninfo, error);
  if (!db) {
    return nullptr;
  }
  error = schemaProblem(*db);
  if (!error.empty()) {
    return nullptr;
  }
  TenantSnapshot snapshot;
  std::vector<std::string> errors;
  if (!readTenantSnapshot(*db, snapshot, errors, error)) {
    for (const auto& e : errors) {
      error += "; " + e;
    }
    return nullptr;
  }
  auto view = std::make_shared<TenantView>();
  view->offer(snapshot.version, snapshot.directory);
  return view;
}

TenantWatcher::TenantWatcher(std::string conninfo, std::chrono::milliseconds refresh,
                             Install install)
    : conninfo_(std::move(conninfo)), refresh_(refresh), install_(std::move(install)) {}

TenantWatcher::~TenantWatcher() {
  stop_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void TenantWatcher::start() {
  thread_ = std::thread([this] { run(); });
}

bool TenantWatcher::pause(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        kTick, std::chrono::duration_cast<std::chrono::milliseconds>(
                   until - std::chrono::steady_clock::now()) +
                   std::chrono::milliseconds(1)));
  }
  return !stop_;
}

void TenantWatcher::refresh(PgConnection& db) {
  TenantSnapshot snapshot;
  std::vector<std::string> errors;
  std::string error;
  if (!readTenantSnapshot(db, snapshot, errors, error)) {
    // A bad row (edited by hand in the database) keeps the tenants in force, as a bad tenants
    // file does on SIGHUP.
    log::error("tenants: cannot read them from PostgreSQL; the current tenants stay: {}{}",
               error, errors.empty() ? "" : " (" + errors.front() + ")");
    return;
  }
  install_(snapshot);
}

void TenantWatcher::run() {
  auto backoff = kFirstBackoff;
  bool reportedDown = false;
  while (!stop_) {
    std::string error;
    auto db = PgConnection::connect(conninfo_, error);
    if (db) {
      const std::string listen = std::string("LISTEN ") + kTenantChannel;
      if (!db->exec(listen, error)) {
        db.reset();
      }
    }
    if (!db) {
      if (!reportedDown) {
        log::error("tenants: PostgreSQL unavailable, the last known tenants stay in force; "
                   "retrying: {}",
                   error);
        reportedDown = true;
      }
      pause(backoff);
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    if (reportedDown) {
      log::info("tenants: PostgreSQL is back; listening for tenant changes again");
      reportedDown = false;
    }
    connected_ = true;
    backoff = kFirstBackoff;
    // Changes made while we were not listening: read once now.
    refresh(*db);
    auto nextRefresh = std::chrono::steady_clock::now() + refresh_;
    while (!stop_) {
      pollfd p{db->socket(), POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(kTick.count()));
      std::vector<std::pair<std::string, std::string>> notes;
      if (ready > 0 && !db->takeNotifications(notes)) {
        break;  // the connection broke: reconnect
      }
      if (!notes.empty() || std::chrono::steady_clock::now() >= nextRefresh) {
        refresh(*db);
        nextRefresh = std::chrono::steady_clock::now() + refresh_;
        if (!db->healthy()) {
          break;
        }
      }
    }
    connected_ = false;
    if (!stop_) {
      log::error("tenants: lost the PostgreSQL connection; the current tenants stay in force");
      reportedDown = true;
    }
  }
}

}  // namespace smtpgate
