#include "tests/bench/loadgen/load_driver.h"

#include <cmath>
#include <cstdio>

#include "tests/bench/loadgen/message_body.h"

namespace smtpgate::loadgen {

LoadDriver::LoadDriver(const Options& options, std::shared_ptr<tls::TlsContext> tls,
                       const sockaddr_storage& address, std::vector<sockaddr_storage> sources,
                       std::string authCommand)
    : options_(options), readBuffer_(64 * 1024) {
  if (options.messages > 0 && options.idle == 0 && !options.handshakeOnly) {
    messageWire_ = makeMessageWire(options.size, options.from, options.to);
  }
  config_.loop = &loop_;
  config_.options = &options_;
  config_.tls = std::move(tls);
  config_.messageWire = &messageWire_;
  config_.address = address;
  config_.sources = std::move(sources);
  config_.authCommand = std::move(authCommand);
  config_.stats = &stats_;
  config_.readBuffer = readBuffer_.data();
  config_.readBufferSize = readBuffer_.size();
  total_ = options.idle > 0 ? options.idle : options.sessions;
  deadline_.data = this;
  hold_.data = this;
}

LoadDriver::~LoadDriver() = default;

bool LoadDriver::run(std::string& error) {
  int rc = uv_loop_init(&loop_);
  if (rc != 0) {
    error = std::string("uv_loop_init: ") + uv_strerror(rc);
    return false;
  }
  uv_timer_init(&loop_, &deadline_);
  uv_timer_init(&loop_, &hold_);
  startNs_ = uv_hrtime();
  endNs_ = startNs_;
  uv_timer_start(&deadline_, onDeadline,
                 static_cast<uint64_t>(std::ceil(options_.durationLimit * 1000.0)), 0);
  startMore();
  maybeFinish();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  return true;
}

void LoadDriver::startMore() {
  while (!stopping_ && started_ < total_ &&
         static_cast<int64_t>(live_.size() - held_.size()) < options_.concurrency) {
    auto* session = new ClientSession(config_, *this);
    live_.insert(session);
    session->start(started_++);
  }
}

void LoadDriver::onSessionHeld(ClientSession* session) {
  held_.insert(session);
  startMore();
  maybeStartHold();
}

void LoadDriver::onSessionClosed(ClientSession* session) {
  live_.erase(session);
  held_.erase(session);
  delete session;
  startMore();
  maybeStartHold();
  maybeFinish();
}

void LoadDriver::maybeStartHold() {
  // The hold starts once every idle session is either established or gone.
  if (options_.idle == 0 || holding_ || stopping_ || started_ < total_ ||
      live_.size() != held_.size() || held_.empty() || holdDone_ || finishing_) {
    return;
  }
  holding_ = true;
  std::fprintf(stderr, "smtpgate-loadgen: holding %zu idle sessions for %g s\n", held_.size(),
               options_.idleSeconds);
  std::fflush(stderr);
  uv_timer_start(&hold_, onHoldOver,
                 static_cast<uint64_t>(std::llround(options_.idleSeconds * 1000.0)), 0);
}

void LoadDriver::onHoldOver(uv_timer_t* timer) { static_cast<LoadDriver*>(timer->data)->endHold(); }

void LoadDriver::endHold() {
  holding_ = false;
  holdDone_ = true;
  stats_.idleHeld = static_cast<int64_t>(held_.size());
  std::vector<ClientSession*> sessions(held_.begin(), held_.end());
  held_.clear();
  for (ClientSession* session : sessions) {
    session->quit();
  }
  maybeFinish();
}

void LoadDriver::onDeadline(uv_timer_t* timer) {
  auto* self = static_cast<LoadDriver*>(timer->data);
  if (self->finishing_) {
    return;
  }
  self->stopping_ = true;
  self->stats_.durationLimitHit = true;
  if (self->holding_) {
    uv_timer_stop(&self->hold_);
    self->holding_ = false;
    self->stats_.idleHeld = static_cast<int64_t>(self->held_.size());
  }
  std::vector<ClientSession*> sessions(self->live_.begin(), self->live_.end());
  for (ClientSession* session : sessions) {
    session->abort(ErrorKind::Aborted, "still running at the duration limit");
  }
  self->maybeFinish();
}

void LoadDriver::maybeFinish() {
  if (finishing_ || !live_.empty() || holding_ || (!stopping_ && started_ < total_)) {
    return;
  }
  finishing_ = true;
  endNs_ = uv_hrtime();
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), onTimerClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&hold_), onTimerClosed);
}

void LoadDriver::onTimerClosed(uv_handle_t*) {}

}  // namespace smtpgate::loadgen
