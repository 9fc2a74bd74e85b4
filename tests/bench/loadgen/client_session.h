#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/reply_parser.h"
#include "tests/bench/loadgen/options.h"
#include "tests/bench/loadgen/stats.h"
#include "tls/tls_context.h"
#include "tls/tls_engine.h"

namespace smtpgate::loadgen {

class ClientSession;

// What every session shares, read-only except the stats (one loop thread writes them).
struct SessionConfig {
  uv_loop_t* loop = nullptr;
  const Options* options = nullptr;
  std::shared_ptr<tls::TlsContext> tls;      // null in plain mode
  const std::string* messageWire = nullptr;  // dot-stuffed, ends with ".\r\n"
  sockaddr_storage address{};
  std::vector<sockaddr_storage> sources;  // bind addresses, used in turn; empty: none
  std::string authCommand;                // "AUTH PLAIN ...\r\n" or ""
  Stats* stats = nullptr;
  char* readBuffer = nullptr;  // one buffer for every read: the loop runs one callback at a time
  size_t readBufferSize = 0;
};

// Who runs the sessions: told when a session is ready to hold (idle mode) and when it is gone.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual void onSessionHeld(ClientSession* session) = 0;
  // After the last close callback; the host deletes the session.
  virtual void onSessionClosed(ClientSession* session) = 0;
};

// One SMTP client connection, as a state machine over a libuv socket and, for TLS, a
// memory-BIO TlsEngine:
//   starttls: greeting, EHLO, STARTTLS, handshake, EHLO [, AUTH] -> ready
//   implicit: handshake, greeting, EHLO [, AUTH] -> ready
//   plain:    greeting, EHLO [, AUTH] -> ready
// then, when ready: hold (idle mode), or M messages (MAIL, RCPT, DATA, body; pipelined when the
// server offers PIPELINING), then QUIT. Every outcome goes to the stats exactly once.
class ClientSession {
 public:
  ClientSession(const SessionConfig& config, SessionHost& host);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // `sequence` picks the source address (sources[sequence % size]).
  void start(int64_t sequence);
  // Idle mode: leave the hold and QUIT.
  void quit();
  // Fails the session now (the duration limit).
  void abort(ErrorKind kind, const std::string& detail);
  bool held() const { return state_ == State::Held; }

 private:
  enum class State { Connecting, Setup, Handshake, Ready, Held, Messages, Quitting, Done };
  // The replies we wait for, in order (several at once when pipelining).
  enum class Expect { Greeting, Ehlo1, StartTls, Ehlo2, Auth, Mail, Rcpt, Data, Body, Rset, Quit };

  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onShutdown(uv_shutdown_t* req, int status);
  static void onTimeout(uv_timer_t* timer);
  static void onClose(uv_handle_t* handle);

  void connected();
  void received(std::string_view bytes);
  void receivedEnd(int status);
  void plaintext(std::string_view bytes);
  void handleReply(const smtp::Reply& reply, Expect expect);
  void startTls();
  void handshakeDone();
  void ready();
  void startMessage();
  void messageDone(bool ok, int code);
  void nextMessage();
  void sendQuit();
  void pumpBody();
  void written(size_t bytes);

  void send(std::string_view text, std::initializer_list<Expect> expects);
  void writeApplication(std::string_view bytes);
  void flushTls();
  void writeRaw(std::string bytes);
  void writeRawView(std::string_view bytes);  // bytes that outlive the write (the message)
  void armTimer();

  void finishOk();
  void fail(ErrorKind kind, const std::string& detail);
  void closeAll();
  double msSince(uint64_t startNs) const;

  const SessionConfig& config_;
  SessionHost& host_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connectReq_{};
  uv_shutdown_t shutdownReq_{};
  int openHandles_ = 0;
  bool closing_ = false;
  bool finished_ = false;  // the outcome is counted
  State state_ = State::Connecting;

  std::unique_ptr<tls::TlsEngine> tls_;
  smtp::ReplyParser parser_;
  std::deque<Expect> expects_;
  bool tlsStartedNow_ = false;  // STARTTLS accepted while handling a batch of replies
  bool pipelining_ = false;

  uint64_t connectStart_ = 0;
  uint64_t handshakeStart_ = 0;
  uint64_t messageStart_ = 0;
  int64_t messagesDone_ = 0;
  bool inMessage_ = false;
  int transactionFailure_ = 0;  // first negative reply of a pipelined MAIL/RCPT/DATA
  bool abandonBody_ = false;    // 354 after a failed RCPT: end DATA at once, count a failure
  bool sendingBody_ = false;
  size_t bodyPos_ = 0;
  size_t queued_ = 0;  // bytes handed to uv_write and not yet written
};

}  // namespace smtpgate::loadgen
