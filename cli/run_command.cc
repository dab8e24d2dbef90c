// `fanpull run --config FILE`: the worker, until SIGTERM or SIGINT.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <ostream>
#include <thread>
#include <variant>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/http_endpoints.h"
#include "cli/signals.h"
#include "cli/topic_check.h"
#include "config/worker_config.h"
#include "core/log.h"
#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "core/version.h"
#include "kafka/admin.h"
#include "kafka/kafka_types.h"
#include "core/secret_box.h"
#include "tenants/component_token_source.h"
#include "tenants/static_token_source.h"
#include "tenants/tenant_registry.h"
#include "worker/metrics.h"
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

// True while the worker's poll loop turns (it last turned less than kPollStallMs ago, counting
// from `started_ms` until its first turn): what /healthz says, and part of readiness.
bool pollLoopAlive(const Worker& worker, const WorkerStats& stats, int64_t started_ms) {
  if (worker.stopped()) return false;
  int64_t heartbeat = stats.poll_heartbeat_ms > 0 ? stats.poll_heartbeat_ms : started_ms;
  return steadyMs() - heartbeat < kPollStallMs;
}

// What keeps the worker from being ready (what /readyz and fanpull_ready say), one reason each.
std::function<std::vector<std::string>()> readiness(const Worker& worker,
                                                   const TenantRegistry& registry) {
  const int64_t started_ms = steadyMs();
  return [&worker, &registry, started_ms] {
    std::vector<std::string> missing;
    WorkerStats stats = worker.stats();
    if (!pollLoopAlive(worker, stats, started_ms)) missing.push_back("the poll loop is not running");
    for (auto& problem : readinessProblems(stats)) missing.push_back(std::move(problem));
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
  eo.alive = [&worker, started_ms] { return pollLoopAlive(worker, worker.stats(), started_ms); };
  eo.not_ready = std::move(not_ready);
  return HttpEndpoints::start(std::move(eo));
}

// The topics the worker uses must exist, or the cluster must create them: a worker that would
// only spin (subscribed to a missing jobs topic, its writes timing out) refuses to start. Returns
// the message for the user, empty when the worker may start. A cluster that cannot be asked
// (down, or not answering DescribeConfigs) does not stop the start: the worker logs and waits
// for it as it waits for any broker.
std::string topicsMissingForRun(const WorkerConfig& config, const std::string& path, Logger& log) {
  auto admin = kafka::Admin::create(
      config.kafka.bootstrap_servers, config.kafka.properties,
      [&log](int level, const std::string& facility, const std::string& message) {
        if (level <= 4) log.warn("kafka admin: " + message, {{"facility", facility}});
      });
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

// The signals of `fanpull run`, on a thread of their own from the first moment: SIGHUP reloads
// (the tenants file and the log level) at any time. SIGTERM or SIGINT while the worker is still
// starting (a broker that does not answer can hold the start for a minute) exits at once: no
// offset has been committed and no job has run yet, and at worst it is the crash every job
// already survives (it resumes from its checkpoint). Once running, the first one asks for the
// graceful stop and a second exits at once.
class RunSignals {
 public:
  RunSignals(Logger& log, std::function<void()> reload) : log_(log), reload_(std::move(reload)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~RunSignals() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      phase_ = Phase::kDone;
    }
    thread_.join();
  }

  // From now on a termination signal asks for a graceful stop.
  void running() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (phase_ == Phase::kStarting) phase_ = Phase::kRunning;
  }
  static constexpr int kStoppedForError = -1;
  // The worker cannot go on: waitForStop() returns kStoppedForError.
  void stopForError() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_signal_ == 0) stop_signal_ = kStoppedForError;
    if (phase_ != Phase::kDone) phase_ = Phase::kStopping;  // a signal now exits at once
    stop_asked_.notify_all();
  }
  // Blocks until a termination signal (or stopForError) asks for the stop; returns its number.
  int waitForStop() {
    std::unique_lock<std::mutex> lock(mutex_);
    stop_asked_.wait(lock, [this] { return stop_signal_ != 0; });
    return stop_signal_;
  }

 private:
  enum class Phase { kStarting, kRunning, kStopping, kDone };

  void loop() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
    timespec tick{0, 100 * 1000 * 1000};
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (phase_ == Phase::kDone) return;
      }
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      if (sig == SIGHUP) {
        reload_();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      switch (phase_) {
        case Phase::kStarting:
          log_.info("signal received while starting: exiting now", {{"signal", sig}});
          _exit(kExitOk);
        case Phase::kRunning:
          phase_ = Phase::kStopping;
          stop_signal_ = sig;
          stop_asked_.notify_all();
          break;
        case Phase::kStopping:
          log_.warn("second signal received: exiting at once", {{"signal", sig}});
          _exit(kExitFailure);
        case Phase::kDone:
          return;
      }
    }
  }

  Logger& log_;
  std::function<void()> reload_;
  std::mutex mutex_;  // guards phase_ and stop_signal_
  std::condition_variable stop_asked_;
  Phase phase_ = Phase::kStarting;
  int stop_signal_ = 0;
  std::thread thread_;
};

// SIGHUP: the tenants file read again now (it is also re-read within seconds of a change) and
// the log level taken from the configuration file again; anything else in the configuration
// needs a restart. Each outcome is logged.
void reloadOnSignal(const std::string& path, TenantRegistry& registry, Logger& log) {
  std::vector<TenantProblem> problems;
  auto tenants = registry.reloadIfChanged(&problems);
  for (const auto& p : problems) log.error("tenants file rejected", {{"problem", p.describe()}});
  const char* tenants_result = tenants == TenantRegistry::Reload::kReloaded   ? "reloaded"
                               : tenants == TenantRegistry::Reload::kRejected ? "rejected"
                                                                              : "unchanged";
  LogLevel level = log.level();
  auto loaded = loadWorkerConfig(path, processEnv());
  if (auto* bad = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
    for (const auto& p : *bad) {
      log.error("configuration not reloaded (log level unchanged)", {{"problem", p.describe()}});
    }
  } else {
    parseLogLevel(std::get<WorkerConfig>(loaded).log_level, &level);
  }
  const LogLevel before = log.level();
  LogFields fields = {{"tenants_file", tenants_result},
                      {"tenants", registry.current()->size()},
                      {"log_level", logLevelName(level)}};
  // The line shows at the more verbose of the two levels.
  if (level <= before) {
    log.setLevel(level);
    log.info("reloaded on SIGHUP", fields);
  } else {
    log.info("reloaded on SIGHUP", fields);
    log.setLevel(level);
  }
}

// What `worker started` says of this worker beside its group: the build and a summary of the
// configuration (no secret: property values are left out, only their names).
LogFields startSummary(const WorkerConfig& config, const std::string& path,
                       const TenantRegistry& registry) {
  std::string property_names;
  for (const auto& [name, value] : config.kafka.properties) {
    (void)value;
    if (!property_names.empty()) property_names += ",";
    property_names += name;
  }
  return {{"version", fanpullVersion()},
          {"revision", fanpullRevision()},
          {"librdkafka", kafka::librdkafkaVersion()},
          {"config", path},
          {"bootstrap_servers", config.kafka.bootstrap_servers},
          {"pages_topic", config.kafka.topics.pages},
          {"output", config.kafka.exactly_once ? "exactly-once" : "at-least-once"},
          {"kafka_properties", property_names},
          {"tenants", registry.current()->size()},
          {"tokens", config.component ? "component" : "static"},
          {"requests_per_second", config.rate_limit.requests_per_second},
          {"burst", config.rate_limit.burst},
          {"daily_calls", config.rate_limit.daily_calls},
          {"wechat", config.wechat.base_url},
          {"log_level", config.log_level},
          {"log_format", config.log_format}};
}

}  // namespace

int runCommand(const CliArgs& args, std::ostream& /*out*/, std::ostream& err) {
  // First of all, before any thread starts: only RunSignals' thread sees SIGTERM, SIGINT and
  // SIGHUP.
  blockTerminationAndReloadSignals();
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
  RunSignals signals(log, [&] { reloadOnSignal(*path, registry, log); });

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
  // With a state key, the merchants' tokens live in the state topic, sealed with it.
  std::unique_ptr<StateTokenStore> state_tokens;
  if (!config.state_key.empty()) {
    std::optional<SecretBox> previous;
    if (!config.state_previous_key.empty()) previous.emplace(config.state_previous_key);
    state_tokens =
        std::make_unique<StateTokenStore>(SecretBox(config.state_key), std::move(previous));
  }
  std::unique_ptr<TokenSource> tokens;
  Metrics metrics;
  if (config.component) {
    TokenStore& kept = state_tokens ? static_cast<TokenStore&>(*state_tokens) : store;
    auto source = std::make_unique<ComponentTokenSource>(
        ComponentSettings{config.component->appid, config.component->appsecret,
                          config.component->verify_ticket_file},
        *transport.value(), kept, SystemClock::instance(), log);
    // The token state file is read at start either way: with a state key, the refresh tokens
    // rotated before the key was configured are taken from it once.
    auto started = source->start(&store);
    if (!started.ok()) {
      err << *path << ": token_state_file: " << started.error().cause << "\n";
      return kExitUsage;
    }
    if (state_tokens) {
      source->shareComponentTokens(state_tokens.get());
      log.info("merchants' tokens are kept in the state topic, sealed with the state key",
               {{"state_topic", config.kafka.topics.state},
                {"key_id", state_tokens->keyId()},
                {"key_from", config.state_key_from}});
    } else {
      // Rotated refresh tokens live only in this file (read again before every refresh): a
      // merchant whose partition moves to a worker without it fails with 61023.
      log.warn("no state key: refresh tokens are kept in the token state file only, so "
               "merchants can move only between workers that share it",
               {{"token_state_file", config.token_state_file}});
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
  options.max_undelivered_bytes = config.kafka.max_undelivered_bytes;
  options.max_queued_jobs = static_cast<size_t>(config.kafka.max_queued_jobs);
  options.shutdown_timeout = std::chrono::milliseconds(config.shutdown_timeout_ms);
  options.default_limit = {config.rate_limit.requests_per_second,
                           static_cast<int>(config.rate_limit.burst), config.rate_limit.daily_calls};
  options.observer = &metrics;
  options.started_fields = startSummary(config, *path, registry);
  options.token_store = config.component ? state_tokens.get() : nullptr;
  options.exactly_once = config.kafka.exactly_once;
  options.transaction_interval = std::chrono::milliseconds(config.kafka.transaction_interval_ms);
  std::atomic<bool> fatal{false};  // the worker met a configuration problem once running
  // exactly_once: a transaction was aborted; exit 1 so that the supervisor starts the worker
  // again, from the last committed transaction.
  std::atomic<bool> restart{false};
  options.on_fatal = [&signals, &err, &fatal, &restart](const Error& e) {
    if (e.error_class == ErrorClass::kRetryable) restart = true;
    fatal = true;
    err << "fanpull run: " << e.cause << "\n";
    signals.stopForError();
  };

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
    if (fatal) return kExitUsage;  // said already (a wrong state key)
    err << "fanpull run: " << started.error().describe() << "\n";
    return kExitFailure;
  }
  signals.running();
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
  int sig = signals.waitForStop();
  if (sig == RunSignals::kStoppedForError && restart) {
    log.error("stopping: a Kafka transaction was aborted; restart to resume from the last "
              "committed one");
    worker.stop();
    endpoints.value()->stop();
    return kExitFailure;
  }
  if (sig == RunSignals::kStoppedForError) {
    // A configuration problem found only once running (the state key): a restart as it is
    // would meet it again (exit 2: the systemd unit does not restart on it).
    log.error("stopping: the worker cannot go on with this configuration");
    worker.stop();
    endpoints.value()->stop();
    return kExitUsage;
  }
  log.info("signal received, stopping (a second signal exits at once)", {{"signal", sig}});
  worker.stop();  // metrics and health stay up while the worker drains
  endpoints.value()->stop();
  return kExitOk;
}

}  // namespace fanpull
