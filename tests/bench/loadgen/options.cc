#include "tests/bench/loadgen/options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "tls/handshake_facts.h"

namespace smtpgate::loadgen {
namespace {

bool parseInt(std::string_view text, int64_t min, int64_t max, int64_t& out) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return false;
  }
  out = value;
  return true;
}

bool parseSeconds(const std::string& text, double min, double max, double& out) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) || value < min ||
      value > max) {
    return false;
  }
  out = value;
  return true;
}

}  // namespace

uint16_t parseTlsVersion(const std::string& text) {
  if (text == "1.0") {
    return tls::kTls10;
  }
  if (text == "1.1") {
    return tls::kTls11;
  }
  if (text == "1.2") {
    return tls::kTls12;
  }
  if (text == "1.3") {
    return tls::kTls13;
  }
  return 0;
}

std::string modeName(Mode mode) {
  switch (mode) {
    case Mode::StartTls:
      return "starttls";
    case Mode::Implicit:
      return "implicit";
    case Mode::Plain:
      return "plain";
  }
  return "";
}

const char* usage() {
  return R"(usage: smtpgate-loadgen --port N [options]
  --host ADDR            server address (default 127.0.0.1; IPv4 or IPv6 literal)
  --port N               server port (required)
  --source A[,B...]      local addresses to connect from, one per session in turn, so that
                         a per-IP connection limit applies to each (any 127.x.y.z is local)
  --mode M               starttls (default) | implicit | plain
  --tls V                pin the TLS version: 1.0 | 1.1 | 1.2 | 1.3 (default: any)
  --sni NAME             server name to send (default: none)
  --ehlo NAME            EHLO argument (default loadgen.test)
  --concurrency C        sessions at once (1..10000, default 1)
  --sessions S           total sessions (1..10000000, default 1)
  --messages M           messages per session (0..1000000, default 0)
  --size BYTES           message size before dot-stuffing (0..1073741824, default 10240)
  --handshake-only       EHLO, STARTTLS, handshake, EHLO, QUIT (no messages, no AUTH)
  --idle N               open N sessions (at most C establishing at once), hold them ready
                         for MAIL for --idle-seconds, then QUIT (1..100000)
  --idle-seconds T       (0..3600, default 5)
  --auth USER:PASSWORD   AUTH PLAIN once the session is ready
  --from ADDR            MAIL FROM (default loadgen@example.com)
  --to ADDR              RCPT TO (default user@example.com)
  --duration-limit T     hard bound on the whole run, seconds (1..86400, default 120)
  --timeout T            seconds without progress on one operation (0.1..3600, default 30)
Prints one JSON line on stdout. Exit 0 when it ran (even with failed sessions), 2 on bad options.
)";
}

std::optional<Options> parseOptions(int argc, char** argv, std::string& error, bool& help) {
  Options o;
  help = false;
  bool havePort = false;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (name == "--help" || name == "-h") {
      help = true;
      return std::nullopt;
    }
    if (name == "--handshake-only") {
      o.handshakeOnly = true;
      continue;
    }
    if (i + 1 >= argc) {
      error = name.rfind("--", 0) == 0 ? name + " needs a value" : "unknown argument " + name;
      return std::nullopt;
    }
    std::string value = argv[++i];
    int64_t n = 0;
    auto bad = [&](const char* what) {
      error = name + " " + value + ": " + what;
      return std::nullopt;
    };
    if (name == "--host") {
      o.host = value;
    } else if (name == "--source") {
      o.sources.clear();
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        std::string item =
            value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.empty()) {
          return bad("expected ADDR[,ADDR...]");
        }
        o.sources.push_back(item);
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
      if (o.sources.size() > 1024) {
        return bad("at most 1024 addresses");
      }
    } else if (name == "--port") {
      if (!parseInt(value, 1, 65535, n)) {
        return bad("expected a port 1..65535");
      }
      o.port = static_cast<uint16_t>(n);
      havePort = true;
    } else if (name == "--mode") {
      if (value == "starttls") {
        o.mode = Mode::StartTls;
      } else if (value == "implicit") {
        o.mode = Mode::Implicit;
      } else if (value == "plain") {
        o.mode = Mode::Plain;
      } else {
        return bad("expected starttls, implicit or plain");
      }
    } else if (name == "--tls") {
      o.tlsVersion = parseTlsVersion(value);
      if (o.tlsVersion == 0) {
        return bad("expected 1.0, 1.1, 1.2 or 1.3");
      }
    } else if (name == "--sni") {
      o.sni = value;
    } else if (name == "--ehlo") {
      if (value.empty()) {
        return bad("must not be empty");
      }
      o.ehlo = value;
    } else if (name == "--concurrency") {
      if (!parseInt(value, 1, 10000, n)) {
        return bad("expected 1..10000");
      }
      o.concurrency = static_cast<int>(n);
    } else if (name == "--sessions") {
      if (!parseInt(value, 1, 10000000, o.sessions)) {
        return bad("expected 1..10000000");
      }
    } else if (name == "--messages") {
      if (!parseInt(value, 0, 1000000, o.messages)) {
        return bad("expected 0..1000000");
      }
    } else if (name == "--size") {
      if (!parseInt(value, 0, int64_t{1} << 30, o.size)) {
        return bad("expected 0..1073741824");
      }
    } else if (name == "--idle") {
      if (!parseInt(value, 1, 100000, n)) {
        return bad("expected 1..100000");
      }
      o.idle = static_cast<int>(n);
    } else if (name == "--idle-seconds") {
      if (!parseSeconds(value, 0, 3600, o.idleSeconds)) {
        return bad("expected 0..3600 seconds");
      }
    } else if (name == "--auth") {
      auto colon = value.find(':');
      if (colon == std::string::npos || colon == 0) {
        return bad("expected USER:PASSWORD");
      }
      o.authUser = value.substr(0, colon);
      o.authPassword = value.substr(colon + 1);
    } else if (name == "--from") {
      o.from = value;
    } else if (name == "--to") {
      if (value.empty()) {
        return bad("must not be empty");
      }
      o.to = value;
    } else if (name == "--duration-limit") {
      if (!parseSeconds(value, 1, 86400, o.durationLimit)) {
        return bad("expected 1..86400 seconds");
      }
    } else if (name == "--timeout") {
      if (!parseSeconds(value, 0.1, 3600, o.timeout)) {
        return bad("expected 0.1..3600 seconds");
      }
    } else {
      error = "unknown option " + name;
      return std::nullopt;
    }
  }
  if (!havePort) {
    error = "--port is required";
    return std::nullopt;
  }
  if (o.mode == Mode::Plain && o.tlsVersion != 0) {
    error = "--tls makes no sense with --mode plain";
    return std::nullopt;
  }
  if (o.handshakeOnly && o.mode == Mode::Plain) {
    error = "--handshake-only needs --mode starttls or implicit";
    return std::nullopt;
  }
  if (o.handshakeOnly && o.idle > 0) {
    error = "--handshake-only and --idle exclude each other";
    return std::nullopt;
  }
  if (o.handshakeOnly) {
    o.messages = 0;
  }
  return o;
}

}  // namespace smtpgate::loadgen
