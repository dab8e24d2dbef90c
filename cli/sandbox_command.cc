#include <iostream>
#include <ostream>

#include <Poco/Exception.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "config/worker_config.h"
#include "sandbox/accounts.h"
#include "sandbox/sandbox_server.h"

namespace fanpull {

int sandboxCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  sandbox::SandboxOptions options;
  std::string listen = args.getOr("listen", "127.0.0.1:0");
  if (!splitHostPort(listen, &options.host, &options.port)) {
    err << "fanpull sandbox: --listen expects HOST:PORT, got \"" << listen << "\"\n";
    return kExitUsage;
  }
  std::string problem;
  auto latency = args.getInt("latency-ms", 0, 0, 600000, &problem);
  auto jitter = args.getInt("jitter-ms", 0, 0, 600000, &problem);
  auto seed = args.getInt("seed", 1, 0, INT64_MAX, &problem);
  if (!latency || !jitter || !seed) {
    err << "fanpull sandbox: " << problem << "\n";
    return kExitUsage;
  }
  options.latency_ms = static_cast<int>(*latency);
  options.jitter_ms = static_cast<int>(*jitter);
  options.seed = static_cast<uint64_t>(*seed);
  if (args.has("tls-cert") != args.has("tls-key")) {
    err << "fanpull sandbox: --tls-cert and --tls-key go together\n";
    return kExitUsage;
  }
  options.tls_cert_file = args.getOr("tls-cert", "");
  options.tls_key_file = args.getOr("tls-key", "");

  if (args.has("accounts") == args.has("demo")) {
    err << "fanpull sandbox: give either --accounts FILE or --demo\n";
    return kExitUsage;
  }
  try {
    if (auto file = args.get("accounts")) {
      sandbox::SandboxFile loaded = sandbox::loadSandboxFile(*file);
      options.accounts = std::move(loaded.accounts);
      options.component = loaded.component;
    } else {
      options.accounts = sandbox::demoAccounts();
      options.component = sandbox::demoComponent();
    }
  } catch (const sandbox::SandboxFileError& ex) {
    err << "fanpull sandbox: " << ex.what() << "\n";
    return kExitUsage;
  }

  blockTerminationSignals();
  try {
    sandbox::SandboxServer server(std::move(options));
    server.start();
    out << server.baseUrl() << std::endl;
    err << "fanpull sandbox: serving " << server.baseUrl()
        << " (stats at /sandbox/stats); SIGTERM or SIGINT stops it\n";
    int sig = waitForTerminationSignal();
    err << "fanpull sandbox: signal " << sig << ", stopping\n";
    server.stop();
  } catch (const sandbox::SandboxFileError& ex) {
    err << "fanpull sandbox: " << ex.what() << "\n";
    return kExitUsage;
  } catch (const Poco::Exception& ex) {
    err << "fanpull sandbox: " << ex.displayText() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace fanpull
