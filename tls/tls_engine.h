#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tls/handshake_facts.h"
#include "tls/tls_context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace smtpgate::tls {

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

  void feedCiphertext(std::string_view bytes);
  // Drives the handshake as far as the fed ciphertext allows. On Error the engine is dead:
  // send what takeCiphertext() holds (the alert), then close. A TLS 1.3 server holds its
  // session tickets back until its first writePlaintext().
  Status handshake();
  bool handshakeComplete() const { return complete_; }
  // Appends decrypted application data to `out`. Ok when nothing more can be read now.
  Status readPlaintext(std::string& out);
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

 private:
  void init(bool server, const std::string& sni);
  Status failure(int sslError);
  void collectFacts();
  // Move bytes between our buffers and the BIO pair, whose buffers are finite.
  size_t pumpIn();
  void pumpOut();
  bool inboxPending() const { return inboxPos_ < inbox_.size(); }

  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  BIO* network_ = nullptr;  // our end of the BIO pair
  bool server_ = false;
  bool complete_ = false;
  bool failed_ = false;
  bool closed_ = false;
  std::string inbox_;  // ciphertext fed but not yet accepted by the BIO pair
  size_t inboxPos_ = 0;
  std::string outbox_;  // ciphertext drained from the BIO pair, waiting for takeCiphertext()
  HandshakeFacts facts_;
  std::string error_;
};

}  // namespace smtpgate::tls
