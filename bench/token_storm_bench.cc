// A token storm: 1,000 merchants on the third-party platform flow (ComponentTokenSource; tenants
// hold only refresh tokens), each sandbox account with token_expires_after_calls 1, so every
// access token answers 42001 after its first call, all at about the same moment. Each merchant
// has 20,000 followers in two full pages whose last has next_openid "" (the "empty" variant), so
// a walk is exactly 2 user/get calls: one with the first token, one after its renewal.
// Expected from the sandbox's log: 1,000 initial api_authorizer_token calls (one per merchant,
// on its first call), exactly 1,000 renewals beyond them (one per expired token: single flight,
// renew only if current), 1,000 42001 answers and one api_component_token call.
//   build/bench/bench_token_storm [merchants] [followers] [max_in_flight]
#include <cstdio>
#include <cstdlib>

#include "bench/worker_harness.h"

int main(int argc, char** argv) {
  using namespace fanpull;
  using namespace fanpull::bench;
  const int merchants = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int64_t followers = argc > 2 ? std::atoll(argv[2]) : 20000;
  const size_t in_flight = argc > 3 ? static_cast<size_t>(std::atoi(argv[3])) : 32;

  setThreadName("bench-main");
  HarnessOptions ho;
  for (int i = 0; i < merchants; ++i) {
    sandbox::Account a = merchant(benchAppid("tok", i), followers);
    a.access_tokens.clear();
    a.refresh_token = "refresh-" + a.appid;
    a.token_expires_after_calls = 1;
    a.last_page_variant = sandbox::LastPageVariant::kEmpty;
    ho.accounts.push_back(std::move(a));
  }
  ho.component = true;
  ho.page_cache_bytes = std::size_t{16} << 20;
  Harness h(std::move(ho));
  WorkerOptions wo = h.workerOptions();
  wo.max_in_flight = in_flight;
  h.startWorker(wo);

  std::vector<std::pair<std::string, std::string>> jobs;
  for (int i = 0; i < merchants; ++i) jobs.push_back({"tok-" + std::to_string(i), benchAppid("tok", i)});
  const std::string load = loadAverage();
  const auto t0 = SteadyClock::now();
  h.enqueue(jobs);
  auto finalCount = [](const WorkerStats& s) {
    int64_t n = 0;
    for (const char* k : {"completed", "failed"}) {
      auto it = s.jobs_by_status.find(k);
      if (it != s.jobs_by_status.end()) n += it->second;
    }
    return n;
  };
  const bool finished = h.waitFor([&](const WorkerStats& s) { return finalCount(s) >= merchants; },
                                  std::chrono::seconds(100), std::chrono::milliseconds(10));
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const WorkerStats stats = h.worker().stats();
  const TokenMetrics metrics = h.componentTokens()->metrics();
  h.stopWorker();

  // From the sandbox's log: each merchant's first api_authorizer_token call is the initial
  // token; every later one is a renewal.
  std::map<std::string, int64_t> authorizer_calls;
  int64_t expired_answers = 0, user_get = 0, authorizer_errors = 0;
  int64_t first_42001_ms = INT64_MAX, last_42001_ms = 0;
  for (const auto& e : h.sandbox().callLog()) {
    if (e.endpoint == sandbox::kEndpointAuthorizerToken) {
      ++authorizer_calls[e.appid];
      if (e.errcode != 0) ++authorizer_errors;
    } else if (e.endpoint == sandbox::kEndpointUserGet) {
      ++user_get;
      if (e.errcode == 42001) {
        ++expired_answers;
        first_42001_ms = std::min(first_42001_ms, e.t_ms);
        last_42001_ms = std::max(last_42001_ms, e.t_ms);
      }
    }
  }
  int64_t initial = 0, renewals = 0, max_renewals = 0;
  for (const auto& [appid, n] : authorizer_calls) {
    initial += 1;
    renewals += n - 1;
    max_renewals = std::max(max_renewals, n - 1);
  }
  const int64_t component_calls = h.sandbox().componentTokenCalls();
  const int64_t completed =
      stats.jobs_by_status.count("completed") ? stats.jobs_by_status.at("completed") : 0;
  const int64_t calls_per_walk = (followers + 9999) / 10000;  // "empty" variant: no count-0 call

  Table t(fmt("bench_token_storm: %d merchants x %lld followers, component flow, every token "
              "expires after 1 call, max_in_flight %zu",
              merchants, static_cast<long long>(followers), in_flight));
  t.add("jobs completed", fmt("%lld / %d", static_cast<long long>(completed), merchants),
        fmt("%d", merchants), exactly(completed, merchants));
  t.add("api_authorizer_token calls: initial (first per merchant)",
        fmt("%lld", static_cast<long long>(initial)), fmt("%d", merchants), exactly(initial, merchants));
  t.add("api_authorizer_token calls: renewals beyond the initial ones",
        fmt("%lld", static_cast<long long>(renewals)),
        fmt("%lld", static_cast<long long>(merchants * (calls_per_walk - 1))),
        exactly(renewals, merchants * (calls_per_walk - 1)));
  t.add("most renewals for one merchant", fmt("%lld", static_cast<long long>(max_renewals)),
        fmt("%lld", static_cast<long long>(calls_per_walk - 1)), exactly(max_renewals, calls_per_walk - 1));
  t.add("api_authorizer_token calls refused", fmt("%lld", static_cast<long long>(authorizer_errors)),
        "0", exactly(authorizer_errors, 0));
  t.add("user/get answers 42001 (expired token)", fmt("%lld", static_cast<long long>(expired_answers)),
        fmt("%lld", static_cast<long long>(merchants * (calls_per_walk - 1))),
        exactly(expired_answers, merchants * (calls_per_walk - 1)));
  t.add("user/get calls", fmt("%lld", static_cast<long long>(user_get)),
        fmt("%lld", static_cast<long long>(merchants * (2 * calls_per_walk - 1))),
        exactly(user_get, merchants * (2 * calls_per_walk - 1)));
  t.add("api_component_token calls", fmt("%lld", static_cast<long long>(component_calls)), "1",
        exactly(component_calls, 1));
  t.info("ComponentTokenSource renewals_ok / failed",
         fmt("%lld / %lld", static_cast<long long>(metrics.renewals_ok),
             static_cast<long long>(metrics.renewals_failed)));
  if (expired_answers > 0) {
    t.info("42001 answers spread (first -> last)",
           fmt("%.2f s", static_cast<double>(last_42001_ms - first_42001_ms) / 1000.0));
  }
  t.info("first job enqueued -> last job ended", fmt("%.2f s", seconds));
  t.info("load average at start (2 shared cores)", load);
  t.print(commandLine(argc, argv));
  if (!finished) std::printf("\nnot every job ended within 100 s\n");
  return finished ? 0 : 1;
}
