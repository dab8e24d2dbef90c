#include <fstream>
#include <ostream>
#include <variant>

#include "config/worker_config.h"
#include "worker/cli.h"
#include "worker/commands.h"

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
  if (!std::ifstream(config.tenants_file)) {
    out << *path << ": tenants_file: cannot read " << config.tenants_file << "\n1 problem\n";
    return kExitFailure;
  }
  out << *path << ": ok\n";
  return kExitOk;
}

}  // namespace fanpull
