#include "gateway/server.h"

#include <csignal>
#include <thread>

#include "gateway/capability_probe.h"
#include "gateway/log.h"

namespace smtpgate {

unsigned workerCount(uint32_t configured) {
  if (configured > 0) {
    return configured;
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
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

int Server::run() {
  signal(SIGPIPE, SIG_IGN);
  for (auto* sig : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(&loop_, sig);
    sig->data = this;
  }
  uv_signal_start(&sigterm_, onSignal, SIGTERM);
  uv_signal_start(&sigint_, onSignal, SIGINT);
  uv_signal_start(&sighup_, onSignal, SIGHUP);
  uv_timer_init(&loop_, &poll_);
  poll_.data = this;
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
  log::info("smtpgate {} ready: {} worker(s)", SMTPGATE_VERSION, workers_.size());
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) {
    w->join();
  }
  log::info("smtpgate stopped");
  return 0;
}

void Server::onSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGHUP) {
    self->reload();
    return;
  }
  self->stop(self->stopping_);
}

void Server::reload() {
  if (stopping_) {
    return;
  }
  log::info("SIGHUP: reloading configuration");
  auto fresh = reloader_ ? reloader_() : nullptr;
  if (!fresh) {
    log::error("reload refused: the running configuration stays in force");
    return;
  }
  const auto& before = runtime_.get()->config;
  bool listenersChanged = fresh->config.listeners.size() != before.listeners.size();
  for (std::size_t i = 0; !listenersChanged && i < before.listeners.size(); ++i) {
    listenersChanged = fresh->config.listeners[i].listen.str() != before.listeners[i].listen.str();
  }
  if (listenersChanged) {
    log::warning("reload: listener addresses changed; they take effect at the next restart");
  }
  runtime_.set(std::move(fresh));
  log::info("reload done: new sessions use the new configuration");
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
                  reinterpret_cast<uv_handle_t*>(&self->poll_)}) {
    uv_close(h, nullptr);
  }
}

}  // namespace smtpgate
