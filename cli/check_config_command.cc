#include <fstream>
#include <ostream>
#include <variant>

#include "cli/cli.h"
#include "cli/commands.h"
#include "config/worker_config.h"
#include "kafka/kafka_types.h"
#include "tenants/tenants_file.h"
#include "core/secret_box.h"
#include "tenants/token_state_store.h"

namespace fanpull {

int checkConfigCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  auto path = args.get("config");
  if (!path) {
    err << "fanpull check-config: --config FILE is required\n";
    return kExitUsage;
  }
  auto loaded = loadWorkerConfig(*path, processEnv());
  if (auto* problems = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
    for (const auto& p : *problems) out << p.describe() << "\n";
    out << problems->size() << (problems->size() == 1 ? " problem\n" : " problems\n");
    return kExitFailure;
  }
  const auto& config = std::get<WorkerConfig>(loaded);
  std::vector<std::string> problems;
  // kafka.properties as librdkafka reads them: a typo must not wait for `run` to be found.
  for (const auto& p : kafka::checkProperties(config.kafka.properties)) {
    problems.push_back(*path + ": kafka.properties: " + p);
  }
  auto tenants = loadTenants(config.tenants_file, {config.component.has_value()});
  if (auto* found = std::get_if<std::vector<TenantProblem>>(&tenants)) {
    for (const auto& p : *found) problems.push_back(p.describe());
  }
  if (config.component && !std::ifstream(config.component->verify_ticket_file)) {
    problems.push_back(*path + ": component.verify_ticket_file: cannot read " +
                       config.component->verify_ticket_file);
  }
  auto state = TokenStateStore(config.token_state_file).load();
  if (!state.ok()) problems.push_back(state.error().cause);
  for (const auto& p : problems) out << p << "\n";
  if (!problems.empty()) {
    out << problems.size() << (problems.size() == 1 ? " problem\n" : " problems\n");
    return kExitFailure;
  }
  size_t count = std::get<std::shared_ptr<const TenantSet>>(tenants)->size();
  out << *path << ": ok (" << count << (count == 1 ? " tenant" : " tenants") << ")\n";
  // Which key this worker would seal and open the state topic's tokens with: the same id on
  // every worker of a fleet (a digest, never the key).
  if (!config.state_key.empty()) {
    out << "state key: id " << SecretBox(config.state_key).keyId() << " (from "
        << config.state_key_from << ")";
    if (!config.state_previous_key.empty()) {
      out << "; previous key: id " << SecretBox(config.state_previous_key).keyId();
    }
    out << "\n";
  }
  // Which guarantee the output would have: what only a real cluster can give is said here, as
  // the embedded broker cannot be told from a real one by its address.
  if (config.kafka.exactly_once) {
    out << "output: exactly-once (transactions committed every "
        << config.kafka.transaction_interval_ms
        << " ms; needs Apache Kafka: the embedded broker of fanpull demo and fanpull broker "
           "cannot honour transactions)\n";
  }
  return kExitOk;
}

}  // namespace fanpull
