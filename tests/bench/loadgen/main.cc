// smtpgate-loadgen: drives an SMTP server (smtpgate, nginx mail, HAProxy, Postfix) with
// STARTTLS, implicit TLS or plain sessions and prints one JSON line with what it measured.
//
//   smtpgate-loadgen --port 2587 --tls 1.3 --handshake-only --sessions 200 --concurrency 50
//   smtpgate-loadgen --port 2587 --auth user@example.com:secret --sessions 20
//       --concurrency 20 --messages 50 --size 10240
//   smtpgate-loadgen --port 2465 --mode implicit --idle 2000 --idle-seconds 10
//
// Exit 0 when it ran (even with failed sessions: they are counted), 2 on bad options.

#include <netdb.h>
#include <openssl/base64.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/bench/loadgen/load_driver.h"
#include "tests/bench/loadgen/options.h"
#include "tls/tls_context.h"

using namespace smtpgate;
using namespace smtpgate::loadgen;

namespace {

bool resolve(const std::string& host, uint16_t portNumber, bool numeric, sockaddr_storage& out,
             std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
  addrinfo* result = nullptr;
  std::string port = std::to_string(portNumber);
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    error = host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&out, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  return true;
}

std::string authPlain(const Options& o) {
  if (o.authUser.empty()) {
    return "";
  }
  std::string token;
  token.push_back('\0');
  token += o.authUser;
  token.push_back('\0');
  token += o.authPassword;
  std::vector<uint8_t> encoded(4 * ((token.size() + 2) / 3) + 1);
  size_t n =
      EVP_EncodeBlock(encoded.data(), reinterpret_cast<const uint8_t*>(token.data()), token.size());
  return "AUTH PLAIN " + std::string(reinterpret_cast<char*>(encoded.data()), n) + "\r\n";
}

// Each idle session is a descriptor: take the hard limit rather than stop at 1024.
void raiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

double rate(double count, double seconds) {
  return seconds > 0 ? std::round(count / seconds * 100.0) / 100.0 : 0.0;
}

nlohmann::json report(const Options& o, const LoadDriver& driver) {
  const Stats& s = driver.stats();
  double elapsed = driver.elapsedSeconds();
  nlohmann::json replies = nlohmann::json::object();
  for (const auto& [code, count] : s.replies) {
    replies[std::to_string(code)] = count;
  }
  nlohmann::json errors = nlohmann::json::object();
  for (ErrorKind kind : {ErrorKind::Connect, ErrorKind::Tls, ErrorKind::Timeout, ErrorKind::Closed,
                         ErrorKind::Protocol, ErrorKind::Rejected, ErrorKind::Aborted}) {
    auto it = s.errors.find(kind);
    errors[errorName(kind)] = it == s.errors.end() ? 0 : it->second;
  }
  nlohmann::json negotiated = nlohmann::json::object();
  for (const auto& [name, count] : s.negotiated) {
    negotiated[name] = count;
  }
  nlohmann::json samples = nlohmann::json::object();
  for (const auto& [text, count] : s.errorSamples) {
    samples[text] = count;
  }
  std::string tlsLabel = o.mode == Mode::Plain ? "none"
                         : o.tlsVersion == 0   ? "any"
                                               : tls::versionLabel(o.tlsVersion);
  return {
      {"mode", modeName(o.mode)},
      {"tls", tlsLabel},
      {"target", o.host + ":" + std::to_string(o.port)},
      {"sources", o.sources.empty() ? 1 : o.sources.size()},
      {"concurrency", o.concurrency},
      {"sessions", o.idle > 0 ? o.idle : o.sessions},
      {"messages_per_session", o.idle > 0 || o.handshakeOnly ? 0 : o.messages},
      {"message_bytes",
       o.idle > 0 || o.handshakeOnly || o.messages == 0 ? 0 : driver.messageWireSize()},
      {"handshake_only", o.handshakeOnly},
      {"sessions_ok", s.sessionsOk},
      {"sessions_failed", s.sessionsFailed},
      {"messages_ok", s.messagesOk},
      {"messages_failed", s.messagesFailed},
      {"elapsed_s", std::round(elapsed * 1e4) / 1e4},
      {"sessions_per_s", rate(static_cast<double>(s.sessionsOk), elapsed)},
      {"messages_per_s", rate(static_cast<double>(s.messagesOk), elapsed)},
      {"bytes_per_s", rate(static_cast<double>(s.messageBytesOk), elapsed)},
      {"latency_ms",
       {{"connect_to_ready", s.connectToReady.summary()},
        {"handshake", s.handshake.summary()},
        {"message", s.message.summary()}}},
      {"replies", replies},
      {"errors", errors},
      {"error_samples", samples},
      {"negotiated", negotiated},
      {"idle_held", s.idleHeld},
      {"duration_limit_hit", s.durationLimitHit},
  };
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  bool help = false;
  std::optional<Options> options = parseOptions(argc, argv, error, help);
  if (help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  if (!options) {
    std::fprintf(stderr, "smtpgate-loadgen: %s\n%s", error.c_str(), usage());
    return 2;
  }
  const Options& o = *options;
  sockaddr_storage address{};
  if (!resolve(o.host, o.port, false, address, error)) {
    std::fprintf(stderr, "smtpgate-loadgen: --host %s\n", error.c_str());
    return 2;
  }
  std::vector<sockaddr_storage> sources;
  for (const std::string& source : o.sources) {
    sockaddr_storage bind{};
    if (!resolve(source, 0, true, bind, error)) {
      std::fprintf(stderr, "smtpgate-loadgen: --source %s\n", error.c_str());
      return 2;
    }
    if (bind.ss_family != address.ss_family) {
      std::fprintf(stderr, "smtpgate-loadgen: --source %s: not the family of --host\n",
                   source.c_str());
      return 2;
    }
    sources.push_back(bind);
  }
  std::shared_ptr<tls::TlsContext> context;
  if (o.mode != Mode::Plain) {
    tls::ClientContextOptions tlsOptions;
    if (o.tlsVersion != 0) {
      tlsOptions.minVersion = o.tlsVersion;
      tlsOptions.maxVersion = o.tlsVersion;
    }
    context = tls::TlsContext::createClient(tlsOptions, error);
    if (!context) {
      std::fprintf(stderr, "smtpgate-loadgen: %s\n", error.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  raiseDescriptorLimit();
  LoadDriver driver(o, context, address, std::move(sources), authPlain(o));
  if (!driver.run(error)) {
    std::fprintf(stderr, "smtpgate-loadgen: %s\n", error.c_str());
    return 1;
  }
  std::cout << report(o, driver).dump() << std::endl;
  return 0;
}
