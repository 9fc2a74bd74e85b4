#include "gateway/client_connection.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>

#include "gateway/log.h"
#include "gateway/received_header.h"
#include "gateway/stream_write.h"
#include "gateway/trace_store.h"
#include "gateway/worker.h"
#include "policy/tls_version.h"

namespace smtpgate {
namespace {

// Above this many bytes queued toward a client that does not read, stop reading from it
// (backpressure, house rule 5); resume when the queue drains below half. Pipelined commands
// cannot make us queue replies without bound: at most this plus the replies to one read.
constexpr std::size_t kWriteHighMark = 256 * 1024;
// Bytes libuv still holds for the socket (the kernel's buffer is full) above which the write
// deadline (timeouts_s.write) runs: a client that reads nothing is closed when it expires.
constexpr std::size_t kWriteStallMark = 64 * 1024;
constexpr uint64_t kWatchdogMs = 1000;
// Input a session may buffer while it waits for an AUTH or delivery result.
constexpr std::size_t kInputHighMark = 64 * 1024;
// Pieces for the backend are gathered into one write up to about this size; larger ones go
// as they are (a TLS record holds 16 KiB; a copy of more costs more than the write it saves).
constexpr std::size_t kCoalesceBytes = 16 * 1024;
// Time a closing connection gets to flush its last reply.
constexpr unsigned kLingerS = 10;

uint64_t nowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Production randomness for the speedbump draw: BoringSSL's CSPRNG, a fresh draw each time.
class CsprngRandom : public policy::Random {
 public:
  uint32_t next() override {
    uint32_t value = 0;
    RAND_bytes(reinterpret_cast<uint8_t*>(&value), sizeof value);
    return value;
  }
};

int64_t nowSeconds() { return static_cast<int64_t>(std::time(nullptr)); }

int64_t nowMillis() { return static_cast<int64_t>(nowMicros() / 1000); }

// The last line of a batch of replies, without its CRLF.
std::string lastLine(std::string_view bytes) {
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) {
    bytes.remove_suffix(1);
  }
  std::size_t nl = bytes.rfind('\n');
  return std::string(nl == std::string_view::npos ? bytes : bytes.substr(nl + 1));
}

smtp::SessionSettings settingsFor(const Runtime& runtime, const ListenerConfig& listener,
                                  CapabilityCache& backendCapabilities) {
  const Config& c = runtime.config;
  smtp::SessionSettings s;
  s.hostname = c.hostname;
  s.implicitTls = listener.tls == TlsMode::Implicit;
  s.requireTls = listener.requireTls;
  s.authAvailable = runtime.users != nullptr && runtime.users->size() > 0;
  s.maxMessageBytes = c.smtp.maxMessageBytes;
  s.maxRecipients = c.smtp.maxRecipients;
  s.maxErrors = c.limits.maxErrors;
  s.bareLf = c.smtp.bareLfReject ? smtp::BareLfPolicy::Reject : smtp::BareLfPolicy::Normalize;
  s.commandTimeoutS = c.limits.timeouts.command;
  s.dataTimeoutS = c.limits.timeouts.dataBlock;
  s.errorDelayMs = c.limits.errorDelayMs;
  s.relay = c.relay;
  if (s.relay) {
    s.relayCapabilities = backendCapabilities.get(c.smtp.maxMessageBytes);
  }
  return s;
}

smtp::Handoff handoffOf(Handoff h) {
  switch (h) {
    case Handoff::Xclient:
      return smtp::Handoff::Xclient;
    case Handoff::ProxyV1:
      return smtp::Handoff::ProxyV1;
    case Handoff::ProxyV2:
      return smtp::Handoff::ProxyV2;
    case Handoff::None:
      break;
  }
  return smtp::Handoff::None;
}

}  // namespace

struct ClientConnection::WorkRequest {
  uv_work_t req;
  ClientConnection* owner;
  std::function<void()> work;
  std::function<void()> done;
};

ClientConnection::ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime,
                                   const ListenerConfig& listener, std::string sessionId)
    : worker_(worker),
      runtime_(std::move(runtime)),
      listener_(listener),
      endpoint_(listener.endpoint == EndpointKind::BySni ? runtime_->config.defaultEndpoint
                                                         : listener.endpoint),
      sessionId_(std::move(sessionId)),
      session_(settingsFor(*runtime_, listener, worker.backendCapabilities())) {
  session_.setPolicy(this);
  session_.setStartTlsGate([this] { return admitHandshake(); });
  session_.setReceivedHeader([this](const smtp::Message& message) {
    return receivedHeader(message, facts(), runtime_->config.hostname, sessionId_,
                          std::time(nullptr));
  });
  uv_tcp_init(worker_.loop(), &tcp_);
  tcp_.data = this;
  uv_timer_init(worker_.loop(), &timer_);
  timer_.data = this;
  uv_timer_init(worker_.loop(), &watchdog_);
  watchdog_.data = this;
  uv_timer_init(worker_.loop(), &tarpitTimer_);
  tarpitTimer_.data = this;
  openHandles_ = 4;
}

ClientConnection::~ClientConnection() {
  if (admitted_) {
    worker_.admission().release(clientIp_);
  }
}

void ClientConnection::abort() { closeHandles(); }

void ClientConnection::start(const std::string& clientIp, unsigned clientPort) {
  clientIp_ = clientIp;
  clientPort_ = clientPort;
  admitted_ = true;
  startedMs_ = uv_now(worker_.loop());
  startedWallMs_ = nowMillis();
  uv_tcp_nodelay(&tcp_, 1);
  log::info("{} connect from [{}]:{} listener={} endpoint={}", sessionId_, clientIp_, clientPort_,
            listener_.name, endpointName(listener_.endpoint));
  if (listener_.tls == TlsMode::Implicit && !admitHandshake()) {
    closeHandles();  // no TLS yet, so no way to say why: just close
    return;
  }
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), onAlloc, onRead);
  if (listener_.tls == TlsMode::Implicit) {
    beginHandshake();
  } else {
    perform(session_.start());
  }
}

void ClientConnection::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ClientConnection*>(handle->data);
  // One buffer per worker: every read is consumed before the callback returns.
  std::string& buffer = self->worker_.readBuffer();
  *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

void ClientConnection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientConnection*>(stream->data);
  if (self->closing_) {
    return;
  }
  if (nread < 0) {
    if (nread != UV_EOF) {
      log::info("{} read error: {}", self->sessionId_, uv_strerror(static_cast<int>(nread)));
    }
    self->closeHandles();
    return;
  }
  if (nread == 0) {
    return;
  }
  std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
  if (self->phase_ == Phase::Closing) {
    return;  // a closing session answers nothing more
  }
  if (self->phase_ == Phase::ProxyHeader) {
    self->onProxyBytes(bytes);
  } else if (self->phase_ == Phase::Plain) {
    self->onPlaintext(bytes);
  } else {
    self->onCiphertext(bytes);
  }
}

void ClientConnection::onCiphertext(std::string_view bytes) {
  if (phase_ == Phase::Handshaking) {
    tls_->feedCiphertext(bytes);
    bytes = {};  // in the engine now
    auto status = tls_->handshake();
    flushTls();
    if (closing_) {
      return;  // the write failed at once: closeHandles() has counted and closed everything
    }
    if (status == tls::TlsEngine::Status::Error) {
      log::info("{} TLS handshake failed from [{}]:{}: {} (client offered up to {})", sessionId_,
                clientIp_, clientPort_, tls_->lastError(),
                tls::versionName(tls_->facts().maxOfferedVersion));
      countHandshake(tls_->facts().versionRefusedByHook ? Metrics::HandshakeOutcome::RefusedVersion
                                                        : Metrics::HandshakeOutcome::Failed);
      if (tls_->facts().versionRefusedByHook) {
        policy::Decision d;
        d.outcome = policy::Outcome::RefuseHandshake;
        d.rule = policy::Rule::D1;
        d.reply = "protocol_version alert";
        logDecision(d, "handshake");
      }
      phase_ = Phase::Closing;
      closeGracefully();
      return;
    }
    if (status != tls::TlsEngine::Status::Complete) {
      return;
    }
    handshakeDone();
    if (closing_ || phase_ != Phase::Tls) {
      return;
    }
  }
  // One buffer per worker, like the read buffer: consumed before this callback returns.
  std::string& plaintext = worker_.plaintextBuffer();
  plaintext.clear();
  auto status = tls_->readPlaintext(bytes, plaintext);
  if (!plaintext.empty()) {
    onPlaintext(plaintext);
  }
  if (closing_ || phase_ == Phase::Closing) {
    return;
  }
  if (status == tls::TlsEngine::Status::Closed) {
    log::info("{} client sent close_notify", sessionId_);
    phase_ = Phase::Closing;
    closeGracefully();
  } else if (status == tls::TlsEngine::Status::Error) {
    log::info("{} TLS error: {}", sessionId_, tls_->lastError());
    flushTls();
    closeHandles();
  }
}

void ClientConnection::onPlaintext(std::string_view bytes) {
  if (dataWatched_) {
    windowBytes_ += bytes.size();
  }
  const uint64_t before = session_.progress();
  smtp::Actions actions = session_.onBytes(bytes);
  // The inactivity deadline is per complete line (or DATA bytes taken), not per read: bytes
  // of a line trickled in one at a time do not move it.
  if (session_.progress() != before && timeoutS_ > 0 && !tarpitArmed_ &&
      (phase_ == Phase::Plain || phase_ == Phase::Tls)) {
    armTimer(timeoutS_);
  }
  perform(std::move(actions));
}

void ClientConnection::beginHandshake() {
  tls_ = std::make_unique<tls::TlsEngine>(runtime_->contextFor(endpoint_));
  tls_->setClientHelloHook(
      [this](const tls::HandshakeFacts& early) { return onClientHello(early); });
  phase_ = Phase::Handshaking;
  armTimer(runtime_->config.limits.timeouts.handshake);
}

void ClientConnection::handshakeDone() {
  phase_ = Phase::Tls;
  const auto& f = tls_->facts();
  endpoint_ = runtime_->resolveEndpoint(listener_, f.sni);
  log::info("{} TLS established: {} {} ({} bits) sni={} offered-max={} cert={} endpoint={}",
            sessionId_, tls::versionName(f.version), f.cipher, f.cipherBits,
            f.sni.empty() ? "-" : log::sanitize(f.sni), tls::versionName(f.maxOfferedVersion),
            f.certificateKeyType, endpointName(endpoint_));
  countHandshake(Metrics::HandshakeOutcome::Ok);
  perform(session_.onTlsEstablished());
  if (closing_ || phase_ != Phase::Tls) {
    return;
  }
  // D2/D3: decided now (one draw per connection), answered at the first command.
  policy::Decision d = decide(policy::Checkpoint::FirstCommand, sessionView(""), "");
  logDecision(d, "tls");
  if (d.outcome == policy::Outcome::RejectAndClose) {
    session_.rejectNextCommand(d.reply);
  }
  if (listener_.tls == TlsMode::Implicit) {
    perform(session_.start());
  }
}

void ClientConnection::countHandshake(Metrics::HandshakeOutcome outcome) {
  const auto& f = tls_->facts();
  // Done: the negotiated version; otherwise the highest one the client offered.
  uint16_t version = outcome == Metrics::HandshakeOutcome::Ok ? f.version : f.maxOfferedVersion;
  worker_.metrics().handshake(
      endpoint_ == EndpointKind::Legacy ? Metrics::Endpoint::Legacy : Metrics::Endpoint::Strict,
      Metrics::versionFromLabel(tls::versionLabel(version)), outcome);
}

void ClientConnection::perform(smtp::Actions actions) {
  for (auto& action : actions) {
    if (closing_) {
      return;
    }
    if (auto* write = std::get_if<smtp::Write>(&action)) {
      sendReply(write->bytes);
    } else if (std::holds_alternative<smtp::StartTls>(action)) {
      writeReplies();  // the 220 goes out in plaintext, before anything of the handshake
      beginHandshake();
    } else if (std::holds_alternative<smtp::Close>(action)) {
      phase_ = Phase::Closing;
      closeGracefully();
    } else if (auto* auth = std::get_if<smtp::Authenticate>(&action)) {
      authenticate(std::move(*auth));
    } else if (auto* del = std::get_if<smtp::Deliver>(&action)) {
      deliver(std::move(*del));
    } else if (std::holds_alternative<smtp::OpenBackend>(action)) {
      openBackend();
    } else if (auto* command = std::get_if<smtp::BackendCommand>(&action)) {
      if (command->line == "DATA\r\n") {
        relayedBytes_ = 0;
      }
      sendToBackend(std::move(command->line), true);
    } else if (auto* data = std::get_if<smtp::BackendData>(&action)) {
      relayedBytes_ += data->bytes.size();
      sendToBackend(std::move(data->bytes), false);
    } else if (std::holds_alternative<smtp::BackendEndData>(action)) {
      sendToBackend(".\r\n", true, Awaited::EndOfData);
    } else if (std::holds_alternative<smtp::AbortBackend>(action)) {
      dropBackend(false);
    } else if (auto* timeout = std::get_if<smtp::SetTimeout>(&action)) {
      timeoutS_ = timeout->seconds;
      if (phase_ != Phase::Handshaking && !tarpitArmed_) {
        armTimer(timeoutS_);
      }
    }
  }
  if (closing_) {
    return;
  }
  watchTarpit();
  watchData();
  updateReading();
}

void ClientConnection::sendReply(std::string_view bytes) {
  lastReply_ = lastLine(bytes);
  pendingReplies_.append(bytes);
  queueFlush();
}

void ClientConnection::queueFlush() {
  if (!flushQueued_ && !closing_) {
    flushQueued_ = true;
    worker_.deferFlush(this);
  }
}

void ClientConnection::flushOutput() {
  flushQueued_ = false;
  if (closing_) {
    return;
  }
  if (backend_ && !pendingBackend_.empty()) {
    backend_->send(std::exchange(pendingBackend_, std::string()));
  }
  writeReplies();
  flushTls();
  // The queues grew only now: backpressure and the write deadline look at them again.
  updateReading();
}

void ClientConnection::writeReplies() {
  // Taken first: a failed write closes the connection, which flushes again.
  std::string replies = std::exchange(pendingReplies_, std::string());
  if (replies.empty() || closing_) {
    return;
  }
  if (tls_ && phase_ != Phase::Handshaking && tls_->handshakeComplete()) {
    // The ciphertext waits in the engine for flushTls(): with a close_notify after it, one
    // write carries both.
    tls_->writePlaintext(replies);
    return;
  }
  writeRaw(std::move(replies));
}

void ClientConnection::flushTls() {
  if (tls_ && tls_->hasCiphertext()) {
    writeRaw(tls_->takeCiphertext());
  }
}

void ClientConnection::writeRaw(std::string bytes) {
  if (closing_ || bytes.empty()) {
    return;
  }
  std::size_t queued = 0;
  int rc = writeOwned(reinterpret_cast<uv_stream_t*>(&tcp_), std::move(bytes),
                      [this](int status, std::size_t written) { onWritten(status, written); },
                      queued);
  if (rc != 0) {
    log::info("{} write failed: {}", sessionId_, uv_strerror(rc));
    closeHandles();
    return;
  }
  writeQueueBytes_ += queued;  // onWritten() takes it off again
  watchWrites();
}

void ClientConnection::onWritten(int status, std::size_t size) {
  writeQueueBytes_ -= size;
  if (closing_) {
    return;
  }
  if (status < 0) {
    log::info("{} write error: {}", sessionId_, uv_strerror(status));
    closeHandles();
    return;
  }
  updateReading();
}

void ClientConnection::updateReading() {
  if (closing_ || phase_ == Phase::Closing) {
    return;
  }
  bool overWrite = writeQueueBytes_ > kWriteHighMark ||
                   (backend_ && backend_->queuedBytes() > BackendLink::kHighMark);
  bool overInput = session_.waiting() && session_.bufferedBytes() > kInputHighMark;
  bool shouldRead = !overWrite && !overInput && !tarpitArmed_;
  if (!shouldRead && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
    // Not reading while replies wait to go out: the write deadline runs from now, whatever the
    // size of the queue (the rest may sit in the kernel's buffers, out of our sight).
    if (!tarpitArmed_ && writeQueueBytes_ > 0 && writeStallSinceMs_ == 0) {
      writeStallSinceMs_ = uv_now(worker_.loop());
      stallQueued_ = writeQueueBytes_;
      updateWatchdog();
    }
  } else if (shouldRead && !reading_ && writeQueueBytes_ <= kWriteHighMark / 2 &&
             (!backend_ || backend_->queuedBytes() <= BackendLink::kHighMark / 2)) {
    reading_ = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), onAlloc, onRead);
  }
}

bool ClientConnection::admitHandshake() {
  if (worker_.admission().admitHandshake(clientIp_,
                                         runtime_->config.limits.newTlsHandshakesPerIpPerMinute,
                                         uv_now(worker_.loop()))) {
    return true;
  }
  log::warning("{} refused TLS from [{}]:{}: too many TLS handshakes from this address per minute",
               sessionId_, clientIp_, clientPort_);
  return false;
}

void ClientConnection::watchTarpit() {
  unsigned ms = session_.tarpitMs();
  if (ms == 0 || tarpitArmed_ || phase_ == Phase::Closing) {
    return;
  }
  tarpitArmed_ = true;
  uv_timer_stop(&timer_);  // the client waits for us now, not we for it
  uv_timer_start(&tarpitTimer_, onTarpit, ms, 0);
}

void ClientConnection::onTarpit(uv_timer_t* timer) {
  auto* self = static_cast<ClientConnection*>(timer->data);
  if (self->closing_) {
    return;
  }
  self->tarpitArmed_ = false;
  if (self->phase_ == Phase::Closing) {
    return;
  }
  if (self->timeoutS_ > 0 && self->phase_ != Phase::Handshaking) {
    self->armTimer(self->timeoutS_);
  }
  self->perform(self->session_.resume());
}

void ClientConnection::watchData() {
  bool inData = session_.inData() && phase_ != Phase::Closing;
  if (inData == dataWatched_) {
    return;
  }
  dataWatched_ = inData;
  if (inData) {
    dataStartMs_ = windowStartMs_ = uv_now(worker_.loop());
    windowBytes_ = 0;
  }
  updateWatchdog();
}

void ClientConnection::watchWrites() {
  if (closing_) {
    return;
  }
  std::size_t queued = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_));
  if (queued > kWriteStallMark && writeStallSinceMs_ == 0) {
    writeStallSinceMs_ = uv_now(worker_.loop());
    stallQueued_ = queued;
    updateWatchdog();
  } else if (writeStallSinceMs_ != 0) {
    stallQueued_ = std::max(stallQueued_, queued);
  }
}

void ClientConnection::updateWatchdog() {
  bool wanted = dataWatched_ || writeStallSinceMs_ != 0;
  if (closing_ || wanted == watchdogRunning_) {
    return;
  }
  watchdogRunning_ = wanted;
  if (wanted) {
    uv_timer_start(&watchdog_, onWatchdog, kWatchdogMs, kWatchdogMs);
  } else {
    uv_timer_stop(&watchdog_);
  }
}

void ClientConnection::onWatchdog(uv_timer_t* timer) {
  auto* self = static_cast<ClientConnection*>(timer->data);
  if (self->closing_) {
    return;
  }
  const auto& limits = self->runtime_->config.limits;
  const uint64_t now = uv_now(self->worker_.loop());
  if (self->writeStallSinceMs_ != 0) {
    std::size_t queued =
        uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&self->tcp_));
    if (queued == 0 && self->writeQueueBytes_ == 0) {
      self->writeStallSinceMs_ = 0;  // every write completed: the client reads
      self->stallQueued_ = 0;
    } else if (queued < self->stallQueued_) {
      // Progress (the client read something): the deadline starts again. Below the mark the
      // stall is not forgotten: while we stop reading, a queue that sits between the marks
      // must still run out of time.
      self->writeStallSinceMs_ = now;
      self->stallQueued_ = queued;
    } else if (now - self->writeStallSinceMs_ >= uint64_t{limits.timeouts.write} * 1000) {
      log::info("{} write timeout: {} bytes unread by [{}]:{} for {} s", self->sessionId_,
                queued, self->clientIp_, self->clientPort_, limits.timeouts.write);
      self->closeHandles();  // it reads nothing: a last reply would never arrive
      return;
    }
  }
  if (self->dataWatched_ && self->phase_ != Phase::Closing) {
    const char* why = nullptr;
    const uint64_t elapsed = now - self->windowStartMs_;
    const uint64_t bytes = self->windowBytes_;
    if (now - self->dataStartMs_ >= uint64_t{limits.timeouts.dataTotal} * 1000) {
      why = "DATA longer than timeouts_s.data_total";
    } else if (!self->reading_) {
      // We stopped reading (backpressure): the pace is ours, not the client's.
      self->windowStartMs_ = now;
      self->windowBytes_ = 0;
    } else if (limits.minDataRateBps > 0 &&
               elapsed >= uint64_t{limits.timeouts.dataRateWindow} * 1000) {
      if (self->windowBytes_ * 1000 < uint64_t{limits.minDataRateBps} * elapsed) {
        why = "DATA slower than min_data_rate_bps";
      }
      self->windowStartMs_ = now;
      self->windowBytes_ = 0;
    }
    if (why) {
      log::info("{} {}: {} bytes in the last {} ms from [{}]:{}", self->sessionId_, why, bytes,
                elapsed, self->clientIp_, self->clientPort_);
      self->perform(self->session_.onDataTooSlow());
      return;
    }
  }
  self->updateWatchdog();
}

void ClientConnection::authenticate(smtp::Authenticate request) {
  auto users = runtime_->users;
  auto result = std::make_shared<bool>(false);
  std::string user = request.user;
  auto shared = std::make_shared<smtp::Authenticate>(std::move(request));
  queueWork(
      [users, shared, result] {
        // An authorization identity other than the user itself (acting for someone else)
        // is not something the users file can grant.
        bool sameIdentity = shared->authzid.empty() || shared->authzid == shared->user;
        *result = users && sameIdentity && users->verify(shared->user, shared->password);
        // Credentials leave memory as soon as they are checked.
        std::fill(shared->password.begin(), shared->password.end(), '\0');
      },
      [this, result, user] {
        log::info("{} AUTH {} for {}", sessionId_, *result ? "ok" : "failed", log::sanitize(user));
        perform(session_.onAuthResult(*result));
      });
}

void ClientConnection::deliver(smtp::Deliver request) {
  SessionFacts sessionFacts = facts();
  uint64_t random = 0;
  RAND_bytes(reinterpret_cast<uint8_t*>(&random), sizeof random);
  std::string id = Spool::makeId(nowMicros(), random);
  auto message = std::make_shared<smtp::Message>(std::move(request.message));
  auto content = std::make_shared<std::string>();
  if (runtime_->config.smtp.receivedHeader) {
    *content = receivedHeader(*message, sessionFacts, runtime_->config.hostname, id,
                              std::time(nullptr));
  }
  content->append(message->content);
  message->content.clear();
  message->content.shrink_to_fit();
  auto outcome = std::make_shared<std::pair<bool, std::string>>(false, "");
  auto spool = runtime_->spool;
  auto storedId = std::make_shared<std::string>(id);
  queueWork(
      [spool, message, content, sessionFacts, storedId, outcome] {
        std::string error;
        outcome->first = spool->store(*message, *content, sessionFacts, *storedId, error);
        outcome->second = error;
      },
      [this, message, content, storedId, outcome] {
        smtp::SmtpSession::DeliveryResult result;
        if (outcome->first) {
          ++messages_;
          result.ok = true;
          result.queueId = *storedId;
          traceMessage(message->envelope, content->size(),
                       "250 2.0.0 Ok: queued as " + *storedId, *storedId);
          log::info("{} queued {} from=<{}> rcpts={} size={}", sessionId_, *storedId,
                    log::sanitize(message->envelope.mailFrom), message->envelope.rcptTo.size(),
                    content->size());
        } else {
          log::error("{} spool write failed: {}", sessionId_, outcome->second);
          result.reply = "451 4.3.0 Error: queue file write error\r\n";
        }
        perform(session_.onDeliveryResult(result));
      });
}

void ClientConnection::queueWork(std::function<void()> work, std::function<void()> done) {
  auto* req = new WorkRequest{};
  req->owner = this;
  req->work = std::move(work);
  req->done = std::move(done);
  req->req.data = req;
  ++pendingWork_;
  int rc = uv_queue_work(worker_.loop(), &req->req, onWork, onAfterWork);
  if (rc != 0) {
    // The thread pool refused: do the work here rather than lose the result.
    req->work();
    --pendingWork_;
    auto done2 = std::move(req->done);
    delete req;
    done2();
  }
}

void ClientConnection::onWork(uv_work_t* raw) {
  static_cast<WorkRequest*>(raw->data)->work();
}

void ClientConnection::onAfterWork(uv_work_t* raw, int) {
  auto* req = static_cast<WorkRequest*>(raw->data);
  ClientConnection* self = req->owner;
  --self->pendingWork_;
  if (!self->closing_) {
    req->done();
  }
  delete req;
  self->maybeFree();
}

void ClientConnection::armTimer(unsigned seconds) {
  if (!closing_) {
    armTimeout(&timer_, seconds, onTimer);
  }
}

void ClientConnection::onTimer(uv_timer_t* timer) {
  auto* self = static_cast<ClientConnection*>(timer->data);
  if (self->closing_) {
    return;
  }
  switch (self->phase_) {
    case Phase::ProxyHeader:
      self->proxyHeaderTimeout();
      return;
    case Phase::Handshaking:
      log::info("{} TLS handshake timeout from [{}]:{}", self->sessionId_, self->clientIp_,
                self->clientPort_);
      self->closeHandles();
      return;
    case Phase::Closing:
      self->closeHandles();  // the client never took its last reply
      return;
    default:
      log::info("{} timeout after {} s", self->sessionId_, self->timeoutS_);
      self->perform(self->session_.onTimeout());
  }
}

void ClientConnection::shutdownNow() {
  if (closing_ || phase_ == Phase::Closing) {
    return;
  }
  if (phase_ == Phase::Handshaking || phase_ == Phase::ProxyHeader) {
    closeHandles();
    return;
  }
  perform(session_.onShutdown());
}

void ClientConnection::closeGracefully() {
  if (closing_) {
    return;
  }
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
  writeReplies();
  if (tls_ && tls_->handshakeComplete()) {
    tls_->shutdown();
  }
  flushTls();
  armTimer(kLingerS);
  // uv_shutdown completes once every queued write has gone out.
  if (uv_shutdown(&shutdownReq_, reinterpret_cast<uv_stream_t*>(&tcp_), onShutdown) != 0) {
    closeHandles();
  }
}

void ClientConnection::onShutdown(uv_shutdown_t* req, int) {
  auto* self = static_cast<ClientConnection*>(req->handle->data);
  if (!self->closing_) {
    self->closeHandles();
  }
}

void ClientConnection::closeHandles() {
  if (closing_) {
    return;
  }
  // What this iteration produced still gets its chance (libuv tries a write at once).
  writeReplies();
  flushTls();
  if (closing_) {
    return;  // a write failed and closed everything meanwhile
  }
  closing_ = true;
  if (flushQueued_) {
    flushQueued_ = false;
    worker_.cancelFlush(this);
  }
  if (phase_ == Phase::Handshaking && tls_) {
    // Timeout, EOF, reset or shutdown in the middle of a handshake.
    countHandshake(Metrics::HandshakeOutcome::Failed);
  }
  dropBackend(true);
  if (admitted_) {
    traceSession();
  }
  uint64_t ms = admitted_ ? uv_now(worker_.loop()) - startedMs_ : 0;
  if (admitted_) {
    log::info("{} disconnect from [{}]:{} after {} ms, {} message(s), {} error(s)", sessionId_,
              clientIp_, clientPort_, ms, messages_, session_.errors());
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&tarpitTimer_), onClose);
}

void ClientConnection::onClose(uv_handle_t* handle) {
  auto* self = static_cast<ClientConnection*>(handle->data);
  --self->openHandles_;
  self->maybeFree();
}

void ClientConnection::maybeFree() {
  if (closing_ && openHandles_ == 0 && pendingWork_ == 0) {
    worker_.connectionGone(this);
  }
}

tls::ClientHelloVerdict ClientConnection::onClientHello(const tls::HandshakeFacts& early) {
  // by-sni: the SNI name picks the endpoint before the version is negotiated.
  endpoint_ = runtime_->resolveEndpoint(listener_, early.sni);
  policy::SessionView view = sessionView("");
  view.version = policy::fromWire(early.maxOfferedVersion).value_or(policy::TlsVersion::V1_0);
  policy::Decision d = decide(policy::Checkpoint::ClientHello, view, "");
  tls::ClientHelloVerdict verdict;
  // Sessions resume only on the endpoint that made them (by-sni listeners serve both).
  verdict.sessionContext = std::string("smtpgate-") + endpointName(endpoint_);
  if (d.outcome == policy::Outcome::RefuseHandshake) {
    verdict.minVersion = tls::kTls12;  // the handshake fails with protocol_version
  }
  return verdict;
}

policy::SessionView ClientConnection::sessionView(const std::string& authUser) const {
  policy::SessionView view;
  view.endpoint = policyEndpoint(endpoint_);
  view.requireTls = listener_.requireTls;
  view.clientIp = clientIp_;
  view.ehlo = session_.helo();
  view.authUser = authUser;
  if (tls_ && tls_->handshakeComplete()) {
    view.version = policy::fromWire(tls_->facts().version).value_or(policy::TlsVersion::None);
    view.clientCertSha256 = tls_->facts().clientCertSha256;
  }
  return view;
}

policy::Decision ClientConnection::decide(policy::Checkpoint checkpoint,
                                          const policy::SessionView& view,
                                          std::string_view domain) {
  CsprngRandom random;
  auto current = worker_.currentRuntime();
  policy::Decision d = policy::decide(checkpoint, view, domain, current->legacyTls(),
                                      current->tenants, nowSeconds(), random);
  lastRule_ = d.rule;
  if (!d.tenant.empty()) {
    tenant_ = d.tenant;
  }
  return d;
}

void ClientConnection::logDecision(const policy::Decision& d, std::string_view checkpoint) {
  std::string version = "none", cipher = "-";
  if (tls_ && tls_->handshakeComplete()) {
    version = tls::versionName(tls_->facts().version);
    cipher = tls_->facts().cipher;
  } else if (tls_) {
    version = "offered-max " + tls::versionName(tls_->facts().maxOfferedVersion);
  }
  lastRule_ = d.rule;
  worker_.metrics().decision(static_cast<int>(d.rule));
  if (d.rule == policy::Rule::D3 && d.outcome == policy::Outcome::RejectAndClose) {
    worker_.metrics().speedbumpRejection();
  }
  log::info("{} decision {} at {}: client=[{}]:{} endpoint={} tls={} cipher={} tenant={} reply=\"{}\"",
            sessionId_, policy::ruleName(d.rule), checkpoint, clientIp_, clientPort_,
            endpointName(endpoint_), version, cipher, d.tenant.empty() ? "-" : d.tenant,
            d.reply.empty() ? "accepted" : d.reply);
}

smtp::PolicyHooks::Verdict ClientConnection::onAuthIdentity(std::string_view user) {
  std::string identity(user);
  policy::Decision d = decide(policy::Checkpoint::Auth, sessionView(identity), policy::domainOf(identity));
  logDecision(d, "AUTH " + log::sanitize(identity));
  Verdict v;
  if (d.outcome == policy::Outcome::RejectAndClose) {
    v.kind = Verdict::Kind::RejectAndClose;
    v.reply = d.reply;
  }
  return v;
}

smtp::PolicyHooks::Verdict ClientConnection::onRecipient(std::string_view address) {
  std::string rcpt(address);
  policy::Decision d = decide(policy::Checkpoint::Recipient, sessionView(""), policy::domainOf(rcpt));
  logDecision(d, "RCPT " + log::sanitize(rcpt));
  Verdict v;
  if (d.outcome == policy::Outcome::RejectRecipient) {
    v.kind = Verdict::Kind::RejectRecipient;
    v.reply = d.reply;
  }
  return v;
}

void ClientConnection::onPlaintextRefused(std::string_view command) {
  policy::Decision d = decide(policy::Checkpoint::Plaintext, sessionView(""), "");
  if (d.rule != policy::Rule::D7) {
    // AUTH before TLS is refused even where require_tls is off (it is never offered in
    // plaintext): the same 530, recorded under the same rule.
    d.outcome = policy::Outcome::RequireTls;
    d.rule = policy::Rule::D7;
    d.reply = "530 5.7.0 Must issue a STARTTLS command first";
    lastRule_ = d.rule;
  }
  logDecision(d, command);
}

void ClientConnection::openBackend() {
  if (backend_) {
    perform(session_.onBackendReady(true));
    return;
  }
  const Config& c = runtime_->config;
  BackendLink::Settings settings;
  settings.host = c.smtpBackend.address.host;
  settings.port = c.smtpBackend.address.port;
  settings.connectTimeoutS = c.limits.timeouts.backendConnect;
  settings.replyTimeoutS = c.limits.timeouts.command;
  settings.tlsContext = runtime_->backendTlsContext;
  settings.metrics = &worker_.metrics();
  auto& o = settings.options;
  o.heloName = c.hostname;
  o.handoff = handoffOf(c.smtpBackend.handoff);
  o.startTls = c.smtpBackend.startTls;
  o.facts.ip = clientIp_;
  o.facts.port = static_cast<uint16_t>(clientPort_);
  o.facts.helo = session_.helo();
  o.facts.esmtp = session_.esmtp();
  sockaddr_storage local{};
  int len = sizeof local;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    char host[INET6_ADDRSTRLEN] = {0};
    if (local.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&local);
      uv_ip4_name(in, host, sizeof host);
      o.facts.serverPort = ntohs(in->sin_port);
    } else if (local.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&local);
      uv_ip6_name(in6, host, sizeof host);
      o.facts.serverPort = ntohs(in6->sin6_port);
    }
    o.facts.serverIp = host;
  }
  if (!proxyServerIp_.empty()) {  // the load balancer's front, where the client connected
    o.facts.serverIp = proxyServerIp_;
    o.facts.serverPort = static_cast<uint16_t>(proxyServerPort_);
  }
  if (tls_ && tls_->handshakeComplete()) {
    o.facts.tlsVersion = tls::versionName(tls_->facts().version);
    o.facts.tlsCipher = tls_->facts().cipher;
    o.facts.sni = tls_->facts().sni;
  }
  backend_ = BackendLink::open(worker_.loop(), this, std::move(settings));
}

void ClientConnection::sendToBackend(std::string bytes, bool expectReply, Awaited kind) {
  if (!backend_) {
    return;  // lost in between: the session heard onBackendLost already
  }
  // Like the replies, one write per loop iteration (flushOutput()) for commands and small
  // pieces; message chunks are moved, never copied into a growing buffer (libuv reads a busy
  // socket several times per iteration).
  if (!pendingBackend_.empty() &&
      (pendingBackend_.size() >= kCoalesceBytes || bytes.size() >= kCoalesceBytes)) {
    backend_->send(std::exchange(pendingBackend_, std::string()));
    if (!backend_) {
      return;  // the write failed: onBackendLost() ran
    }
  }
  if (pendingBackend_.empty()) {
    pendingBackend_ = std::move(bytes);
  } else {
    pendingBackend_.append(bytes);
  }
  queueFlush();
  if (expectReply) {
    awaited_.push_back(kind);
    backend_->expectReply();
  }
}

void ClientConnection::dropBackend(bool polite) {
  if (!backend_) {
    return;
  }
  // Polite: what was relayed goes before the QUIT. Abort: a message cut short never ends.
  std::string pending = std::exchange(pendingBackend_, std::string());
  if (polite) {
    if (!pending.empty()) {
      backend_->send(std::move(pending));
    }
    backend_->quit();
  } else {
    backend_->abort();
  }
  backend_ = nullptr;
  awaited_.clear();
}

void ClientConnection::onBackendReady(bool ok, const std::string& reason,
                                      const smtp::Capabilities& capabilities) {
  if (closing_) {
    return;
  }
  if (!ok) {
    backend_ = nullptr;  // the link closes itself
    log::error("{} backend unavailable: {}", sessionId_, reason);
  } else {
    worker_.backendCapabilities().set(
        smtp::filterForClients(capabilities, runtime_->config.smtp.maxMessageBytes));
  }
  perform(session_.onBackendReady(ok));
}

void ClientConnection::onBackendReply(const smtp::Reply& reply) {
  if (closing_) {
    return;
  }
  Awaited kind = Awaited::Command;
  if (!awaited_.empty()) {
    kind = awaited_.front();
    awaited_.pop_front();
  }
  if (kind == Awaited::EndOfData) {
    if (reply.positive()) {
      ++messages_;
      traceMessage(session_.envelope(), relayedBytes_, reply.firstLine(),
                   smtp::BackendSession::queueIdFrom(reply));
      log::info("{} relayed: backend {} (queue id {})", sessionId_,
                log::sanitize(reply.firstLine()),
                smtp::BackendSession::queueIdFrom(reply).empty()
                    ? "-"
                    : smtp::BackendSession::queueIdFrom(reply));
    } else {
      log::info("{} backend refused the message: {}", sessionId_,
                log::sanitize(reply.firstLine()));
    }
  }
  perform(session_.onBackendReply(reply.raw));
}

void ClientConnection::onBackendLost(const std::string& reason) {
  if (closing_) {
    return;
  }
  backend_ = nullptr;
  awaited_.clear();
  pendingBackend_ = std::string();
  log::error("{} backend connection lost: {}", sessionId_, reason);
  perform(session_.onBackendLost());
}

void ClientConnection::onBackendWritable() {
  if (!closing_) {
    updateReading();
  }
}

void ClientConnection::traceMessage(const smtp::Envelope& envelope, uint64_t size,
                                    const std::string& reply, const std::string& queueId) {
  SessionFacts f = facts();
  // Counted here, not from the store: exact also when traces are off or rows are dropped.
  worker_.metrics().messageAccepted(tenant_, Metrics::versionFromLabel(f.tlsVersion));
  TraceStore* store = worker_.traces();
  if (!store) {
    return;
  }
  MessageTrace t;
  t.sessionId = sessionId_;
  t.receivedMs = nowMillis();
  t.listener = listener_.name;
  t.endpoint = f.endpoint;
  t.clientIp = clientIp_;
  t.ehlo = session_.helo();
  t.tlsVersion = f.tlsVersion.empty() ? "none" : f.tlsVersion;
  t.tlsCipher = f.tlsCipher;
  t.authUser = session_.authUser();
  t.tenant = tenant_;
  t.sender = envelope.mailFrom;
  t.rcptCount = static_cast<unsigned>(envelope.rcptTo.size());
  t.size = size;
  t.rule = f.rule;
  t.reply = reply;
  t.queueId = queueId;
  store->record(std::move(t));
}

void ClientConnection::traceSession() {
  TraceStore* store = worker_.traces();
  if (!store) {
    return;
  }
  SessionFacts f = facts();
  SessionTrace t;
  t.sessionId = sessionId_;
  t.startedMs = startedWallMs_;
  t.endedMs = nowMillis();
  t.listener = listener_.name;
  t.endpoint = f.endpoint;
  t.clientIp = clientIp_;
  t.clientPort = clientPort_;
  t.ehlo = session_.helo();
  t.tlsVersion = f.tlsVersion.empty() ? "none" : f.tlsVersion;
  t.tlsCipher = f.tlsCipher;
  if (tls_) {
    // Also for a refused handshake (D1): what the client offered is the point of the record.
    t.sni = tls_->facts().sni;
    t.tlsMaxOffered = tls::versionLabel(tls_->facts().maxOfferedVersion);
  }
  t.authUser = session_.authUser();
  t.tenant = tenant_;
  t.rule = f.rule;
  t.finalReply = lastReply_;
  t.messages = messages_;
  store->record(std::move(t));
}

SessionFacts ClientConnection::facts() const {
  SessionFacts f;
  f.sessionId = sessionId_;
  f.listener = listener_.name;
  f.endpoint = endpointName(endpoint_);
  f.clientIp = clientIp_;
  f.clientPort = clientPort_;
  f.rule = std::string(policy::ruleName(lastRule_));
  f.tenant = tenant_;
  if (tls_ && tls_->handshakeComplete()) {
    const auto& t = tls_->facts();
    f.tlsVersion = tls::versionLabel(t.version);
    f.tlsCipher = t.cipher;
    f.sni = t.sni;
    f.tlsMaxOffered = tls::versionLabel(t.maxOfferedVersion);
  }
  return f;
}

}  // namespace smtpgate
