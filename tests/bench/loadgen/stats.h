#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace smtpgate::loadgen {

// Samples of one latency, in milliseconds; percentiles by nearest rank.
class LatencySamples {
 public:
  void add(double ms) { samples_.push_back(ms); }
  size_t count() const { return samples_.size(); }
  // {"n", "p50", "p90", "p99", "max"}; the percentiles are null without samples.
  nlohmann::json summary() const;
  // Nearest-rank percentile of the samples (q in 0..100); 0 without samples.
  double percentile(double q) const;

 private:
  mutable std::vector<double> samples_;
  mutable bool sorted_ = false;
};

// Why a session failed (each failed session counts under exactly one).
enum class ErrorKind {
  Connect,   // the TCP connection could not be made
  Tls,       // the handshake failed (alert, refusal, peer closed during the handshake)
  Timeout,   // no progress for --timeout
  Closed,    // the server closed the connection or reset it outside a QUIT
  Protocol,  // a reply we cannot parse, or one we did not ask for
  Rejected,  // a negative reply ended the session (greeting, EHLO, STARTTLS, AUTH, 421)
  Aborted,   // still running at --duration-limit
};

const char* errorName(ErrorKind kind);

// What the whole run measured. One event-loop thread writes it: no locking.
struct Stats {
  int64_t sessionsOk = 0;
  int64_t sessionsFailed = 0;
  int64_t messagesOk = 0;
  int64_t messagesFailed = 0;
  int64_t messageBytesOk = 0;  // message octets (as sent, dot-stuffed) of accepted messages
  int64_t idleHeld = 0;
  bool durationLimitHit = false;
  LatencySamples connectToReady;  // connect() started -> ready for MAIL (after EHLO / AUTH)
  LatencySamples handshake;       // ClientHello -> handshake complete
  LatencySamples message;         // MAIL sent -> final reply to the end of DATA
  // The final reply of each message attempt (end of DATA, or the first negative reply of
  // MAIL/RCPT/DATA), and the negative reply that ended a session.
  std::map<int, int64_t> replies;
  std::map<ErrorKind, int64_t> errors;
  std::map<std::string, int64_t> negotiated;    // "TLSv1.3" -> sessions
  std::map<std::string, int64_t> errorSamples;  // first words of the errors, for diagnosis

  void countError(ErrorKind kind, const std::string& detail);
};

}  // namespace smtpgate::loadgen
