#include "cli/client_options.h"

namespace fanpull {

std::vector<OptionSpec> clientKafkaOptions(const std::string& topic_help) {
  return {
      {"bootstrap-server", "HOST:PORT[,...]",
       "Kafka bootstrap servers (default: the config's)", 'b'},
      {"property", "KEY=VALUE",
       "a librdkafka property, e.g. security.protocol=SSL (repeatable; over the config's)",
       'X', true},
      {"topic", "TOPIC", topic_help, 't'},
      {"config", "FILE",
       "a worker configuration to take the kafka section from (optional with -b)"},
  };
}

std::variant<ClientKafka, std::vector<std::string>> clientKafka(
    const CliArgs& args, const std::function<std::string(const KafkaTopics&)>& topic_of) {
  std::vector<std::string> problems;
  ClientKafka out;
  KafkaTopics topics;
  if (auto path = args.get("config")) {
    auto loaded = loadWorkerConfig(*path, processEnv());
    if (auto* config_problems = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
      for (const auto& p : *config_problems) problems.push_back(p.describe());
      return problems;
    }
    const WorkerConfig& config = std::get<WorkerConfig>(loaded);
    out.bootstrap_servers = config.kafka.bootstrap_servers;
    out.properties = config.kafka.properties;
    topics = config.kafka.topics;
    out.source = *path;
  }
  if (auto servers = args.get("bootstrap-server")) out.bootstrap_servers = *servers;
  if (out.bootstrap_servers.empty()) {
    problems.push_back("-b/--bootstrap-server HOST:PORT or --config FILE is required");
  }
  for (const auto& kv : args.getAll("property")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      problems.push_back("-X " + kv + ": expected KEY=VALUE");
      continue;
    }
    out.properties[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& p : kafka::checkProperties(out.properties)) {
    problems.push_back((out.source.empty() ? std::string("-X") : out.source + ": kafka.properties / -X") +
                       ": " + p);
  }
  out.topic = args.getOr("topic", topic_of(topics));
  if (out.topic.empty()) problems.push_back("-t/--topic: empty topic name");
  if (out.source.empty()) out.source = "-X";
  if (!problems.empty()) return problems;
  return out;
}

}  // namespace fanpull
