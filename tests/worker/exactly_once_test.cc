// kafka.exactly_once on Apache Kafka (the embedded broker cannot honour transactions): what a
// read_committed consumer sees, once each, and what it costs. The crash and zombie proofs, with
// `fanpull run` processes, are in crash_test.cc.
#include <catch2/catch.hpp>

#include "support/worker_fixture.h"

using namespace fanpull;
using testing::merchant;
using testing::WorkerFixture;

namespace {

int64_t countStatus(const std::vector<nlohmann::json>& events, const std::string& status) {
  int64_t n = 0;
  for (const auto& e : events) n += e.value("status", "") == status;
  return n;
}

}  // namespace

TEST_CASE("with exactly_once a read_committed consumer sees every page and event once, the input "
          "offsets are committed with them, and a graceful stop pays for nothing twice",
          "[worker][kafka]") {
  // 80,000 followers in 9 calls of 150 ms, cut by a stop after 3; two small merchants beside.
  auto slow = merchant("wxeosslow", 80000);
  slow.latency_ms = 150;
  WorkerFixture f({slow, merchant("wxeosa", 25000), merchant("wxeosb", 3000)});
  REQUIRE(f.kafka().real());
  auto options = f.options();
  options.exactly_once = true;
  f.startWorker(options);
  f.enqueueJob("j-eos-slow", "wxeosslow");
  f.enqueueJob("j-eos-a", "wxeosa");
  f.enqueueJob("j-eos-b", "wxeosb");
  f.waitForUserGetCalls("wxeosslow", 3);
  f.waitForStatus({"j-eos-a", "j-eos-b"}, {"completed"});
  const int64_t committed_first = f.worker().stats().transactions_committed;
  f.stopWorker();
  CHECK(committed_first > 0);
  f.startWorker(options);
  f.waitForStatus({"j-eos-slow"}, {"completed"});
  f.stopWorker();

  auto pages = f.allPages();
  const std::pair<const char*, const char*> jobs[] = {
      {"j-eos-slow", "wxeosslow"}, {"j-eos-a", "wxeosa"}, {"j-eos-b", "wxeosb"}};
  const int64_t followers[] = {80000, 25000, 3000};
  for (size_t i = 0; i < std::size(jobs); ++i) {
    const auto& [job, appid] = jobs[i];
    INFO("job " << job);
    WorkerFixture::requireFollowersIn(pages, job, appid, followers[i]);
    // Not one identity twice, not even an identical replay.
    CHECK(testing::assemblePages(pages, job).duplicates == 0);
    auto events = f.eventsOf(job);
    CHECK(countStatus(events, "started") == 1);
    CHECK(countStatus(events, "completed") == 1);
    CHECK(events.size() == 2);
  }
  // Each walk's calls and no more: its pages, then the call answering count 0.
  CHECK(f.sandbox().calls("wxeosslow", sandbox::kEndpointUserGet) == 9);
  CHECK(f.sandbox().calls("wxeosa", sandbox::kEndpointUserGet) == 4);
  CHECK(f.sandbox().calls("wxeosb", sandbox::kEndpointUserGet) == 2);
  // The jobs' offsets went with the transactions.
  CHECK(f.jobsNotCommitted().empty());
}
