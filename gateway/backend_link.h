#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "gateway/metrics.h"
#include "gateway/smtp/backend_session.h"
#include "tls/tls_engine.h"

namespace smtpgate {

// One connection to the backend MTA (SPEC section 6): connect, PROXY header or XCLIENT,
// optional STARTTLS, then a pipe for the session's commands and the backend's replies.
// Heap-allocated; it frees itself once its handles are closed, so its owner can let go of it
// at any time with quit() or abort() and never hears from it again.
class BackendLink {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // The handshake finished (ok) or the backend cannot be used (reason for the log).
    virtual void onBackendReady(bool ok, const std::string& reason,
                                const smtp::Capabilities& capabilities) = 0;
    // One reply to a command sent after ready, in order.
    virtual void onBackendReply(const smtp::Reply& reply) = 0;
    // The connection failed after it was ready (closed, reset, timeout, garbage).
    virtual void onBackendLost(const std::string& reason) = 0;
    // Queued bytes fell below the low mark (backpressure toward the client may end).
    virtual void onBackendWritable() = 0;
  };

  struct Settings {
    std::string host;  // IP literal
    uint16_t port = 0;
    unsigned connectTimeoutS = 10;
    unsigned replyTimeoutS = 300;
    std::shared_ptr<tls::TlsContext> tlsContext;  // client context, for "tls": "starttls"
    smtp::BackendOptions options;
    Metrics* metrics = nullptr;  // smtpgate_backend_errors_total; null: not counted (probe)
  };

  static constexpr std::size_t kHighMark = 1 << 20;

  // Starts connecting at once; the owner hears onBackendReady() later (never synchronously).
  static BackendLink* open(uv_loop_t* loop, Owner* owner, Settings settings);

  // After ready: bytes for the backend (commands or message data).
  void send(std::string bytes);
  // One more reply is awaited (arms the reply timer).
  void expectReply();
  std::size_t queuedBytes() const { return queuedBytes_; }
  // Detach the owner and end politely: QUIT, then close (at most a few seconds).
  void quit();
  // Detach the owner and close at once (a message cut short must never be completed).
  void abort();

 private:
  BackendLink(uv_loop_t* loop, Owner* owner, Settings settings);
  ~BackendLink() = default;

  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onTimer(uv_timer_t* timer);
  static void onClose(uv_handle_t* handle);

  void handle(smtp::BackendSession::Result result);
  void writeBytes(std::string bytes);
  void writeRaw(std::string bytes);
  void onWritten(int status, std::size_t size);
  void fail(Metrics::BackendError kind, const std::string& reason);
  void armTimer(unsigned seconds);
  void closeHandles();

  uv_loop_t* loop_;
  Owner* owner_;
  Settings settings_;
  smtp::BackendSession session_;
  std::unique_ptr<tls::TlsEngine> tls_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connectReq_{};
  int openHandles_ = 2;
  bool connected_ = false;
  bool ready_ = false;
  bool closing_ = false;
  bool quitting_ = false;
  unsigned awaited_ = 0;
  std::size_t queuedBytes_ = 0;
  std::string readBuffer_;
};

}  // namespace smtpgate
