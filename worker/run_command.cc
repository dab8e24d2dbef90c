// `fanpull run --config FILE`: the worker, until SIGTERM or SIGINT.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <ostream>
#include <thread>
#include <variant>

#include "config/worker_config.h"
#include "core/log.h"
#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "tenants/component_token_source.h"
#include "tenants/static_token_source.h"
#include "tenants/tenant_registry.h"
#include "worker/cli.h"
#include "worker/commands.h"
#include "worker/http_endpoints.h"
#include "worker/metrics.h"
#include "worker/kafka/admin.h"
#include "worker/signals.h"
#include "worker/topic_check.h"
#include "worker/worker.h"

namespace fanpull {

namespace {

// A poll loop that has not turned for this long is stuck (a rebalance reading the progress topic
// takes up to 30 s).
constexpr int64_t kPollStallMs = 60 * 1000;

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What keeps the worker from being ready (what /readyz and fanpull_ready say), one reason each.
std::function<std::vector<std::string>()> readiness(const Worker& worker,
                                                   const TenantRegistry& registry) {
  const int64_t started_ms = steadyMs();
  return [&worker, &registry, started_ms] {
    std::vector<std::string> missing;
    WorkerStats stats = worker.stats();
    int64_t heartbeat = stats.poll_heartbeat_ms > 0 ? stats.poll_heartbeat_ms : started_ms;
    if (worker.stopped() || steadyMs() - heartbeat >= kPollStallMs) {
      missing.push_back("the poll loop is not running");
    }
    if (stats.assigned_partitions == 0) missing.push_back("no jobs partition assigned yet");
    if (stats.producer_fatal) missing.push_back("the Kafka producer hit a fatal error");
    if (registry.current()->size() == 0) missing.push_back("no tenants loaded");
    return missing;
  };
}

// /metrics, /healthz and /readyz on http.listen, answering from the running worker.
Result<std::unique_ptr<HttpEndpoints>> startEndpoints(
    const std::string& listen, const Metrics& metrics, const Worker& worker,
    std::function<std::vector<std::string>()> not_ready) {
  const int64_t started_ms = steadyMs();
  HttpEndpointsOptions eo;
  eo.listen = listen;
  eo.metrics = [&metrics] { return metrics.render(); };
  eo.alive = [&worker, started_ms] {
    if (worker.stopped()) return false;
    int64_t heartbeat = worker.stats().poll_heartbeat_ms;
    return steadyMs() - (heartbeat > 0 ? heartbeat : started_ms) < kPollStallMs;
  };
  eo.not_ready = std::move(not_ready);
  return HttpEndpoints::start(std::move(eo));
}

// The topics the worker uses must exist, or the cluster must create them: a worker that would
// only spin (subscribed to a missing jobs topic, its writes timing out) refuses to start. Returns
// the message for the user, empty when the worker may start. A cluster that cannot be asked
// (down, or not answering DescribeConfigs) does not stop the start: the worker logs and waits
// for it as it waits for any broker.
std::string topicsMissingForRun(const WorkerConfig& config, const std::string& path, Logger& log) {
  auto admin = kafka::Admin::create(config.kafka.bootstrap_servers, config.kafka.properties);
  if (!admin.ok()) return path + ": kafka.properties: " + admin.error().cause;
  std::vector<TopicSpec> used;
  for (auto& s : topicSpecs(config.kafka.topics, 0)) {
    if (s.used_by_run) used.push_back(s);
  }
  auto problems = checkTopics(**admin, used, false, std::chrono::seconds(10));
  if (!problems.ok()) {
    log.warn("topics not checked: the cluster did not answer",
             {{"error", problems.error().describe()}});
    return "";
  }
  if (problems->empty()) return "";
  auto creates = (*admin)->brokerConfig("auto.create.topics.enable", std::chrono::seconds(10));
  if (!creates.ok() || !creates->has_value()) {
    log.warn("topics missing; the cluster may create them on first use",
             {{"topic", problems->front().topic}});
    return "";
  }
  if (**creates == "true") {
    log.info("topics missing; the cluster creates topics on first use",
             {{"topic", problems->front().topic}});
    return "";
  }
  std::string text;
  for (const auto& p : *problems) text += "fanpull run: topic " + p.topic + ": " + p.problem + "\n";
  text += "fanpull run: the cluster does not create topics (auto.create.topics.enable=false); "
          "create them with: fanpull topics --config " + path;
  return text;
}

}  // namespace

int runCommand(const CliArgs& args, std::ostream& /*out*/, std::ostream& err) {
  // First of all: a SIGTERM that arrives while the worker is still starting waits for the stop
  // below instead of killing it midway.
  blockTerminationSignals();
  auto path = args.get("config");
  if (!path) {
    err << "fanpull run: --config FILE is required\n";
    return kExitUsage;
  }
  auto loaded = loadWorkerConfig(*path, processEnv());
  if (auto* problems = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
    for (const auto& p : *problems) err << p.describe() << "\n";
    return kExitUsage;
  }
  const WorkerConfig config = std::get<WorkerConfig>(loaded);
  if (auto bad = kafka::checkProperties(config.kafka.properties); !bad.empty()) {
    for (const auto& p : bad) err << *path << ": kafka.properties: " << p << "\n";
    return kExitUsage;
  }
  LogLevel level = LogLevel::kInfo;
  parseLogLevel(config.log_level, &level);
  Logger log(level, config.log_format == "json", Logger::stderrSink());

  TenantRegistry registry(config.tenants_file, {config.component.has_value()});
  auto problems = registry.load();
  if (!problems.empty()) {
    for (const auto& p : problems) err << p.describe() << "\n";
    return kExitUsage;
  }

  HttpTransportOptions transport_options;
  transport_options.base_url = config.wechat.base_url;
  transport_options.timeout = std::chrono::milliseconds(config.wechat.timeout_ms);
  transport_options.connect_timeout =
      std::min<Duration>(std::chrono::milliseconds(config.wechat.timeout_ms), std::chrono::seconds(5));
  transport_options.ca_file = config.wechat.ca_file;
  transport_options.max_idle_connections = static_cast<size_t>(config.wechat.max_in_flight);
  auto transport = PocoHttpTransport::create(transport_options);
  if (!transport.ok()) {
    err << *path << ": wechat: " << transport.error().cause << "\n";
    return kExitUsage;
  }
  UserListClient client(*transport.value());

  TokenStateStore store(config.token_state_file);
  std::unique_ptr<TokenSource> tokens;
  Metrics metrics;
  if (config.component) {
    auto source = std::make_unique<ComponentTokenSource>(
        ComponentSettings{config.component->appid, config.component->appsecret,
                          config.component->verify_ticket_file},
        *transport.value(), store, SystemClock::instance(), log);
    auto started = source->start();
    if (!started.ok()) {
      err << *path << ": token_state_file: " << started.error().cause << "\n";
      return kExitUsage;
    }
    ComponentTokenSource* component = source.get();
    metrics.setTokenMetrics([component] { return component->metrics(); });
    tokens = std::move(source);
  } else {
    tokens = std::make_unique<StaticTokenSource>(registry);
  }

  WorkerOptions options;
  options.bootstrap_servers = config.kafka.bootstrap_servers;
  options.group_id = config.kafka.group_id;
  options.topics = config.kafka.topics;
  options.properties = config.kafka.properties;
  options.max_in_flight = static_cast<size_t>(config.wechat.max_in_flight);
  options.default_limit = {config.rate_limit.requests_per_second,
                           static_cast<int>(config.rate_limit.burst), config.rate_limit.daily_calls};
  options.observer = &metrics;

  if (std::string missing = topicsMissingForRun(config, *path, log); !missing.empty()) {
    err << missing << "\n";
    return kExitUsage;
  }

  Worker worker(options, registry, *tokens, client, log);
  metrics.setWorkerStats([&worker] { return worker.stats(); });
  auto not_ready = readiness(worker, registry);
  metrics.setReady([not_ready] { return not_ready().empty(); });
  auto started = worker.start();
  if (!started.ok()) {
    err << "fanpull run: " << started.error().describe() << "\n";
    return kExitFailure;
  }
  auto endpoints = startEndpoints(config.http_listen, metrics, worker, not_ready);
  if (!endpoints.ok()) {
    // A configured port that is taken is a configuration error, not a reason to serve somewhere
    // a scraper does not look (port 0 takes any free port).
    err << *path << ": http.listen: cannot listen on " << config.http_listen << ": "
        << endpoints.error().cause << " (choose another port, or 0 for any)\n";
    worker.stop();
    return kExitUsage;
  }
  log.info("metrics and health on http://" + endpoints.value()->address(),
           {{"address", endpoints.value()->address()}});
  int sig = waitForTerminationSignal();
  log.info("signal received, stopping (a second signal exits at once)",
           {{"signal", std::to_string(sig)}});
  std::atomic<bool> done{false};
  std::thread second([&done] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    timespec tick{0, 100 * 1000 * 1000};
    while (!done) {
      if (sigtimedwait(&set, nullptr, &tick) > 0) _exit(kExitFailure);
    }
  });
  worker.stop();  // metrics and health stay up while the worker drains
  endpoints.value()->stop();
  done = true;
  second.join();
  return kExitOk;
}

}  // namespace fanpull
