#include "gateway/worker.h"

#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "gateway/client_connection.h"
#include "gateway/log.h"

namespace smtpgate {
namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;

std::string peerAddress(const sockaddr_storage& ss, unsigned& port) {
  char host[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
    // IPv4-mapped addresses are the IPv4 client they stand for.
    std::string s = host;
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) {
      return s.substr(7);
    }
  }
  return host;
}

}  // namespace

Worker::Worker(unsigned index, RuntimeHolder& runtime, Admission& admission, bool reusePort)
    : index_(index), runtime_(runtime), admission_(admission), reusePort_(reusePort) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, onAsync);
  async_.data = this;
  uv_timer_init(&loop_, &drainTimer_);
  drainTimer_.data = this;
  uv_check_init(&loop_, &flushCheck_);
  flushCheck_.data = this;
  uv_idle_init(&loop_, &flushIdle_);
  flushIdle_.data = this;
  uv_check_init(&loop_, &logCheck_);
  uv_prepare_init(&loop_, &logPrepare_);
  readBuffer_.resize(kReadBufferBytes);
}

Worker::~Worker() {
  join();
  if (!finished_) {
    // The loop never ran (start-up failed after bind(), e.g. the admin port was busy): close
    // what the constructor and bind() opened, or uv_loop_close() leaves the loop's memory.
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void*) {
          if (!uv_is_closing(handle)) {
            uv_close(handle, nullptr);
          }
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
}

std::string Worker::bind() {
  auto runtime = runtime_.get();
  for (const auto& config : runtime->config.listeners) {
    auto listener = std::make_unique<Listener>();
    listener->worker = this;
    listener->config = config;
    sockaddr_storage addr{};
    bool v6 = config.listen.host.find(':') != std::string::npos;
    int rc = v6 ? uv_ip6_addr(config.listen.host.c_str(), config.listen.port,
                              reinterpret_cast<sockaddr_in6*>(&addr))
                : uv_ip4_addr(config.listen.host.c_str(), config.listen.port,
                              reinterpret_cast<sockaddr_in*>(&addr));
    if (rc != 0) {
      return fmt::format("listener {}: bad address {}: {}", config.name, config.listen.str(),
                         uv_strerror(rc));
    }
    uv_tcp_init_ex(&loop_, &listener->tcp, v6 ? AF_INET6 : AF_INET);
    listener->tcp.data = listener.get();
    if (reusePort_) {
      // libuv 1.44 has no flag for SO_REUSEPORT: set it on the socket before bind.
      uv_os_fd_t fd;
      uv_fileno(reinterpret_cast<uv_handle_t*>(&listener->tcp), &fd);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    rc = uv_tcp_bind(&listener->tcp, reinterpret_cast<sockaddr*>(&addr), v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0) {
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->tcp), 511, onConnection);
    }
    if (rc != 0) {
      Listener* raw = listener.release();
      uv_close(reinterpret_cast<uv_handle_t*>(&raw->tcp),
               [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
      return fmt::format("listener {}: cannot listen on {}: {}", config.name, config.listen.str(),
                         uv_strerror(rc));
    }
    runtime_.metrics().addListener(config.name);
    listeners_.push_back(std::move(listener));
  }
  return "";
}

void Worker::startThread() {
  thread_ = std::thread([this] {
    log::bufferThread(true);
    uv_check_start(&logCheck_, [](uv_check_t*) { log::flushThread(); });
    uv_prepare_start(&logPrepare_, [](uv_prepare_t*) { log::flushThread(); });
    uv_unref(reinterpret_cast<uv_handle_t*>(&logCheck_));
    uv_unref(reinterpret_cast<uv_handle_t*>(&logPrepare_));
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Listeners and sessions are gone: close the loop's own handles and let them finish.
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&drainTimer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flushCheck_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&flushIdle_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&logCheck_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&logPrepare_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    log::bufferThread(false);  // writes what is left
    finished_ = true;
  });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::requestDrain(unsigned drainS) {
  {
    std::lock_guard lock(requestMutex_);
    drainRequested_ = true;
    drainS_ = drainS;
  }
  uv_async_send(&async_);
}

void Worker::requestStop() {
  {
    std::lock_guard lock(requestMutex_);
    stopRequested_ = true;
  }
  uv_async_send(&async_);
}

void Worker::onAsync(uv_async_t* async) {
  auto* self = static_cast<Worker*>(async->data);
  bool drain, stop;
  unsigned drainS;
  {
    std::lock_guard lock(self->requestMutex_);
    drain = self->drainRequested_;
    stop = self->stopRequested_;
    drainS = self->drainS_;
    self->drainRequested_ = self->stopRequested_ = false;
  }
  if ((drain || stop) && !self->draining_) {
    self->draining_ = true;
    self->closeListeners();
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&self->async_))) {
      // The loop ends once the last session is gone: the async handle must not keep it alive.
      uv_unref(reinterpret_cast<uv_handle_t*>(&self->async_));
    }
    if (!stop) {
      uv_timer_start(&self->drainTimer_, onDrainTimer, static_cast<uint64_t>(drainS) * 1000, 0);
      uv_unref(reinterpret_cast<uv_handle_t*>(&self->drainTimer_));
    }
  }
  if (stop) {
    self->stopAll();
  }
}

void Worker::onDrainTimer(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->data);
  if (!self->connections_.empty()) {
    log::info("drain deadline passed: closing {} session(s) with 421", self->connections_.size());
  }
  self->stopAll();
}

void Worker::stopAll() {
  // shutdownNow may free a connection synchronously only through close callbacks, which run
  // later: iterating a copy keeps this safe regardless.
  std::vector<ClientConnection*> all(connections_.begin(), connections_.end());
  for (auto* c : all) {
    c->shutdownNow();
  }
}

void Worker::closeListeners() {
  for (auto& listener : listeners_) {
    Listener* raw = listener.release();
    uv_close(reinterpret_cast<uv_handle_t*>(&raw->tcp),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  listeners_.clear();
}

void Worker::onConnection(uv_stream_t* server, int status) {
  auto* listener = static_cast<Listener*>(server->data);
  if (status < 0) {
    log::warning("accept on {}: {}", listener->config.name, uv_strerror(status));
    return;
  }
  listener->worker->accept(*listener);
}

std::string Worker::newSessionId() {
  // Unique across workers, restarts and the instances of a cluster (which may start in the
  // same second and share one trace store): start time, 32 random bits drawn once per
  // process, worker, counter. Every field but the last has a fixed width, so no two
  // (worker, counter) pairs can spell the same id.
  static const uint64_t boot =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  static const uint32_t instance = [] {
    uint32_t value = 0;
    RAND_bytes(reinterpret_cast<uint8_t*>(&value), sizeof value);
    return value;
  }();
  return fmt::format("{:08x}{:08x}{:02x}{:06x}", boot & 0xffffffff, instance, index_,
                     ++sessionCounter_);
}

void Worker::accept(Listener& listener) {
  auto runtime = runtime_.get();
  auto* connection = new ClientConnection(*this, runtime, listener.config, newSessionId());
  connections_.insert(connection);
  ++connectionCount_;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener.tcp),
                reinterpret_cast<uv_stream_t*>(connection->tcp())) != 0) {
    connection->abort();
    return;
  }
  metrics().connectionAccepted(listener.config.name);
  sockaddr_storage peer{};
  int len = sizeof peer;
  uv_tcp_getpeername(connection->tcp(), reinterpret_cast<sockaddr*>(&peer), &len);
  unsigned port = 0;
  std::string ip = peerAddress(peer, port);
  // A reload may change the trusted networks or switch the PROXY protocol on or off: the
  // listener's current configuration decides, not the one it was bound with.
  const std::vector<policy::Cidr>* current = &listener.config.proxyTrusted;
  for (const auto& l : runtime->config.listeners) {
    if (l.name == listener.config.name) {
      current = &l.proxyTrusted;
      break;
    }
  }
  const auto& trusted = *current;
  if (!trusted.empty()) {
    // The load balancer speaks first: the per-IP limits wait for the client it names.
    bool known = std::any_of(trusted.begin(), trusted.end(),
                             [&ip](const policy::Cidr& cidr) { return cidr.contains(ip); });
    if (!known) {
      log::warning(
          "refused [{}]:{} on {}: not a trusted PROXY protocol peer "
          "(listeners[].proxy_protocol.trusted)",
          ip, port, listener.config.name);
      metrics().connectionRefused(Metrics::Refusal::ProxyUntrusted);
      connection->abort();
      return;
    }
    connection->awaitProxyHeader(ip, port);
    return;
  }
  admit(*connection, ip, port);
}

void Worker::admit(ClientConnection& connection, const std::string& ip, unsigned port) {
  auto runtime = runtime_.get();
  const ListenerConfig& config = connection.listener();
  const auto& limits = runtime->config.limits;
  auto verdict = admission_.admit(ip, limits.maxConnections, limits.maxConnectionsPerIp,
                                  limits.newConnectionsPerIpPerMinute, uv_now(&loop_));
  if (verdict != Admission::Verdict::Admitted) {
    const char* what = "too many connections";
    const char* reply = "Error: too many connections";
    if (verdict == Admission::Verdict::TooManyFromIp) {
      what = "too many connections from your IP";
      reply = "Error: too many connections from your IP";
    } else if (verdict == Admission::Verdict::TooManyNewFromIp) {
      what = "too many new connections from this address per minute";
      reply = "Too many connections from your address, try again later";
    }
    log::warning("refused [{}]:{} on {}: {}", ip, port, config.name, what);
    metrics().connectionRefused(verdict == Admission::Verdict::TooManyTotal
                                    ? Metrics::Refusal::MaxConnections
                                : verdict == Admission::Verdict::TooManyFromIp
                                    ? Metrics::Refusal::MaxConnectionsPerIp
                                    : Metrics::Refusal::NewConnectionsPerIpPerMinute);
    // A plaintext 421 is readable on STARTTLS listeners; implicit-TLS clients cannot read
    // it, so they are simply closed.
    if (config.tls == TlsMode::StartTls) {
      std::string text = fmt::format("421 4.7.0 {} {}\r\n", runtime->config.hostname, reply);
      uv_buf_t buf = uv_buf_init(text.data(), static_cast<unsigned>(text.size()));
      uv_try_write(reinterpret_cast<uv_stream_t*>(connection.tcp()), &buf, 1);
    }
    connection.abort();
    return;
  }
  metrics().sessionStarted();
  connection.start(ip, port);
}

void Worker::deferFlush(ClientConnection* connection) {
  if (toFlush_.empty()) {
    uv_check_start(&flushCheck_, onFlushCheck);
    uv_idle_start(&flushIdle_, onFlushIdle);
  }
  toFlush_.push_back(connection);
}

void Worker::cancelFlush(ClientConnection* connection) {
  std::erase(toFlush_, connection);
  std::replace(flushing_.begin(), flushing_.end(), connection,
               static_cast<ClientConnection*>(nullptr));
  if (toFlush_.empty()) {
    uv_check_stop(&flushCheck_);
    uv_idle_stop(&flushIdle_);
  }
}

void Worker::onFlushCheck(uv_check_t* check) { static_cast<Worker*>(check->data)->flushAll(); }

void Worker::onFlushIdle(uv_idle_t* idle) { static_cast<Worker*>(idle->data)->flushAll(); }

void Worker::flushAll() {
  // A flush may defer or cancel others (a failed write closes its connection): the list
  // being worked on is a separate one.
  flushing_.swap(toFlush_);
  uv_check_stop(&flushCheck_);
  uv_idle_stop(&flushIdle_);
  for (std::size_t i = 0; i < flushing_.size(); ++i) {
    if (ClientConnection* connection = flushing_[i]) {
      connection->flushOutput();
    }
  }
  flushing_.clear();
}

void Worker::connectionGone(ClientConnection* connection) {
  if (connection->admitted()) {
    metrics().sessionEnded();
  }
  connections_.erase(connection);
  --connectionCount_;
  delete connection;
}

}  // namespace smtpgate
