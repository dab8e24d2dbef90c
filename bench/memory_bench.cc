// Memory. Phase 1: 10,000 merchants in the tenants file and 10,000 jobs queued (one per merchant;
// the sandbox answers after 3 s so they stay queued behind max_in_flight 32): RSS (VmRSS) before
// the worker, with the jobs queued, and the process's peak (getrusage ru_maxrss, VmHWM).
// Phase 2: memory per page held in flight. K merchants x 20,000 followers, sandbox latency
// 1.5 s, max_in_flight K: once every first answer is in and no page is produced yet, each lane
// holds one full 10,000-OpenID page while its next call waits; the RSS (and malloc in-use) delta
// from before the jobs, divided by K. The sandbox's page cache is warmed first, so its rendered
// bodies are in the baseline. Everything (broker, sandbox, worker) is in this one process: the
// figures are upper bounds for the worker.
//   build/bench/bench_memory [merchants] [held_pages_K]
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>

#include <cstdio>
#include <cstdlib>

#include "bench/worker_harness.h"
#include "core/malloc_arenas.h"
#include "sandbox/openids.h"

namespace {

using namespace fanpull;
using namespace fanpull::bench;

// Fetches pages 0 and 1 of each merchant once, so the sandbox has rendered and cached them.
void warmSandbox(uint16_t port, const std::vector<std::string>& appids) {
  std::vector<std::thread> threads;
  for (const auto& appid : appids) {
    threads.emplace_back([port, appid] {
      Poco::Net::HTTPClientSession session("127.0.0.1", port);
      session.setTimeout(Poco::Timespan(30, 0));
      for (int page = 0; page < 2; ++page) {
        std::string target = "/cgi-bin/user/get?access_token=token-" + appid + "&next_openid=";
        if (page > 0) target += sandbox::sandboxOpenId(appid, 9999);
        try {
          Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, target,
                                         Poco::Net::HTTPMessage::HTTP_1_1);
          session.sendRequest(request);
          Poco::Net::HTTPResponse response;
          std::istream& in = session.receiveResponse(response);
          std::string sink((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        } catch (const std::exception&) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  fanpull::limitMallocArenas();  // as the fanpull executable does, before any thread
  const int merchants = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int held = argc > 2 ? std::atoi(argv[2]) : 64;
  setThreadName("bench-main");
  const std::string load = loadAverage();
  const int64_t rss_start = statusKb("VmRSS");

  // Phase 1: 10,000 jobs queued.
  int64_t rss_system = 0, rss_queued = 0, hwm_phase1 = 0, maxrss_phase1 = 0, queued = 0, received = 0;
  bool paused = false, all_received = false;
  {
    HarnessOptions ho;
    for (int i = 0; i < merchants; ++i) ho.accounts.push_back(merchant(benchAppid("mem", i), 10));
    ho.latency_ms = 3000;
    Harness h(std::move(ho));
    rss_system = statusKb("VmRSS");
    WorkerOptions wo = h.workerOptions();
    wo.max_in_flight = 32;
    // Every job held here, to measure what a queued job costs (by default, 16 x max_in_flight
    // are: the rest of a backlog waits in Kafka).
    wo.max_queued_jobs = static_cast<size_t>(merchants);
    h.startWorker(wo);
    std::vector<std::pair<std::string, std::string>> jobs;
    for (int i = 0; i < merchants; ++i) jobs.push_back({"mem-" + std::to_string(i), benchAppid("mem", i)});
    h.enqueue(jobs);
    all_received = h.waitFor([&](const WorkerStats& s) { return s.jobs_received >= merchants; },
                             std::chrono::seconds(60), std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const WorkerStats s = h.worker().stats();
    rss_queued = statusKb("VmRSS");
    hwm_phase1 = statusKb("VmHWM");
    maxrss_phase1 = maxRssKb();
    queued = s.jobs_queued;
    received = s.jobs_received;
    paused = s.partitions_paused;
  }

  // Phase 2: K pages held in flight.
  int64_t rss_before = 0, rss_held = 0, heap_before = 0, heap_held = 0, lanes_holding = 0;
  bool holding = false;
  {
    HarnessOptions ho;
    std::vector<std::string> appids;
    for (int i = 0; i < held; ++i) {
      appids.push_back(benchAppid("held", i));
      ho.accounts.push_back(merchant(appids.back(), 20000));
    }
    ho.latency_ms = 1500;
    ho.page_cache_bytes = std::size_t{256} << 20;
    Harness h(std::move(ho));
    WorkerOptions wo = h.workerOptions();
    wo.max_in_flight = static_cast<size_t>(held);
    h.startWorker(wo);
    warmSandbox(h.sandbox().port(), appids);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    rss_before = statusKb("VmRSS");
    heap_before = heapInUseBytes();
    std::vector<std::pair<std::string, std::string>> jobs;
    for (int i = 0; i < held; ++i) jobs.push_back({"held-" + std::to_string(i), appids[static_cast<size_t>(i)]});
    h.enqueue(jobs);
    holding = h.waitFor(
        [&](const WorkerStats& s) {
          auto ok = s.calls_by_class.find("ok");
          return ok != s.calls_by_class.end() && ok->second >= held;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(1));
    // While no page is produced yet, every lane holds its first page: sample for 300 ms.
    for (int i = 0; i < 30; ++i) {
      const WorkerStats s = h.worker().stats();
      if (s.pages > 0) break;
      auto ok = s.calls_by_class.find("ok");
      lanes_holding = ok == s.calls_by_class.end() ? 0 : ok->second;
      rss_held = std::max(rss_held, statusKb("VmRSS"));
      heap_held = std::max(heap_held, heapInUseBytes());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    h.waitFor([&](const WorkerStats& s) {
      auto it = s.jobs_by_status.find("completed");
      return it != s.jobs_by_status.end() && it->second >= held;
    }, std::chrono::seconds(30), std::chrono::milliseconds(20));
  }
  const int64_t hwm = statusKb("VmHWM");
  const int64_t maxrss = maxRssKb();

  Table t(fmt("bench_memory: %d merchants in the tenants file, %d jobs queued; %d full pages held "
              "in flight (worker, sandbox and broker in one process)",
              merchants, merchants, held));
  t.add("jobs received / queued in the worker",
        fmt("%lld / %lld", static_cast<long long>(received), static_cast<long long>(queued)),
        fmt("%d", merchants), exactly(received, merchants));
  t.info(fmt("jobs partitions paused (max_queued_jobs %d)", merchants), paused ? "yes" : "no");
  t.info("RSS at start of the program", fmt("%.1f MB", rss_start / 1024.0));
  t.info("RSS with broker + sandbox (10,000 accounts), no worker", fmt("%.1f MB", rss_system / 1024.0));
  t.info("RSS with the worker and 10,000 jobs queued", fmt("%.1f MB", rss_queued / 1024.0));
  t.info("  worker + tenants + queued jobs (difference)", fmt("%.1f MB", (rss_queued - rss_system) / 1024.0));
  t.add("peak RSS, phase 1 (VmHWM)", fmt("%.1f MB", hwm_phase1 / 1024.0), "<= 200 MB",
        atMost(hwm_phase1 / 1024.0, 200, " MB"));
  t.add("peak RSS, phase 1 (getrusage ru_maxrss)", fmt("%.1f MB", maxrss_phase1 / 1024.0), "<= 200 MB",
        atMost(maxrss_phase1 / 1024.0, 200, " MB"));
  // Pages are produced as soon as their answer arrives, so a lane holds none between calls: 0
  // is the expected count, and the per-page figures appear only if a lane ever holds one.
  t.info("lanes holding a page between calls when sampled",
         fmt("%lld of %d", static_cast<long long>(lanes_holding), held));
  if (holding && lanes_holding > 0) {
    t.info("RSS before / while holding the pages",
           fmt("%.1f / %.1f MB", rss_before / 1024.0, rss_held / 1024.0));
    t.info("RSS per page held in flight",
           fmt("%.0f KB", static_cast<double>(rss_held - rss_before) / static_cast<double>(lanes_holding)));
    t.info("malloc in use per page held in flight",
           fmt("%.0f KB", static_cast<double>(heap_held - heap_before) / 1024.0 / static_cast<double>(lanes_holding)));
  }
  t.info("  (a page: 10,000 OpenIDs x 28 bytes = 273 KB of OpenIDs; 310 KB as a message)", "-");
  // Phase 2 adds its warmed sandbox cache (2 x K rendered pages) and the pages in the broker on
  // top of what phase 1 left in malloc's free lists: not the worker's footprint.
  t.info("peak RSS, whole run incl. phase 2's warmed sandbox cache (VmHWM)", fmt("%.1f MB", hwm / 1024.0));
  t.info("peak RSS, whole run (getrusage ru_maxrss)", fmt("%.1f MB", maxrss / 1024.0));
  t.info("load average at start (2 shared cores)", load);
  t.print(commandLine(argc, argv));
  return all_received && holding ? 0 : 1;
}
