// Merchants' tokens in the state topic, proved with `fanpull run` processes on separate folders
// (separate "machines": no shared token state file) on the component flow, where every call
// needs a refresh that rotates the refresh token: a worker killed with SIGKILL leaves every
// rotation it had acknowledged to the next owner, nothing in the topic is readable without the
// key, and a wrong key stops a worker at start.
#include <catch2/catch.hpp>

#include <Poco/Process.h>

#include <csignal>
#include <filesystem>

#include "core/secret_box.h"
#include "support/worker_fixture.h"

using namespace fanpull;
using testing::merchant;
using testing::TopicMessage;
using testing::WorkerFixture;

namespace {

const std::string kKey = std::string(32, 'K');  // the platform's state key
const std::string kWrongKey = std::string(32, 'W');

// A worker's own folder: its config, tenants file (refresh tokens only), ticket, key and token
// state file, sharing nothing with another machine's but Kafka.
std::string writeMachine(WorkerFixture& f, const std::string& name,
                         const std::vector<sandbox::Account>& accounts, const std::string& key,
                         const nlohmann::json& properties = {}) {
  const std::string dir = f.dir().file(name);
  std::filesystem::create_directories(dir);
  nlohmann::json tenants = {{"tenants", nlohmann::json::array()}};
  for (const auto& a : accounts) {
    tenants["tenants"].push_back({{"appid", a.appid}, {"authorizer_refresh_token", a.refresh_token}});
  }
  f.dir().write(name + "/tenants.json", tenants.dump());
  const auto component = sandbox::demoComponent();
  f.dir().write(name + "/ticket.txt", component.verify_ticket);
  f.dir().write(name + "/state.key", encodeBase64(key) + "\n");
  nlohmann::json c = f.config(8, properties);
  c["component"] = {{"appid", component.appid},
                    {"appsecret", component.appsecret},
                    {"verify_ticket_file", dir + "/ticket.txt"}};
  c["tenants_file"] = dir + "/tenants.json";
  c["token_state_file"] = dir + "/tokens.json";
  c["state"] = {{"key_file", dir + "/state.key"}};
  return f.dir().write(name + "/worker.json", c.dump(2));
}

std::vector<TopicMessage> tokenRecords(WorkerFixture& f) {
  auto all = testing::readTopic(f.bootstrapServers(), f.topics().state);
  REQUIRE(all.ok());
  std::vector<TopicMessage> out;
  for (auto& m : *all) {
    if (m.key && m.key->rfind("token/", 0) == 0) out.push_back(std::move(m));
  }
  return out;
}

int64_t refreshes(WorkerFixture& f, int errcode) {
  int64_t n = 0;
  for (const auto& e : f.sandbox().callLog()) {
    if (e.endpoint == sandbox::kEndpointAuthorizerToken && e.errcode == errcode) ++n;
  }
  return n;
}

int64_t userGetCalls(WorkerFixture& f, const std::vector<sandbox::Account>& accounts) {
  int64_t n = 0;
  for (const auto& a : accounts) n += f.sandbox().calls(a.appid, sandbox::kEndpointUserGet);
  return n;
}

// Holds rotations back until the state topic has a token record for every rotation WeChat
// answered: a worker killed then dies between rotations (a kill between WeChat's answer and
// Kafka's acknowledgement loses that rotation whatever a worker does). Returns the rotations.
int64_t holdRotationsUntilStored(WorkerFixture& f) {
  f.sandbox().setRefreshRefused(true);
  const int64_t rotated = refreshes(f, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (static_cast<int64_t>(tokenRecords(f).size()) < rotated &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(static_cast<int64_t>(tokenRecords(f).size()) == rotated);
  return rotated;
}

void waitForCalls(WorkerFixture& f, const std::vector<sandbox::Account>& accounts, int64_t calls) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (userGetCalls(f, accounts) < calls && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(f.childLogs());
  REQUIRE(userGetCalls(f, accounts) >= calls);
}

// The sum of the `tokens` field of a child log's "state restored" lines.
int64_t tokensRestored(const std::string& lines) {
  int64_t n = 0;
  std::istringstream in(lines);
  std::string line;
  while (std::getline(in, line)) {
    auto brace = line.find('{');
    if (brace == std::string::npos) continue;
    auto j = nlohmann::json::parse(line.substr(brace), nullptr, false);
    if (j.is_object() && j.value("msg", "") == "state restored") n += j.value("tokens", 0);
  }
  return n;
}

}  // namespace

TEST_CASE("a merchant's rotated refresh token follows its partition to a worker on another "
          "machine, sealed so that only the state key reads it",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts;
  for (int i = 0; i < 6; ++i) {
    auto a = merchant("wxmove" + std::to_string(i), 20000);  // 3 calls a walk
    a.latency_ms = 150;
    a.refresh_token = "refreshtoken@@@first-" + a.appid;
    accounts.push_back(a);
  }
  // Tokens live 60 s, less than the 5 minutes a worker renews ahead: every call is preceded by
  // a refresh, and every refresh rotates the refresh token (the old one is refused at once).
  WorkerFixture f(accounts, 2, [](sandbox::SandboxOptions& so) {
    so.component = sandbox::demoComponent();
    so.token_ttl_seconds = 60;
  });
  const std::string config_a = writeMachine(f, "machine-a", accounts, kKey);
  const std::string config_b = writeMachine(f, "machine-b", accounts, kKey);
  const std::string config_c = writeMachine(f, "machine-c", accounts, kWrongKey);

  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("j-move-" + a.appid, a.appid);
    jobs.insert("j-move-" + a.appid);
  }
  auto a = f.launchWorker(config_a, "worker-a");
  waitForCalls(f, accounts, 6);  // mid-run: a third of the calls made
  const int64_t rotated = holdRotationsUntilStored(f);
  ::kill(a.id(), SIGKILL);
  CHECK(a.wait() != 0);
  const int64_t calls_by_a = userGetCalls(f, accounts);
  INFO("worker A made " << calls_by_a << " calls and " << rotated << " rotations");

  auto b = f.launchWorker(config_b, "worker-b");
  f.sandbox().setRefreshRefused(false);
  f.waitForStatus(jobs, {"completed", "failed"}, std::chrono::seconds(120));

  // Every job complete, from worker B, which never saw machine A's token state file.
  auto pages = f.allPages();
  for (const auto& acc : accounts) {
    const std::string job = "j-move-" + acc.appid;
    int completed = 0;
    for (const auto& e : f.eventsOf(job)) completed += e["status"] == "completed";
    INFO(job << ": " << f.childLogLines(acc.appid));
    CHECK(completed == 1);
    WorkerFixture::requireFollowersIn(pages, job, acc.appid, acc.followers);
  }
  // No refresh with a stale refresh token: B refreshed each merchant with the one A rotated.
  CHECK(refreshes(f, 61023) == 0);
  CHECK(tokensRestored(f.childLogLines("state restored")) >= 6);
  CHECK_FALSE(std::filesystem::exists(f.dir().file("machine-b/tokens.json")));
  // Cost: at most one refresh per call made (user/get and quota/get), and no walk restarted
  // from scratch by more than its unacknowledged page.
  int64_t quota_calls = 0;
  for (const auto& e : f.sandbox().callLog()) quota_calls += e.endpoint == sandbox::kEndpointQuotaGet;
  CHECK(refreshes(f, 0) <= userGetCalls(f, accounts) + quota_calls);
  CHECK(userGetCalls(f, accounts) <= 6 * 3 + 2 * 6);
  WARN("calls " << userGetCalls(f, accounts) << " (A " << calls_by_a << "), rotations "
                << refreshes(f, 0) << ", quota/get " << quota_calls << ", token records "
                << tokenRecords(f).size());

  // Nothing the sandbox issued is readable in the state topic or a worker's log.
  auto state = testing::readTopic(f.bootstrapServers(), f.topics().state);
  REQUIRE(state.ok());
  const auto secrets = f.sandbox().secrets();
  REQUIRE(secrets.size() > 20);
  for (const auto& secret : secrets) {
    INFO("secret of " << secret.size() << " characters");
    for (const auto& m : *state) {
      CHECK(m.value.find(secret) == std::string::npos);
      CHECK((!m.key || m.key->find(secret) == std::string::npos));
    }
    CHECK(f.childLogLines(secret).empty());
  }
  CHECK(f.terminateWorker(b, "worker-b") == 0);

  // A worker with another key stops at start, names both key ids, and calls nobody.
  const int64_t calls_before = userGetCalls(f, accounts);
  const int64_t rotations_before = refreshes(f, 0);
  for (const auto& acc : accounts) f.enqueueJob("j-wrong-key-" + acc.appid, acc.appid);
  auto c = f.launchWorker(config_c, "worker-c");
  CHECK(c.wait() == 2);
  const std::string refused = f.childLogLines("does not open the state topic");
  INFO(f.childLogs());
  CHECK(refused.find(SecretBox(kKey).keyId()) != std::string::npos);
  CHECK(refused.find(SecretBox(kWrongKey).keyId()) != std::string::npos);
  CHECK(userGetCalls(f, accounts) == calls_before);
  CHECK(refreshes(f, 0) == rotations_before);
}

TEST_CASE("workers on different machines share one component access token through the state "
          "topic instead of cutting each other's off",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts;
  for (int i = 0; i < 8; ++i) {
    auto a = merchant("wxshare" + std::to_string(i), 5000);
    a.refresh_token = "refreshtoken@@@first-" + a.appid;
    accounts.push_back(a);
  }
  WorkerFixture f(accounts, 2, [](sandbox::SandboxOptions& so) {
    so.component = sandbox::demoComponent();
  });
  const std::string config_a = writeMachine(f, "machine-a", accounts, kKey);
  const std::string config_b = writeMachine(f, "machine-b", accounts, kKey);
  // Jobs of merchants 0-3 on A alone (two in each partition), then of merchants 4-7 once B has
  // joined: whichever partition B owns, it renews two merchants' tokens.
  auto enqueue = [&f, &accounts](int from, std::set<std::string>* jobs) {
    for (int i = from; i < from + 4; ++i) {
      const auto& appid = accounts[static_cast<size_t>(i)].appid;
      f.produceTo(f.topics().jobs, i % 2, appid,
                  nlohmann::json{{"job_id", "j-share-" + appid}, {"appid", appid}}.dump());
      jobs->insert("j-share-" + appid);
    }
  };
  std::set<std::string> first, second;
  enqueue(0, &first);
  auto a = f.launchWorker(config_a, "worker-a");
  f.waitForStatus(first, {"completed", "failed"}, std::chrono::seconds(60));
  REQUIRE(f.sandbox().componentTokenCalls() == 1);

  auto b = f.launchWorker(config_b, "worker-b");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (f.childLogLines("state restored").find("worker-b.log") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  enqueue(4, &second);
  f.waitForStatus(second, {"completed", "failed"}, std::chrono::seconds(60));
  for (const auto& job : second) {
    for (const auto& e : f.eventsOf(job)) CHECK(e["status"] != "failed");
  }
  INFO(f.childLogLines("component token"));
  // One fetch for the fleet: B took A's token instead of fetching one that would have cut A's
  // off 5 minutes later.
  CHECK(f.sandbox().componentTokenCalls() == 1);
  CHECK(f.childLogLines("component token taken from another worker").find("worker-b.log") !=
        std::string::npos);
  CHECK(f.terminateWorker(a, "worker-a") == 0);
  CHECK(f.terminateWorker(b, "worker-b") == 0);
}

// On Apache Kafka only: 60 merchants' pages (about 35 MB) exceed what the embedded broker
// retains per partition (5 MiB), so it would drop pages the test then misses.
TEST_CASE("three workers on three machines lose no rotated refresh token to two SIGKILLs",
          "[worker][kafka]") {
  std::vector<sandbox::Account> accounts;
  int64_t uninterrupted = 0;
  for (int i = 0; i < 60; ++i) {
    auto a = merchant("wxtrio" + std::to_string(i), 10000 * (1 + i % 3));  // 2 to 4 calls
    a.latency_ms = 100;
    a.token_expires_after_calls = 2;  // each access token answers 42001 after 2 calls
    a.refresh_token = "refreshtoken@@@first-" + a.appid;
    uninterrupted += a.followers / 10000 + 1;
    accounts.push_back(a);
  }
  WorkerFixture f(accounts, 6, [](sandbox::SandboxOptions& so) {
    so.component = sandbox::demoComponent();
  });
  REQUIRE(f.kafka().real());
  const nlohmann::json fast_group = {{"session.timeout.ms", "2000"},
                                     {"heartbeat.interval.ms", "200"}};
  std::vector<Poco::ProcessHandle> workers;
  for (const char* name : {"a", "b", "c"}) {
    const std::string machine = std::string("machine-") + name;
    workers.push_back(f.launchWorker(writeMachine(f, machine, accounts, kKey, fast_group),
                                     std::string("worker-") + name));
  }
  std::set<std::string> jobs;
  for (const auto& acc : accounts) {
    f.enqueueJob("j-trio-" + acc.appid, acc.appid);
    jobs.insert("j-trio-" + acc.appid);
  }
  for (size_t victim = 0; victim < 2; ++victim) {
    waitForCalls(f, accounts, uninterrupted * static_cast<int64_t>(victim + 1) / 3);
    holdRotationsUntilStored(f);
    ::kill(workers[victim].id(), SIGKILL);
    CHECK(workers[victim].wait() != 0);
    f.sandbox().setRefreshRefused(false);
  }
  f.waitForStatus(jobs, {"completed", "failed"}, std::chrono::seconds(240));

  auto pages = f.allPages();
  int failed = 0;
  for (const auto& acc : accounts) {
    const std::string job = "j-trio-" + acc.appid;
    int completed = 0;
    for (const auto& e : f.eventsOf(job)) {
      completed += e["status"] == "completed";
      failed += e["status"] == "failed";
    }
    INFO(job << ": " << f.childLogLines(acc.appid + "\""));
    CHECK(completed == 1);
    WorkerFixture::requireFollowersIn(pages, job, acc.appid, acc.followers);
  }
  CHECK(failed == 0);
  CHECK(refreshes(f, 61023) == 0);  // no refresh with a refresh token rotated away
  // Cost: each kill may cut each merchant's walk short once (2 calls at most, the call in
  // flight and the page not yet checkpointed); renewals: one per 42001 and per walk start.
  const int64_t calls = userGetCalls(f, accounts);
  int64_t expired = 0;
  for (const auto& e : f.sandbox().callLog()) {
    expired += e.endpoint == sandbox::kEndpointUserGet && e.errcode == 42001;
  }
  CHECK(calls - expired >= uninterrupted);
  CHECK(calls - expired <= uninterrupted + 2 * 2 * 60);
  WARN("user/get calls " << calls << " for " << uninterrupted << " uninterrupted; 42001 answers "
                         << expired << "; rotations " << refreshes(f, 0)
                         << "; component tokens fetched " << f.sandbox().componentTokenCalls());
  CHECK(f.sandbox().componentTokenCalls() <= 3);  // shared: at most one per worker that raced
  const auto secrets = f.sandbox().secrets();
  auto state = testing::readTopic(f.bootstrapServers(), f.topics().state);
  REQUIRE(state.ok());
  for (const auto& secret : secrets) {
    bool found = false;
    for (const auto& m : *state) found = found || m.value.find(secret) != std::string::npos;
    CHECK_FALSE(found);
  }
  CHECK(f.terminateWorker(workers[2], "worker-c") == 0);
}
