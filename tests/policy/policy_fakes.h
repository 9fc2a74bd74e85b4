#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "policy/decision.h"

namespace smtpgate::policy::testing {

// Times of the schedule used throughout the policy tests (Unix seconds).
constexpr int64_t kStep0 = 1767225600;   // 2026-01-01T00:00:00Z, 5%
constexpr int64_t kStep1 = 1772323200;   // 2026-03-01T00:00:00Z, 50%
constexpr int64_t kCutoff = 1780272000;  // 2026-06-01T00:00:00Z
constexpr const char* kHelpUrl = "https://aka.ms/smtp_auth_tls";

inline LegacyTlsPolicy scheduledPolicy() {
  LegacyTlsPolicy p;
  p.speedbump = {{kStep0, 5}, {kStep1, 50}};
  p.strictCutoff = kCutoff;
  p.afterCutoff = AfterCutoff::RefuseHandshake;
  p.helpUrl = kHelpUrl;
  return p;
}

// A seeded generator: reproducible statistics.
class SeededRandom : public Random {
 public:
  explicit SeededRandom(uint32_t seed) : engine_(seed) {}
  uint32_t next() override {
    ++calls_;
    return static_cast<uint32_t>(engine_());
  }
  int calls() const { return calls_; }

 private:
  std::mt19937 engine_;
  int calls_ = 0;
};

// Plays back fixed values (then zeros); tests check calls() to see how many were drawn.
class ScriptedRandom : public Random {
 public:
  explicit ScriptedRandom(std::vector<uint32_t> values = {}) : values_(std::move(values)) {}
  uint32_t next() override {
    const std::size_t i = calls_++;
    return i < values_.size() ? values_[i] : 0;
  }
  std::size_t calls() const { return calls_; }

 private:
  std::vector<uint32_t> values_;
  std::size_t calls_ = 0;
};

}  // namespace smtpgate::policy::testing
