#pragma once

// Shared by the fuzz targets: an invariant check that prints what broke and aborts (libFuzzer
// then saves the input), and a printable dump of a byte string.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace smtpgate::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "%s: invariant violated: %s\n", target, what);
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail (%zu bytes): ", detail.size());
    for (unsigned char c : detail.substr(0, 600)) {
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        std::fputc(c, stderr);
      } else {
        std::fprintf(stderr, "\\x%02x", c);
      }
    }
    std::fputc('\n', stderr);
  }
  std::abort();
}

}  // namespace smtpgate::fuzz

#define FUZZ_CHECK(cond, ...)                                           \
  do {                                                                  \
    if (!(cond)) {                                                      \
      ::smtpgate::fuzz::fail(kTarget, #cond, ##__VA_ARGS__);            \
    }                                                                   \
  } while (0)
