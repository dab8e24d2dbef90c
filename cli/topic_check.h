// The topics a worker configuration names and what each must be on the cluster: created by
// `fanpull topics`, checked by `fanpull topics --check` and, for the topics the worker uses, by
// `fanpull run` before it starts. Pure planning plus one function that asks the cluster (through
// kafka::Admin). Thread-compatible.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/worker_config.h"
#include "core/result.h"
#include "kafka/admin.h"

namespace fanpull {

struct TopicSpec {
  std::string role;  // "jobs", "pages", "events", "dlq", "progress", "state"
  std::string name;
  // Configs a topic is created with and must keep: cleanup.policy=compact for state.
  std::map<std::string, std::string> configs;
  // The smallest max.message.bytes that holds the largest message the worker writes there
  // (the producer's message.max.bytes); 0 when it does not matter.
  size_t min_message_bytes = 0;
  bool same_partitions_as_jobs = false;  // the state topic: co-partitioned with the jobs
  bool used_by_run = true;               // `fanpull run` needs it today
};

// Every topic `topics` names, jobs first. producer_max_message_bytes: the worker's producer's
// message.max.bytes (kafka::Producer::maxMessageBytes()).
std::vector<TopicSpec> topicSpecs(const KafkaTopics& topics, size_t producer_max_message_bytes);

// One thing wrong with a topic, and what fixes it.
struct TopicProblem {
  std::string topic;
  std::string problem;
  std::string fix;
  std::string describe() const { return topic + ": " + problem + " (" + fix + ")"; }
};

// What is wrong with `specs` on the cluster: missing topics, a state topic that is not compacted
// or not co-partitioned with the jobs topic, a topic whose max.message.bytes is below what the
// worker writes there. With check_configs false only existence is checked (a cluster that does
// not serve DescribeConfigs, like the embedded broker). Errors: the cluster does not answer
// (retryable) or refuses (e.g. not authorized).
Result<std::vector<TopicProblem>> checkTopics(kafka::Admin& admin,
                                              const std::vector<TopicSpec>& specs,
                                              bool check_configs,
                                              std::chrono::milliseconds timeout);

}  // namespace fanpull
