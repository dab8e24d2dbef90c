// Crashes at random moments: `fanpull run` killed with SIGKILL and restarted, alone or as one of
// three workers in a group, while merchants' jobs keep arriving. Afterwards every job is complete,
// no page is lost, every page written twice is an identical replay, and every job has exactly one
// end event. The moments come from a fixed seed, so a failure replays the same schedule.
#include <catch2/catch.hpp>

#include <Poco/Process.h>

#include <csignal>
#include <random>

#include "support/worker_fixture.h"

using namespace fanpull;
using testing::merchant;
using testing::TopicMessage;
using testing::WorkerFixture;

namespace {

struct JobSpec {
  std::string job_id;
  std::string appid;
  int64_t followers = 0;
};

// Ten merchants of one to three pages: small enough that the embedded broker's per-partition
// retention (5 MiB) holds every page and replay, slow enough that kills land mid-walk.
std::vector<sandbox::Account> crashMerchants(const std::string& prefix) {
  const int64_t sizes[] = {4000, 9000, 12000, 15000, 21000, 6000, 10000, 13000, 18000, 3000};
  std::vector<sandbox::Account> out;
  for (size_t i = 0; i < std::size(sizes); ++i) {
    auto a = merchant(prefix + std::to_string(i), sizes[i]);
    a.latency_ms = 120;
    out.push_back(a);
  }
  return out;
}

// A short session so that a group with a killed member re-forms in about a second.
nlohmann::json fastGroup() {
  return {{"session.timeout.ms", "2000"}, {"heartbeat.interval.ms", "200"}};
}

class JobFeed {
 public:
  JobFeed(WorkerFixture& f, std::vector<sandbox::Account> accounts, std::string prefix)
      : f_(f), accounts_(std::move(accounts)), prefix_(std::move(prefix)) {}
  void enqueue(int n) {
    for (int i = 0; i < n; ++i, ++next_) {
      const auto& a = accounts_[static_cast<size_t>(next_) % accounts_.size()];
      JobSpec job{prefix_ + std::to_string(next_), a.appid, a.followers};
      f_.enqueueJob(job.job_id, job.appid);
      jobs_.push_back(job);
    }
  }
  const std::vector<JobSpec>& jobs() const { return jobs_; }

 private:
  WorkerFixture& f_;
  std::vector<sandbox::Account> accounts_;
  std::string prefix_;
  int next_ = 0;
  std::vector<JobSpec> jobs_;
};

// Every job completed once, its pages exactly the merchant's followers, replays identical.
void requireEveryJobComplete(WorkerFixture& f, const std::vector<JobSpec>& jobs) {
  std::set<std::string> ids;
  for (const auto& j : jobs) ids.insert(j.job_id);
  f.waitForStatus(ids, {"completed"}, std::chrono::seconds(180));
  auto pages = f.allPages();
  std::map<std::string, std::map<std::string, int>> statuses;  // job -> status -> count
  std::map<std::string, std::string> history;  // job -> its events, for a failure message
  for (const auto& e : f.events()) {
    statuses[e["job_id"]][e["status"]]++;
    history[e["job_id"]] += e.dump() + "\n";
  }
  int64_t replayed = 0;
  for (const auto& j : jobs) {
    INFO("job " << j.job_id << " of " << j.appid << ", events:\n"
                << history[j.job_id] << "worker logs:\n" << f.childLogLines(j.job_id + "\""));
    WorkerFixture::requireFollowersIn(pages, j.job_id, j.appid, j.followers);
    CHECK(statuses[j.job_id]["completed"] == 1);
    CHECK(statuses[j.job_id]["failed"] == 0);
    CHECK(statuses[j.job_id]["started"] >= 1);
    replayed += statuses[j.job_id]["started"] - 1;
  }
  // Secrets leaked: no merchant's access token ("token-" + appid) in any worker's log.
  CHECK(f.childLogLines("token-wx").empty());
  // Not asserted (it depends on timing): how often a kill cut a walk short.
  WARN(jobs.size() << " jobs; " << replayed << " started again from scratch after a kill");
}

}  // namespace

TEST_CASE("twenty SIGKILLs at random moments during a multi-merchant run lose no page",
          "[worker][slow]") {
  auto accounts = crashMerchants("wxcrash");
  WorkerFixture f(accounts, 32);
  std::string config = f.writeConfig(8, fastGroup());
  std::mt19937 random(20261127);
  std::uniform_int_distribution<int> lifetime_ms(300, 4000);
  JobFeed feed(f, accounts, "j-crash-");
  feed.enqueue(10);
  for (int kill = 0; kill < 20; ++kill) {
    auto worker = f.launchWorker(config, "worker-" + std::to_string(kill));
    std::this_thread::sleep_for(std::chrono::milliseconds(lifetime_ms(random)));
    ::kill(worker.id(), SIGKILL);
    CHECK(worker.wait() != 0);
    feed.enqueue(2);  // jobs keep arriving while no worker runs
  }
  auto last = f.launchWorker(config, "worker-last");
  requireEveryJobComplete(f, feed.jobs());
  CHECK(f.terminateWorker(last, "worker-last") == 0);
}

TEST_CASE("three workers in one group with one killed at a time lose no page",
          "[worker][slow]") {
  auto accounts = crashMerchants("wxtrio");
  WorkerFixture f(accounts, 32);
  std::string config = f.writeConfig(8, fastGroup());
  std::vector<Poco::ProcessHandle> workers;
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    names.push_back("worker-" + std::to_string(i));
    workers.push_back(f.launchWorker(config, names.back()));
  }
  std::mt19937 random(20261128);
  std::uniform_int_distribution<int> between_ms(800, 3000);
  JobFeed feed(f, accounts, "j-trio-");
  feed.enqueue(12);
  for (int kill = 0; kill < 6; ++kill) {
    size_t victim = static_cast<size_t>(kill) % workers.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(between_ms(random)));
    ::kill(workers[victim].id(), SIGKILL);
    CHECK(workers[victim].wait() != 0);
    feed.enqueue(3);
    names[victim] = "worker-" + std::to_string(victim) + "-" + std::to_string(kill);
    workers[victim] = f.launchWorker(config, names[victim]);
  }
  requireEveryJobComplete(f, feed.jobs());
  for (size_t i = 0; i < workers.size(); ++i) CHECK(f.terminateWorker(workers[i], names[i]) == 0);
}
