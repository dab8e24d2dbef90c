// The worker's own cost per page: worker, WeChat sandbox (zero latency) and embedded Kafka broker
// in one process, N merchants with full 10,000-OpenID pages, max_in_flight 32, rate limits out of
// the way. Measures pages/s and OpenIDs/s end to end (first job enqueued to the last `completed`
// event, counted by WorkerStats) and where the CPU went: process CPU (getrusage) and per-thread
// CPU (/proc/self/task/*/stat) grouped by thread name.
// pipeline 0: each lane waits for its page's delivery before its next call (to compare).
// eos: 0 at-least-once (default); 1 kafka.exactly_once; "compare" runs at-least-once, then
// exactly-once with each transaction interval of [intervals_ms] (default 100), each on a fresh
// harness, [rounds] times (default 3, the order turned round every other round) after a warm-up
// run, and prints the median of exactly-once's pages/s as a share of at-least-once's (target
// >= 80%).
// Every mode starts with a warm-up run that is not counted (FANPULL_TEST_BROKER=kafka starts
// the broker in this process: its JVM's first run is not its steady state); set
// FANPULL_BENCH_WARMUP=0 to count a cold broker's first run instead.
// Exactly-once needs the real broker (FANPULL_TEST_BROKER=kafka).
//   build/bench/bench_worker_overhead [merchants] [followers_per_merchant] [pipeline] [eos]
//                                     [intervals_ms, comma separated] [eos_undelivered_mib]
//                                     [rounds]
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "bench/bench_util.h"
#include "bench/worker_harness.h"
#include "core/buffer_pool.h"
#include "core/malloc_arenas.h"

namespace {

using namespace fanpull;
using namespace fanpull::bench;

std::string groupOf(const std::string& name) {
  if (name.rfind("rdk:", 0) == 0) return "rdkafka (rdk:*)";
  if (name.rfind("sandbox", 0) == 0) return "sandbox (Poco HTTP server)";
  if (name.rfind("worker", 0) == 0) return "worker executor+poll";
  if (name.rfind("kafka-broker", 0) == 0) return "rdkafka (rdk:*)";  // mock cluster, unnamed
  return "bench main + other";
}

struct RunResult {
  bool finished = false;
  double pages_per_s = 0;
  double worker_cpu_ms = 0;  // the worker's own CPU per page
  double transactions = 0;
  double commit_ms = 0;  // mean time a commit took
};

RunResult runOnce(int argc, char** argv, int merchants, int64_t followers, bool pipeline,
                  bool eos, int interval_ms, int64_t undelivered_bytes, bool print = true) {
  constexpr int kPartitions = 32;
  constexpr size_t kInFlight = 32;
  const int64_t full_pages = merchants * (followers / 10000);

  setThreadName("bench-main");
  HarnessOptions ho;
  for (int i = 0; i < merchants; ++i) ho.accounts.push_back(merchant(benchAppid("ovh", i), followers));
  ho.partitions = kPartitions;
  ho.page_cache_bytes = std::size_t{16} << 20;  // every page is fetched once: no reuse to gain
  Harness h(std::move(ho));
  WorkerOptions wo = h.workerOptions();
  wo.max_in_flight = kInFlight;
  wo.pipeline_calls = pipeline;
  wo.exactly_once = eos;
  wo.transaction_interval = std::chrono::milliseconds(interval_ms);
  if (undelivered_bytes > 0) wo.max_undelivered_bytes = undelivered_bytes;
  h.startWorker(wo);

  std::vector<std::pair<std::string, std::string>> jobs;
  for (int i = 0; i < merchants; ++i) jobs.push_back({"ovh-" + std::to_string(i), benchAppid("ovh", i)});

  const std::string load = loadAverage();
  const BufferPoolStats pool0 = BufferPool::bodies().stats();
  const auto cpu0 = threadCpu();
  const double proc0 = processCpuSeconds();
  const double machine0 = machineCpuSeconds();
  const auto t0 = SteadyClock::now();
  const int64_t t0_ms = systemMs();
  h.enqueue(jobs);
  const bool finished = h.waitFor(
      [&](const WorkerStats& s) {
        auto it = s.jobs_by_status.find("completed");
        return it != s.jobs_by_status.end() && it->second >= merchants;
      },
      std::chrono::seconds(100));
  const auto t1 = SteadyClock::now();
  const int64_t t1_ms = systemMs();
  const double proc1 = processCpuSeconds();
  const double machine1 = machineCpuSeconds();
  const auto cpu1 = threadCpu();
  const BufferPoolStats pool1 = BufferPool::bodies().stats();
  const WorkerStats stats = h.worker().stats();
  std::vector<sandbox::CallLogEntry> log;  // user/get calls only (not quota/get)
  for (auto& e : h.sandbox().callLog()) {
    if (e.endpoint == sandbox::kEndpointUserGet) log.push_back(std::move(e));
  }
  const int64_t calls = static_cast<int64_t>(log.size());
  const int64_t first_call_ms = log.empty() ? t0_ms : log.front().t_ms;
  h.stopWorker();

  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double pages_per_s = static_cast<double>(stats.pages) / seconds;
  const double openids_per_s = static_cast<double>(stats.openids) / seconds;
  const double process_cpu = proc1 - proc0;
  const CpuSplit split = cpuBetween(cpu0, cpu1, groupOf);
  const double pages = static_cast<double>(std::max<int64_t>(1, stats.pages));
  auto completed = stats.jobs_by_status.count("completed") ? stats.jobs_by_status.at("completed") : 0;

  Table t(fmt("bench_worker_overhead: %d merchants x %lld followers (%lld full pages), "
              "%d partitions, max_in_flight %zu, sandbox latency 0, pipelined calls: %s, broker: %s, "
              "output: %s",
              merchants, static_cast<long long>(followers), static_cast<long long>(full_pages),
              kPartitions, kInFlight, pipeline ? "yes" : "no", h.brokerName(),
              eos ? fmt("exactly-once, transactions every %d ms", interval_ms).c_str()
                  : "at-least-once"));
  t.add("jobs completed", fmt("%lld / %d", static_cast<long long>(completed), merchants),
        fmt("%d", merchants), exactly(completed, merchants));
  t.info("pages produced / WeChat calls", fmt("%lld / %lld", static_cast<long long>(stats.pages),
                                                static_cast<long long>(calls)));
  t.info("elapsed (first job enqueued -> last completed)", fmt("%.2f s", seconds));
  t.info("  of which: first job enqueued -> first WeChat call", fmt("%.2f s", (first_call_ms - t0_ms) / 1000.0));
  {
    int64_t last_call_ms = first_call_ms;
    for (const auto& e : log) last_call_ms = std::max(last_call_ms, e.t_ms);
    t.info("  of which: first WeChat call -> last WeChat call", fmt("%.2f s", (last_call_ms - first_call_ms) / 1000.0));
    t.info("  of which: last WeChat call -> last completed", fmt("%.2f s", (t1_ms - last_call_ms) / 1000.0));
  }
  t.add("pages/s end to end", fmt("%.0f", pages_per_s), ">= 600", atLeast(pages_per_s, 600));
  t.info("pages/s from the first WeChat call", fmt("%.0f", static_cast<double>(stats.pages) / ((t1_ms - first_call_ms) / 1000.0)));
  t.info("OpenIDs/s end to end", fmt("%.0f", openids_per_s));
  t.info("process CPU (getrusage)", fmt("%.2f s = %.2f cores of 2", process_cpu, process_cpu / seconds));
  t.info("machine CPU, every process (/proc/stat)",
         fmt("%.2f s = %.2f cores of 2", machine1 - machine0, (machine1 - machine0) / seconds));
  t.info("  of which outside this process (a real broker's JVM, other load)",
         fmt("%.2f s", std::max(0.0, (machine1 - machine0) - process_cpu)));
  t.info("load average at start (2 shared cores)", load);
  t.info("process CPU per page", fmt("%.2f ms", 1000.0 * process_cpu / pages));
  for (const auto& [group, s] : split.by_group) {
    t.info("  CPU per page: " + group,
           fmt("%.2f ms (%.0f%%)", 1000.0 * s / pages, 100.0 * s / std::max(1e-9, split.total)));
  }
  t.info("  CPU of threads that ended during the run", fmt("%.2f ms", 1000.0 * std::max(0.0, process_cpu - split.total) / pages));
  const double worker_cpu = split.by_group.count("worker executor+poll")
                                ? split.by_group.at("worker executor+poll")
                                : 0.0;
  t.add("worker's own CPU per page (executor+poll)", fmt("%.2f ms", 1000.0 * worker_cpu / pages),
        "<= 0.30 ms", atMost(1000.0 * worker_cpu / pages, 0.30, " ms"));
  // A lane's cycle from the sandbox's log: pipelined, a call waits for the checkpoint of the
  // page before the previous one; otherwise for the previous page's delivery.
  {
    std::vector<double> gaps;
    for (const auto& [appid, times] : callTimesByAppid(log, sandbox::kEndpointUserGet)) {
      for (size_t i = 1; i < times.size(); ++i) gaps.push_back(static_cast<double>(times[i] - times[i - 1]));
    }
    t.info("lane cycle, call k -> k+1, median", fmt("%.0f ms", percentile(gaps, 0.5)));
    t.info("lane cycle, call k -> k+1, p90", fmt("%.0f ms", percentile(gaps, 0.9)));
  }
  t.info("answer buffers allocated / used again / freed as over the pool's budget",
         fmt("%llu / %llu / %llu", static_cast<unsigned long long>(pool1.allocated - pool0.allocated),
             static_cast<unsigned long long>(pool1.reused - pool0.reused),
             static_cast<unsigned long long>(pool1.dropped - pool0.dropped)));
  t.info("produce errors", fmt("%lld", static_cast<long long>(stats.produce_errors)));
  if (eos) {
    t.info("transactions committed / aborted",
           fmt("%lld / %lld", static_cast<long long>(stats.transactions_committed),
               static_cast<long long>(stats.transactions_aborted)));
    t.info("commit time, mean (groups meanwhile held for the next transaction)",
           fmt("%.1f ms", stats.transactions_committed
                              ? static_cast<double>(stats.transaction_commit_ms) /
                                    static_cast<double>(stats.transactions_committed)
                              : 0.0));
  }
  RunResult r;
  r.finished = finished;
  r.pages_per_s = pages_per_s;
  r.worker_cpu_ms = 1000.0 * worker_cpu / pages;
  r.transactions = static_cast<double>(stats.transactions_committed);
  r.commit_ms = stats.transactions_committed
                    ? static_cast<double>(stats.transaction_commit_ms) /
                          static_cast<double>(stats.transactions_committed)
                    : 0.0;
  if (!print) return r;
  t.print(commandLine(argc, argv));

  // The evidence: the busiest thread names.
  std::vector<std::pair<double, std::string>> names;
  for (const auto& [name, s] : split.by_name) names.push_back({s, name});
  std::sort(names.rbegin(), names.rend());
  std::printf("\nCPU by thread name (threads of one name summed), over the %.2f s run:\n", seconds);
  std::printf("| %-16s | %9s | %10s | %6s |\n", "thread name", "CPU s", "ms / page", "share");
  std::printf("|------------------|-----------|------------|--------|\n");
  for (size_t i = 0; i < names.size() && i < 12; ++i) {
    std::printf("| %-16s | %9.2f | %10.3f | %5.1f%% |\n", names[i].second.c_str(), names[i].first,
                1000.0 * names[i].first / pages, 100.0 * names[i].first / std::max(1e-9, split.total));
  }
  if (!finished) std::printf("\nnot every job completed within 100 s\n");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  fanpull::limitMallocArenas();  // as the fanpull executable does, before any thread
  const int merchants = argc > 1 ? std::atoi(argv[1]) : 100;
  const int64_t followers = argc > 2 ? std::atoll(argv[2]) : 100000;
  const bool pipeline = argc > 3 ? std::atoi(argv[3]) != 0 : true;
  const std::string eos = argc > 4 ? argv[4] : "0";
  std::vector<int> intervals;
  {
    std::string list = argc > 5 ? argv[5] : "100";
    for (size_t at = 0; at < list.size();) {
      size_t comma = list.find(',', at);
      if (comma == std::string::npos) comma = list.size();
      intervals.push_back(std::atoi(list.substr(at, comma - at).c_str()));
      at = comma + 1;
    }
  }
  // [eos_undelivered_mib]: kafka.max_undelivered_bytes of the exactly-once runs (default: the
  // worker's, 16 MiB): what a commit must deliver before the next transaction begins.
  const int64_t eos_undelivered = argc > 6 ? std::atoll(argv[6]) << 20 : 0;
  if (eos != "compare") {
    const bool eos_run = eos == "1";
    const int64_t undelivered = eos_run ? eos_undelivered : 0;
    // A warm-up run first, not counted, unless FANPULL_BENCH_WARMUP=0: a real broker is started
    // by this process and its JVM compiles its hot paths during its first run, taking CPU from
    // the worker and the sandbox on this 2-core machine, which a broker in service does not. The
    // worker's answer buffers are freed after it, so the counted run starts as a freshly started
    // worker does: only the broker (and the machine's caches) is warm.
    const char* warmup = std::getenv("FANPULL_BENCH_WARMUP");
    if (!(warmup && std::string(warmup) == "0")) {
      const RunResult w = runOnce(argc, argv, merchants, followers, pipeline, eos_run,
                                  intervals.front(), undelivered, /*print=*/false);
      BufferPool::bodies().releaseKept();
      std::printf("warm-up run, not counted (FANPULL_BENCH_WARMUP=0 skips it): %.0f pages/s end "
                  "to end, worker's own CPU %.2f ms per page%s\n\n",
                  w.pages_per_s, w.worker_cpu_ms, w.finished ? "" : ", not every job completed");
    }
    return runOnce(argc, argv, merchants, followers, pipeline, eos_run, intervals.front(),
                   undelivered)
               .finished
               ? 0
               : 1;
  }
  // [rounds]: each round runs at-least-once and every interval once, on fresh harnesses, the
  // order turned round every other round, so that drifting machine load (2 shared cores, the
  // broker's JVM warming up) hits every mode alike; the table gives the medians.
  const int rounds = argc > 7 ? std::max(1, std::atoi(argv[7])) : 3;
  // A warm-up run first, not counted: a real broker's JVM compiles its hot paths during its
  // first run, which would otherwise weigh on whichever mode runs first.
  std::printf("warm-up run (not counted):\n");
  const bool warmed = runOnce(argc, argv, merchants, followers, pipeline, false, 0, 0).finished;
  std::vector<std::vector<RunResult>> by_mode(intervals.size() + 1);  // [0]: at-least-once
  for (int round = 0; round < rounds; ++round) {
    std::vector<size_t> order;
    for (size_t m = 0; m <= intervals.size(); ++m) order.push_back(m);
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (size_t m : order) {
      by_mode[m].push_back(m == 0 ? runOnce(argc, argv, merchants, followers, pipeline, false, 0, 0)
                                  : runOnce(argc, argv, merchants, followers, pipeline, true,
                                            intervals[m - 1], eos_undelivered));
    }
  }
  auto median = [](const std::vector<RunResult>& runs, double RunResult::*field) {
    std::vector<double> values;
    for (const auto& r : runs) values.push_back(r.*field);
    return percentile(values, 0.5);
  };
  // "a, b, c": each value printed with `format`.
  auto joined = [](const std::vector<double>& values, const char* format) {
    std::string out;
    for (double v : values) out += (out.empty() ? "" : ", ") + fmt(format, v);
    return out;
  };
  auto each = [&](const std::vector<RunResult>& runs) {
    std::vector<double> values;
    for (const auto& r : runs) values.push_back(r.pages_per_s);
    return joined(values, "%.0f");
  };
  Table t(fmt("bench_worker_overhead compare: exactly-once against at-least-once, one process, "
              "%d rounds, each run on a fresh harness (%d merchants x %lld followers); medians",
              rounds, merchants, static_cast<long long>(followers)));
  bool all = warmed;
  for (const auto& runs : by_mode) {
    for (const auto& r : runs) all = all && r.finished;
  }
  const double base = median(by_mode[0], &RunResult::pages_per_s);
  t.info("at-least-once: pages/s (each run)", fmt("%.0f (%s)", base, each(by_mode[0]).c_str()));
  for (size_t m = 1; m < by_mode.size(); ++m) {
    const int interval = intervals[m - 1];
    const double pages_per_s = median(by_mode[m], &RunResult::pages_per_s);
    const double commit_ms = median(by_mode[m], &RunResult::commit_ms);
    const double share = base > 0 ? pages_per_s / base : 0.0;
    // Each round's share too: its two runs were next to each other in time.
    std::vector<double> shares;  // in percent
    for (size_t round = 0; round < by_mode[m].size(); ++round) {
      const double b = by_mode[0][round].pages_per_s;
      shares.push_back(b > 0 ? 100.0 * by_mode[m][round].pages_per_s / b : 0.0);
    }
    t.info(fmt("exactly-once every %d ms: pages/s (each run)", interval),
           fmt("%.0f (%s)", pages_per_s, each(by_mode[m]).c_str()));
    t.info(fmt("exactly-once every %d ms: share in each round, median", interval),
           fmt("%s; %.0f%%", joined(shares, "%.0f%%").c_str(), percentile(shares, 0.5)));
    t.info(fmt("exactly-once every %d ms: transactions, mean commit", interval),
           fmt("%.0f, %.1f ms (a page waits for the next commit: about %.0f ms on average)",
               median(by_mode[m], &RunResult::transactions), commit_ms,
               interval / 2.0 + commit_ms));
    t.add(fmt("exactly-once every %d ms as a share of at-least-once (medians)", interval),
          fmt("%.0f%%", 100.0 * share), ">= 80%", atLeast(100.0 * share, 80.0));
  }
  t.print(commandLine(argc, argv));
  return all ? 0 : 1;
}
