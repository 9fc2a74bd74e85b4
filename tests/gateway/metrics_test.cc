#include "gateway/metrics.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/trace_store.h"
#include "tests/gateway/config_fixtures.h"

using namespace smtpgate;
using smtpgate::testing::TempDir;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family → counter/gauge
  std::map<std::string, std::string> help;

  // The value of the one sample with this name and exactly these labels; fails otherwise.
  double value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const {
    const Sample* found = nullptr;
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) {
        REQUIRE(found == nullptr);
        found = &s;
      }
    }
    INFO(name);
    REQUIRE(found != nullptr);
    return found->value;
  }
  std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& s : samples) {
      n += s.name == name ? 1 : 0;
    }
    return n;
  }
};

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

std::string readName(const std::string& line, std::size_t& pos) {
  std::size_t begin = pos;
  REQUIRE(pos < line.size());
  REQUIRE(isNameStart(line[pos]));
  while (pos < line.size() && isNameChar(line[pos])) {
    ++pos;
  }
  return line.substr(begin, pos - begin);
}

// A strict reading of the Prometheus text format (0.0.4) for what Metrics writes: every line
// is `# HELP name text`, `# TYPE name counter|gauge` or `name{l="v",...} value`; a family's
// HELP and TYPE come once, before its samples, and its samples are contiguous.
Exposition parse(const std::string& text) {
  Exposition e;
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::istringstream in(text);
  std::string line;
  std::string current;  // the family whose samples may follow
  std::set<std::string> finished;
  while (std::getline(in, line)) {
    INFO(line);
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::size_t pos = 7;
      std::string name = readName(line, pos);
      REQUIRE(pos < line.size());
      REQUIRE(line[pos] == ' ');
      std::string rest = line.substr(pos + 1);
      REQUIRE(!rest.empty());
      if (line[2] == 'H') {
        REQUIRE(e.help.count(name) == 0);
        REQUIRE(e.types.count(name) == 0);  // HELP first
        e.help[name] = rest;
      } else {
        REQUIRE(e.types.count(name) == 0);
        REQUIRE((rest == "counter" || rest == "gauge"));
        e.types[name] = rest;
      }
      if (current != name) {
        if (!current.empty()) {
          finished.insert(current);
        }
        REQUIRE(finished.count(name) == 0);
        current = name;
      }
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    std::size_t pos = 0;
    s.name = readName(line, pos);
    REQUIRE(s.name == current);  // the family's TYPE came before, and no other family since
    REQUIRE(e.types.count(s.name) == 1);
    REQUIRE(e.help.count(s.name) == 1);
    REQUIRE(pos < line.size());
    if (line[pos] == '{') {
      ++pos;
      while (true) {
        std::string label = readName(line, pos);
        REQUIRE(line.compare(pos, 2, "=\"") == 0);
        pos += 2;
        std::string value;
        while (true) {
          REQUIRE(pos < line.size());
          char c = line[pos++];
          if (c == '"') {
            break;
          }
          if (c == '\\') {
            REQUIRE(pos < line.size());
            char escaped = line[pos++];
            REQUIRE((escaped == '\\' || escaped == '"' || escaped == 'n'));
            value += escaped == 'n' ? '\n' : escaped;
          } else {
            value += c;
          }
        }
        REQUIRE(s.labels.count(label) == 0);
        s.labels[label] = value;
        REQUIRE(pos < line.size());
        if (line[pos] == ',') {
          ++pos;
          continue;
        }
        REQUIRE(line[pos] == '}');
        ++pos;
        break;
      }
    }
    REQUIRE(pos < line.size());
    REQUIRE(line[pos] == ' ');
    std::string number = line.substr(pos + 1);
    REQUIRE(!number.empty());
    char* end = nullptr;
    s.value = std::strtod(number.c_str(), &end);
    REQUIRE(*end == '\0');
    e.samples.push_back(std::move(s));
  }
  for (const auto& [name, type] : e.types) {
    INFO(name);
    CHECK(name.rfind("smtpgate_", 0) == 0);
    bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    CHECK(total == (type == "counter"));
  }
  return e;
}

}  // namespace

TEST_CASE("metrics: counts from several threads are exact", "[metrics]") {
  Metrics m;
  constexpr int kThreads = 4;
  constexpr int kIterations = 10000;
  std::atomic<bool> done{false};
  // Renders all the while, as a scrape would in the middle of traffic.
  std::thread scraper([&] {
    while (!done.load()) {
      parse(m.prometheusText(nullptr));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kIterations; ++i) {
        m.connectionAccepted("strict-starttls");
        m.connectionAccepted(t % 2 == 0 ? "even" : "odd");
        m.connectionRefused(Metrics::Refusal::MaxConnectionsPerIp);
        m.sessionStarted();
        m.handshake(Metrics::Endpoint::Legacy, Metrics::Version::V1_0,
                    Metrics::HandshakeOutcome::Ok);
        m.decision(i % 8 + 1);
        m.speedbumpRejection();
        m.messageAccepted("contoso", Metrics::Version::V1_2);
        m.messageAccepted("", Metrics::Version::None);
        m.backendError(Metrics::BackendError::Timeout);
        if (i % 2 == 0) {
          m.sessionEnded();
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  done = true;
  scraper.join();

  constexpr double kAll = kThreads * kIterations;
  CHECK(m.connections("strict-starttls") == kAll);
  CHECK(m.connections("even") == kAll / 2);
  CHECK(m.activeSessions() == kAll / 2);
  CHECK(m.decisions(3) == kAll / 8);
  CHECK(m.messages("contoso", Metrics::Version::V1_2) == kAll);

  Exposition e = parse(m.prometheusText(nullptr));
  CHECK(e.value("smtpgate_connections_total", {{"listener", "strict-starttls"}}) == kAll);
  CHECK(e.value("smtpgate_connections_total", {{"listener", "even"}}) == kAll / 2);
  CHECK(e.value("smtpgate_connections_total", {{"listener", "odd"}}) == kAll / 2);
  CHECK(e.value("smtpgate_connections_refused_total", {{"reason", "max_connections_per_ip"}}) ==
        kAll);
  CHECK(e.value("smtpgate_connections_refused_total", {{"reason", "max_connections"}}) == 0);
  CHECK(e.value("smtpgate_active_sessions") == kAll / 2);
  CHECK(e.value("smtpgate_handshakes_total",
                {{"endpoint", "legacy"}, {"version", "1.0"}, {"outcome", "ok"}}) == kAll);
  CHECK(e.value("smtpgate_handshakes_total",
                {{"endpoint", "strict"}, {"version", "1.0"}, {"outcome", "ok"}}) == 0);
  for (int r = 1; r <= 8; ++r) {
    CHECK(e.value("smtpgate_decisions_total", {{"rule", "D" + std::to_string(r)}}) == kAll / 8);
  }
  CHECK(e.value("smtpgate_speedbump_rejections_total") == kAll);
  CHECK(e.value("smtpgate_messages_total", {{"tenant", "contoso"}, {"version", "1.2"}}) == kAll);
  CHECK(e.value("smtpgate_messages_total", {{"tenant", ""}, {"version", "none"}}) == kAll);
  CHECK(e.count("smtpgate_messages_total") == 2);
  CHECK(e.value("smtpgate_backend_errors_total", {{"kind", "timeout"}}) == kAll);
  CHECK(e.value("smtpgate_backend_errors_total", {{"kind", "connect"}}) == 0);
}

TEST_CASE("metrics: the text is well-formed and complete when empty", "[metrics]") {
  Metrics m(1795817647.25);
  m.addListener("legacy-starttls");
  Exposition e = parse(m.prometheusText(nullptr));

  std::map<std::string, std::string> expected = {
      {"smtpgate_connections_total", "counter"}, {"smtpgate_connections_refused_total", "counter"},
      {"smtpgate_active_sessions", "gauge"},     {"smtpgate_handshakes_total", "counter"},
      {"smtpgate_decisions_total", "counter"},   {"smtpgate_speedbump_rejections_total", "counter"},
      {"smtpgate_messages_total", "counter"},    {"smtpgate_backend_errors_total", "counter"},
      {"smtpgate_start_time_seconds", "gauge"},
  };
  CHECK(e.types == expected);
  // A known listener shows 0 before its first connection.
  CHECK(e.value("smtpgate_connections_total", {{"listener", "legacy-starttls"}}) == 0);
  // Fixed label sets are complete, so rate() works from the first scrape.
  CHECK(e.count("smtpgate_handshakes_total") == 2 * 5 * 3);
  for (const char* endpoint : {"strict", "legacy"}) {
    for (const char* version : {"unknown", "1.0", "1.1", "1.2", "1.3"}) {
      for (const char* outcome : {"ok", "failed", "refused_version"}) {
        CHECK(e.value("smtpgate_handshakes_total",
                      {{"endpoint", endpoint}, {"version", version}, {"outcome", outcome}}) == 0);
      }
    }
  }
  CHECK(e.count("smtpgate_decisions_total") == 8);
  CHECK(e.count("smtpgate_connections_refused_total") == 5);
  for (const char* kind : {"connect", "timeout", "closed", "tls", "protocol"}) {
    CHECK(e.value("smtpgate_backend_errors_total", {{"kind", kind}}) == 0);
  }
  CHECK(e.count("smtpgate_messages_total") == 0);
  CHECK(e.value("smtpgate_active_sessions") == 0);
  CHECK(e.value("smtpgate_start_time_seconds") == Approx(1795817647.25));
  CHECK(m.prometheusText(nullptr).find("\nsmtpgate_start_time_seconds 1795817647.250\n") !=
        std::string::npos);
  // Out-of-range rules are ignored rather than written out of bounds.
  m.decision(0);
  m.decision(9);
  CHECK(parse(m.prometheusText(nullptr)).value("smtpgate_decisions_total", {{"rule", "D1"}}) == 0);
}

TEST_CASE("metrics: label values are escaped", "[metrics]") {
  CHECK(Metrics::escapeLabel("plain") == "plain");
  CHECK(Metrics::escapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(Metrics::escapeLabel("") == "");

  Metrics m;
  std::string tenant = "evil\"} 1\nsmtpgate_fake_total 99\\";
  m.messageAccepted(tenant, Metrics::Version::V1_1);
  m.messageAccepted(tenant, Metrics::Version::V1_1);
  m.messageAccepted("", Metrics::Version::V1_3);
  m.connectionAccepted("a\"b");
  std::string text = m.prometheusText(nullptr);
  CHECK(text.find("smtpgate_messages_total{tenant=\"evil\\\"} 1\\nsmtpgate_fake_total 99\\\\\","
                  "version=\"1.1\"} 2\n") != std::string::npos);
  CHECK(text.find("smtpgate_messages_total{tenant=\"\",version=\"1.3\"} 1\n") != std::string::npos);
  CHECK(text.find("\nsmtpgate_fake_total") == std::string::npos);
  Exposition e = parse(text);
  CHECK(e.value("smtpgate_messages_total", {{"tenant", tenant}, {"version", "1.1"}}) == 2);
  CHECK(e.value("smtpgate_messages_total", {{"tenant", ""}, {"version", "1.3"}}) == 1);
  CHECK(e.value("smtpgate_connections_total", {{"listener", "a\"b"}}) == 1);
}

TEST_CASE("metrics: versions from trace labels", "[metrics]") {
  CHECK(Metrics::versionFromLabel("1.0") == Metrics::Version::V1_0);
  CHECK(Metrics::versionFromLabel("1.1") == Metrics::Version::V1_1);
  CHECK(Metrics::versionFromLabel("1.2") == Metrics::Version::V1_2);
  CHECK(Metrics::versionFromLabel("1.3") == Metrics::Version::V1_3);
  CHECK(Metrics::versionFromLabel("") == Metrics::Version::None);
  CHECK(Metrics::versionFromLabel("none") == Metrics::Version::None);

  Metrics m;
  m.handshake(Metrics::Endpoint::Strict, Metrics::versionFromLabel(""),
              Metrics::HandshakeOutcome::Failed);
  m.handshake(Metrics::Endpoint::Strict, Metrics::Version::V1_1,
              Metrics::HandshakeOutcome::RefusedVersion);
  Exposition e = parse(m.prometheusText(nullptr));
  CHECK(e.value("smtpgate_handshakes_total",
                {{"endpoint", "strict"}, {"version", "unknown"}, {"outcome", "failed"}}) == 1);
  CHECK(e.value("smtpgate_handshakes_total",
                {{"endpoint", "strict"}, {"version", "1.1"}, {"outcome", "refused_version"}}) == 1);
}

TEST_CASE("metrics: trace-store figures only with a store", "[metrics]") {
  Metrics m;
  Exposition without = parse(m.prometheusText(nullptr));
  CHECK(without.types.count("smtpgate_trace_queue") == 0);
  CHECK(without.types.count("smtpgate_trace_written_total") == 0);
  CHECK(without.types.count("smtpgate_trace_dropped_total") == 0);

  TempDir dir;
  TraceStore::Options options;
  options.databasePath = dir.path + "/traces.sqlite";
  options.queueLimit = 2;
  std::string error;
  auto store = TraceStore::open(options, error);
  REQUIRE(store != nullptr);

  // Two records committed; then, with the writer paused, two queued and one dropped.
  auto session = [](int i) {
    SessionTrace t;
    t.sessionId = "s" + std::to_string(i);
    t.startedMs = t.endedMs = 1795817647123;
    t.rule = "D8";
    return t;
  };
  store->record(session(1));
  store->record(session(2));
  store->flush();
  store->pauseWriterForTesting(true);
  for (int i = 3; i < 6; ++i) {
    store->record(session(i));
  }
  // The counters of messages are the gateway's own: a dropped trace row loses nothing here.
  m.messageAccepted("contoso", Metrics::Version::V1_0);

  Exposition with = parse(m.prometheusText(store.get()));
  CHECK(with.types["smtpgate_trace_queue"] == "gauge");
  CHECK(with.types["smtpgate_trace_written_total"] == "counter");
  CHECK(with.types["smtpgate_trace_dropped_total"] == "counter");
  CHECK(with.value("smtpgate_trace_written_total") == 2);
  CHECK(with.value("smtpgate_trace_queue") == 2);
  CHECK(with.value("smtpgate_trace_dropped_total") == 1);
  CHECK(with.value("smtpgate_messages_total", {{"tenant", "contoso"}, {"version", "1.0"}}) == 1);
  store->pauseWriterForTesting(false);
  store->flush();
  CHECK(parse(m.prometheusText(store.get())).value("smtpgate_trace_queue") == 0);
}
