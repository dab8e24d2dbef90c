// libFuzzer target: the worker config and tenants file loaders. Any text: a config or a list of
// problems (never empty), never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "config/worker_config.h"
#include "tenants/tenants_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto config = fanpull::parseWorkerConfig(text, "/fuzz/worker.json", env);
  if (auto* problems = std::get_if<std::vector<fanpull::ConfigProblem>>(&config)) {
    if (problems->empty()) std::abort();
  }
  auto tenants = fanpull::parseTenants(text, "/fuzz/tenants.json", {true});
  if (auto* problems = std::get_if<std::vector<fanpull::TenantProblem>>(&tenants)) {
    if (problems->empty()) std::abort();
  }
  return 0;
}
