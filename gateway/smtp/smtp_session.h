#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/smtp/actions.h"
#include "gateway/smtp/data_decoder.h"
#include "gateway/smtp/line_framer.h"

namespace smtpgate::smtp {

enum class BareLfPolicy { Normalize, Reject };

// The settings of one session: the listener's and the smtp/limits sections of the config.
struct SessionSettings {
  std::string hostname = "localhost";
  bool implicitTls = false;   // the listener speaks TLS from the first byte
  bool requireTls = true;     // plaintext MAIL/RCPT/AUTH get 530 5.7.0
  bool authAvailable = true;  // offer AUTH PLAIN LOGIN after TLS
  std::size_t maxMessageBytes = 36700160;
  std::size_t maxRecipients = 100;
  unsigned maxErrors = 10;
  BareLfPolicy bareLf = BareLfPolicy::Normalize;
  unsigned commandTimeoutS = 300;
  unsigned dataTimeoutS = 180;
  // The error tarpit: each error reply after the kTarpitFreeErrors-th pauses the input for
  // this long (tarpitMs(), resume()). 0 = off.
  unsigned errorDelayMs = 0;
  // Relay mode (backend "smtp"): MAIL, RCPT, DATA and AUTH go to the backend through the
  // OpenBackend/Backend* actions and its replies reach the client unchanged. Otherwise each
  // message is handed over whole with Deliver (the spool backend).
  bool relay = false;
  // Relay mode: the EHLO keywords offered after TLS, in order, as the backend announced them
  // (already filtered by the gateway), e.g. {"PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN"}.
  // They also decide what the session accepts: AUTH PLAIN and LOGIN when the AUTH keyword
  // names PLAIN or LOGIN (relayed as PLAIN if offered, else LOGIN), XOAUTH2 when it names
  // XOAUTH2 (authAvailable is not used in relay mode); MAIL's SMTPUTF8 with SMTPUTF8; RCPT's
  // NOTIFY= and ORCPT= with DSN.
  std::vector<std::string> relayCapabilities;
};

// The TLS decision's hooks into a session (SPEC section 4). The connection answers them
// synchronously from the policy (with its clock and random source) and records each decision.
class PolicyHooks {
 public:
  struct Verdict {
    enum class Kind { Accept, RejectAndClose, RejectRecipient };
    Kind kind = Kind::Accept;
    std::string reply;  // the full reply line without CRLF, for the two rejections
  };
  virtual ~PolicyHooks() = default;
  // AUTH, once the identity is known (PLAIN authcid, LOGIN user name, XOAUTH2 user=) and
  // before the credentials are checked or passed on (D4, D5). RejectAndClose (or any
  // refusal): the reply, then Close; no Authenticate action is ever emitted for it. LOGIN
  // asks before the password prompt.
  virtual Verdict onAuthIdentity(std::string_view user) = 0;
  // RCPT in a session without AUTH, after the address passed syntax and limit checks (D6).
  // RejectRecipient: the reply for this recipient only (not counted as a client error);
  // RejectAndClose: the reply, then Close.
  virtual Verdict onRecipient(std::string_view address) = 0;
  // MAIL, RCPT or AUTH refused with 530 for want of TLS (D7): for the record only.
  virtual void onPlaintextRefused(std::string_view command) = 0;
};

// The server side of one SMTP conversation (RFC 5321, 3207, 4954, 2920, 1870, 6152, 2034),
// free of IO: bytes in, actions out. The connection feeds decrypted bytes, performs the
// actions, and reports the outcome of asynchronous ones (TLS, AUTH, delivery) back.
class SmtpSession {
 public:
  explicit SmtpSession(SessionSettings settings);

  // Error replies answered at once before the tarpit starts (errorDelayMs).
  static constexpr unsigned kTarpitFreeErrors = 3;

  // The greeting; for implicit TLS call it after onTlsEstablished().
  Actions start();
  // Client bytes (plaintext, or decrypted under TLS). Complete commands are answered in
  // order; replies of one call come as one Write. While an Authenticate or Deliver is
  // outstanding, input is buffered and processed after the result arrives.
  Actions onBytes(std::string_view bytes);
  // The TLS handshake finished: STARTTLS state reset (RFC 3207 §4.2), EHLO required again.
  Actions onTlsEstablished();
  Actions onAuthResult(bool ok);
  struct DeliveryResult {
    bool ok = false;
    std::string queueId;  // ok: "250 2.0.0 Ok: queued as <queueId>"
    std::string reply;    // !ok: the full reply line to send, e.g. "451 4.3.0 Error: ..."
  };
  Actions onDeliveryResult(const DeliveryResult& result);
  // Relay mode: the backend link is up (ok) or could not be opened (the client gets
  // 421 4.4.2 and the session closes; nothing was accepted).
  Actions onBackendReady(bool ok);
  // Relay mode: one complete backend reply (one or more CRLF-terminated lines) to the oldest
  // BackendCommand / BackendEndData still waiting for one. It reaches the client unchanged,
  // except that bare CR/LF inside are made line ends of their own; a reply without a 2xx-5xx
  // code drops the link (AbortBackend) as if it were lost. Backend refusals are not client
  // errors (max_errors).
  Actions onBackendReply(std::string_view reply);
  // Relay mode: the backend connection failed or closed. Every reply still awaited becomes
  // 451 4.4.1 for the client (never a 250; an awaited RSET gets 250) and the transaction is
  // reset; in the middle of DATA the rest of the client's data is read and then answered
  // 451 4.4.1. The next MAIL/AUTH opens a new backend link.
  Actions onBackendLost();
  // The trace line to put in front of each message (the connection builds it: it knows the
  // clock and the TLS facts). Called once per message at the start of the content.
  void setReceivedHeader(std::function<std::string(const Message&)> make) {
    receivedHeader_ = std::move(make);
  }

  // The inactivity timer fired: 421 4.4.2 and Close.
  Actions onTimeout();
  // The connection's DATA watchdog: the phase is slower than min_data_rate_bps or longer
  // than data_total. 421 4.4.2 and Close; in relay mode the message is dropped upstream
  // (AbortBackend), never completed.
  Actions onDataTooSlow();
  // The error tarpit: after an error reply beyond kTarpitFreeErrors the session takes no
  // more input (it is buffered) and tarpitMs() says how long the connection should wait
  // before resume(), which answers what came in meanwhile. The connection stops reading
  // from the socket while it waits; it never blocks the loop.
  unsigned tarpitMs() const { return tarpit_ && !closed_ ? settings_.errorDelayMs : 0; }
  Actions resume();
  // STARTTLS may begin a handshake (the per-IP handshake rate); false: 454 4.7.0 and the
  // session goes on in plaintext. Unset: always allowed.
  void setStartTlsGate(std::function<bool()> gate) { startTlsGate_ = std::move(gate); }
  // The gateway is shutting down: 421 4.3.2 and Close (unless a reply is awaited).
  Actions onShutdown();

  // Hooks for the TLS decision; nullptr (the default) accepts everything. Not owned.
  void setPolicy(PolicyHooks* policy) { policy_ = policy; }
  // D2/D3: the next command line after the handshake, whatever it is, is answered with
  // `reply` and the session closes. Call it right after onTlsEstablished() (implicit TLS:
  // before or after start()). Lines pipelined after that one are never answered; the
  // rejection is not a client error.
  void rejectNextCommand(std::string reply);

  bool tlsActive() const { return tls_; }
  // Inside DATA: the message content is being read (relay mode: after the backend's 354).
  bool inData() const { return state_ == State::Data && !closed_; }
  // Grows whenever input completed something: a line was taken (command, SASL response) or
  // message bytes were consumed. The connection re-arms its inactivity timer on progress
  // only, so a line trickled one byte at a time cannot keep a session alive forever.
  uint64_t progress() const { return progress_; }
  bool closed() const { return closed_; }
  // True while an Authenticate or Deliver result is awaited, or (relay mode) the backend is
  // opening or a backend reply is awaited.
  bool waiting() const {
    return waiting_ != Waiting::None || backend_ == Backend::Opening || !awaited_.empty();
  }
  // Bytes buffered but not yet processed (the connection stops reading above a mark).
  std::size_t bufferedBytes() const { return framer_.buffered(); }
  const std::string& helo() const { return helo_; }
  bool esmtp() const { return esmtp_; }  // the client said EHLO (not HELO)
  // The transaction in progress (relay mode: still whole while its end-of-data reply is
  // being handled, for the trace record).
  const Envelope& envelope() const { return envelope_; }
  const std::string& authUser() const { return authUser_; }
  unsigned errors() const { return errors_; }

 private:
  enum class State {
    Command,
    Data,
    AuthPlainResponse,
    AuthLoginUser,
    AuthLoginPassword,
    AuthXoauth2Response,  // relay: the client's XOAUTH2 response after our empty challenge
    AuthRelayResponse,    // relay: the client's answer to a challenge of the backend
  };
  enum class Waiting { None, Auth, Delivery };
  enum class Backend { Closed, Opening, Open };
  // Relay mode: one reply the backend owes, oldest first (replies come back in order).
  struct Awaited {
    enum class Kind {
      Mail,
      Rcpt,
      Data,
      EndData,
      Rset,
      Auth,               // the final reply of an AUTH exchange
      AuthLoginUser,      // "AUTH LOGIN <user>": 334 asks for the password
      AuthChallengeable,  // "AUTH XOAUTH2 ...": a 334 goes to the client, who answers it
      Silent,             // our own RSET (EHLO in a transaction, DATA refused): no client reply
    };
    Kind kind = Kind::Silent;
    std::string recipient;  // Rcpt: the address, added to the envelope on a 2xx
    std::string after;      // local replies to later commands, due right after this reply
  };
  // Relay mode: what becomes of the message being read in DATA.
  enum class DataFate { Relay, TooBig, BareLineEnd, Lost };

  // The input loop: every complete command (or DATA bytes) in the buffer, in order, until
  // the input runs out, a result is awaited, TLS starts or the session closes.
  void process(Actions& out);
  // DATA: message bytes to the decoder (relay mode: streamed on); returns the bytes used.
  std::size_t feedData(std::string_view input, Actions& out);
  void handleCommand(std::string_view line, bool crlf, Actions& out);
  void handleAuthLine(std::string_view line, Actions& out);
  void handleDataEnd(Actions& out);
  // A reply to the client, in command order: under relay, behind the replies still awaited.
  void reply(std::string_view text);
  // A reply due now, ahead of anything still awaited (the answer to the oldest command).
  void replyNow(std::string_view text);
  // A 4xx/5xx reply to a client command: counts towards maxErrors (and may close).
  void error(std::string_view text, Actions& out);
  // Pending replies become one Write, then a SetTimeout if the wanted timer changed.
  void flush(Actions& out);
  // Close after the pending replies; under relay, once every awaited backend reply is in.
  void close(Actions& out);
  void closeNow(Actions& out);
  void resetTransaction();
  void resetSession();
  void wantTimer(unsigned seconds, bool force = false);
  void requestAuth(std::string mechanism, std::string authzid, std::string user,
                   std::string password, Actions& out);
  void resumeAfterResult(Actions& out);
  std::string hostReply(std::string_view code, std::string_view text) const;
  // A reply line from the policy, or `fallback` if it gave none.
  static std::string policyReply(std::string_view text, std::string fallback);
  // D4/D5: true when the policy refused the AUTH identity (the reply is written and the
  // session closed; the caller drops the credentials).
  bool authIdentityRefused(std::string_view user, Actions& out);
  // D7: 530 for MAIL, RCPT or AUTH without TLS, reported to the policy.
  void mustStartTls(std::string_view command, Actions& out);

  void cmdEhlo(std::string_view arg, bool esmtp, Actions& out);
  void cmdStartTls(std::string_view arg, Actions& out);
  void cmdAuth(std::string_view arg, Actions& out);
  void cmdMail(std::string_view arg, Actions& out);
  void cmdRcpt(std::string_view arg, Actions& out);
  void cmdData(std::string_view arg, bool crlf, Actions& out);
  void cmdRset(Actions& out);

  // Relay mode (relay_session.cc, relay_auth.cc).
  void learnRelayCapabilities();
  void relayEhloCapabilities();
  // A command line for the backend with what its reply answers; opens the backend first
  // when it is closed (the line waits for onBackendReady()).
  void sendBackend(std::string line, Awaited::Kind kind, Actions& out, std::string recipient = {});
  // True when the next command line must wait for the backend: it is opening, or replies
  // are awaited and the line is not a RCPT or DATA that may join the pipelined batch.
  bool relayBlocked() const;
  // The reply to a DATA that went with its MAIL and RCPTs: true when their replies left no
  // transaction or no recipient, and the client got the local refusal instead.
  bool pipelinedDataRefused(char kind, Actions& out);
  // Drop the backend link at once (AbortBackend); what was awaited fails like a lost link.
  void abortBackend(Actions& out);
  // The backend is gone: every awaited reply becomes 451 4.4.1 (RSET: 250), DATA is read to
  // its end and refused, the transaction is reset.
  void failBackend();
  // After a backend event: deferred close or shutdown, then the input loop.
  void resumeRelay(Actions& out);
  void handleBackendReply(Awaited entry, std::string text, Actions& out);
  void startRelayData(Actions& out);
  void relayContent(Actions& out);
  void relayDataEnd(Actions& out);
  unsigned relayTimer() const;
  void relayCredentials(std::string authzid, std::string user, std::string password, Actions& out);
  void relayXoauth2(std::string_view response, Actions& out);
  void relayAuthResponse(std::string_view line, Actions& out);
  void finishRelayAuth(const std::string& text);

  SessionSettings settings_;
  LineFramer framer_;
  DataDecoder data_;
  State state_ = State::Command;
  Waiting waiting_ = Waiting::None;
  std::string pending_;  // replies not yet flushed into a Write
  bool tls_ = false;
  bool tlsStarting_ = false;      // StartTls emitted, onTlsEstablished() not yet called
  bool shutdownPending_ = false;  // onShutdown() arrived while a result was awaited
  bool closed_ = false;
  std::string helo_;
  bool esmtp_ = false;
  std::string authUser_;
  std::string authUserPending_;  // LOGIN user between prompts, or the user being checked
  bool inTransaction_ = false;
  Envelope envelope_;
  unsigned errors_ = 0;
  unsigned timerWanted_ = 0;
  unsigned timerArmed_ = 0;
  bool timerForce_ = false;
  std::function<std::string(const Message&)> receivedHeader_;
  PolicyHooks* policy_ = nullptr;
  std::optional<std::string> rejectNext_;  // D2/D3: the reply for the next command line
  bool tarpit_ = false;        // input paused after an error (errorDelayMs), until resume()
  uint64_t progress_ = 0;
  std::function<bool()> startTlsGate_;

  // Relay mode.
  struct RelayOffers {
    bool plain = false;
    bool login = false;
    bool xoauth2 = false;
    bool smtputf8 = false;
    bool dsn = false;
    bool pipelining = false;  // RFC 2920: MAIL, RCPTs and DATA go out in one batch
  };
  RelayOffers offers_;
  Backend backend_ = Backend::Closed;
  std::deque<Awaited> awaited_;
  std::vector<std::string> queuedLines_;  // BackendCommand lines while the backend opens
  std::size_t pendingRcpts_ = 0;          // RCPTs sent whose reply is awaited
  bool closeDeferred_ = false;            // close() once the awaited replies are in
  bool dataCrlf_ = false;                 // the DATA line awaiting 354 ended with CRLF
  DataFate dataFate_ = DataFate::Relay;
  std::string relayHead_;  // the Received: lines, sent in front of the first content
  std::string relayPassword_;  // LOGIN toward the backend: between the user and the password
};

}  // namespace smtpgate::smtp
