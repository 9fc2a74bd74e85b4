#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace smtpgate {

class TraceStore;

// SPEC section 7: the counters behind GET /metrics (Prometheus text format 0.0.4). Shared by
// every worker thread: fixed label sets are arrays of relaxed atomics indexed by enum, the few
// open-ended ones (listener, tenant) maps under a mutex. Counted where the event happens, not
// derived from the traces, so the numbers stay exact when the trace store drops rows.
class Metrics {
 public:
  enum class Endpoint { Strict, Legacy };
  // None is a plaintext message ("none"); in handshakes the same slot is "unknown": no
  // ClientHello arrived, or it named no version we know.
  enum class Version { None, V1_0, V1_1, V1_2, V1_3 };
  enum class HandshakeOutcome { Ok, Failed, RefusedVersion };
  enum class Refusal {
    MaxConnections,
    MaxConnectionsPerIp,
    NewConnectionsPerIpPerMinute,
    ProxyUntrusted,       // a peer outside listeners[].proxy_protocol.trusted
    ProxyHeaderInvalid,   // malformed, oversize or no PROXY header before the deadline
  };
  enum class BackendError { Connect, Timeout, Closed, Tls, Protocol };

  // `startTimeSeconds` < 0: now (Unix seconds).
  explicit Metrics(double startTimeSeconds = -1);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // "1.0".."1.3" (tls::versionLabel) → the version; "" / "none" / anything else → None.
  static Version versionFromLabel(std::string_view label);
  // Rule numbers 1..8 (policy::Rule's values); out of range is ignored.
  static constexpr int kRules = 8;

  // A listener shows up with 0 before its first connection.
  void addListener(const std::string& listener);
  void connectionAccepted(const std::string& listener);
  void connectionRefused(Refusal reason);
  void sessionStarted() { activeSessions_.fetch_add(1, std::memory_order_relaxed); }
  void sessionEnded() { activeSessions_.fetch_sub(1, std::memory_order_relaxed); }
  void handshake(Endpoint endpoint, Version version, HandshakeOutcome outcome);
  void decision(int rule);
  void speedbumpRejection() { speedbump_.fetch_add(1, std::memory_order_relaxed); }
  void messageAccepted(const std::string& tenant, Version version);
  void backendError(BackendError kind);

  // Reads for tests and the admin API.
  uint64_t connections(const std::string& listener) const;
  uint64_t refused(Refusal reason) const;
  int64_t activeSessions() const { return activeSessions_.load(std::memory_order_relaxed); }
  uint64_t handshakes(Endpoint endpoint, Version version, HandshakeOutcome outcome) const;
  uint64_t decisions(int rule) const;
  uint64_t speedbumpRejections() const { return speedbump_.load(std::memory_order_relaxed); }
  uint64_t messages(const std::string& tenant, Version version) const;
  uint64_t backendErrors(BackendError kind) const;
  double startTimeSeconds() const { return startTime_; }

  // Everything in the Prometheus text format, `# HELP` and `# TYPE` before each family. The
  // trace-store gauges and counters are left out when `traces` is null.
  std::string prometheusText(const TraceStore* traces) const;

  // Label value escaping of the text format: \ → \\, " → \", newline → \n.
  static std::string escapeLabel(std::string_view value);

 private:
  using Counter = std::atomic<uint64_t>;
  static constexpr std::size_t kEndpoints = 2;
  static constexpr std::size_t kVersions = 5;
  static constexpr std::size_t kOutcomes = 3;
  static constexpr std::size_t kRefusals = 5;
  static constexpr std::size_t kBackendErrors = 5;

  static std::size_t handshakeIndex(Endpoint e, Version v, HandshakeOutcome o) {
    return (static_cast<std::size_t>(e) * kVersions + static_cast<std::size_t>(v)) * kOutcomes +
           static_cast<std::size_t>(o);
  }

  double startTime_;
  std::array<Counter, kRefusals> refused_{};
  std::atomic<int64_t> activeSessions_{0};
  std::array<Counter, kEndpoints * kVersions * kOutcomes> handshakes_{};
  std::array<Counter, kRules> decisions_{};
  Counter speedbump_{0};
  std::array<Counter, kBackendErrors> backendErrors_{};

  mutable std::mutex mutex_;  // the open-ended label sets below
  std::map<std::string, uint64_t> connections_;
  std::map<std::pair<std::string, Version>, uint64_t> messages_;
};

}  // namespace smtpgate
