// `fanpull topics --config FILE [--partitions N] [--replication N] [--check]`: creates the topics
// a worker configuration names on a real cluster, or checks them.
#include <algorithm>
#include <ostream>
#include <thread>
#include <variant>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/topic_check.h"
#include "config/worker_config.h"
#include "kafka/admin.h"
#include "kafka/producer.h"

namespace fanpull {

namespace {

constexpr auto kTimeout = std::chrono::seconds(30);

void printProblems(const std::vector<TopicProblem>& problems, std::ostream& out) {
  for (const auto& p : problems) out << "problem: " << p.describe() << "\n";
}

}  // namespace

int topicsCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  auto path = args.get("config");
  if (!path) {
    err << "fanpull topics: --config FILE is required\n";
    return kExitUsage;
  }
  std::string bad;
  auto partitions = args.getInt("partitions", 12, 1, 10000, &bad);
  auto replication = partitions ? args.getInt("replication", 0, 1, 32, &bad) : std::nullopt;
  if (!partitions || !replication) {
    err << "fanpull topics: " << bad << "\n";
    return kExitUsage;
  }
  auto loaded = loadWorkerConfig(*path, processEnv());
  if (auto* problems = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
    for (const auto& p : *problems) err << p.describe() << "\n";
    return kExitUsage;
  }
  const auto& config = std::get<WorkerConfig>(loaded);

  // The largest message the worker writes is its producer's message.max.bytes.
  kafka::ProducerOptions po;
  po.bootstrap_servers = config.kafka.bootstrap_servers;
  for (const auto& [k, v] : config.kafka.properties) {
    if (k == "message.max.bytes") po.properties[k] = v;
  }
  auto producer = kafka::Producer::create(po);
  if (!producer.ok()) {
    err << *path << ": kafka.properties: " << producer.error().cause << "\n";
    return kExitUsage;
  }
  const auto specs = topicSpecs(config.kafka.topics, (*producer)->maxMessageBytes());
  producer->reset();

  auto admin = kafka::Admin::create(config.kafka.bootstrap_servers, config.kafka.properties,
                                    [&err](int level, const std::string&, const std::string& m) {
                                      if (level <= 3) err << "kafka: " << m << "\n";
                                    });
  if (!admin.ok()) {
    err << *path << ": kafka.properties: " << admin.error().cause << "\n";
    return kExitUsage;
  }
  auto brokers = (*admin)->brokerCount(kTimeout);
  if (!brokers.ok()) {
    err << "fanpull topics: cannot reach the cluster at " << config.kafka.bootstrap_servers
        << ": " << brokers.error().cause << "\n";
    return kExitFailure;
  }

  if (!args.has("check")) {
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    auto existing = (*admin)->describeTopics(names, {}, kTimeout);
    if (!existing.ok()) {
      err << "fanpull topics: " << existing.error().cause << "\n";
      return kExitFailure;
    }
    // The state topic takes the jobs topic's partition count, whatever it already is.
    int jobs_partitions = existing->at(0).exists ? existing->at(0).partitions
                                                 : static_cast<int>(*partitions);
    int rf = *replication > 0 ? static_cast<int>(*replication) : std::min(3, *brokers);
    std::vector<kafka::NewTopic> create;
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& d = existing->at(i);
      if (d.exists) {
        out << specs[i].name << ": exists (" << d.partitions << " partitions, replication "
            << d.replication << ")\n";
        continue;
      }
      kafka::NewTopic t;
      t.name = specs[i].name;
      t.partitions = specs[i].same_partitions_as_jobs ? jobs_partitions
                                                      : static_cast<int>(*partitions);
      t.replication = rf;
      t.configs = specs[i].configs;
      create.push_back(t);
    }
    if (!create.empty()) {
      auto created = (*admin)->createTopics(create, kTimeout);
      if (!created.ok()) {
        err << "fanpull topics: " << created.error().cause << "\n";
        return kExitFailure;
      }
      for (const auto& t : create) {
        const std::string& reason = (*created)[t.name];
        if (reason.empty()) {
          out << t.name << ": created (" << t.partitions << " partitions, replication "
              << t.replication << (t.configs.empty() ? "" : ", compacted") << ")\n";
        } else {
          out << t.name << ": not created: " << reason << "\n";
        }
      }
    }
  }

  // Check (after creating: metadata can lag a creation by a moment, so retry a missing topic).
  Result<std::vector<TopicProblem>> problems = std::vector<TopicProblem>{};
  bool configs_checked = true;
  for (int attempt = 0; attempt < 20; ++attempt) {
    problems = checkTopics(**admin, specs, configs_checked, kTimeout);
    if (!problems.ok() && configs_checked) {
      // A cluster that does not serve DescribeConfigs (the embedded broker): existence only,
      // from now on (asking again would only fail again).
      configs_checked = false;
      problems = checkTopics(**admin, specs, false, kTimeout);
    }
    if (!problems.ok() || problems->empty() || args.has("check")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (!problems.ok()) {
    err << "fanpull topics: " << problems.error().cause << "\n";
    return kExitFailure;
  }
  printProblems(*problems, out);
  if (!configs_checked) out << "note: the cluster did not describe topic configs; not checked\n";
  if (!problems->empty()) {
    out << problems->size() << (problems->size() == 1 ? " problem\n" : " problems\n");
    return kExitFailure;
  }
  out << "ok: " << specs.size() << " topics ready on " << config.kafka.bootstrap_servers << "\n";
  return kExitOk;
}

}  // namespace fanpull
