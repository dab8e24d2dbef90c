// WorkerFixture: a Kafka broker (the embedded one or a real Apache Kafka, see TestKafka), the WeChat sandbox, a tenants file and everything a
// Worker needs, with unique topics and group per test; helpers to enqueue jobs, wait for their
// events and read their pages back the way a downstream consumer would. A SimulatedClock drives
// the worker (rate limits, backoff, minute and day boundaries) and the sandbox's quotas together;
// it runs in real time from a chosen start and tests jump it forward.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Process.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "cli/page_collector.h"
#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "kafka/embedded_broker.h"
#include "kafka/producer.h"
#include "sandbox/openids.h"
#include "support/accounts.h"
#include "sandbox/sandbox_server.h"
#include "support/shifted_clock.h"
#include "support/temp_dir.h"
#include "support/test_kafka.h"
#include "support/topic_reader.h"
#include "support/worker_world.h"
#include "tenants/static_token_source.h"
#include "tenants/tenant_registry.h"
#include "worker/messages.h"
#include "worker/worker.h"

namespace fanpull::testing {


// What the pages topic holds for one job, read by the same PageCollector as `fanpull collect`
// and the demo (deduplicated by identity, checked for gaps and contradictions).
struct JobPages {
  std::vector<std::string> openids;  // in seq (then part) order
  int64_t pages = 0;                 // distinct (seq, part) messages
  int64_t duplicates = 0;            // identical replays dropped
  bool last_seen = false;
  std::string problem;  // empty when the pages are complete and consistent
};

inline JobPages assemblePages(const std::vector<TopicMessage>& messages, const std::string& job_id) {
  PageCollector collector(job_id);
  for (const auto& m : messages) {
    collector.add(m.value, m.headers,
                  "partition " + std::to_string(m.partition) + " offset " + std::to_string(m.offset));
  }
  JobPages out;
  out.openids = collector.openids();
  out.pages = static_cast<int64_t>(collector.messages());
  out.duplicates = static_cast<int64_t>(collector.duplicates());
  out.last_seen = collector.lastSeq().has_value();
  for (const auto& problem : collector.problems()) {
    out.problem += (out.problem.empty() ? "" : "; ") + problem;
  }
  return out;
}

class WorkerFixture {
 public:
  // The broker is the environment's (FANPULL_TEST_BROKER) unless the test names one.
  explicit WorkerFixture(std::vector<sandbox::Account> accounts, int partitions = 4)
      : WorkerFixture(std::move(accounts), partitions, brokerKindFromEnvironment()) {}
  WorkerFixture(std::vector<sandbox::Account> accounts, int partitions, BrokerKind kind)
      : WorkerFixture(std::move(accounts), partitions, startKafka(kind)) {}
  // With the sandbox's options changed by `tune` (token lifetimes, the component).
  using SandboxTuning = std::function<void(sandbox::SandboxOptions&)>;
  WorkerFixture(std::vector<sandbox::Account> accounts, int partitions, SandboxTuning tune)
      : WorkerFixture(std::move(accounts), partitions, startKafka(brokerKindFromEnvironment()),
                      std::move(tune)) {}
  // On a broker the test made (e.g. TestKafka::startCluster(3)).
  WorkerFixture(std::vector<sandbox::Account> accounts, int partitions,
                std::unique_ptr<TestKafka> broker, const SandboxTuning& tune = {})
      : clock_(fromUnixSeconds(1795795200 + 3600 + 20)),  // 01:00:20 Beijing time
        world_(worldOptions(std::move(accounts), partitions, std::move(broker), tune)) {
    reader_ = std::make_unique<kafka::TopicScanner>(world_.kafka().bootstrapServers(),
                                                    kafka::Properties{{"log_level", "3"}});
  }

  static std::unique_ptr<TestKafka> startKafka(BrokerKind kind) {
    auto broker = TestKafka::start(kind);
    INFO("broker: " << brokerKindName(kind) << ": "
                    << (broker.ok() ? std::string("ok") : broker.error().describe()));
    REQUIRE(broker.ok());
    return std::move(broker).value();
  }

  ~WorkerFixture() {
    // A test that failed before stopping its `fanpull run` children leaves none behind.
    for (pid_t pid : children_) {
      if (::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    stopWorker();
  }

  // Replaces the tenants file (the worker picks it up on its next reload).
  void writeTenants(const std::string& json) { world_.dir().write("tenants.json", json); }

  WorkerOptions options() {
    WorkerOptions o = world_.workerOptions();
    o.max_in_flight = 8;
    o.default_limit = {1000, 1000, 0};
    o.backoff = {std::chrono::milliseconds(10), std::chrono::milliseconds(40), 4};
    o.clock = &clock_;
    o.seed = 7;
    o.commit_interval = std::chrono::milliseconds(200);
    return o;
  }

  void startWorker(WorkerOptions o) {
    auto started = tryStartWorker(std::move(o));
    INFO((started.ok() ? std::string() : started.error().describe()));
    REQUIRE(started.ok());
  }
  // The same, for a test of a start that fails: the worker's start() result.
  Result<kafka::Done> tryStartWorker(WorkerOptions o) {
    registry_ = std::make_unique<TenantRegistry>(world_.tenantsFile(), TenantsOptions{false});
    REQUIRE(registry_->load().empty());
    tokens_ = std::make_unique<StaticTokenSource>(*registry_);
    HttpTransportOptions to;
    to.base_url = world_.sandbox().baseUrl();
    to.timeout = http_timeout_;
    transport_ = std::move(PocoHttpTransport::create(to)).value();
    client_ = std::make_unique<UserListClient>(*transport_);
    log_ = std::make_unique<Logger>(LogLevel::kDebug, true, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      log_lines_.push_back(line);
    });
    worker_ = std::make_unique<Worker>(o, *registry_, *tokens_, *client_, *log_);
    return worker_->start();
  }
  void startWorker() { startWorker(options()); }

  void stopWorker() {
    if (worker_) worker_->stop();
    worker_.reset();
  }

  // Writes one message to any topic, keyed like the worker keys it (by appid).
  void produce(const std::string& topic, const std::string& appid, const std::string& value) {
    auto r = world_.jobsProducer().produce(topic, appid, value);
    REQUIRE(r.ok());
    REQUIRE(world_.jobsProducer().flush(std::chrono::seconds(10)).ok());
  }
  // To one partition whatever the key (a state record belongs to its jobs partition).
  void produceTo(const std::string& topic, int32_t partition, const std::string& key,
                 const std::string& value) {
    auto r = world_.jobsProducer().produce(topic, key, std::make_shared<const std::string>(value), {}, {},
                                partition);
    REQUIRE(r.ok());
    REQUIRE(world_.jobsProducer().flush(std::chrono::seconds(10)).ok());
  }
  void enqueue(const std::string& appid, const std::string& value) {
    produce(world_.topics().jobs, appid, value);
  }
  void enqueueJob(const std::string& job_id, const std::string& appid,
                  const std::string& cursor = "") {
    nlohmann::json j = {{"job_id", job_id}, {"appid", appid}};
    if (!cursor.empty()) j["next_openid"] = cursor;
    enqueue(appid, j.dump());
  }

  std::vector<nlohmann::json> events() {
    auto msgs = readTopic(*reader_, world_.topics().events);
    REQUIRE(msgs.ok());
    std::vector<nlohmann::json> out;
    for (const auto& m : *msgs) out.push_back(nlohmann::json::parse(m.value));
    return out;
  }
  std::vector<nlohmann::json> eventsOf(const std::string& job_id) {
    std::vector<nlohmann::json> out;
    for (auto& e : events()) {
      if (e["job_id"] == job_id) out.push_back(e);
    }
    return out;
  }

  // Waits until the sandbox has seen at least `calls` user/get calls for `appid` (real time,
  // bounded; the caller asserts on what it then sees). Cheap: no Kafka read.
  int64_t waitForUserGetCalls(const std::string& appid, int64_t calls,
                              std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int64_t seen = sandbox().calls(appid, sandbox::kEndpointUserGet);
    while (seen < calls && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      seen = sandbox().calls(appid, sandbox::kEndpointUserGet);
    }
    return seen;
  }

  // Waits until every job has an event with one of `statuses` (real time, bounded).
  void waitForStatus(const std::set<std::string>& job_ids, const std::set<std::string>& statuses,
                     std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      std::set<std::string> done;
      for (auto& e : events()) {
        if (job_ids.count(e["job_id"]) && statuses.count(e["status"])) done.insert(e["job_id"]);
      }
      if (done.size() == job_ids.size()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        std::string missing;
        for (const auto& id : job_ids) {
          if (!done.count(id)) missing += id + " ";
        }
        std::string recent;
        auto lines = logLines();
        for (size_t i = lines.size() > 40 ? lines.size() - 40 : 0; i < lines.size(); ++i) {
          recent += lines[i] + "\n";
        }
        FAIL("timed out waiting for " << missing << "\nworker log:\n" << recent << childLogs());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  JobPages pagesOf(const std::string& job_id) {
    auto msgs = readTopic(*reader_, world_.topics().pages);
    REQUIRE(msgs.ok());
    return assemblePages(*msgs, job_id);
  }

  std::vector<TopicMessage> deadLetters() {
    auto msgs = readTopic(*reader_, world_.topics().dlq);
    REQUIRE(msgs.ok());
    return *msgs;
  }

  std::vector<TopicMessage> allPages() {
    auto msgs = readTopic(*reader_, world_.topics().pages);
    REQUIRE(msgs.ok());
    return *msgs;
  }

  // Jobs partitions holding messages whose committed offset (as the group's coordinator has it)
  // is still below the partition's end: empty once every job handed out has been committed.
  std::vector<std::string> jobsNotCommitted() {
    kafka::ConsumerOptions options;
    options.bootstrap_servers = world_.kafka().bootstrapServers();
    options.group_id = world_.group();  // asks the group's coordinator; never joins the group
    options.properties = {{"log_level", "3"}};
    auto consumer = kafka::Consumer::create(options);
    REQUIRE(consumer.ok());
    auto count = (*consumer)->partitionCount(world_.topics().jobs, std::chrono::seconds(10));
    REQUIRE(count.ok());
    std::vector<std::string> behind;
    for (int32_t p = 0; p < *count; ++p) {
      auto marks = (*consumer)->watermarks({world_.topics().jobs, p}, std::chrono::seconds(10));
      REQUIRE(marks.ok());
      if (marks->second == 0) continue;
      auto committed = (*consumer)->committed({world_.topics().jobs, p}, std::chrono::seconds(10));
      std::string at = !committed.ok() ? committed.error().describe()
                       : committed->has_value() ? std::to_string(**committed)
                                                : "none";
      if (!committed.ok() || !committed->has_value() || **committed < marks->second) {
        behind.push_back("[" + std::to_string(p) + "] " + at + "/" + std::to_string(marks->second));
      }
    }
    return behind;
  }

  // Fails the test unless the job's pages are exactly the sandbox's followers of `appid` from
  // index `from`.
  void requireFollowers(const std::string& job_id, const std::string& appid, int64_t followers,
                        int64_t from = 0) {
    requireFollowersIn(allPages(), job_id, appid, followers, from);
  }
  // The same on pages already read (allPages()), for many jobs at once.
  static void requireFollowersIn(const std::vector<TopicMessage>& pages, const std::string& job_id,
                                 const std::string& appid, int64_t followers, int64_t from = 0) {
    JobPages p = assemblePages(pages, job_id);
    INFO("job " << job_id << ": " << p.problem);
    REQUIRE(p.problem.empty());
    REQUIRE(static_cast<int64_t>(p.openids.size()) == followers - from);
    for (int64_t i = from; i < followers; ++i) {
      REQUIRE(p.openids[static_cast<size_t>(i - from)] == sandbox::sandboxOpenId(appid, i));
    }
  }

  std::vector<std::string> logLines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_lines_;
  }

  // A worker config for a `fanpull run` child process against this fixture, for a test to
  // change before it writes it (writeConfig writes it as it is).
  nlohmann::json config(int max_in_flight = 8, const nlohmann::json& properties = {}) {
    return {
        {"kafka",
         {{"bootstrap_servers", world_.kafka().bootstrapServers()},
          {"group_id", world_.group()},
          {"topics",
           {{"jobs", world_.topics().jobs},
            {"pages", world_.topics().pages},
            {"events", world_.topics().events},
            {"dlq", world_.topics().dlq},
            {"progress", world_.topics().progress},
            {"state", world_.topics().state}}},
          {"properties", properties.is_null()
                             ? nlohmann::json{{"session.timeout.ms", "6000"},
                                              {"heartbeat.interval.ms", "500"}}
                             : properties}}},
        {"wechat", {{"base_url", world_.sandbox().baseUrl()}, {"max_in_flight", max_in_flight}}},
        {"tenants_file", world_.tenantsFile()},
        {"token_state_file", world_.dir().file("tokens.json")},
        {"rate_limit", {{"requests_per_second", 1000}, {"burst", 1000}, {"daily_calls", 0}}},
        {"http", {{"listen", "127.0.0.1:0"}}},
        {"log", {{"level", "info"}, {"format", "json"}}}};
  }
  // config() in the fixture's folder as worker.json; returns its path.
  std::string writeConfig(int max_in_flight = 8, const nlohmann::json& properties = {}) {
    return world_.dir().write("worker.json", config(max_in_flight, properties).dump(2));
  }

  // Starts `fanpull run` on this fixture's config; its log goes to a file of the fixture's folder
  // (read with childLog) so a chatty child never blocks on a full pipe.
#ifdef FANPULL_BINARY
  Poco::ProcessHandle launchWorker(const std::string& config, const std::string& name) {
    std::string log = world_.dir().file(name + ".log");
    child_logs_.push_back(log);
    Poco::ProcessHandle child = Poco::Process::launch(
        "/bin/sh", {"-c", "exec \"$0\" run --config \"$1\" 2>>\"$2\"", FANPULL_BINARY, config,
                    log});
    children_.push_back(child.id());
    return child;
  }
  // SIGTERM to a worker launched as `name` once it has started (a signal that came before its
  // signal mask was set would kill it instead of stopping it); returns its exit code.
  int terminateWorker(Poco::ProcessHandle& child, const std::string& name) {
    const std::string log = world_.dir().file(name + ".log");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (Poco::Process::isRunning(child) && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      if (text.str().find("worker started") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Poco::Process::requestTermination(child.id());
    return child.wait();
  }
  // SIGTERM to `child`, a worker whose brokers are all gone and whose config sets
  // shutdown_timeout_ms 1500: checks that it exits 0 within a stop's bounds (docs/RUNBOOK.md:
  // 1.5 s for calls and deliveries, at most 5 s for the commit, 5 s to leave the group, 1 s for
  // a producer to give up what it holds and 2 s for its purged messages' reports, and 3 s of
  // margin) with "worker stopped" logged; returns how long it took.
  std::chrono::milliseconds checkStopWithBrokersGone(Poco::ProcessHandle& child) {
    const auto t0 = std::chrono::steady_clock::now();
    Poco::Process::requestTermination(child.id());
    const int code = child.wait();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    INFO(childLogs());
    INFO("exit after " << took.count() << " ms");
    CHECK(code == 0);
    CHECK(took < std::chrono::milliseconds(1500 + 5000 + 5000 + 1000 + 2000 + 3000));
    CHECK(!childLogLines("\"worker stopped\"").empty());
    return took;
  }
#endif
  // Every line of the child processes' logs that contains `needle`, each prefixed with its log.
  std::string childLogLines(const std::string& needle) {
    std::string out;
    for (const auto& path : child_logs_) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        if (line.find(needle) != std::string::npos) {
          out += path.substr(path.find_last_of('/') + 1) + ": " + line + "\n";
        }
      }
    }
    return out;
  }
  std::string childLogs() {
    std::string out;
    for (const auto& path : child_logs_) {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string text = ss.str();
      if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
      out += "== " + path + "\n" + text;
    }
    return out;
  }

  // The worker's HTTP timeout (connect and read) for the next startWorker().
  void setHttpTimeout(std::chrono::milliseconds timeout) { http_timeout_ = timeout; }

  ShiftedClock& clock() { return clock_; }
  sandbox::SandboxServer& sandbox() { return world_.sandbox(); }
  // The mock cluster, for fault injection (the test fails on a real broker).
  kafka::EmbeddedBroker& broker() {
    REQUIRE(world_.kafka().embedded() != nullptr);
    return *world_.kafka().embedded();
  }
  TestKafka& kafka() { return world_.kafka(); }
  const std::string& bootstrapServers() const { return world_.kafka().bootstrapServers(); }
  Worker& worker() { return *worker_; }
  const KafkaTopics& topics() const { return world_.topics(); }
  TempDir& dir() { return world_.dir(); }

 private:
  // The world of a test: its sandbox reads the test's clock, changed by `tune` after that.
  WorldOptions worldOptions(std::vector<sandbox::Account> accounts, int partitions,
                            std::unique_ptr<TestKafka> broker, SandboxTuning tune) {
    WorldOptions w;
    w.accounts = std::move(accounts);
    w.partitions = partitions;
    w.kafka = std::move(broker);
    w.tune_sandbox = [this, tune = std::move(tune)](sandbox::SandboxOptions& so) {
      so.clock_ms = [this] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   clock_.now().time_since_epoch())
            .count();
      };
      if (tune) tune(so);
    };
    return w;
  }

  ShiftedClock clock_;  // before world_: the sandbox reads it
  WorkerWorld world_;
  // One reader for the test's whole life: readers made and destroyed during a broker fault can
  // abort inside librdkafka (see kafka::TopicScanner).
  std::unique_ptr<kafka::TopicScanner> reader_;
  std::chrono::milliseconds http_timeout_{5000};
  std::vector<pid_t> children_;  // launched with launchWorker

  std::unique_ptr<TenantRegistry> registry_;
  std::unique_ptr<StaticTokenSource> tokens_;
  std::unique_ptr<PocoHttpTransport> transport_;
  std::unique_ptr<UserListClient> client_;
  std::unique_ptr<Logger> log_;
  std::unique_ptr<Worker> worker_;

  std::mutex mutex_;  // guards log_lines_
  std::vector<std::string> log_lines_;
  std::vector<std::string> child_logs_;
};

}  // namespace fanpull::testing
