#include "tests/bench/loadgen/client_session.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "tls/handshake_facts.h"

namespace smtpgate::loadgen {
namespace {

// The message goes out in slices, with at most kHighWater bytes queued in libuv at once: a
// 20 MB message never needs 20 MB of queued writes.
constexpr size_t kBodySlice = 64 * 1024;
constexpr size_t kHighWater = 256 * 1024;

struct WriteRequest {
  uv_write_t req{};
  std::string owned;  // empty when the bytes belong to someone else (the shared message)
  size_t size = 0;
};

bool offersPipelining(const smtp::Reply& reply) {
  for (const std::string& line : reply.lines) {
    std::string word = line.substr(0, line.find(' '));
    std::transform(word.begin(), word.end(), word.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (word == "PIPELINING") {
      return true;
    }
  }
  return false;
}

}  // namespace

ClientSession::ClientSession(const SessionConfig& config, SessionHost& host)
    : config_(config), host_(host) {
  tcp_.data = this;
  timer_.data = this;
  connectReq_.data = this;
  shutdownReq_.data = this;
}

void ClientSession::start(int64_t sequence) {
  uv_tcp_init(config_.loop, &tcp_);
  uv_timer_init(config_.loop, &timer_);
  openHandles_ = 2;
  uv_tcp_nodelay(&tcp_, 1);
  connectStart_ = uv_hrtime();
  armTimer();
  if (!config_.sources.empty()) {
    const sockaddr_storage& source =
        config_.sources[static_cast<size_t>(sequence) % config_.sources.size()];
    int rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&source), 0);
    if (rc != 0) {
      fail(ErrorKind::Connect, std::string("bind: ") + uv_strerror(rc));
      return;
    }
  }
  int rc = uv_tcp_connect(&connectReq_, &tcp_, reinterpret_cast<const sockaddr*>(&config_.address),
                          onConnect);
  if (rc != 0) {
    fail(ErrorKind::Connect, uv_strerror(rc));
  }
}

void ClientSession::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<ClientSession*>(req->data);
  if (status == UV_ECANCELED || self->closing_) {
    return;
  }
  if (status != 0) {
    self->fail(ErrorKind::Connect, uv_strerror(status));
    return;
  }
  self->connected();
}

void ClientSession::connected() {
  uv_tcp_nodelay(&tcp_, 1);  // again: the socket exists only now
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), onAlloc, onRead);
  if (rc != 0) {
    fail(ErrorKind::Connect, uv_strerror(rc));
    return;
  }
  armTimer();
  state_ = State::Setup;
  expects_.push_back(Expect::Greeting);
  if (config_.options->mode == Mode::Implicit) {
    startTls();
  }
}

void ClientSession::onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(handle->data);
  buf->base = self->config_.readBuffer;
  buf->len = self->config_.readBufferSize;
}

void ClientSession::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<ClientSession*>(stream->data);
  if (self->closing_) {
    return;
  }
  if (nread < 0) {
    self->receivedEnd(static_cast<int>(nread));
    return;
  }
  if (nread > 0) {
    self->received(std::string_view(buf->base, static_cast<size_t>(nread)));
  }
}

void ClientSession::received(std::string_view bytes) {
  armTimer();
  if (!tls_) {
    plaintext(bytes);
    return;
  }
  tls_->feedCiphertext(bytes);
  if (!tls_->handshakeComplete()) {
    tls::TlsEngine::Status status = tls_->handshake();
    flushTls();
    if (closing_) {
      return;
    }
    if (status == tls::TlsEngine::Status::Error) {
      fail(ErrorKind::Tls, tls_->lastError());
      return;
    }
    if (status != tls::TlsEngine::Status::Complete) {
      return;
    }
    handshakeDone();
    if (closing_) {
      return;
    }
  }
  std::string clear;
  tls::TlsEngine::Status status = tls_->readPlaintext(clear);
  flushTls();
  if (closing_) {
    return;
  }
  if (!clear.empty()) {
    plaintext(clear);
    if (closing_) {
      return;
    }
  }
  if (status == tls::TlsEngine::Status::Closed) {
    receivedEnd(UV_EOF);
  } else if (status == tls::TlsEngine::Status::Error) {
    fail(ErrorKind::Tls, tls_->lastError());
  }
}

void ClientSession::receivedEnd(int status) {
  if (state_ == State::Quitting || state_ == State::Done) {
    finishOk();  // the server may close before or right after its 221
    closeAll();
    return;
  }
  std::string detail = status == UV_EOF ? "connection closed by the server" : uv_strerror(status);
  if (state_ == State::Handshake) {
    fail(ErrorKind::Tls, "during the handshake: " + detail);
  } else {
    fail(ErrorKind::Closed, detail);
  }
}

void ClientSession::plaintext(std::string_view bytes) {
  std::vector<smtp::Reply> replies = parser_.feed(bytes);
  tlsStartedNow_ = false;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (closing_) {
      return;
    }
    if (tlsStartedNow_) {
      fail(ErrorKind::Protocol, "replies after the STARTTLS 220 arrived in clear text");
      return;
    }
    if (expects_.empty()) {
      if (replies[i].code == 421) {
        ++config_.stats->replies[421];
        fail(ErrorKind::Rejected, replies[i].firstLine());
      } else {
        fail(ErrorKind::Protocol, "unexpected reply: " + replies[i].firstLine());
      }
      return;
    }
    Expect expect = expects_.front();
    expects_.pop_front();
    handleReply(replies[i], expect);
  }
  if (closing_) {
    return;
  }
  if (parser_.failed()) {
    fail(ErrorKind::Protocol, parser_.error());
  } else if (tlsStartedNow_ && parser_.midReply()) {
    fail(ErrorKind::Protocol, "bytes after the STARTTLS 220 arrived in clear text");
  } else if (tlsStartedNow_) {
    parser_.reset();
  }
}

void ClientSession::handleReply(const smtp::Reply& reply, Expect expect) {
  Stats& stats = *config_.stats;
  int code = reply.code;
  if (code == 421 && expect != Expect::Quit) {
    // The server is closing: the message in progress and the session end here.
    ++stats.replies[421];
    if (inMessage_) {
      inMessage_ = false;
      ++stats.messagesFailed;
    }
    fail(ErrorKind::Rejected, reply.firstLine());
    return;
  }
  auto reject = [&] {
    ++stats.replies[code];
    fail(ErrorKind::Rejected, reply.firstLine());
  };
  const Options& o = *config_.options;
  switch (expect) {
    case Expect::Greeting:
      if (code != 220) {
        reject();
      } else if (o.mode == Mode::StartTls) {
        send("EHLO " + o.ehlo + "\r\n", {Expect::Ehlo1});
      } else {
        send("EHLO " + o.ehlo + "\r\n", {Expect::Ehlo2});
      }
      return;
    case Expect::Ehlo1:
      if (code != 250) {
        reject();
      } else {
        send("STARTTLS\r\n", {Expect::StartTls});
      }
      return;
    case Expect::StartTls:
      if (code != 220) {
        reject();
      } else {
        tlsStartedNow_ = true;
        startTls();
      }
      return;
    case Expect::Ehlo2:
      if (code != 250) {
        reject();
        return;
      }
      pipelining_ = offersPipelining(reply);
      if (!config_.authCommand.empty() && !o.handshakeOnly) {
        send(config_.authCommand, {Expect::Auth});
      } else {
        ready();
      }
      return;
    case Expect::Auth:
      if (code != 235) {
        reject();
      } else {
        ready();
      }
      return;
    case Expect::Mail:
    case Expect::Rcpt:
      if (reply.positive()) {
        if (!pipelining_) {
          if (expect == Expect::Mail) {
            send("RCPT TO:<" + o.to + ">\r\n", {Expect::Rcpt});
          } else {
            send("DATA\r\n", {Expect::Data});
          }
        }
      } else if (pipelining_) {
        transactionFailure_ = transactionFailure_ != 0 ? transactionFailure_ : code;
      } else {
        messageDone(false, code);
      }
      return;
    case Expect::Data:
      if (code == 354 && transactionFailure_ != 0) {
        abandonBody_ = true;  // a server that says 354 with no recipient: end the DATA empty
        send(".\r\n", {Expect::Body});
      } else if (code == 354) {
        expects_.push_back(Expect::Body);
        sendingBody_ = true;
        bodyPos_ = 0;
        pumpBody();
      } else {
        messageDone(false, transactionFailure_ != 0 ? transactionFailure_ : code);
      }
      return;
    case Expect::Body:
      if (sendingBody_) {
        // A reply before the end of the message: the server gave up on it.
        sendingBody_ = false;
        inMessage_ = false;
        ++stats.messagesFailed;
        reject();
      } else if (abandonBody_) {
        abandonBody_ = false;
        messageDone(false, transactionFailure_);
      } else {
        messageDone(reply.positive(), code);
      }
      return;
    case Expect::Rset:
      nextMessage();
      return;
    case Expect::Quit:
      finishOk();
      return;
  }
}

void ClientSession::startTls() {
  state_ = State::Handshake;
  tls_ = std::make_unique<tls::TlsEngine>(config_.tls, config_.options->sni);
  handshakeStart_ = uv_hrtime();
  tls::TlsEngine::Status status = tls_->handshake();
  flushTls();
  if (closing_) {
    return;
  }
  if (status == tls::TlsEngine::Status::Error) {
    fail(ErrorKind::Tls, tls_->lastError());
  }
}

void ClientSession::handshakeDone() {
  Stats& stats = *config_.stats;
  stats.handshake.add(msSince(handshakeStart_));
  ++stats.negotiated[tls::versionName(tls_->facts().version)];
  state_ = State::Setup;
  if (config_.options->mode == Mode::StartTls) {
    send("EHLO " + config_.options->ehlo + "\r\n", {Expect::Ehlo2});
  }
  // implicit TLS: the greeting comes now, inside TLS
}

void ClientSession::ready() {
  config_.stats->connectToReady.add(msSince(connectStart_));
  const Options& o = *config_.options;
  if (o.idle > 0) {
    state_ = State::Held;
    uv_timer_stop(&timer_);  // a held session waits for as long as the driver says
    host_.onSessionHeld(this);
    return;
  }
  state_ = State::Ready;
  nextMessage();
}

void ClientSession::quit() {
  if (closing_ || state_ != State::Held) {
    return;
  }
  sendQuit();
}

void ClientSession::nextMessage() {
  const Options& o = *config_.options;
  if (o.handshakeOnly || o.idle > 0 || messagesDone_ >= o.messages) {
    sendQuit();
  } else {
    startMessage();
  }
}

void ClientSession::startMessage() {
  const Options& o = *config_.options;
  state_ = State::Messages;
  inMessage_ = true;
  transactionFailure_ = 0;
  abandonBody_ = false;
  messageStart_ = uv_hrtime();
  std::string mail = "MAIL FROM:<" + o.from + ">\r\n";
  if (pipelining_) {
    send(mail + "RCPT TO:<" + o.to + ">\r\nDATA\r\n", {Expect::Mail, Expect::Rcpt, Expect::Data});
  } else {
    send(mail, {Expect::Mail});
  }
}

void ClientSession::messageDone(bool ok, int code) {
  Stats& stats = *config_.stats;
  inMessage_ = false;
  ++messagesDone_;
  ++stats.replies[code];
  if (ok) {
    ++stats.messagesOk;
    stats.messageBytesOk += static_cast<int64_t>(config_.messageWire->size());
    stats.message.add(msSince(messageStart_));
    nextMessage();
  } else {
    ++stats.messagesFailed;
    send("RSET\r\n", {Expect::Rset});  // a failed RCPT leaves the transaction open
  }
}

void ClientSession::sendQuit() {
  state_ = State::Quitting;
  send("QUIT\r\n", {Expect::Quit});
}

void ClientSession::pumpBody() {
  const std::string& wire = *config_.messageWire;
  while (sendingBody_ && !closing_ && queued_ < kHighWater) {
    size_t n = std::min(kBodySlice, wire.size() - bodyPos_);
    std::string_view slice(wire.data() + bodyPos_, n);
    bodyPos_ += n;
    if (bodyPos_ >= wire.size()) {
      sendingBody_ = false;  // the reply to the end of data is now the expected one
    }
    if (tls_) {
      writeApplication(slice);
    } else {
      writeRawView(slice);
    }
  }
}

void ClientSession::send(std::string_view text, std::initializer_list<Expect> expects) {
  expects_.insert(expects_.end(), expects.begin(), expects.end());
  armTimer();
  if (tls_) {
    writeApplication(text);
  } else {
    writeRaw(std::string(text));
  }
}

void ClientSession::writeApplication(std::string_view bytes) {
  if (tls_->writePlaintext(bytes) != tls::TlsEngine::Status::Ok) {
    fail(ErrorKind::Tls, tls_->lastError());
    return;
  }
  flushTls();
}

void ClientSession::flushTls() {
  if (tls_ && tls_->hasCiphertext() && !closing_) {
    writeRaw(tls_->takeCiphertext());
  }
}

void ClientSession::writeRaw(std::string bytes) {
  if (bytes.empty() || closing_) {
    return;
  }
  auto* request = new WriteRequest;
  request->owned = std::move(bytes);
  request->size = request->owned.size();
  request->req.data = this;
  uv_buf_t buf = uv_buf_init(request->owned.data(), static_cast<unsigned>(request->size));
  queued_ += request->size;
  int rc = uv_write(&request->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, onWrite);
  if (rc != 0) {
    queued_ -= request->size;
    delete request;
    fail(ErrorKind::Closed, std::string("write: ") + uv_strerror(rc));
  }
}

void ClientSession::writeRawView(std::string_view bytes) {
  if (bytes.empty() || closing_) {
    return;
  }
  auto* request = new WriteRequest;
  request->size = bytes.size();
  request->req.data = this;
  uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  queued_ += request->size;
  int rc = uv_write(&request->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, onWrite);
  if (rc != 0) {
    queued_ -= request->size;
    delete request;
    fail(ErrorKind::Closed, std::string("write: ") + uv_strerror(rc));
  }
}

void ClientSession::onWrite(uv_write_t* req, int status) {
  auto* request = reinterpret_cast<WriteRequest*>(req);
  auto* self = static_cast<ClientSession*>(req->data);
  size_t size = request->size;
  delete request;
  if (status == UV_ECANCELED || self->closing_) {
    return;
  }
  if (status != 0) {
    if (self->state_ == State::Quitting || self->state_ == State::Done) {
      self->finishOk();
      self->closeAll();
    } else {
      self->fail(ErrorKind::Closed, std::string("write: ") + uv_strerror(status));
    }
    return;
  }
  self->written(size);
}

void ClientSession::written(size_t bytes) {
  queued_ -= bytes;
  if (state_ != State::Done) {
    armTimer();
  }
  if (sendingBody_ && queued_ < kHighWater / 2) {
    pumpBody();
  }
}

void ClientSession::armTimer() {
  if (closing_ || state_ == State::Held) {
    return;
  }
  auto ms = static_cast<uint64_t>(std::ceil(config_.options->timeout * 1000.0));
  uv_timer_start(&timer_, onTimeout, ms, 0);
}

void ClientSession::onTimeout(uv_timer_t* timer) {
  auto* self = static_cast<ClientSession*>(timer->data);
  if (self->closing_) {
    return;
  }
  if (self->state_ == State::Done) {
    self->closeAll();  // the close_notify / FIN exchange after a 221 took too long: done anyway
    return;
  }
  const char* where = "waiting";
  switch (self->state_) {
    case State::Connecting:
      where = "connecting";
      break;
    case State::Handshake:
      where = "in the TLS handshake";
      break;
    case State::Messages:
      where = self->sendingBody_ ? "sending a message" : "in a mail transaction";
      break;
    case State::Quitting:
      where = "waiting for the reply to QUIT";
      break;
    default:
      where = "waiting for a reply";
      break;
  }
  self->fail(ErrorKind::Timeout, where);
}

void ClientSession::finishOk() {
  if (!finished_) {
    finished_ = true;
    ++config_.stats->sessionsOk;
  }
  if (state_ == State::Done || closing_) {
    return;
  }
  state_ = State::Done;
  armTimer();
  if (tls_) {
    tls_->shutdown();  // close_notify, then our FIN once it is written
    flushTls();
  }
  if (closing_) {
    return;
  }
  int rc = uv_shutdown(&shutdownReq_, reinterpret_cast<uv_stream_t*>(&tcp_), onShutdown);
  if (rc != 0) {
    closeAll();
  }
}

void ClientSession::onShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<ClientSession*>(req->data);
  if (status == UV_ECANCELED || self->closing_) {
    return;
  }
  self->closeAll();
}

void ClientSession::abort(ErrorKind kind, const std::string& detail) {
  if (closing_) {
    return;
  }
  if (finished_) {
    closeAll();
    return;
  }
  fail(kind, detail);
}

void ClientSession::fail(ErrorKind kind, const std::string& detail) {
  if (!finished_) {
    finished_ = true;
    Stats& stats = *config_.stats;
    ++stats.sessionsFailed;
    stats.countError(kind, detail);
    if (inMessage_) {
      inMessage_ = false;
      ++stats.messagesFailed;
    }
  }
  closeAll();
}

void ClientSession::closeAll() {
  if (closing_) {
    return;
  }
  closing_ = true;
  state_ = State::Done;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), onClose);
}

void ClientSession::onClose(uv_handle_t* handle) {
  auto* self = static_cast<ClientSession*>(handle->data);
  if (--self->openHandles_ == 0) {
    self->host_.onSessionClosed(self);  // deletes self
  }
}

double ClientSession::msSince(uint64_t startNs) const {
  return static_cast<double>(uv_hrtime() - startNs) / 1e6;
}

}  // namespace smtpgate::loadgen
