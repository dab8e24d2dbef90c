#include "cli/topic_check.h"

#include <cstdlib>

namespace fanpull {

std::vector<TopicSpec> topicSpecs(const KafkaTopics& topics, size_t producer_max_message_bytes) {
  std::vector<TopicSpec> specs;
  specs.push_back({"jobs", topics.jobs, {}, 0, false, true});
  specs.push_back({"pages", topics.pages, {}, producer_max_message_bytes, false, true});
  specs.push_back({"events", topics.events, {}, 0, false, true});
  specs.push_back({"dlq", topics.dlq, {}, producer_max_message_bytes, false, true});
  specs.push_back({"progress", topics.progress, {}, 0, false, true});
  specs.push_back({"state", topics.state, {{"cleanup.policy", "compact"}}, 0, true, true});
  return specs;
}

Result<std::vector<TopicProblem>> checkTopics(kafka::Admin& admin,
                                              const std::vector<TopicSpec>& specs,
                                              bool check_configs,
                                              std::chrono::milliseconds timeout) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  std::vector<std::string> configs;
  if (check_configs) configs = {"cleanup.policy", "max.message.bytes"};
  auto described = admin.describeTopics(names, configs, timeout);
  if (!described.ok()) return described.error();
  std::vector<TopicProblem> problems;
  int jobs_partitions = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].role == "jobs") jobs_partitions = (*described)[i].partitions;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const TopicSpec& s = specs[i];
    const kafka::TopicDescription& d = (*described)[i];
    if (!d.exists) {
      problems.push_back({s.name, "the " + s.role + " topic does not exist",
                          "create it: fanpull topics --config FILE"});
      continue;
    }
    if (s.same_partitions_as_jobs && jobs_partitions > 0 && d.partitions != jobs_partitions) {
      problems.push_back(
          {s.name,
           "has " + std::to_string(d.partitions) + " partitions, the jobs topic has " +
               std::to_string(jobs_partitions) + ": a merchant's state must share its jobs' "
               "partition number",
           "recreate it with " + std::to_string(jobs_partitions) + " partitions"});
    }
    if (!check_configs) continue;
    for (const auto& [key, want] : s.configs) {
      auto it = d.configs.find(key);
      std::string have = it == d.configs.end() ? "(not reported)" : it->second;
      if (key == "cleanup.policy" ? have.find(want) == std::string::npos : have != want) {
        problems.push_back({s.name, key + " is " + have + ", it must be " + want,
                            "kafka-configs --alter --entity-type topics --entity-name " + s.name +
                                " --add-config " + key + "=" + want});
      }
    }
    if (s.min_message_bytes > 0) {
      auto it = d.configs.find("max.message.bytes");
      if (it != d.configs.end()) {
        long long have = std::atoll(it->second.c_str());
        if (have > 0 && static_cast<size_t>(have) < s.min_message_bytes) {
          problems.push_back(
              {s.name,
               "max.message.bytes is " + it->second + ", below the producer's message.max.bytes " +
                   std::to_string(s.min_message_bytes) + ": the broker would refuse the largest " +
                   s.role + " message fanpull writes",
               "raise the topic's max.message.bytes to " + std::to_string(s.min_message_bytes) +
                   " or lower kafka.properties message.max.bytes to " + it->second});
        }
      }
    }
  }
  return problems;
}

}  // namespace fanpull
