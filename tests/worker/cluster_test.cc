// A worker on a three-broker Apache Kafka cluster (replication factor 3, 2 in sync) while one
// broker is killed: partition leadership moves to the survivors and the worker goes on without
// losing a page or failing a job, calling WeChat again at most for a walk the group moved.
// Only a real cluster can show this. And a stop with every broker of the cluster killed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/worker_fixture.h"

using namespace fanpull;
using testing::merchant;
using testing::TestKafka;
using testing::WorkerFixture;

TEST_CASE("a broker of three killed mid-run moves its leaders and loses no page",
          "[worker][kafka]") {
  auto cluster = TestKafka::startCluster(3);
  INFO((cluster.ok() ? std::string() : cluster.error().describe()));
  REQUIRE(cluster.ok());
  TestKafka* kafka = cluster->get();
  std::vector<sandbox::Account> accounts;
  for (int i = 0; i < 6; ++i) {
    auto a = merchant("wxcluster" + std::to_string(i), 80000);  // 9 calls each
    a.latency_ms = 150;
    accounts.push_back(a);
  }
  WorkerFixture f(accounts, 6, std::move(*cluster));
  f.startWorker();
  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("j-" + a.appid, a.appid);
    jobs.insert("j-" + a.appid);
  }
  // Mid-run: about a quarter of the 54 calls made.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int64_t calls = 0;
  while (calls < 14 && std::chrono::steady_clock::now() < deadline) {
    calls = 0;
    for (const auto& a : accounts) calls += f.sandbox().calls(a.appid, sandbox::kEndpointUserGet);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(calls >= 14);
  REQUIRE(kafka->killBroker(3).ok());
  f.waitForStatus(jobs, {"completed", "failed"}, std::chrono::seconds(120));
  auto pages = f.allPages();
  int64_t extra = 0;
  for (const auto& a : accounts) {
    const std::string job = "j-" + a.appid;
    INFO(job);
    auto events = f.eventsOf(job);
    int completed = 0;
    for (const auto& e : events) completed += e["status"] == "completed" ? 1 : 0;
    CHECK(completed == 1);
    WorkerFixture::requireFollowersIn(pages, job, a.appid, 80000);
    // Produce retries go to the new leaders and cost no call. When the dead broker was the
    // group's coordinator the group may re-form, and a walk handed back resumes from its
    // checkpoint: at most 2 calls again.
    const int64_t walk_calls = f.sandbox().calls(a.appid, sandbox::kEndpointUserGet);
    CHECK(walk_calls <= 9 + 2);
    extra += walk_calls - 9;
  }
  WARN("calls made again across the 6 walks: " << extra);
  WARN("deliveries that failed and were produced again: " << f.worker().stats().produce_errors);
}

TEST_CASE("SIGTERM with every broker of a cluster killed exits within shutdown_timeout_ms and "
          "the steps' bounds, having called WeChat no more than the walk needs",
          "[worker][kafka]") {
  auto cluster = TestKafka::startCluster(3);
  INFO((cluster.ok() ? std::string() : cluster.error().describe()));
  REQUIRE(cluster.ok());
  TestKafka* kafka = cluster->get();
  auto walk = merchant("wxclustergone", 60000);  // 7 calls
  walk.latency_ms = 400;
  WorkerFixture f({walk}, 3, std::move(*cluster));
  nlohmann::json config = f.config();
  config["shutdown_timeout_ms"] = 1500;
  const std::string path = f.dir().write("gone.json", config.dump(2));
  f.enqueueJob("j-clustergone", "wxclustergone");

  auto worker = f.launchWorker(path, "worker");
  f.waitForStatus({"j-clustergone"}, {"started"}, std::chrono::seconds(60));
  f.waitForUserGetCalls("wxclustergone", 2);
  for (int node = 1; node <= 3; ++node) REQUIRE(kafka->killBroker(node).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto took = f.checkStopWithBrokersGone(worker);
  // With nowhere to write its pages the worker stops calling once the undelivered budget and
  // the walk's calls are spent: never more calls than the walk has.
  CHECK(f.sandbox().calls("wxclustergone", sandbox::kEndpointUserGet) <= 7);
  WARN("exit " << took.count() << " ms after SIGTERM; WeChat calls: "
                << f.sandbox().calls("wxclustergone", sandbox::kEndpointUserGet));
}
