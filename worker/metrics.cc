#include "worker/metrics.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/buffer_pool.h"
#include "core/error.h"
#include "core/version.h"
#include "kafka/kafka_types.h"
#include "worker/process_metrics.h"

namespace fanpull {

namespace {

// The outcomes that end a job for good (a deferral is a pause: the job starts again).
constexpr const char* kJobOutcomes[] = {"completed", "failed", "duplicate", "rejected"};
constexpr ErrorClass kCallClasses[] = {ErrorClass::kRetryable,        ErrorClass::kTokenInvalid,
                                       ErrorClass::kRateLimited,      ErrorClass::kQuotaExhausted,
                                       ErrorClass::kPermissionDenied, ErrorClass::kInvalidTenant,
                                       ErrorClass::kInvalidCursor,    ErrorClass::kUnknown};

double asDouble(int64_t v) { return static_cast<double>(v); }

}  // namespace

std::string formatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<int64_t> consumerLagFromStatistics(const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  int64_t lag = 0;
  auto topics = j.find("topics");
  if (topics == j.end() || !topics->is_object()) return lag;
  for (const auto& [topic_name, topic] : topics->items()) {
    (void)topic_name;
    if (!topic.is_object()) continue;
    auto partitions = topic.find("partitions");
    if (partitions == topic.end() || !partitions->is_object()) continue;
    for (const auto& [partition_name, partition] : partitions->items()) {
      (void)partition_name;
      if (!partition.is_object()) continue;
      auto value = partition.find("consumer_lag");
      if (value == partition.end() || !value->is_number_integer()) continue;
      int64_t v = value->get<int64_t>();
      if (v >= 0) lag += v;
    }
  }
  return lag;
}

// ---------------------------------------------------------------------------------------------

void ExpositionWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  text_ += escapeHelp(help);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void ExpositionWriter::sample(std::string_view name, const MetricLabels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) text_ += ',';
      text_ += labels[i].first;
      text_ += "=\"";
      text_ += escapeLabelValue(labels[i].second);
      text_ += '"';
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += formatMetricValue(value);
  text_ += '\n';
}

// ---------------------------------------------------------------------------------------------

std::vector<double> Histogram::defaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::write(ExpositionWriter& out, std::string_view name,
                      const MetricLabels& labels) const {
  const std::string base(name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    MetricLabels with_le = labels;
    with_le.emplace_back("le",
                         i < bounds_.size() ? formatMetricValue(bounds_[i]) : std::string("+Inf"));
    out.sample(base + "_bucket", with_le, static_cast<double>(cumulative));
  }
  out.sample(base + "_sum", labels, sum_);
  out.sample(base + "_count", labels, static_cast<double>(count_));
}

// ---------------------------------------------------------------------------------------------

Metrics::Metrics() {
  calls_by_class_["ok"] = 0;
  for (ErrorClass c : kCallClasses) calls_by_class_[std::string(errorClassName(c))] = 0;
}

void Metrics::setWorkerStats(std::function<WorkerStats()> source) {
  std::lock_guard<std::mutex> lock(mutex_);
  worker_stats_ = std::move(source);
}

void Metrics::setTokenMetrics(std::function<TokenMetrics()> source) {
  std::lock_guard<std::mutex> lock(mutex_);
  token_metrics_ = std::move(source);
}

void Metrics::observeCall(std::string_view call_class, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++calls_by_class_[std::string(call_class)];
  call_duration_.observe(seconds);
}

void Metrics::observeRateLimitWait(double seconds) {
  if (!(seconds > 0)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  rate_limit_wait_seconds_ += seconds;
}

void Metrics::observeThrottleWait(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++throttle_waits_;
  if (seconds > 0) throttle_wait_seconds_ += seconds;
}

void Metrics::setReady(std::function<bool()> source) {
  std::lock_guard<std::mutex> lock(mutex_);
  ready_ = std::move(source);
}

void Metrics::observeConsumerStatistics(const std::string& json) {
  std::optional<int64_t> lag = consumerLagFromStatistics(json);
  if (!lag) return;
  std::lock_guard<std::mutex> lock(mutex_);
  consumer_lag_ = *lag;
}

int64_t Metrics::consumerLag() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return consumer_lag_;
}

std::string Metrics::render() const {
  std::function<WorkerStats()> stats_source;
  std::function<TokenMetrics()> token_source;
  std::function<bool()> ready_source;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_source = worker_stats_;
    token_source = token_metrics_;
    ready_source = ready_;
  }
  // The sources take their own locks: call them outside ours.
  WorkerStats stats = stats_source ? stats_source() : WorkerStats{};
  TokenMetrics tokens = token_source ? token_source() : TokenMetrics{};
  const bool ready = ready_source ? ready_source() : false;

  ExpositionWriter out;
  out.family("fanpull_build_info", "gauge",
             "Always 1; the labels say which fanpull and which librdkafka are running.");
  out.sample("fanpull_build_info",
             {{"version", fanpullVersion()},
              {"revision", fanpullRevision()},
              {"librdkafka_version", kafka::librdkafkaVersion()}},
             1);
  out.family("fanpull_ready", "gauge", "1 while /readyz answers 200 (the worker takes jobs).");
  out.sample("fanpull_ready", ready ? 1 : 0);

  out.family("fanpull_jobs_received_total", "counter",
             "Job messages consumed from the jobs topic, valid or not.");
  out.sample("fanpull_jobs_received_total", asDouble(stats.jobs_received));

  auto status_count = [&stats](const std::string& status) {
    auto it = stats.jobs_by_status.find(status);
    return it == stats.jobs_by_status.end() ? 0.0 : asDouble(it->second);
  };
  out.family("fanpull_jobs_started_total", "counter",
             "Job walks started (a started event; a job resumed after a deferral starts again).");
  out.sample("fanpull_jobs_started_total", status_count("started"));
  out.family("fanpull_jobs_ended_total", "counter",
             "Jobs ended for good, by outcome: completed, failed, duplicate, rejected.");
  for (const char* outcome : kJobOutcomes) {
    out.sample("fanpull_jobs_ended_total", {{"outcome", outcome}}, status_count(outcome));
  }
  out.family("fanpull_jobs_deferrals_total", "counter",
             "Jobs deferred to the next Beijing day because the daily quota was spent.");
  out.sample("fanpull_jobs_deferrals_total", status_count("deferred"));

  out.family("fanpull_pages_total", "counter", "Page messages built from getFans answers.");
  out.sample("fanpull_pages_total", asDouble(stats.pages));
  out.family("fanpull_openids_total", "counter", "OpenIDs in the page messages built.");
  out.sample("fanpull_openids_total", asDouble(stats.openids));

  std::map<std::string, int64_t> calls;
  double rate_limit_wait = 0;
  int64_t throttle_waits = 0;
  double throttle_wait_seconds = 0;
  int64_t lag = 0;
  Histogram durations;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    calls = calls_by_class_;
    durations = call_duration_;
    rate_limit_wait = rate_limit_wait_seconds_;
    throttle_waits = throttle_waits_;
    throttle_wait_seconds = throttle_wait_seconds_;
    lag = consumer_lag_;
  }
  out.family("fanpull_wechat_calls_total", "counter",
             "getFans calls to WeChat by outcome: \"ok\" or the error class.");
  for (const auto& [cls, n] : calls) {
    out.sample("fanpull_wechat_calls_total", {{"class", cls}}, asDouble(n));
  }
  out.family("fanpull_wechat_call_duration_seconds", "histogram",
             "Duration of getFans calls to WeChat, whatever their outcome.");
  durations.write(out, "fanpull_wechat_call_duration_seconds");

  out.family("fanpull_rate_limit_wait_seconds_total", "counter",
             "Time merchants' lanes were parked by the per-AppID rate limiter.");
  out.sample("fanpull_rate_limit_wait_seconds_total", rate_limit_wait);
  out.family("fanpull_wechat_throttle_waits_total", "counter",
             "Waits for the next minute after WeChat answered 45011 (per-minute limit).");
  out.sample("fanpull_wechat_throttle_waits_total", asDouble(throttle_waits));
  out.family("fanpull_wechat_throttle_wait_seconds_total", "counter",
             "Time lanes waited for the next minute after WeChat answered 45011.");
  out.sample("fanpull_wechat_throttle_wait_seconds_total", throttle_wait_seconds);

  out.family("fanpull_token_renewals_total", "counter",
             "Authorizer token renewals through the component flow, by result.");
  out.sample("fanpull_token_renewals_total", {{"result", "ok"}}, asDouble(tokens.renewals_ok));
  out.sample("fanpull_token_renewals_total", {{"result", "failed"}},
             asDouble(tokens.renewals_failed));
  out.family("fanpull_token_ticket_failures_total", "counter",
             "Component token requests refused for the verify ticket (61005, 61006) or with an "
             "unreadable ticket file.");
  out.sample("fanpull_token_ticket_failures_total", asDouble(tokens.ticket_failures));
  out.family("fanpull_token_taken_from_state_file_total", "counter",
             "Fresh authorizer tokens taken from the stored token state (the token state file, "
             "or the state topic), written there by another worker, instead of refreshing.");
  out.sample("fanpull_token_taken_from_state_file_total", asDouble(tokens.taken_from_file));
  out.family("fanpull_component_token_fetches_total", "counter",
             "Component access tokens fetched from WeChat (api_component_token) by this worker.");
  out.sample("fanpull_component_token_fetches_total", asDouble(tokens.component_token_fetches));
  out.family("fanpull_component_tokens_shared_total", "counter",
             "Component access tokens taken from another worker through the state topic instead "
             "of fetching one.");
  out.sample("fanpull_component_tokens_shared_total", asDouble(tokens.component_tokens_shared));
  out.family("fanpull_token_persist_failures_total", "counter",
             "Rotated refresh tokens that could not be stored (the token state file, or the "
             "state topic).");
  out.sample("fanpull_token_persist_failures_total", asDouble(tokens.persist_failures));

  out.family("fanpull_produce_errors_total", "counter",
             "Attempts to queue or deliver a message that failed (a retryable one is produced "
             "again).");
  out.sample("fanpull_produce_errors_total", asDouble(stats.produce_errors));
  out.family("fanpull_produce_failures_total", "counter",
             "Messages given up after a permanent produce error (too large, not authorized, "
             "invalid): a page fails its job, an event or checkpoint is lost (logged as an error).");
  out.sample("fanpull_produce_failures_total", asDouble(stats.produce_failures));
  out.family("fanpull_undelivered_bytes", "gauge",
             "Bytes of messages produced and not yet delivered (bounded by "
             "kafka.max_undelivered_bytes).");
  out.sample("fanpull_undelivered_bytes", asDouble(stats.undelivered_bytes));
  out.family("fanpull_undelivered_budget_waits_total", "counter",
             "Calls to WeChat that waited for deliveries because kafka.max_undelivered_bytes was "
             "reached.");
  out.sample("fanpull_undelivered_budget_waits_total", asDouble(stats.budget_waits));
  const BufferPoolStats buffers = BufferPool::bodies().stats();
  out.family("fanpull_answer_buffers_kept_bytes", "gauge",
             "Capacity of the answers' buffers kept for the next answers (at most "
             "kafka.max_undelivered_bytes): a page's buffer comes back once Kafka has its message.");
  out.sample("fanpull_answer_buffers_kept_bytes", asDouble(buffers.kept_bytes));
  out.family("fanpull_answer_buffers_allocated_total", "counter",
             "Answers of 64 KiB or more read into a newly allocated buffer (none was kept).");
  out.sample("fanpull_answer_buffers_allocated_total", asDouble(buffers.allocated));
  out.family("fanpull_answer_buffers_reused_total", "counter",
             "Answers read into a buffer kept from an earlier page.");
  out.sample("fanpull_answer_buffers_reused_total", asDouble(buffers.reused));
  out.family("fanpull_offset_commit_errors_total", "counter",
             "Jobs topic offset commits that failed (each is made again at the next interval).");
  out.sample("fanpull_offset_commit_errors_total", asDouble(stats.commit_errors));

  out.family("fanpull_merchants_active", "gauge", "Merchants with jobs queued or running.");
  out.sample("fanpull_merchants_active", asDouble(stats.lanes_active));
  out.family("fanpull_jobs_queued", "gauge", "Accepted jobs not finished yet.");
  out.sample("fanpull_jobs_queued", asDouble(stats.jobs_queued));
  out.family("fanpull_jobs_deferred", "gauge",
             "Jobs waiting for the next Beijing day (daily quota spent).");
  out.sample("fanpull_jobs_deferred", asDouble(stats.deferred));
  out.family("fanpull_partitions_assigned", "gauge",
             "Partitions of the jobs topic assigned to this worker.");
  out.sample("fanpull_partitions_assigned", asDouble(stats.assigned_partitions));
  out.family("fanpull_state_partitions_unrestored", "gauge",
             "Jobs partitions assigned whose state partition could not be read yet (their jobs "
             "wait).");
  out.sample("fanpull_state_partitions_unrestored", asDouble(stats.state_unrestored));
  out.family("fanpull_state_restores_total", "counter",
             "State partitions restored (read to their end when their jobs partition was "
             "assigned).");
  out.sample("fanpull_state_restores_total", asDouble(stats.state_restores));
  out.family("fanpull_state_restored_records_total", "counter",
             "State records read by those restores.");
  out.sample("fanpull_state_restored_records_total", asDouble(stats.state_records_restored));
  out.family("fanpull_state_restore_seconds_total", "counter",
             "Time spent restoring state partitions.");
  out.sample("fanpull_state_restore_seconds_total", asDouble(stats.state_restore_ms) / 1000.0);
  out.family("fanpull_state_calls_reservations_total", "counter",
             "Daily-call reservations written to the state topic before the calls they cover.");
  out.sample("fanpull_state_calls_reservations_total", asDouble(stats.calls_reservations));
  out.family("fanpull_transactions_total", "counter",
             "With kafka.exactly_once: transactions committed, and aborted (each sends the "
             "worker back to the last committed one).");
  out.sample("fanpull_transactions_total", {{"end", "committed"}},
             asDouble(stats.transactions_committed));
  out.sample("fanpull_transactions_total", {{"end", "aborted"}},
             asDouble(stats.transactions_aborted));
  out.family("fanpull_state_restores_waited_total", "counter",
             "With kafka.exactly_once: state partition reads put off because a transaction was "
             "still open in them (a crashed owner's, until the cluster aborts it).");
  out.sample("fanpull_state_restores_waited_total", asDouble(stats.state_restores_unstable));
  out.family("fanpull_partitions_paused", "gauge",
             "1 while the jobs partitions are paused because too many jobs are queued.");
  out.sample("fanpull_partitions_paused", stats.partitions_paused ? 1 : 0);
  out.family("fanpull_consumer_lag_messages", "gauge",
             "Messages behind the end of the assigned jobs partitions (librdkafka statistics).");
  out.sample("fanpull_consumer_lag_messages", asDouble(lag));

  if (std::optional<ProcessSample> p = sampleProcess()) {
    out.family("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    out.sample("process_cpu_seconds_total", p->cpu_seconds);
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size.");
    out.sample("process_resident_memory_bytes", p->resident_bytes);
    out.family("process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    out.sample("process_virtual_memory_bytes", p->virtual_bytes);
    out.family("process_open_fds", "gauge", "Open file descriptors.");
    out.sample("process_open_fds", p->open_fds);
    out.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out.sample("process_max_fds", p->max_fds);
    out.family("process_start_time_seconds", "gauge",
               "Start time of the process since the Unix epoch.");
    out.sample("process_start_time_seconds", p->start_time_seconds);
  }
  return out.text();
}

}  // namespace fanpull
