#include "tests/bench/loadgen/stats.h"

#include <algorithm>
#include <cmath>

namespace smtpgate::loadgen {
namespace {

double rounded(double ms) { return std::round(ms * 1000.0) / 1000.0; }

}  // namespace

double LatencySamples::percentile(double q) const {
  if (samples_.empty()) {
    return 0;
  }
  if (!sorted_) {
    std::sort(samples_.begin(), samples_.end());
    sorted_ = true;
  }
  // Nearest rank: the smallest sample with at least q% of the samples at or below it.
  double rank = std::ceil(q / 100.0 * static_cast<double>(samples_.size()));
  size_t index = rank <= 1 ? 0 : static_cast<size_t>(rank) - 1;
  return samples_[std::min(index, samples_.size() - 1)];
}

nlohmann::json LatencySamples::summary() const {
  nlohmann::json out = {{"n", samples_.size()}};
  for (auto [name, q] : {std::pair{"p50", 50.0}, {"p90", 90.0}, {"p99", 99.0}, {"max", 100.0}}) {
    out[name] = samples_.empty() ? nlohmann::json(nullptr) : nlohmann::json(rounded(percentile(q)));
  }
  return out;
}

const char* errorName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Connect:
      return "connect";
    case ErrorKind::Tls:
      return "tls";
    case ErrorKind::Timeout:
      return "timeout";
    case ErrorKind::Closed:
      return "closed";
    case ErrorKind::Protocol:
      return "protocol";
    case ErrorKind::Rejected:
      return "rejected";
    case ErrorKind::Aborted:
      return "aborted";
  }
  return "other";
}

void Stats::countError(ErrorKind kind, const std::string& detail) {
  ++errors[kind];
  // A few distinct reasons are enough to tell what went wrong; never an unbounded map.
  std::string key = std::string(errorName(kind)) + ": " + detail.substr(0, 120);
  if (errorSamples.count(key) != 0 || errorSamples.size() < 8) {
    ++errorSamples[key];
  }
}

}  // namespace smtpgate::loadgen
