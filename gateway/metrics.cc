#include "gateway/metrics.h"

#include <fmt/format.h>

#include <chrono>

#include "gateway/trace_store.h"

namespace smtpgate {
namespace {

constexpr std::memory_order kRelaxed = std::memory_order_relaxed;

constexpr const char* kEndpointNames[] = {"strict", "legacy"};
constexpr const char* kMessageVersionNames[] = {"none", "1.0", "1.1", "1.2", "1.3"};
constexpr const char* kHandshakeVersionNames[] = {"unknown", "1.0", "1.1", "1.2", "1.3"};
constexpr const char* kOutcomeNames[] = {"ok", "failed", "refused_version"};
constexpr const char* kRefusalNames[] = {"max_connections", "max_connections_per_ip",
                                         "new_connections_per_ip_per_minute", "proxy_untrusted",
                                         "proxy_header_invalid"};
constexpr const char* kBackendErrorNames[] = {"connect", "timeout", "closed", "tls", "protocol"};

double nowSeconds() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return static_cast<double>(us) / 1e6;
}

// One metric family: the HELP and TYPE lines, then its samples.
class Family {
 public:
  Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  // `labels` is already rendered: `a="x",b="y"`, or "" for none.
  template <typename T>
  void sample(std::string_view labels, T value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name_, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name_, labels, value);
    }
  }

 private:
  std::string& out_;
  std::string_view name_;
};

std::string label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, Metrics::escapeLabel(value));
}

}  // namespace

Metrics::Metrics(double startTimeSeconds)
    : startTime_(startTimeSeconds < 0 ? nowSeconds() : startTimeSeconds) {}

Metrics::Version Metrics::versionFromLabel(std::string_view label) {
  if (label == "1.0") {
    return Version::V1_0;
  }
  if (label == "1.1") {
    return Version::V1_1;
  }
  if (label == "1.2") {
    return Version::V1_2;
  }
  if (label == "1.3") {
    return Version::V1_3;
  }
  return Version::None;
}

void Metrics::addListener(const std::string& listener) {
  std::lock_guard lock(mutex_);
  connections_.try_emplace(listener, 0);
}

void Metrics::connectionAccepted(const std::string& listener) {
  std::lock_guard lock(mutex_);
  ++connections_[listener];
}

void Metrics::connectionRefused(Refusal reason) {
  refused_[static_cast<std::size_t>(reason)].fetch_add(1, kRelaxed);
}

void Metrics::handshake(Endpoint endpoint, Version version, HandshakeOutcome outcome) {
  handshakes_[handshakeIndex(endpoint, version, outcome)].fetch_add(1, kRelaxed);
}

void Metrics::decision(int rule) {
  if (rule >= 1 && rule <= kRules) {
    decisions_[static_cast<std::size_t>(rule - 1)].fetch_add(1, kRelaxed);
  }
}

void Metrics::messageAccepted(const std::string& tenant, Version version) {
  std::lock_guard lock(mutex_);
  ++messages_[{tenant, version}];
}

void Metrics::backendError(BackendError kind) {
  backendErrors_[static_cast<std::size_t>(kind)].fetch_add(1, kRelaxed);
}

uint64_t Metrics::connections(const std::string& listener) const {
  std::lock_guard lock(mutex_);
  auto it = connections_.find(listener);
  return it == connections_.end() ? 0 : it->second;
}

uint64_t Metrics::refused(Refusal reason) const {
  return refused_[static_cast<std::size_t>(reason)].load(kRelaxed);
}

uint64_t Metrics::handshakes(Endpoint endpoint, Version version, HandshakeOutcome outcome) const {
  return handshakes_[handshakeIndex(endpoint, version, outcome)].load(kRelaxed);
}

uint64_t Metrics::decisions(int rule) const {
  return rule >= 1 && rule <= kRules ? decisions_[static_cast<std::size_t>(rule - 1)].load(kRelaxed)
                                     : 0;
}

uint64_t Metrics::messages(const std::string& tenant, Version version) const {
  std::lock_guard lock(mutex_);
  auto it = messages_.find({tenant, version});
  return it == messages_.end() ? 0 : it->second;
}

uint64_t Metrics::backendErrors(BackendError kind) const {
  return backendErrors_[static_cast<std::size_t>(kind)].load(kRelaxed);
}

std::string Metrics::escapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Metrics::prometheusText(const TraceStore* traces) const {
  // Copy the maps first: the mutex is held for a copy, never while formatting.
  std::map<std::string, uint64_t> connections;
  std::map<std::pair<std::string, Version>, uint64_t> messages;
  {
    std::lock_guard lock(mutex_);
    connections = connections_;
    messages = messages_;
  }
  std::string out;
  out.reserve(8192);

  {
    Family f(out, "smtpgate_connections_total", "counter",
             "TCP connections accepted, by listener.");
    for (const auto& [listener, count] : connections) {
      f.sample(label("listener", listener), count);
    }
  }
  {
    Family f(out, "smtpgate_connections_refused_total", "counter",
             "Connections refused by admission (limits.max_connections, max_connections_per_ip, "
             "new_connections_per_ip_per_minute) or by the PROXY protocol front (a peer not in "
             "proxy_protocol.trusted, a bad or missing header).");
    for (std::size_t i = 0; i < kRefusals; ++i) {
      f.sample(label("reason", kRefusalNames[i]), refused_[i].load(kRelaxed));
    }
  }
  {
    Family f(out, "smtpgate_active_sessions", "gauge", "Admitted client sessions now open.");
    f.sample("", activeSessions_.load(kRelaxed));
  }
  {
    Family f(out, "smtpgate_handshakes_total", "counter",
             "TLS handshakes with clients, by endpoint, version and outcome (the version offered "
             "when the handshake did not complete).");
    for (std::size_t e = 0; e < kEndpoints; ++e) {
      for (std::size_t v = 0; v < kVersions; ++v) {
        for (std::size_t o = 0; o < kOutcomes; ++o) {
          std::string labels = label("endpoint", kEndpointNames[e]) + "," +
                               label("version", kHandshakeVersionNames[v]) + "," +
                               label("outcome", kOutcomeNames[o]);
          f.sample(labels, handshakes_[(e * kVersions + v) * kOutcomes + o].load(kRelaxed));
        }
      }
    }
  }
  {
    Family f(out, "smtpgate_decisions_total", "counter",
             "TLS decisions applied, by rule (SPEC section 4, D1..D8).");
    for (int r = 1; r <= kRules; ++r) {
      f.sample(label("rule", fmt::format("D{}", r)), decisions_[r - 1].load(kRelaxed));
    }
  }
  {
    Family f(out, "smtpgate_speedbump_rejections_total", "counter",
             "Sessions refused by the speedbump draw on the strict endpoint (421 4.7.66).");
    f.sample("", speedbump_.load(kRelaxed));
  }
  {
    Family f(out, "smtpgate_messages_total", "counter",
             "Messages accepted (250), by tenant and TLS version.");
    for (const auto& [key, count] : messages) {
      f.sample(label("tenant", key.first) + "," +
                   label("version", kMessageVersionNames[static_cast<std::size_t>(key.second)]),
               count);
    }
  }
  {
    Family f(out, "smtpgate_backend_errors_total", "counter",
             "Backend connections that failed, by kind.");
    for (std::size_t i = 0; i < kBackendErrors; ++i) {
      f.sample(label("kind", kBackendErrorNames[i]), backendErrors_[i].load(kRelaxed));
    }
  }
  if (traces) {
    {
      Family f(out, "smtpgate_trace_queue", "gauge",
               "Trace records accepted and not yet committed (the writer's lag).");
      f.sample("", traces->queued());
    }
    {
      Family f(out, "smtpgate_trace_written_total", "counter", "Trace records committed.");
      f.sample("", traces->written());
    }
    {
      Family f(out, "smtpgate_trace_dropped_total", "counter",
               "Trace records dropped because the queue was full (in cluster mode also while "
               "PostgreSQL was away and the buffer full).");
      f.sample("", traces->dropped());
    }
    {
      Family f(out, "smtpgate_trace_store_up", "gauge",
               "1 while trace records can be written (0: PostgreSQL away, records buffered).");
      f.sample("", traces->storeAvailable() ? 1 : 0);
    }
  }
  {
    Family f(out, "smtpgate_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
    f.sample("", fmt::format("{:.3f}", startTime_));
  }
  return out;
}

}  // namespace smtpgate
