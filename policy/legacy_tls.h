#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace smtpgate::policy {

enum class Endpoint { Strict, Legacy };

// The strict endpoint's retirement schedule of TLS 1.0/1.1 (config "legacy_tls").
enum class Phase { Open, Speedbump, Closed };
enum class AfterCutoff { RefuseHandshake, Reply };

struct SpeedbumpStep {
  int64_t from = 0;           // Unix seconds
  double rejectPercent = 0;   // 0..100
};

struct PhaseState {
  Phase phase = Phase::Open;
  double rejectPercent = 0;  // the latest step's, in the speedbump phase
};

struct LegacyTlsPolicy {
  bool defaultAllow = true;                 // tenants' default for unknown domains
  std::vector<SpeedbumpStep> speedbump;     // in time order
  std::optional<int64_t> strictCutoff;      // Unix seconds
  AfterCutoff afterCutoff = AfterCutoff::RefuseHandshake;
  std::string helpUrl = "https://aka.ms/smtp_auth_tls";

  // open before the first step; speedbump (latest step with from <= now); closed at or after
  // the cutoff.
  PhaseState phaseAt(int64_t now) const;
  // Problems as (JSON pointer relative to legacy_tls, message): steps in time order, percents
  // in 0..100, cutoff after the last step.
  std::vector<std::pair<std::string, std::string>> validate() const;
};

}  // namespace smtpgate::policy
