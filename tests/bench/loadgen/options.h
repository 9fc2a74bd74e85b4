#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace smtpgate::loadgen {

enum class Mode { StartTls, Implicit, Plain };

// Everything the command line sets. Every count and every time has a floor and a ceiling, so
// that a run is always bounded (--duration-limit is the hard stop).
struct Options {
  std::string host = "127.0.0.1";
  // Local addresses to connect from, one per session in turn (e.g. 127.0.0.2,127.0.0.3): a
  // server's per-IP connection limit then applies to each. Empty: the kernel's choice.
  std::vector<std::string> sources;
  uint16_t port = 0;
  Mode mode = Mode::StartTls;
  uint16_t tlsVersion = 0;  // wire version pinned as min = max; 0: any of TLS 1.0 .. 1.3
  std::string sni;
  std::string ehlo = "loadgen.test";
  int concurrency = 1;
  int64_t sessions = 1;      // total sessions (ignored in idle mode: --idle is the count)
  int64_t messages = 0;      // per session
  int64_t size = 10 * 1024;  // message size in bytes, before dot-stuffing
  bool handshakeOnly = false;
  int idle = 0;            // > 0: idle mode, hold this many sessions ready for MAIL
  double idleSeconds = 5;  // how long the idle sessions are held
  std::string authUser;    // AUTH PLAIN when not empty
  std::string authPassword;
  std::string from = "loadgen@example.com";
  std::string to = "user@example.com";
  double durationLimit = 120;  // seconds: a hard bound on the whole run
  double timeout = 30;         // seconds without progress on one operation
};

// "1.0" .. "1.3" -> wire version, 0 when unknown.
uint16_t parseTlsVersion(const std::string& text);
std::string modeName(Mode mode);

// Parses argv. On failure returns nullopt and sets `error`; `--help` sets `help` instead.
std::optional<Options> parseOptions(int argc, char** argv, std::string& error, bool& help);
const char* usage();

}  // namespace smtpgate::loadgen
