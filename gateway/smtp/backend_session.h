#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/capabilities.h"
#include "gateway/smtp/reply_parser.h"

namespace smtpgate::smtp {

// How the backend learns the real client (SPEC section 6).
enum class Handoff { None, Xclient, ProxyV1, ProxyV2 };

// The client as the gateway knows it, for XCLIENT and the PROXY header.
struct ClientFacts {
  std::string ip;  // as the socket (or a trusted PROXY header) gave it
  std::uint16_t port = 0;
  std::string helo;         // the client's HELO/EHLO argument, "" if none
  bool esmtp = true;        // EHLO (PROTO=ESMTP) rather than HELO (PROTO=SMTP)
  std::string reverseName;  // verified reverse name; "" gives NAME=[UNAVAILABLE]
  std::string login;        // a SASL login the gateway itself verified; "" sends no LOGIN
  std::string serverIp;     // the gateway address the client reached
  std::uint16_t serverPort = 0;
  std::string tlsVersion;  // "TLSv1.3"; "" = no TLS
  std::string tlsCipher;   // "TLS_AES_256_GCM_SHA384"
  std::string sni;
};

struct BackendOptions {
  std::string heloName;  // the gateway's own name, for the EHLO that is the gateway's
  Handoff handoff = Handoff::None;
  bool startTls = false;  // "tls": "starttls" toward the backend
  ClientFacts facts;
};

// The client side of one backend connection, free of IO (nginx's mail proxy handshake as a
// sans-IO object): the caller connects, sends start(), feeds every backend byte to onBytes()
// and sends what comes back; it starts TLS on Event::StartTls and calls onTlsEstablished().
//
//   [PROXY header] -> 220 -> EHLO -> 250 -> [STARTTLS -> 220 -> TLS -> EHLO -> 250]
//     -> [XCLIENT -> 220 -> EHLO -> 250] -> Ready
//
// The handshake is lock-step: a backend that sends more than the one reply awaited (or
// plaintext after its STARTTLS 220: response injection) fails the session.
// After Ready the object only parses: the caller sends commands, and onBytes() returns their
// replies in order. Timeouts belong to the caller.
class BackendSession {
 public:
  enum class Event {
    None,
    Ready,     // capabilities() are the backend's final ones
    StartTls,  // start TLS toward the backend now, then call onTlsEstablished()
    Failed,    // give up on this backend connection (reason, and the reply if there was one)
  };
  struct Result {
    std::string toSend;  // bytes for the backend, in order
    Event event = Event::None;
    std::string reason;          // Failed: why, for the log
    std::optional<Reply> reply;  // Failed: the backend's reply that caused it, if any
    std::vector<Reply> replies;  // after Ready: replies to the caller's commands, in order
  };

  explicit BackendSession(BackendOptions options);

  // The bytes to send as soon as the connection is up: the PROXY header for the proxy
  // handoffs, else "". Then wait for the greeting.
  std::string start();
  // Backend bytes (decrypted under TLS), split anywhere.
  Result onBytes(std::string_view bytes);
  // The TLS handshake toward the backend finished: EHLO again; what was learnt before is void.
  Result onTlsEstablished();

  bool ready() const { return state_ == State::Ready; }
  bool failed() const { return state_ == State::Failed; }
  // The keywords of the last EHLO reply.
  const Capabilities& capabilities() const { return caps_; }
  // The greeting's first line ("220 mx.example ESMTP Postfix"), for the log.
  const std::string& greeting() const { return greeting_; }

  // The queue id in the backend's reply to the end of DATA: Postfix "250 2.0.0 Ok: queued as
  // 4ABCD123", Exim "250 OK id=1abcDE-000123-XY", Sendmail "250 2.0.0 4AB1cD2e012345 Message
  // accepted for delivery", generic "queued as X" / "id=X"; "" for none or a non-2xx reply.
  static std::string queueIdFrom(const Reply& reply);
  // "XCLIENT ADDR=192.0.2.10 PORT=56324 NAME=[UNAVAILABLE] HELO=client.example PROTO=ESMTP\r\n"
  // with only the attributes the backend announced (Postfix XCLIENT_README): values are
  // xtext, IPv6 addresses are "IPV6:2001:db8::1", unknown ones "[UNAVAILABLE]"; LOGIN,
  // DESTADDR and DESTPORT only when known. "" when no attribute is in common.
  static std::string xclientCommand(const std::vector<std::string>& attributes,
                                    const ClientFacts& facts);

 private:
  enum class State { Greeting, Ehlo, StartTlsReply, TlsHandshake, XclientReply, Ready, Failed };

  // One reply to what the handshake is waiting for.
  void step(const Reply& reply, Result& out);
  // After a 250 to EHLO: the next handshake step, or Ready.
  void afterEhlo(Result& out);
  void sendEhlo(Result& out);
  // The name for the next EHLO: the gateway's while the backend sees the gateway, the
  // client's once it sees the client (after XCLIENT, as in Postfix's XCLIENT_README example,
  // and under PROXY), so that HELO logging and restrictions apply to the real client.
  std::string ehloName() const;
  void fail(Result& out, std::string reason, const Reply* reply = nullptr);

  BackendOptions options_;
  State state_ = State::Greeting;
  ReplyParser parser_;
  Capabilities caps_;
  std::string greeting_;
  bool tlsDone_ = false;
  bool xclientDone_ = false;
};

}  // namespace smtpgate::smtp
