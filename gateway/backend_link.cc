#include "gateway/backend_link.h"

#include "gateway/log.h"
#include "gateway/stream_write.h"

namespace smtpgate {
namespace {

constexpr unsigned kQuitTimeoutS = 5;

}  // namespace

BackendLink* BackendLink::open(uv_loop_t* loop, Owner* owner, Settings settings) {
  auto* link = new BackendLink(loop, owner, std::move(settings));
  sockaddr_storage addr{};
  bool v6 = link->settings_.host.find(':') != std::string::npos;
  int rc = v6 ? uv_ip6_addr(link->settings_.host.c_str(), link->settings_.port,
                            reinterpret_cast<sockaddr_in6*>(&addr))
              : uv_ip4_addr(link->settings_.host.c_str(), link->settings_.port,
                            reinterpret_cast<sockaddr_in*>(&addr));
  if (rc == 0) {
    rc = uv_tcp_connect(&link->connectReq_, &link->tcp_, reinterpret_cast<sockaddr*>(&addr),
                        onConnect);
  }
  if (rc != 0) {
    // Report asynchronously like every other outcome: the owner may not be ready for a
    // callback inside its own call.
    link->connected_ = false;
    link->armTimer(0);
    uv_timer_start(
        &link->timer_,
        [](uv_timer_t* t) {
          static_cast<BackendLink*>(t->data)->fail(Metrics::BackendError::Connect,
                                                   "cannot connect: bad backend address");
        },
        0, 0);
    return link;
  }
  link->armTimer(link->settings_.connectTimeoutS);
  return link;
}

BackendLink::BackendLink(uv_loop_t* loop, Owner* owner, Settings settings)
    : loop_(loop), owner_(owner), settings_(std::move(settings)), session_(settings_.options) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  readBuffer_.resize(64 * 1024);
}

void BackendLink::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<BackendLink*>(req->handle->data);
  if (status == UV_ECANCELED || self->closing_) {
    return;
  }
  if (status < 0) {
    self->fail(Metrics::BackendError::Connect,
               fmt::format("cannot connect to {}:{}: {}", self->settings_.host,
                           self->settings_.port, uv_strerror(status)));
    return;
  }
  self->connected_ = true;
  uv_tcp_nodelay(&self->tcp_, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), onAlloc, onRead);
  self->armTimer(self->settings_.replyTimeoutS);  // the greeting
  self->writeRaw(self->session_.start());
}

void BackendLink::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<BackendLink*>(handle->data);
  *buf = uv_buf_init(self->readBuffer_.data(), static_cast<unsigned>(self->readBuffer_.size()));
}

void BackendLink::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<BackendLink*>(stream->data);
  if (self->closing_) {
    return;
  }
  if (nread < 0) {
    self->fail(Metrics::BackendError::Closed,
               nread == UV_EOF
                   ? "backend closed the connection"
                   : fmt::format("backend read error: {}", uv_strerror(static_cast<int>(nread))));
    return;
  }
  std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
  if (!self->tls_) {
    self->handle(self->session_.onBytes(bytes));
    return;
  }
  self->tls_->feedCiphertext(bytes);
  if (!self->tls_->handshakeComplete()) {
    auto status = self->tls_->handshake();
    self->writeRaw(self->tls_->takeCiphertext());
    if (status == tls::TlsEngine::Status::Error) {
      self->fail(Metrics::BackendError::Tls,
                 "TLS handshake with the backend failed: " + self->tls_->lastError());
      return;
    }
    if (status != tls::TlsEngine::Status::Complete) {
      return;
    }
    self->handle(self->session_.onTlsEstablished());
    if (self->closing_) {
      return;
    }
  }
  std::string plain;
  auto status = self->tls_->readPlaintext(plain);
  if (!plain.empty()) {
    self->handle(self->session_.onBytes(plain));
  }
  if (!self->closing_ && (status == tls::TlsEngine::Status::Closed ||
                          status == tls::TlsEngine::Status::Error)) {
    self->fail(status == tls::TlsEngine::Status::Closed ? Metrics::BackendError::Closed
                                                        : Metrics::BackendError::Tls,
               "backend TLS closed: " + self->tls_->lastError());
  }
}

void BackendLink::handle(smtp::BackendSession::Result result) {
  if (!result.toSend.empty()) {
    writeBytes(std::move(result.toSend));
  }
  switch (result.event) {
    case smtp::BackendSession::Event::StartTls: {
      tls_ = std::make_unique<tls::TlsEngine>(settings_.tlsContext, settings_.host);
      tls_->handshake();
      writeRaw(tls_->takeCiphertext());
      return;
    }
    case smtp::BackendSession::Event::Failed:
      fail(Metrics::BackendError::Protocol,
           result.reply ? result.reason + ": " + result.reply->firstLine() : result.reason);
      return;
    case smtp::BackendSession::Event::Ready:
      ready_ = true;
      armTimer(0);
      if (owner_) {
        owner_->onBackendReady(true, "", session_.capabilities());
      }
      break;
    case smtp::BackendSession::Event::None:
      break;
  }
  for (const auto& reply : result.replies) {
    if (closing_) {
      return;
    }
    if (awaited_ > 0) {
      --awaited_;
    }
    if (quitting_) {
      closeHandles();  // the reply to QUIT
      return;
    }
    armTimer(awaited_ > 0 ? settings_.replyTimeoutS : 0);
    if (owner_) {
      owner_->onBackendReply(reply);
    }
  }
}

void BackendLink::send(std::string bytes) {
  if (closing_ || !ready_) {
    return;
  }
  writeBytes(std::move(bytes));
}

void BackendLink::expectReply() {
  ++awaited_;
  armTimer(settings_.replyTimeoutS);
}

void BackendLink::writeBytes(std::string bytes) {
  if (tls_ && tls_->handshakeComplete()) {
    tls_->writePlaintext(bytes);
    writeRaw(tls_->takeCiphertext());
  } else {
    writeRaw(std::move(bytes));  // a message chunk is handed on, not copied
  }
}

void BackendLink::writeRaw(std::string bytes) {
  if (closing_ || bytes.empty()) {
    return;
  }
  std::size_t queued = 0;
  int rc = writeOwned(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(bytes),
                      [this](int status, std::size_t written) { onWritten(status, written); },
                      queued);
  if (rc != 0) {
    fail(Metrics::BackendError::Closed, fmt::format("backend write failed: {}", uv_strerror(rc)));
    return;
  }
  queuedBytes_ += queued;  // onWritten() takes it off again
}

void BackendLink::onWritten(int status, std::size_t size) {
  bool wasHigh = queuedBytes_ > kHighMark / 2;
  queuedBytes_ -= size;
  if (closing_) {
    return;
  }
  if (status < 0) {
    fail(Metrics::BackendError::Closed,
         fmt::format("backend write error: {}", uv_strerror(status)));
    return;
  }
  if (wasHigh && queuedBytes_ <= kHighMark / 2 && owner_) {
    owner_->onBackendWritable();
  }
}

void BackendLink::armTimer(unsigned seconds) {
  if (!closing_) {
    armTimeout(&timer_, seconds, onTimer);
  }
}

void BackendLink::onTimer(uv_timer_t* timer) {
  auto* self = static_cast<BackendLink*>(timer->data);
  if (self->closing_) {
    return;
  }
  if (self->quitting_) {
    self->closeHandles();
  } else if (!self->connected_) {
    // Unreachable (SYN unanswered) rather than slow: counted with the other connect failures.
    self->fail(Metrics::BackendError::Connect,
               fmt::format("cannot connect to {}:{}: timeout", self->settings_.host,
                           self->settings_.port));
  } else {
    self->fail(Metrics::BackendError::Timeout, "backend did not answer in time");
  }
}

void BackendLink::fail(Metrics::BackendError kind, const std::string& reason) {
  if (closing_) {
    return;
  }
  if (settings_.metrics && !quitting_) {
    // A link already saying QUIT has served its session: how it ends is no error.
    settings_.metrics->backendError(kind);
  }
  Owner* owner = owner_;
  owner_ = nullptr;
  bool wasReady = ready_;
  closeHandles();
  if (!owner) {
    return;
  }
  if (wasReady) {
    owner->onBackendLost(reason);
  } else {
    owner->onBackendReady(false, reason, session_.capabilities());
  }
}

void BackendLink::quit() {
  owner_ = nullptr;
  if (closing_) {
    return;
  }
  if (!ready_ || awaited_ > 0) {
    closeHandles();  // mid-command: nothing polite left to say
    return;
  }
  quitting_ = true;
  writeBytes("QUIT\r\n");
  armTimer(kQuitTimeoutS);
}

void BackendLink::abort() {
  owner_ = nullptr;
  closeHandles();
}

void BackendLink::closeHandles() {
  if (closing_) {
    return;
  }
  closing_ = true;
  owner_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onClose);
}

void BackendLink::onClose(uv_handle_t* handle) {
  auto* self = static_cast<BackendLink*>(handle->data);
  if (--self->openHandles_ == 0) {
    delete self;
  }
}

}  // namespace smtpgate
