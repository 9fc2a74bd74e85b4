// Does recording traces stall the event loop? Side by side in one run, on one libuv loop:
//   baseline: a 1 ms timer measures how late each tick is while another 1 ms timer builds
//             100 message records per tick (100,000 in all) and throws them away;
//   store:    the same, but the records go to TraceStore::record() (SQLite under /tmp), so the
//             writer thread commits them while the loop runs.
// Rounds alternate the two modes; the table quotes the median over rounds of each figure and
// the ratio store/baseline. Run on demand:
//   build/tests/bench/bench_trace_store [rounds=5] [records=100000]
#include <uv.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "gateway/time_format.h"
#include "gateway/trace_store.h"

using namespace smtpgate;

namespace {

struct Result {
  double tickLagP50Us = 0, tickLagP99Us = 0, tickLagMaxUs = 0;
  double recordP50Us = 0, recordP99Us = 0, recordMaxUs = 0;
  double loopMs = 0;    // from the first to the last record pushed
  double commitMs = 0;  // flush() after the last push: what the writer still had to do
  uint64_t written = 0, dropped = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

MessageTrace makeRecord(int n) {
  MessageTrace m;
  m.sessionId = fmt::format("bench{:08d}", n / 10);
  m.receivedMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  m.listener = "legacy-starttls";
  m.endpoint = "legacy";
  m.clientIp = fmt::format("192.0.2.{}", n % 250);
  m.ehlo = "scanner-3rd-floor.contoso.example";
  m.tlsVersion = n % 7 == 0 ? "1.0" : "1.2";
  m.tlsCipher = "ECDHE-RSA-AES128-GCM-SHA256";
  m.authUser = "printer@contoso.example";
  m.tenant = "contoso";
  m.sender = "printer@contoso.example";
  m.rcptCount = 1;
  m.size = 48213;
  m.rule = "D8";
  m.reply = "250 2.0.0 Ok: queued as 4XyZ12abcd";
  m.queueId = "4XyZ12abcd";
  return m;
}

struct Run {
  uv_loop_t loop{};
  uv_timer_t probe{};
  uv_timer_t producer{};
  TraceStore* store = nullptr;
  int total = 0;
  int perTick = 100;
  int pushed = 0;
  uint64_t lastProbeNs = 0;
  uint64_t firstPushNs = 0, lastPushNs = 0;
  std::vector<double> lagUs;
  std::vector<double> recordUs;

  static void onProbe(uv_timer_t* t) {
    auto* self = static_cast<Run*>(t->data);
    uint64_t now = uv_hrtime();
    if (self->lastProbeNs) {
      double interval = static_cast<double>(now - self->lastProbeNs) / 1000.0;
      self->lagUs.push_back(std::max(0.0, interval - 1000.0));
    }
    self->lastProbeNs = now;
  }
  static void onProduce(uv_timer_t* t) {
    auto* self = static_cast<Run*>(t->data);
    if (!self->firstPushNs) {
      self->firstPushNs = uv_hrtime();
    }
    for (int i = 0; i < self->perTick && self->pushed < self->total; ++i, ++self->pushed) {
      MessageTrace record = makeRecord(self->pushed);
      uint64_t t0 = uv_hrtime();
      if (self->store) {
        self->store->record(std::move(record));
      } else {
        MessageTrace gone = std::move(record);  // the same moves and frees, no store
        (void)gone;
      }
      self->recordUs.push_back(static_cast<double>(uv_hrtime() - t0) / 1000.0);
    }
    if (self->pushed >= self->total) {
      self->lastPushNs = uv_hrtime();
      uv_timer_stop(&self->probe);
      uv_timer_stop(&self->producer);
    }
  }
};

Result runOnce(bool withStore, int records, const std::string& dir) {
  std::unique_ptr<TraceStore> store;
  if (withStore) {
    std::filesystem::remove_all(dir);
    TraceStore::Options options;
    options.databasePath = dir + "/traces.sqlite";
    std::string error;
    store = TraceStore::open(options, error);
    if (!store) {
      std::fprintf(stderr, "bench: %s\n", error.c_str());
      std::exit(1);
    }
  }
  Run run;
  run.total = records;
  run.store = store.get();
  run.lagUs.reserve(static_cast<std::size_t>(records / run.perTick + 16));
  run.recordUs.reserve(static_cast<std::size_t>(records));
  uv_loop_init(&run.loop);
  uv_timer_init(&run.loop, &run.probe);
  uv_timer_init(&run.loop, &run.producer);
  run.probe.data = &run;
  run.producer.data = &run;
  uv_timer_start(&run.probe, Run::onProbe, 1, 1);
  uv_timer_start(&run.producer, Run::onProduce, 1, 1);
  uv_run(&run.loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&run.probe), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&run.producer), nullptr);
  uv_run(&run.loop, UV_RUN_DEFAULT);
  uv_loop_close(&run.loop);

  Result r;
  r.tickLagP50Us = percentile(run.lagUs, 0.50);
  r.tickLagP99Us = percentile(run.lagUs, 0.99);
  r.tickLagMaxUs = percentile(run.lagUs, 1.0);
  r.recordP50Us = percentile(run.recordUs, 0.50);
  r.recordP99Us = percentile(run.recordUs, 0.99);
  r.recordMaxUs = percentile(run.recordUs, 1.0);
  r.loopMs = static_cast<double>(run.lastPushNs - run.firstPushNs) / 1e6;
  if (store) {
    uint64_t t0 = uv_hrtime();
    store->flush();
    r.commitMs = static_cast<double>(uv_hrtime() - t0) / 1e6;
    r.written = store->written();
    r.dropped = store->dropped();
  }
  return r;
}

double median(std::vector<Result>& rs, double Result::*field) {
  std::vector<double> v;
  for (const auto& r : rs) {
    v.push_back(r.*field);
  }
  return percentile(v, 0.5);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int records = argc > 2 ? std::max(1000, std::atoi(argv[2])) : 100000;
  const std::string dir = fmt::format("/tmp/smtpgate-bench-trace-{}", ::getpid());
  std::vector<Result> base, store;
  for (int i = 0; i < rounds; ++i) {
    base.push_back(runOnce(false, records, dir));
    store.push_back(runOnce(true, records, dir));
    std::fprintf(stderr, "round %d/%d: tick lag p99 %.0f us without, %.0f us with the store\n",
                 i + 1, rounds, base.back().tickLagP99Us, store.back().tickLagP99Us);
  }
  std::filesystem::remove_all(dir);

  char host[256] = "?";
  ::gethostname(host, sizeof host);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::printf("## Trace store vs. event loop — %s, %s, %u cores, %d rounds x %d records\n\n",
              isoUtcSeconds(now).c_str(), host, std::thread::hardware_concurrency(), rounds,
              records);
  std::printf("Medians over rounds. A 1 ms probe timer shares the loop with a timer that records "
              "100 messages per tick.\n\n");
  std::printf("| figure | baseline (no store) | with TraceStore | ratio |\n");
  std::printf("| --- | ---: | ---: | ---: |\n");
  struct Row {
    const char* name;
    double Result::*field;
  };
  for (const Row& row : {Row{"probe tick lag p50 (us)", &Result::tickLagP50Us},
                         Row{"probe tick lag p99 (us)", &Result::tickLagP99Us},
                         Row{"probe tick lag max (us)", &Result::tickLagMaxUs},
                         Row{"record() p50 (us)", &Result::recordP50Us},
                         Row{"record() p99 (us)", &Result::recordP99Us},
                         Row{"record() max (us)", &Result::recordMaxUs},
                         Row{"time to push all (ms)", &Result::loopMs}}) {
    double b = median(base, row.field);
    double s = median(store, row.field);
    std::printf("| %s | %.2f | %.2f | %s |\n", row.name, b, s,
                b > 0 ? fmt::format("{:.2f}", s / b).c_str() : "-");
  }
  std::printf("| writer: flush() after the last push (ms) | - | %.0f | - |\n",
              median(store, &Result::commitMs));
  uint64_t written = 0, dropped = 0;
  for (const auto& r : store) {
    written += r.written;
    dropped += r.dropped;
  }
  std::printf("| records committed / dropped (all rounds) | - | %llu / %llu | - |\n",
              static_cast<unsigned long long>(written), static_cast<unsigned long long>(dropped));
  return dropped == 0 && written == static_cast<uint64_t>(rounds) * records ? 0 : 1;
}
