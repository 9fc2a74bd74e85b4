// The PROXY protocol front of ClientConnection (listeners[].proxy_protocol, SPEC section 3):
// a trusted load balancer sends a v1 or v2 header before anything else; the client it names is
// the one admission, policy, traces, the Received header and the backend handoff see.

#include "gateway/client_connection.h"
#include "gateway/log.h"
#include "gateway/worker.h"

namespace smtpgate {

void ClientConnection::awaitProxyHeader(const std::string& peerIp, unsigned peerPort) {
  // Until the header names the client, the logs name the load balancer.
  clientIp_ = peerIp;
  clientPort_ = peerPort;
  proxy_ = std::make_unique<smtp::ProxyParser>();
  phase_ = Phase::ProxyHeader;
  log::info("{} connect from [{}]:{} listener={}: awaiting the PROXY header", sessionId_,
            clientIp_, clientPort_, listener_.name);
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), onAlloc, onRead);
  armTimer(runtime_->config.limits.timeouts.handshake);
}

void ClientConnection::onProxyBytes(std::string_view bytes) {
  const smtp::ProxyParser::Status status = proxy_->feed(bytes);
  if (status == smtp::ProxyParser::Status::NeedMore) {
    return;
  }
  if (status == smtp::ProxyParser::Status::Error) {
    log::warning("{} refused [{}]:{} on {}: bad PROXY protocol header: {}", sessionId_,
                 clientIp_, clientPort_, listener_.name, proxy_->error());
    worker_.metrics().connectionRefused(Metrics::Refusal::ProxyHeaderInvalid);
    closeHandles();
    return;
  }
  uv_timer_stop(&timer_);
  const smtp::ProxySource& source = proxy_->source();
  std::string ip = clientIp_;
  unsigned port = clientPort_;
  if (source.hasAddress) {
    log::info("{} PROXY v{} from [{}]:{}: client [{}]:{} to [{}]:{}", sessionId_, source.version,
              clientIp_, clientPort_, source.clientIp, source.clientPort, source.serverIp,
              source.serverPort);
    ip = source.clientIp;
    port = source.clientPort;
    proxyServerIp_ = source.serverIp;
    proxyServerPort_ = source.serverPort;
  } else {
    log::info("{} PROXY v{} {} from [{}]:{}: no client address, the connection's stands",
              sessionId_, source.version, source.local ? "LOCAL" : "UNKNOWN", clientIp_,
              clientPort_);
  }
  // What came with the header (an implicit-TLS ClientHello, an early command) is the session's.
  std::string rest(proxy_->remainder());
  proxy_.reset();
  phase_ = Phase::Plain;
  worker_.admit(*this, ip, port);  // starts the session, or refuses and closes it
  if (closing_ || rest.empty() || phase_ == Phase::Closing) {
    return;
  }
  if (phase_ == Phase::Plain) {
    onPlaintext(rest);
  } else {
    onCiphertext(rest);
  }
}

void ClientConnection::proxyHeaderTimeout() {
  log::warning("{} refused [{}]:{} on {}: no complete PROXY protocol header within {} s "
               "(timeouts_s.handshake)",
               sessionId_, clientIp_, clientPort_, listener_.name,
               runtime_->config.limits.timeouts.handshake);
  worker_.metrics().connectionRefused(Metrics::Refusal::ProxyHeaderInvalid);
  closeHandles();
}

}  // namespace smtpgate
