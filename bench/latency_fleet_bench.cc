// A fleet of small merchants behind a slow WeChat: 2,000 merchants x 5,000 followers, sandbox
// latency 200 ms, max_in_flight 64. Each merchant needs 2 getFans calls (its one data page, then
// the count-0 answer) and the day's openapi/quota/get, so the best possible time is (WeChat calls
// x 0.2 s / 64). Measures the time from the first WeChat call (the sandbox's log) to the last
// `completed` event (WorkerStats) and its ratio to that limit.
// pipeline 0 makes each lane wait for its page's delivery before its next call (as fanpull did
// before pipelining), to measure what pipelining brings.
//   build/bench/bench_latency_fleet [merchants] [followers] [latency_ms] [max_in_flight] [pipeline]
#include <cstdio>
#include <cstdlib>

#include "bench/worker_harness.h"
#include "core/malloc_arenas.h"

int main(int argc, char** argv) {
  fanpull::limitMallocArenas();  // as the fanpull executable does, before any thread
  using namespace fanpull;
  using namespace fanpull::bench;
  const int merchants = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int64_t followers = argc > 2 ? std::atoll(argv[2]) : 5000;
  const int latency_ms = argc > 3 ? std::atoi(argv[3]) : 200;
  const size_t in_flight = argc > 4 ? static_cast<size_t>(std::atoi(argv[4])) : 64;
  const bool pipeline = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  // kafka.max_queued_jobs (0: its default, 16 x max_in_flight): a bound near max_in_flight
  // pauses and resumes the jobs partitions all the time, which shows how soon jobs come again.
  const size_t max_queued_jobs = argc > 6 ? static_cast<size_t>(std::atoll(argv[6])) : 0;

  setThreadName("bench-main");
  HarnessOptions ho;
  for (int i = 0; i < merchants; ++i) ho.accounts.push_back(merchant(benchAppid("lat", i), followers));
  ho.latency_ms = latency_ms;
  ho.max_threads = 256;
  Harness h(std::move(ho));
  WorkerOptions wo = h.workerOptions();
  wo.max_in_flight = in_flight;
  wo.pipeline_calls = pipeline;
  wo.max_queued_jobs = max_queued_jobs;
  h.startWorker(wo);

  std::vector<std::pair<std::string, std::string>> jobs;
  for (int i = 0; i < merchants; ++i) jobs.push_back({"lat-" + std::to_string(i), benchAppid("lat", i)});
  const std::string load = loadAverage();
  const double machine0 = machineCpuSeconds();
  const double proc0 = processCpuSeconds();
  const auto t0 = SteadyClock::now();
  h.enqueue(jobs);
  const bool finished = h.waitFor(
      [&](const WorkerStats& s) {
        auto it = s.jobs_by_status.find("completed");
        return it != s.jobs_by_status.end() && it->second >= merchants;
      },
      std::chrono::seconds(100));
  const int64_t last_completed_ms = systemMs();
  const double since_enqueue = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const double machine_cpu = machineCpuSeconds() - machine0;
  const double process_cpu = processCpuSeconds() - proc0;
  const WorkerStats stats = h.worker().stats();
  h.stopWorker();

  int64_t user_get = 0, quota_get = 0;
  int64_t first_call_ms = INT64_MAX, last_call_ms = 0;
  for (const auto& e : h.sandbox().callLog()) {
    if (e.endpoint == sandbox::kEndpointUserGet) {
      ++user_get;
    } else if (e.endpoint == sandbox::kEndpointQuotaGet) {
      ++quota_get;
    } else {
      continue;
    }
    first_call_ms = std::min(first_call_ms, e.t_ms);
    last_call_ms = std::max(last_call_ms, e.t_ms);
  }
  const int64_t calls = user_get + quota_get;  // each takes a place among max_in_flight
  const int64_t expected_calls = int64_t{merchants} * ((followers + 9999) / 10000 + 1);
  const double limit_s = static_cast<double>(calls) * latency_ms / 1000.0 / static_cast<double>(in_flight);
  const double measured_s = static_cast<double>(last_completed_ms - first_call_ms) / 1000.0;
  const double ratio = measured_s / limit_s;
  const auto completed =
      stats.jobs_by_status.count("completed") ? stats.jobs_by_status.at("completed") : 0;

  Table t(fmt("bench_latency_fleet: %d merchants x %lld followers, sandbox latency %d ms, "
              "max_in_flight %zu, pipelined calls: %s, max_queued_jobs: %s, broker: %s",
              merchants, static_cast<long long>(followers), latency_ms, in_flight,
              pipeline ? "yes" : "no",
              max_queued_jobs ? std::to_string(max_queued_jobs).c_str() : "default",
              h.brokerName()));
  t.add("jobs completed", fmt("%lld / %d", static_cast<long long>(completed), merchants),
        fmt("%d", merchants), exactly(completed, merchants));
  t.add("WeChat user/get calls (sandbox log)", fmt("%lld", static_cast<long long>(user_get)),
        fmt("%lld", static_cast<long long>(expected_calls)), exactly(user_get, expected_calls));
  t.add("WeChat openapi/quota/get calls (one per merchant and day)",
        fmt("%lld", static_cast<long long>(quota_get)), fmt("%d", merchants),
        exactly(quota_get, merchants));
  t.info("limit: calls x latency / max_in_flight", fmt("%.2f s", limit_s));
  t.info("first WeChat call -> last completed event", fmt("%.2f s", measured_s));
  t.add("ratio to the limit", fmt("%.3fx", ratio), "<= 1.05x", atMost(ratio, 1.05, "x"));
  t.info("calls in flight on average", fmt("%.1f", static_cast<double>(calls) * latency_ms / 1000.0 / measured_s));
  t.info("last WeChat call -> last completed event", fmt("%.2f s", static_cast<double>(last_completed_ms - last_call_ms) / 1000.0));
  t.info("first job enqueued -> last completed event", fmt("%.2f s", since_enqueue));
  t.info("process CPU (getrusage)", fmt("%.2f s", process_cpu));
  t.info("machine CPU, every process (/proc/stat)",
         fmt("%.2f s = %.2f cores of 2", machine_cpu, machine_cpu / since_enqueue));
  t.info("load average at start (2 shared cores)", load);
  t.print(commandLine(argc, argv));
  if (!finished) std::printf("\nnot every job completed within 100 s\n");
  return finished ? 0 : 1;
}
