// Admin: the topic operations of librdkafka's admin API that fanpull needs: describe topics (their
// partitions and the configs fanpull depends on), create topics with configs, and read a broker's
// config (does the cluster create topics by itself?). Used by `fanpull topics`, by `fanpull run`'s
// start-up check and by the tests' real-broker fixture. Thread-safe (one librdkafka handle).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka {

// What a topic is on the cluster; `exists` false when the cluster does not know it.
struct TopicDescription {
  std::string name;
  bool exists = false;
  int partitions = 0;
  int replication = 0;  // replicas of partition 0
  // Effective values of the configs asked for (cleanup.policy, max.message.bytes, ...).
  std::map<std::string, std::string> configs;
};

struct NewTopic {
  std::string name;
  int partitions = 1;
  int replication = -1;  // -1: the cluster's default.replication.factor
  std::map<std::string, std::string> configs;
};

class Admin {
 public:
  // A client of the cluster at bootstrap_servers with the user's properties (security settings;
  // consumer-only properties are dropped). Errors: an unknown or invalid property (class unknown).
  static Result<std::unique_ptr<Admin>> create(const std::string& bootstrap_servers,
                                               const Properties& properties,
                                               LogCallback log = {});
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Describes `topics`, with the effective values of `config_names` for those that exist.
  // Errors: the cluster not answering before the timeout (retryable), or refusing (e.g.
  // TOPIC_AUTHORIZATION_FAILED, class unknown).
  Result<std::vector<TopicDescription>> describeTopics(
      const std::vector<std::string>& topics, const std::vector<std::string>& config_names,
      std::chrono::milliseconds timeout);

  // Creates `topics`; a topic that already exists is not an error (it is left as it is).
  // Returns, per topic, "" when created or already there, else the broker's reason.
  // Errors: the request as a whole failing (retryable when the cluster did not answer).
  Result<std::map<std::string, std::string>> createTopics(const std::vector<NewTopic>& topics,
                                                          std::chrono::milliseconds timeout);

  // The value of a config of the broker that answers (e.g. "auto.create.topics.enable"),
  // nullopt when the broker does not report it.
  Result<std::optional<std::string>> brokerConfig(const std::string& name,
                                                  std::chrono::milliseconds timeout);

  // The number of brokers in the cluster.
  Result<int> brokerCount(std::chrono::milliseconds timeout);

 private:
  class Impl;
  explicit Admin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanpull::kafka
