#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/backend_link.h"
#include "gateway/metrics.h"
#include "gateway/runtime.h"
#include "gateway/smtp/proxy_parser.h"
#include "gateway/smtp/smtp_session.h"
#include "gateway/spool.h"
#include "policy/decision.h"
#include "tls/tls_engine.h"

namespace smtpgate {

class Worker;

// One client: owns the socket, the inactivity timer, the optional TLS engine and the SMTP
// session, and carries out the session's actions. Lifetime (house rule 4): the object is freed
// only after both handles' close callbacks ran and no thread-pool work refers to it.
class ClientConnection : private smtp::PolicyHooks, private BackendLink::Owner {
 public:
  ClientConnection(Worker& worker, std::shared_ptr<const Runtime> runtime,
                   const ListenerConfig& listener, std::string sessionId);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  // Called once after uv_accept succeeded and admission passed.
  void start(const std::string& clientIp, unsigned clientPort);
  // Listeners with proxy_protocol: after uv_accept, from a trusted peer. Reads the PROXY
  // header (deadline: timeouts_s.handshake), then Worker::admit() with the client it names.
  void awaitProxyHeader(const std::string& peerIp, unsigned peerPort);
  const ListenerConfig& listener() const { return listener_; }
  // Graceful stop (drain deadline passed or second signal): 421 when possible, then close.
  void shutdownNow();
  // Immediate close without a reply (used when accept fails).
  void abort();
  const std::string& clientIp() const { return clientIp_; }
  const std::string& sessionId() const { return sessionId_; }
  // Admission passed and start() ran: the session counts as active until it is freed.
  bool admitted() const { return admitted_; }
  // The worker's deferred flush (Worker::deferFlush): the replies and backend bytes this loop
  // iteration produced, each side in one write.
  void flushOutput();

 private:
  enum class Phase { ProxyHeader, Plain, Handshaking, Tls, Closing };
  struct WorkRequest;

  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onShutdown(uv_shutdown_t* req, int status);
  static void onTimer(uv_timer_t* timer);
  static void onWatchdog(uv_timer_t* timer);
  static void onTarpit(uv_timer_t* timer);
  static void onClose(uv_handle_t* handle);
  static void onWork(uv_work_t* req);
  static void onAfterWork(uv_work_t* req, int status);

  // The PROXY header phase (client_connection_proxy.cc).
  void onProxyBytes(std::string_view bytes);
  void proxyHeaderTimeout();
  void onCiphertext(std::string_view bytes);
  void onPlaintext(std::string_view bytes);
  void beginHandshake();
  void handshakeDone();
  // smtpgate_handshakes_total: once per handshake begun, at its end (done, failed, abandoned).
  void countHandshake(Metrics::HandshakeOutcome outcome);
  void perform(smtp::Actions actions);
  // Replies are collected and written by flushOutput() (or before a STARTTLS handshake or a
  // close), so that those of one read or one backend batch share a write and a TLS record.
  void sendReply(std::string_view bytes);
  void queueFlush();
  void writeReplies();
  void flushTls();
  void writeRaw(std::string bytes);
  void onWritten(int status, std::size_t size);
  void authenticate(smtp::Authenticate request);
  void deliver(smtp::Deliver request);
  void queueWork(std::function<void()> work, std::function<void()> done);
  void armTimer(unsigned seconds);
  void updateReading();
  // The abuse limits the inactivity timer cannot see (SPEC section 5, limits): the DATA
  // pace (data_total, min_data_rate_bps) and replies the client never reads (timeouts_s.write),
  // checked once a second by the watchdog while either applies.
  void watchData();
  void watchWrites();
  void updateWatchdog();
  // The error tarpit: the session asked for a pause (tarpitMs()); reading stops meanwhile.
  void watchTarpit();
  // The per-IP rate of new TLS handshakes (Admission); logs a refusal.
  bool admitHandshake();
  void closeGracefully();

  // The TLS decision (SPEC section 4): PolicyHooks for AUTH, RCPT and plaintext commands,
  // plus the checkpoints the connection owns (ClientHello, first command).
  Verdict onAuthIdentity(std::string_view user) override;
  Verdict onRecipient(std::string_view address) override;
  void onPlaintextRefused(std::string_view command) override;
  tls::ClientHelloVerdict onClientHello(const tls::HandshakeFacts& early);
  // The policy with the current tenants and schedule, the clock and the CSPRNG; records the
  // rule and tenant for the traces.
  policy::Decision decide(policy::Checkpoint checkpoint, const policy::SessionView& view,
                          std::string_view domain);
  policy::SessionView sessionView(const std::string& authUser) const;
  void logDecision(const policy::Decision& decision, std::string_view checkpoint);
  // Trace records (SPEC section 7): one per accepted message, one per session at its end.
  void traceMessage(const smtp::Envelope& envelope, uint64_t size, const std::string& reply,
                    const std::string& queueId);
  void traceSession();

  // Relay mode (SPEC section 6): the backend link and what each awaited reply answers.
  enum class Awaited { Command, EndOfData };
  void openBackend();
  void sendToBackend(std::string bytes, bool expectReply, Awaited kind = Awaited::Command);
  void dropBackend(bool polite);
  void onBackendReady(bool ok, const std::string& reason,
                      const smtp::Capabilities& capabilities) override;
  void onBackendReply(const smtp::Reply& reply) override;
  void onBackendLost(const std::string& reason) override;
  void onBackendWritable() override;
  void closeHandles();
  void maybeFree();
  SessionFacts facts() const;

  Worker& worker_;
  std::shared_ptr<const Runtime> runtime_;
  const ListenerConfig listener_;
  EndpointKind endpoint_;
  std::string sessionId_;
  std::string clientIp_;
  unsigned clientPort_ = 0;
  uint64_t startedMs_ = 0;

  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_timer_t watchdog_{};     // 1 s ticks while DATA is read or replies pile up unread
  uv_timer_t tarpitTimer_{};  // the error tarpit's pause
  uv_shutdown_t shutdownReq_{};
  int openHandles_ = 0;
  int pendingWork_ = 0;
  bool closing_ = false;     // handles are being closed: callbacks return at once
  bool reading_ = false;
  bool admitted_ = false;
  bool flushQueued_ = false;
  std::string pendingReplies_;  // plaintext replies not yet written (or encrypted)
  std::string pendingBackend_;  // bytes for the backend not yet sent
  std::size_t writeQueueBytes_ = 0;
  bool watchdogRunning_ = false;
  bool tarpitArmed_ = false;
  bool dataWatched_ = false;   // the session is in DATA: its pace is measured
  uint64_t dataStartMs_ = 0;   // loop clock at the start of the DATA phase
  uint64_t windowStartMs_ = 0; // the current min_data_rate_bps window
  uint64_t windowBytes_ = 0;   // bytes received in it
  uint64_t writeStallSinceMs_ = 0;  // 0: no stall (set above kWriteStallMark, cleared once the queue is empty)
  std::size_t stallQueued_ = 0;  // the write queue when the stall was last seen to move

  Phase phase_ = Phase::Plain;
  std::unique_ptr<smtp::ProxyParser> proxy_;  // while the PROXY header is read
  std::string proxyServerIp_;                  // what the client connected to, per the header
  unsigned proxyServerPort_ = 0;
  std::unique_ptr<tls::TlsEngine> tls_;
  smtp::SmtpSession session_;
  unsigned timeoutS_ = 0;
  unsigned messages_ = 0;
  policy::Rule lastRule_ = policy::Rule::D8;
  std::string tenant_;  // the tenant of the last decision that named one
  BackendLink* backend_ = nullptr;  // owned until quit()/abort(); frees itself
  int64_t startedWallMs_ = 0;
  std::string lastReply_;     // the last reply line sent, for the session's trace
  uint64_t relayedBytes_ = 0; // message bytes sent to the backend in this DATA
  std::deque<Awaited> awaited_;
};

}  // namespace smtpgate
