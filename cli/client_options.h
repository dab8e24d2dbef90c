// Where `fanpull enqueue` and `fanpull collect` find Kafka, the way Kafka's own tools take it:
// `-b/--bootstrap-server`, `-X/--property KEY=VALUE` (repeatable), `-t/--topic`, and a worker
// configuration file only when wanted (`--config FILE`: its kafka section, with the flags on top).
// Nothing else of the configuration (tenants, WeChat) is needed or read for these commands'
// sake, but a config file given is validated whole: a broken one is a configuration error.
#pragma once

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "cli/cli_args.h"
#include "config/worker_config.h"
#include "kafka/kafka_types.h"

namespace fanpull {

// The options each client command lists in its --help.
std::vector<OptionSpec> clientKafkaOptions(const std::string& topic_help);

struct ClientKafka {
  std::string bootstrap_servers;
  kafka::Properties properties;  // the config's kafka.properties, then every -X
  std::string topic;
  std::string source;  // for messages: the config file, or "-X" when only flags were given
};

// What the flags and the config file say together. Problems (each a line for stderr, all of
// them usage or configuration errors: exit 2): no bootstrap servers at all, a -X without `=`,
// a config file with problems, a property librdkafka refuses.
std::variant<ClientKafka, std::vector<std::string>> clientKafka(
    const CliArgs& args, const std::function<std::string(const KafkaTopics&)>& topic_of);

}  // namespace fanpull
