// WorkerWorld: what a worker runs in, for the tests (worker_fixture.h) and the benchmarks
// (bench/worker_harness.h) alike: a Kafka broker, a worker's six topics under names of their own,
// the WeChat sandbox with its accounts, a tenants file for those accounts and a producer of jobs.
// Throws std::runtime_error when a part cannot be set up (a test reports it as its failure, a
// benchmark exits with it).
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kafka/producer.h"
#include "sandbox/accounts.h"
#include "sandbox/sandbox_server.h"
#include "support/temp_dir.h"
#include "support/test_kafka.h"
#include "worker/worker.h"

namespace fanpull::testing {

// `base` made unique in the machine (process id) and in the process (a counter).
inline std::string uniqueName(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

struct WorldOptions {
  std::vector<sandbox::Account> accounts;
  int partitions = 4;  // of every topic
  // The broker; none: one started as FANPULL_TEST_BROKER says (TestKafka::start).
  std::unique_ptr<TestKafka> kafka;
  std::string names;  // prefix of the topics' and the group's names
  // Changes to the sandbox's options (latency, token lifetimes, clock, ...).
  std::function<void(sandbox::SandboxOptions&)> tune_sandbox;
  // Tenants with a refresh token only (the component's flow); otherwise each account's first
  // access token (or "none").
  bool component = false;
  bool func_info = false;  // write each account's func_info into its tenant
  nlohmann::json tenant_extra = nlohmann::json::object();  // added to every tenant
  // Called with "kafka-broker", then "sandbox", then "main" before each part starts (a benchmark
  // names its thread so that the threads each part creates carry the part's name).
  std::function<void(const char* part)> starting;
};

class WorkerWorld {
 public:
  explicit WorkerWorld(WorldOptions o) : options_(std::move(o)) {
    auto starting = [this](const char* part) {
      if (options_.starting) options_.starting(part);
    };
    starting("kafka-broker");
    if (options_.kafka) {
      kafka_ = std::move(options_.kafka);
    } else {
      auto started = TestKafka::start();
      if (!started.ok()) fail("broker: " + started.error().describe());
      kafka_ = std::move(started).value();
    }
    topics_.jobs = uniqueName(options_.names + "jobs");
    topics_.pages = uniqueName(options_.names + "pages");
    topics_.events = uniqueName(options_.names + "events");
    topics_.dlq = uniqueName(options_.names + "dlq");
    topics_.progress = uniqueName(options_.names + "progress");
    topics_.state = uniqueName(options_.names + "state");
    group_ = uniqueName(options_.names + "group");
    for (const auto& t : {topics_.jobs, topics_.pages, topics_.events, topics_.dlq,
                          topics_.progress, topics_.state}) {
      std::map<std::string, std::string> configs;
      if (t == topics_.state) configs["cleanup.policy"] = "compact";
      auto created = kafka_->createTopic(t, options_.partitions, configs);
      if (!created.ok()) fail("topic " + t + ": " + created.error().describe());
    }

    starting("sandbox");
    sandbox::SandboxOptions so;
    so.accounts = options_.accounts;
    if (options_.tune_sandbox) options_.tune_sandbox(so);
    sandbox_ = std::make_unique<sandbox::SandboxServer>(std::move(so));
    sandbox_->start();
    starting("main");

    nlohmann::json tenants = {{"tenants", nlohmann::json::array()}};
    for (const auto& a : options_.accounts) {
      nlohmann::json t = {{"appid", a.appid}};
      if (options_.func_info) t["func_info"] = a.func_info;
      if (options_.component) {
        t["authorizer_refresh_token"] = a.refresh_token;
      } else {
        t["authorizer_access_token"] = a.access_tokens.empty() ? "none" : a.access_tokens[0];
      }
      for (const auto& [k, v] : options_.tenant_extra.items()) t[k] = v;
      tenants["tenants"].push_back(std::move(t));
    }
    tenants_file_ = dir_.write("tenants.json", tenants.dump());

    kafka::ProducerOptions po;
    po.bootstrap_servers = kafka_->bootstrapServers();
    po.log = [](int, const std::string&, const std::string&) {};
    auto producer = kafka::Producer::create(po);
    if (!producer.ok()) fail("jobs producer: " + producer.error().describe());
    producer_ = std::move(producer).value();
    // The producer learns the jobs topic now, not on librdkafka's one-second topic scan after
    // the first job (a test's wait or a benchmark's "since the first job" would count it).
    auto prepared = producer_->prepareTopic(topics_.jobs, std::chrono::seconds(10));
    if (!prepared.ok()) fail("jobs topic: " + prepared.error().describe());
  }

  ~WorkerWorld() {
    producer_.reset();
    if (sandbox_) sandbox_->stop();
  }

  WorkerWorld(const WorkerWorld&) = delete;
  WorkerWorld& operator=(const WorkerWorld&) = delete;

  // What every worker of this world starts from: its broker, group and topics, and group
  // timeouts short enough for a test (a worker that leaves is noticed within seconds).
  WorkerOptions workerOptions() const {
    WorkerOptions o;
    o.bootstrap_servers = kafka_->bootstrapServers();
    o.group_id = group_;
    o.topics = topics_;
    o.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    return o;
  }

  TestKafka& kafka() const { return *kafka_; }
  const KafkaTopics& topics() const { return topics_; }
  const std::string& group() const { return group_; }
  sandbox::SandboxServer& sandbox() const { return *sandbox_; }
  const std::string& tenantsFile() const { return tenants_file_; }
  kafka::Producer& jobsProducer() const { return *producer_; }
  TempDir& dir() { return dir_; }

 private:
  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error("worker world: " + what);
  }

  WorldOptions options_;
  TempDir dir_;
  std::unique_ptr<TestKafka> kafka_;
  KafkaTopics topics_;
  std::string group_;
  std::unique_ptr<sandbox::SandboxServer> sandbox_;
  std::string tenants_file_;
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace fanpull::testing
