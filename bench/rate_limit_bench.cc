// The per-AppID rate limit as WeChat sees it: 5 merchants x 200,000 followers, each limited to
// 2 calls/s with a burst of 2 (the tenants file's rate_limit), every lane always having its next
// call waiting. From the sandbox's call log (t_ms of each user/get call per appid): the most
// calls in any 1-second window per merchant (bound: burst + rate = 4) and the achieved rate.
//   build/bench/bench_rate_limit [merchants] [followers] [rate] [burst]
#include <cstdio>
#include <cstdlib>

#include "bench/worker_harness.h"

int main(int argc, char** argv) {
  using namespace fanpull;
  using namespace fanpull::bench;
  const int merchants = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t followers = argc > 2 ? std::atoll(argv[2]) : 200000;
  const double rate = argc > 3 ? std::atof(argv[3]) : 2.0;
  const int burst = argc > 4 ? std::atoi(argv[4]) : 2;

  setThreadName("bench-main");
  HarnessOptions ho;
  for (int i = 0; i < merchants; ++i) ho.accounts.push_back(merchant(benchAppid("rate", i), followers));
  ho.tenant_extra = {{"rate_limit", {{"requests_per_second", rate}, {"burst", burst}}}};
  Harness h(std::move(ho));
  WorkerOptions wo = h.workerOptions();
  wo.default_limit = {rate, burst, 0};  // the tenants' own rate_limit says the same
  h.startWorker(wo);

  std::vector<std::pair<std::string, std::string>> jobs;
  for (int i = 0; i < merchants; ++i) jobs.push_back({"rate-" + std::to_string(i), benchAppid("rate", i)});
  const std::string load = loadAverage();
  h.enqueue(jobs);
  const int64_t calls_per_walk = (followers + 9999) / 10000 + 1;
  const double expected_s = static_cast<double>(calls_per_walk - burst) / rate;
  const bool finished = h.waitFor(
      [&](const WorkerStats& s) {
        auto it = s.jobs_by_status.find("completed");
        return it != s.jobs_by_status.end() && it->second >= merchants;
      },
      std::chrono::seconds(static_cast<int>(expected_s * 2 + 30)), std::chrono::milliseconds(20));
  const WorkerStats stats = h.worker().stats();
  const int64_t completed =
      stats.jobs_by_status.count("completed") ? stats.jobs_by_status.at("completed") : 0;
  h.stopWorker();

  const auto by_appid = callTimesByAppid(h.sandbox().callLog(), sandbox::kEndpointUserGet);
  int64_t worst_window = 0, total_calls = 0;
  double slowest = 1e9, fastest = 0;
  std::string worst_appid;
  for (const auto& [appid, times] : by_appid) {
    total_calls += static_cast<int64_t>(times.size());
    const int64_t w = maxInWindow(times, 1000);
    if (w > worst_window) {
      worst_window = w;
      worst_appid = appid;
    }
    // After the burst a backlogged merchant gets one call per 1/rate: (n - burst) calls over
    // the span from its first call to its last.
    if (times.size() > static_cast<size_t>(burst) && times.back() > times.front()) {
      const double achieved = static_cast<double>(times.size() - static_cast<size_t>(burst)) /
                              (static_cast<double>(times.back() - times.front()) / 1000.0);
      slowest = std::min(slowest, achieved);
      fastest = std::max(fastest, achieved);
    }
  }
  const double mean_span_rate = [&] {
    // All calls of all merchants over the whole run, divided by merchants: includes the burst.
    int64_t first = INT64_MAX, last = 0;
    for (const auto& [appid, times] : by_appid) {
      first = std::min(first, times.front());
      last = std::max(last, times.back());
    }
    return static_cast<double>(total_calls) / merchants / (static_cast<double>(last - first) / 1000.0);
  }();

  Table t(fmt("bench_rate_limit: %d merchants x %lld followers, rate_limit %.3g calls/s burst %d",
              merchants, static_cast<long long>(followers), rate, burst));
  t.add("jobs completed", fmt("%lld / %d", static_cast<long long>(completed), merchants),
        fmt("%d", merchants), exactly(completed, merchants));
  t.add("merchants with calls", fmt("%zu", by_appid.size()), fmt("%d", merchants),
        exactly(static_cast<int64_t>(by_appid.size()), merchants));
  t.add("user/get calls (sandbox log)", fmt("%lld", static_cast<long long>(total_calls)),
        fmt("%lld", static_cast<long long>(calls_per_walk * merchants)),
        exactly(total_calls, calls_per_walk * merchants));
  t.add("max calls in any 1 s window, per merchant", fmt("%lld (%s)", static_cast<long long>(worst_window), worst_appid.c_str()),
        fmt("<= %g", burst + rate), atMost(static_cast<double>(worst_window), burst + rate));
  t.add("achieved rate after the burst, slowest merchant", fmt("%.3f calls/s", slowest),
        fmt(">= %.2f (95%%)", 0.95 * rate), atLeast(slowest, 0.95 * rate, " calls/s"));
  t.info("achieved rate after the burst, fastest merchant", fmt("%.3f calls/s", fastest));
  t.info("calls / merchant / run span (burst included)", fmt("%.3f calls/s", mean_span_rate));
  t.info("load average at start (2 shared cores)", load);
  t.print(commandLine(argc, argv));
  if (!finished) std::printf("\nnot every job completed in time\n");
  return finished ? 0 : 1;
}
