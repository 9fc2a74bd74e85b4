#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tls/handshake_facts.h"
#include "tls/tls_context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace smtpgate::tls {

// What a server engine's ClientHello hook decides, before the version is negotiated.
struct ClientHelloVerdict {
  // 0 keeps the context's minimum; e.g. kTls12 refuses older clients with protocol_version,
  // exactly as a context with that minimum would. The hook can only raise the minimum: a
  // value at or below the context's changes nothing (the context's cipher list may not
  // carry the suites older versions need).
  uint16_t minVersion = 0;
  bool reject = false;  // abort the handshake now (handshake_failure alert)
  // Not empty: the session context of this connection (at most 32 bytes). Sessions resume only
  // where they were made, so a listener that serves two endpoints by SNI gives each its own:
  // a legacy endpoint's ticket never resumes on the strict one.
  std::string sessionContext;
};

// Runs once per handshake on the raw ClientHello; `early` holds sni and maxOfferedVersion.
// It runs inside BoringSSL: it must not throw (a throw counts as reject) and must not touch
// the engine.
using ClientHelloHook = std::function<ClientHelloVerdict(const HandshakeFacts& early)>;

// One TLS connection over memory BIOs: the caller moves ciphertext between the socket and
// the engine, the engine never touches a socket.
//   feedCiphertext(bytes from the socket) -> handshake() / readPlaintext() -> takeCiphertext()
class TlsEngine {
 public:
  enum class Status {
    Ok,        // progress made / nothing to report
    WantRead,  // needs more ciphertext from the peer
    Complete,  // handshake finished (handshake() only)
    Closed,    // peer sent close_notify (readPlaintext() only)
    Error,     // fatal: see lastError(); takeCiphertext() may hold an alert to send
  };

  // Server engine. The engine keeps `context` alive.
  explicit TlsEngine(std::shared_ptr<TlsContext> context);
  // Client engine; `sni` may be empty.
  TlsEngine(std::shared_ptr<TlsContext> context, const std::string& sni);
  ~TlsEngine();
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  // Server engines only (ignored on clients); set before the first handshake() call. Lets the
  // caller choose per connection, by SNI and offered version, what the context alone cannot:
  // by-sni endpoints and rule D1's refusal, which depends on the time of the handshake.
  void setClientHelloHook(ClientHelloHook hook);

  void feedCiphertext(std::string_view bytes);
  // Drives the handshake as far as the fed ciphertext allows. On Error the engine is dead:
  // send what takeCiphertext() holds (the alert), then close. A TLS 1.3 server holds its
  // session tickets back until its first writePlaintext().
  Status handshake();
  bool handshakeComplete() const { return complete_; }
  // Appends decrypted application data to `out`. Ok when nothing more can be read now.
  Status readPlaintext(std::string& out);
  // feedCiphertext(ciphertext) and readPlaintext(out) in one, without first copying the
  // ciphertext into the engine: BoringSSL reads it where it is, and only what it leaves (a
  // record cut by the end of the read) is kept for the next call.
  Status readPlaintext(std::string_view ciphertext, std::string& out);
  // Encrypts application data (after the handshake). Error on failure.
  Status writePlaintext(std::string_view bytes);
  // Queues close_notify.
  void shutdown();
  // Ciphertext waiting to go to the peer (handshake records, alerts, application data).
  bool hasCiphertext() const;
  std::string takeCiphertext();

  // Valid once handshakeComplete(); maxOfferedVersion and sni are valid from the ClientHello on.
  const HandshakeFacts& facts() const { return facts_; }
  const std::string& lastError() const { return error_; }

  SSL* raw() const { return ssl_; }
  // Used by the context's ClientHello callback.
  HandshakeFacts& mutableFacts() { return facts_; }
  // Runs the hook on facts_ (sni, maxOfferedVersion already set) and raises the SSL's minimum
  // version as asked. False: abort the handshake (the reason is kept for lastError()).
  bool runClientHelloHook();

 private:
  void init(bool server, const std::string& sni);
  Status failure(int sslError);
  void collectFacts();
  // The engine's BIO (see tls_engine.cc): BoringSSL reads ciphertext straight from inbox_ and
  // writes it straight into outbox_, so an idle connection holds no fixed-size buffers.
  static int bioRead(BIO* bio, char* out, int len);
  static int bioWrite(BIO* bio, const char* data, int len);
  static long bioCtrl(BIO* bio, int cmd, long larg, void* parg);
  std::size_t inboxPending() const { return inbox_.size() - inboxPos_; }
  std::size_t pendingCiphertext() const { return inboxPending() + borrowed_.size(); }

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  bool server_ = false;
  bool complete_ = false;
  bool failed_ = false;
  bool closed_ = false;
  std::string inbox_;  // ciphertext fed, read by BoringSSL from inboxPos_ on
  size_t inboxPos_ = 0;
  std::string_view borrowed_;  // the caller's ciphertext, read after inbox_, during one call
  std::string outbox_;  // ciphertext BoringSSL wrote, waiting for takeCiphertext()
  HandshakeFacts facts_;
  ClientHelloHook hook_;
  std::string hookError_;  // why the hook aborted the handshake, for failure()
  std::string error_;
};

}  // namespace smtpgate::tls
