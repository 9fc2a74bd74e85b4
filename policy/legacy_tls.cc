#include "policy/legacy_tls.h"

#include <string_view>

namespace smtpgate::policy {
namespace {

bool startsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != prefix[i]) {
      return false;
    }
  }
  return true;
}

// The URL ends up inside an SMTP reply line: anything but printable ASCII (CR, LF, spaces,
// UTF-8) would break or forge the reply.
bool isHttpUrl(std::string_view url) {
  std::string_view rest;
  if (startsWithIgnoreCase(url, "https://")) {
    rest = url.substr(8);
  } else if (startsWithIgnoreCase(url, "http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  if (rest.empty() || rest.front() == '/' || rest.front() == '?' || rest.front() == '#') {
    return false;  // no host
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace

PhaseState LegacyTlsPolicy::phaseAt(int64_t now) const {
  if (strictCutoff && now >= *strictCutoff) {
    return {Phase::Closed, 0};
  }
  // The latest step already begun. Scanning all steps (rather than stopping at the first
  // future one) keeps an out-of-order list, which validate() reports, from hiding a step.
  const SpeedbumpStep* current = nullptr;
  for (const SpeedbumpStep& step : speedbump) {
    if (step.from <= now && (current == nullptr || step.from >= current->from)) {
      current = &step;
    }
  }
  if (current == nullptr) {
    return {Phase::Open, 0};
  }
  return {Phase::Speedbump, current->rejectPercent};
}

std::vector<std::pair<std::string, std::string>> LegacyTlsPolicy::validate() const {
  std::vector<std::pair<std::string, std::string>> problems;
  for (std::size_t i = 0; i < speedbump.size(); ++i) {
    const std::string step = "/speedbump/" + std::to_string(i);
    if (i > 0 && speedbump[i].from <= speedbump[i - 1].from) {
      problems.emplace_back(step + "/from",
                            "must be later than /speedbump/" + std::to_string(i - 1) + "/from");
    }
    const double percent = speedbump[i].rejectPercent;
    if (!(percent >= 0 && percent <= 100)) {  // written so that NaN fails too
      problems.emplace_back(step + "/reject_percent", "must be 0..100");
    }
  }
  if (strictCutoff && !speedbump.empty()) {
    int64_t last = speedbump.front().from;
    for (const SpeedbumpStep& step : speedbump) {
      last = step.from > last ? step.from : last;
    }
    if (*strictCutoff <= last) {
      problems.emplace_back("/strict_cutoff", "must be later than the last speedbump step");
    }
  }
  if (!isHttpUrl(helpUrl)) {
    problems.emplace_back("/help_url", "must be an http(s) URL");
  }
  return problems;
}

}  // namespace smtpgate::policy
