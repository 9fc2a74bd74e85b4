#include "gateway/log.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace {

// Runs fn with stderr redirected to a temporary file and returns what it wrote.
template <typename Fn>
std::string captureStderr(Fn fn) {
  std::FILE* tmp = std::tmpfile();
  REQUIRE(tmp != nullptr);
  int saved = ::dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  REQUIRE(::dup2(::fileno(tmp), STDERR_FILENO) >= 0);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, tmp)) > 0) {
    out.append(buf, n);
  }
  std::fclose(tmp);
  return out;
}

}  // namespace

using smtpgate::log::sanitize;

TEST_CASE("log: sanitize escapes control characters and caps the length") {
  CHECK(sanitize("plain text") == "plain text");
  CHECK(sanitize("a\r\nb\x1b[2Jc\x7f") == "a\\x0d\\x0ab\\x1b[2Jc\\x7f");
  CHECK(sanitize(std::string(300, 'x'), 10) == std::string(10, 'x') + "...");
  CHECK(sanitize(std::string("nul\0byte", 8)) == "nul\\x00byte");
  // UTF-8 is left as it is (SMTPUTF8 addresses are logged readable).
  CHECK(sanitize("j\xc3\xb6rg@example.com") == "j\xc3\xb6rg@example.com");
}

TEST_CASE("log: every line is one line, whatever the caller passed") {
  std::string out = captureStderr([] {
    smtpgate::log::info("EHLO {} from {}", "evil\r\n2026-01-01T00:00:00.000Z info: forged",
                        "\x1b]0;title\x07");
  });
  REQUIRE(!out.empty());
  CHECK(out.back() == '\n');
  CHECK(out.find('\n') == out.size() - 1);  // exactly one line
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\x07') == std::string::npos);
  CHECK(out.find("evil\\x0d\\x0a2026-01-01T00:00:00.000Z info: forged") != std::string::npos);
  CHECK(out.find(" info: EHLO ") != std::string::npos);
}
