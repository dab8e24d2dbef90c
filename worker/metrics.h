// Metrics: what an operator scrapes from a worker, rendered in the Prometheus text exposition
// format 0.0.4 by Prometheus' naming conventions (`fanpull_` prefix, counters end in `_total`,
// units in the name and in base units: seconds, bytes; the standard `process_*` metrics and
// `fanpull_build_info`). Counters and
// gauges the Worker and the token source already keep are read from them at each scrape; call
// durations, rate-limiter waits and the consumer lag are reported to it through CallObserver.
// No label grows with the number of merchants (no appid), and no secret is ever a label.
// CallObserver implementations, Metrics and render() are thread-safe; Histogram and
// ExpositionWriter are thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tenants/component_token_source.h"
#include "worker/worker.h"

namespace fanpull {

// What the Worker reports as it works, beside its WorkerStats counters. Called from executor
// threads and the poll thread at once: implementations are thread-safe and quick.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // One getFans call ended after `seconds`; `call_class` is "ok" or an error class name.
  virtual void observeCall(std::string_view call_class, double seconds) = 0;
  // A lane was parked by the rate limiter for `seconds` before it may call again.
  virtual void observeRateLimitWait(double seconds) = 0;
  // WeChat answered 45011 (the merchant's per-minute limit): the lane waits `seconds` for the
  // next minute.
  virtual void observeThrottleWait(double seconds) = 0;
  // librdkafka's statistics JSON of the jobs consumer (every statistics.interval.ms).
  virtual void observeConsumerStatistics(const std::string& json) = 0;
};

// "0.25", "3", "+Inf", "-Inf", "NaN": the shortest text that reads back as the same double.
std::string formatMetricValue(double value);
// A label value with `\`, `"` and newline escaped as the text format requires.
std::string escapeLabelValue(std::string_view value);
// A HELP text with `\` and newline escaped.
std::string escapeHelp(std::string_view help);

// The sum of consumer_lag over every partition of librdkafka's statistics JSON
// (topics.*.partitions.*.consumer_lag), skipping -1 (unknown, or a partition not consumed).
// nullopt for text that is not statistics JSON.
std::optional<int64_t> consumerLagFromStatistics(const std::string& json);

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Builds an exposition: each family opens with its HELP and TYPE lines, then its samples.
class ExpositionWriter {
 public:
  // type: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const MetricLabels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A histogram with fixed upper bounds (ascending, +Inf implied after the last).
class Histogram {
 public:
  // .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (+Inf): Prometheus' defaults, for call durations.
  static std::vector<double> defaultBuckets();

  explicit Histogram(std::vector<double> upper_bounds = defaultBuckets());
  void observe(double value);
  // `<name>_bucket{le=...}` (cumulative, ending with le="+Inf"), `<name>_sum`, `<name>_count`.
  void write(ExpositionWriter& out, std::string_view name, const MetricLabels& labels = {}) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last one is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics final : public CallObserver {
 public:
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Metrics();

  // Where the worker's counters and gauges come from at each scrape. Unset: they read 0.
  void setWorkerStats(std::function<WorkerStats()> source);
  // Where the token renewal counters come from (the component token source). Unset: 0.
  void setTokenMetrics(std::function<TokenMetrics()> source);
  // Whether the worker is ready (what /readyz answers). Unset: fanpull_ready reads 0.
  void setReady(std::function<bool()> source);

  void observeCall(std::string_view call_class, double seconds) override;
  void observeRateLimitWait(double seconds) override;
  void observeThrottleWait(double seconds) override;
  void observeConsumerStatistics(const std::string& json) override;

  // The consumer lag of the last statistics (0 before any).
  int64_t consumerLag() const;

  // Every metric, in the text exposition format 0.0.4 (serve it with kContentType).
  std::string render() const;

 private:
  mutable std::mutex mutex_;  // guards everything below
  std::function<WorkerStats()> worker_stats_;
  std::function<TokenMetrics()> token_metrics_;
  std::function<bool()> ready_;
  std::map<std::string, int64_t> calls_by_class_;
  Histogram call_duration_;
  double rate_limit_wait_seconds_ = 0;
  int64_t throttle_waits_ = 0;
  double throttle_wait_seconds_ = 0;
  int64_t consumer_lag_ = 0;
};

}  // namespace fanpull
