// The daily call budget: one merchant with 200,000 followers (21 calls needed) and a budget of
// N calls a day (WorkerOptions::default_limit.daily_calls). Expected: exactly N user/get calls
// that Beijing day (the sandbox's log), then one `deferred` event (quota_exhausted, retry_at
// 00:00 Beijing time), and no call after it.
//   build/bench/bench_quota [daily_calls] [followers]
#include <cstdio>
#include <cstdlib>

#include "bench/worker_harness.h"

int main(int argc, char** argv) {
  using namespace fanpull;
  using namespace fanpull::bench;
  const int64_t budget = argc > 1 ? std::atoll(argv[1]) : 5;
  const int64_t followers = argc > 2 ? std::atoll(argv[2]) : 200000;
  const std::string appid = benchAppid("quota", 1);

  setThreadName("bench-main");
  HarnessOptions ho;
  ho.accounts.push_back(merchant(appid, followers));
  ho.partitions = 4;
  Harness h(std::move(ho));
  WorkerOptions wo = h.workerOptions();
  wo.default_limit = {1e6, 1000000, budget};
  h.startWorker(wo);

  const auto t0 = SteadyClock::now();
  h.enqueue({{"quota-1", appid}});
  const bool deferred = h.waitFor(
      [](const WorkerStats& s) {
        auto it = s.jobs_by_status.find("deferred");
        return it != s.jobs_by_status.end() && it->second >= 1;
      },
      std::chrono::seconds(60));
  const double to_deferral = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const int64_t calls_at_deferral = h.sandbox().calls(appid, sandbox::kEndpointUserGet);
  // Watch a while longer: a deferred merchant must not call again before 00:00 Beijing time.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const WorkerStats stats = h.worker().stats();
  const auto events = h.readTopic(h.topics().events);
  h.stopWorker();

  const auto log = h.sandbox().callLog(appid);
  int64_t calls = 0, refused = 0, last_call_ms = 0;
  for (const auto& e : log) {
    if (e.endpoint != sandbox::kEndpointUserGet) continue;
    ++calls;
    if (e.errcode != 0 || !e.fault.empty()) ++refused;
    last_call_ms = std::max(last_call_ms, e.t_ms);
  }
  int64_t deferred_events = 0, other_final = 0;
  std::string retry_at, error_class;
  int64_t event_pages = -1, event_openids = -1, deferred_ts = 0;
  for (const auto& m : events) {
    const auto e = nlohmann::json::parse(m.value, nullptr, false);
    if (!e.is_object()) continue;
    const std::string status = e.value("status", "");
    if (status == "deferred") {
      ++deferred_events;
      retry_at = e.value("retry_at", "");
      if (e.contains("error")) error_class = e["error"].value("class", "");
      event_pages = e.value("pages", int64_t{-1});
      event_openids = e.value("openids", int64_t{-1});
      deferred_ts = m.timestamp_ms;  // the producer's create time
    } else if (status == "completed" || status == "failed") {
      ++other_final;
    }
  }

  Table t(fmt("bench_quota: 1 merchant x %lld followers, daily_calls %lld",
              static_cast<long long>(followers), static_cast<long long>(budget)));
  t.add("user/get calls that day (sandbox log)", fmt("%lld", static_cast<long long>(calls)),
        fmt("%lld", static_cast<long long>(budget)), exactly(calls, budget));
  t.add("calls WeChat refused", fmt("%lld", static_cast<long long>(refused)), "0", exactly(refused, 0));
  t.add("deferred events", fmt("%lld", static_cast<long long>(deferred_events)), "1",
        exactly(deferred_events, 1));
  t.add("deferred error class", error_class, "quota_exhausted",
        error_class == "quota_exhausted" ? "met" : "missed");
  t.info("deferred retry_at", retry_at);
  t.info("pages / OpenIDs delivered before the deferral",
         fmt("%lld / %lld", static_cast<long long>(event_pages), static_cast<long long>(event_openids)));
  if (deferred_ts > 0) {
    t.info("deferred event (Kafka timestamp) - last call (t_ms)", fmt("%+lld ms", static_cast<long long>(deferred_ts - last_call_ms)));
  }
  t.add("calls in the 2 s after the deferral",
        fmt("%lld", static_cast<long long>(calls - static_cast<int64_t>(calls_at_deferral))), "0",
        exactly(calls - static_cast<int64_t>(calls_at_deferral), 0));
  t.add("completed / failed events", fmt("%lld", static_cast<long long>(other_final)), "0",
        exactly(other_final, 0));
  t.info("first job enqueued -> deferral counted", fmt("%.3f s", to_deferral));
  t.info("worker's deferred jobs (WorkerStats)", fmt("%lld", static_cast<long long>(stats.deferred)));
  t.print(commandLine(argc, argv));
  return deferred ? 0 : 1;
}
