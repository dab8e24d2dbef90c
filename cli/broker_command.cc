#include <iostream>
#include <ostream>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "kafka/embedded_broker.h"

namespace fanpull {
namespace {

// The topics of a default configuration (docs/CONTRACTS.md), created with --partitions partitions:
// the mock cluster gives any other auto-created topic kAutoCreatePartitions.
constexpr const char* kFanpullTopics[] = {"fanpull.jobs", "fanpull.pages", "fanpull.events",
                                          "fanpull.dlq", "fanpull.progress", "fanpull.state"};

}  // namespace

int brokerCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  std::string problem;
  auto brokers = args.getInt("brokers", kafka::EmbeddedBroker::kDefaultBrokers, 1, 64, &problem);
  auto partitions =
      args.getInt("partitions", kafka::EmbeddedBroker::kAutoCreatePartitions, 1, 1000, &problem);
  if (!brokers || !partitions) {
    err << "fanpull broker: " << problem << "\n";
    return kExitUsage;
  }
  if (!args.positionals().empty()) {
    err << "fanpull broker: unexpected argument \"" << args.positionals().front() << "\"\n";
    return kExitUsage;
  }

  // Before librdkafka starts its threads, so only waitForTerminationSignal() sees the signals.
  blockTerminationSignals();
  auto broker = kafka::EmbeddedBroker::start(static_cast<int>(*brokers));
  if (!broker.ok()) {
    err << "fanpull broker: " << broker.error().describe() << "\n";
    return kExitFailure;
  }
  for (const char* topic : kFanpullTopics) {
    auto created = (*broker)->createTopic(topic, static_cast<int>(*partitions));
    if (!created.ok()) {
      err << "fanpull broker: " << created.error().describe() << "\n";
      return kExitFailure;
    }
  }
  out << (*broker)->bootstrapServers() << std::endl;
  err << "fanpull broker: " << *brokers << " broker(s) at " << (*broker)->bootstrapServers()
      << "; fanpull.jobs|pages|events|dlq|progress|state have " << *partitions
      << " partitions, other topics are created on first use with "
      << kafka::EmbeddedBroker::kAutoCreatePartitions
      << "; keeps the last 5 MiB per partition; SIGTERM or SIGINT stops it" << std::endl;
  int sig = waitForTerminationSignal();
  err << "fanpull broker: signal " << sig << ", stopping" << std::endl;
  return kExitOk;
}

}  // namespace fanpull
