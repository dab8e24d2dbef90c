// The operator's view of a worker: the Prometheus exposition (format, names, values a user would
// expect after a few jobs) and the /metrics, /healthz and /readyz endpoints, scraped over HTTP
// from a `fanpull run` process the way Prometheus and a Kubernetes probe do.
#include "worker/metrics.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli/http_endpoints.h"
#include "core/version.h"
#include "kafka/kafka_types.h"
#include "support/worker_fixture.h"
#include "worker/process_metrics.h"

using namespace fanpull;
using testing::merchant;
using testing::WorkerFixture;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// An exposition read line by line as Prometheus reads it; `problems` lists every line that
// breaks the text format 0.0.4 or the naming conventions.
struct Exposition {
  std::map<std::string, std::string> types;  // family name -> type
  std::set<std::string> helps;
  std::vector<Sample> samples;
  std::vector<std::string> problems;

  // The value of the one sample with this name and these labels; NaN when there is none.
  double value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nan("");
  }
  std::vector<Sample> all(const std::string& name) const {
    std::vector<Sample> out;
    for (const auto& s : samples) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
};

bool parseValue(const std::string& text, double* value) {
  if (text == "+Inf") return *value = HUGE_VAL, true;
  if (text == "-Inf") return *value = -HUGE_VAL, true;
  if (text == "NaN") return *value = std::nan(""), true;
  if (text.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// Reads `{a="x",b="y\"z"}` from text[pos] (pos at '{'); pos ends after '}'.
bool parseLabels(const std::string& text, size_t* pos, std::map<std::string, std::string>* labels) {
  static const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");
  size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    size_t eq = text.find('=', i);
    if (eq == std::string::npos) return false;
    std::string name = text.substr(i, eq - i);
    if (!std::regex_match(name, kLabelName) || eq + 1 >= text.size() || text[eq + 1] != '"') {
      return false;
    }
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\') {
        if (++j >= text.size()) return false;
        if (text[j] == 'n') {
          value.push_back('\n');
        } else if (text[j] == '\\' || text[j] == '"') {
          value.push_back(text[j]);
        } else {
          return false;
        }
      } else if (text[j] == '\n') {
        return false;
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return false;
    if (labels->count(name)) return false;
    (*labels)[name] = value;
    i = j + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return false;
  *pos = i + 1;
  return true;
}

Exposition parseExposition(const std::string& text) {
  static const std::regex kComment("# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)");
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  Exposition out;
  if (text.empty() || text.back() != '\n') out.problems.push_back("does not end with a newline");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.rfind("#", 0) == 0) {
      if (!std::regex_match(line, m, kComment)) {
        out.problems.push_back("comment is neither HELP nor TYPE: " + line);
        continue;
      }
      if (m[1] == "HELP") {
        if (!out.helps.insert(m[2]).second) out.problems.push_back("second HELP: " + line);
        continue;
      }
      std::string type = m[3];
      if (type != "counter" && type != "gauge" && type != "histogram") {
        out.problems.push_back("unexpected type: " + line);
      }
      if (out.types.count(m[2])) out.problems.push_back("second TYPE: " + line);
      out.types[m[2]] = type;
      if (type == "counter" && !std::regex_search(std::string(m[2]), std::regex("_total$"))) {
        out.problems.push_back("counter not ending in _total: " + line);
      }
      if (std::string(m[2]).rfind("fanpull_", 0) != 0 &&
          std::string(m[2]).rfind("process_", 0) != 0) {
        out.problems.push_back("neither fanpull_ nor process_: " + line);
      }
      continue;
    }
    size_t end_of_name = line.find_first_of("{ ");
    Sample s;
    s.name = line.substr(0, end_of_name);
    if (end_of_name == std::string::npos || !std::regex_match(s.name, kName)) {
      out.problems.push_back("not a sample: " + line);
      continue;
    }
    size_t pos = end_of_name;
    if (line[pos] == '{' && !parseLabels(line, &pos, &s.labels)) {
      out.problems.push_back("bad labels: " + line);
      continue;
    }
    if (pos >= line.size() || line[pos] != ' ' || !parseValue(line.substr(pos + 1), &s.value)) {
      out.problems.push_back("bad value: " + line);
      continue;
    }
    // The family this sample belongs to must have been typed before it.
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string sfx = suffix;
      if (!out.types.count(family) && s.name.size() > sfx.size() &&
          s.name.compare(s.name.size() - sfx.size(), sfx.size(), sfx) == 0) {
        std::string base = s.name.substr(0, s.name.size() - sfx.size());
        if (out.types.count(base) && out.types[base] == "histogram") family = base;
      }
    }
    if (!out.types.count(family)) {
      out.problems.push_back("sample without TYPE: " + line);
    } else if (!out.helps.count(family)) {
      out.problems.push_back("sample without HELP: " + line);
    } else if (out.types[family] == "histogram" && family == s.name) {
      out.problems.push_back("histogram sample without suffix: " + line);
    }
    if (family != s.name && s.name.size() > 7 &&
        s.name.compare(s.name.size() - 7, 7, "_bucket") == 0 && !s.labels.count("le")) {
      out.problems.push_back("bucket without le: " + line);
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

// Fails unless the histogram's buckets are cumulative, end with +Inf, and +Inf equals _count.
void requireHistogram(const Exposition& e, const std::string& name) {
  auto buckets = e.all(name + "_bucket");
  REQUIRE(buckets.size() >= 2);
  double previous_le = -HUGE_VAL;
  double previous = 0;
  for (const auto& b : buckets) {
    double le = 0;
    REQUIRE(parseValue(b.labels.at("le"), &le));
    CHECK(le > previous_le);
    CHECK(b.value >= previous);
    previous_le = le;
    previous = b.value;
  }
  CHECK(buckets.back().labels.at("le") == "+Inf");
  CHECK(buckets.back().value == e.value(name + "_count"));
  CHECK(e.value(name + "_sum") >= 0);
}

// The label values each label may take: a fixed, small set each (none grows with merchants,
// jobs or time). Empty set: any value, for build_info's labels (one series per process).
const std::map<std::string, std::set<std::string>>& allowedLabels() {
  static const std::map<std::string, std::set<std::string>> kAllowed = {
      {"class",
       {"ok", "retryable", "token_invalid", "rate_limited", "quota_exhausted",
        "permission_denied", "invalid_tenant", "invalid_cursor", "unknown"}},
      {"outcome", {"completed", "failed", "duplicate", "rejected"}},
      {"result", {"ok", "failed"}},
      {"end", {"committed", "aborted"}},
      {"le", {}},
      {"version", {}},
      {"revision", {}},
      {"librdkafka_version", {}},
  };
  return kAllowed;
}

// What breaks Prometheus' naming conventions (https://prometheus.io/docs/practices/naming/):
// snake_case with the fanpull_ or process_ prefix, counters and only counters end in _total,
// units spelled out in base units (seconds, bytes; no milliseconds), a duration or a size says
// so in its name, histograms name their unit, no `up` of our own, no unbounded label.
std::vector<std::string> conventionProblems(const Exposition& e) {
  static const std::regex kSnake("(fanpull|process)_[a-z0-9]+(_[a-z0-9]+)*");
  // Whole words of the name ("waits" counts waits, "wait" is a time).
  static const std::regex kTimeWords("_(duration|latency|wait|time|age|uptime)(_|$)");
  static const std::regex kSizeWords("_(memory|size)(_|$)");
  std::vector<std::string> problems;
  for (const auto& [name, type] : e.types) {
    auto fail = [&](const std::string& why) { problems.push_back(name + ": " + why); };
    if (!std::regex_match(name, kSnake)) fail("not snake_case with a fanpull_/process_ prefix");
    bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    if ((type == "counter") != total) fail("_total is for counters, and every counter has it");
    if (name.find("_milliseconds") != std::string::npos || name.find("_ms") != std::string::npos ||
        name.find("_kilobytes") != std::string::npos) {
      fail("not a base unit");
    }
    if (std::regex_search(name, kTimeWords) && name.find("_seconds") == std::string::npos) {
      fail("a time without _seconds");
    }
    if (std::regex_search(name, kSizeWords) && name.find("_bytes") == std::string::npos) {
      fail("a size without _bytes");
    }
    if (type == "histogram" && name.find("_seconds") == std::string::npos &&
        name.find("_bytes") == std::string::npos) {
      fail("a histogram without its unit");
    }
    if (name == "fanpull_up") fail("repeats Prometheus' own up");
    if (name.find("_info") != std::string::npos && type != "gauge") fail("_info is a gauge");
  }
  std::map<std::string, std::set<std::string>> seen;  // label -> values
  for (const auto& s : e.samples) {
    for (const auto& [label, value] : s.labels) {
      auto allowed = allowedLabels().find(label);
      if (allowed == allowedLabels().end()) {
        problems.push_back(s.name + ": label \"" + label + "\" is not a bounded one");
      } else if (!allowed->second.empty() && !allowed->second.count(value)) {
        problems.push_back(s.name + ": " + label + "=\"" + value + "\" is not among its values");
      }
    }
  }
  if (e.types.count("fanpull_build_info") == 0) problems.push_back("no fanpull_build_info");
  for (const char* p : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                        "process_open_fds", "process_max_fds", "process_start_time_seconds",
                        "process_virtual_memory_bytes"}) {
    if (e.types.count(p) == 0) problems.push_back(std::string("no ") + p);
  }
  return problems;
}

struct HttpAnswer {
  int status = 0;
  std::string reason;
  std::string content_type;
  std::string body;
};

HttpAnswer httpRequest(const std::string& host, uint16_t port, const std::string& path,
                       const std::string& method = Poco::Net::HTTPRequest::HTTP_GET) {
  Poco::Net::HTTPClientSession session(host, port);
  session.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& body = session.receiveResponse(response);
  HttpAnswer out;
  out.status = static_cast<int>(response.getStatus());
  out.reason = response.getReason();
  out.content_type = response.getContentType();
  Poco::StreamCopier::copyToString(body, out.body);
  return out;
}

// Forwards to a Metrics and keeps the statistics librdkafka sent.
class TeeObserver final : public CallObserver {
 public:
  explicit TeeObserver(Metrics& metrics) : metrics_(metrics) {}
  void observeCall(std::string_view call_class, double seconds) override {
    metrics_.observeCall(call_class, seconds);
  }
  void observeRateLimitWait(double seconds) override { metrics_.observeRateLimitWait(seconds); }
  void observeThrottleWait(double seconds) override { metrics_.observeThrottleWait(seconds); }
  void observeConsumerStatistics(const std::string& json) override {
    metrics_.observeConsumerStatistics(json);
    std::lock_guard<std::mutex> lock(mutex_);
    statistics_.push_back(json);
  }
  std::vector<std::string> statistics() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return statistics_;
  }

 private:
  Metrics& metrics_;
  mutable std::mutex mutex_;  // guards statistics_
  std::vector<std::string> statistics_;
};

WorkerStats someStats() {
  WorkerStats s;
  s.jobs_received = 7;
  s.jobs_by_status = {{"started", 5}, {"completed", 4}, {"rejected", 2}, {"deferred", 1}};
  s.deferred = 1;
  s.pages = 12;
  s.openids = 110000;
  s.lanes_active = 3;
  s.jobs_queued = 4;
  s.assigned_partitions = 2;
  s.partitions_paused = true;
  s.produce_errors = 1;
  s.commit_errors = 5;
  s.state_restores = 3;
  s.state_records_restored = 40;
  s.state_restore_ms = 1500;
  s.state_unrestored = 1;
  s.calls_reservations = 6;
  s.transactions_committed = 70;
  s.transactions_aborted = 2;
  s.state_restores_unstable = 4;
  return s;
}

}  // namespace

TEST_CASE("every metric has HELP and TYPE and the values of the worker's counters",
          "[worker][unit]") {
  Metrics metrics;
  metrics.setWorkerStats(someStats);
  TokenMetrics tokens;
  tokens.renewals_ok = 9;
  tokens.renewals_failed = 2;
  tokens.ticket_failures = 1;
  tokens.persist_failures = 3;
  metrics.setTokenMetrics([tokens] { return tokens; });
  metrics.observeCall("ok", 0.03);
  metrics.observeCall("ok", 0.2);
  metrics.observeCall("retryable", 12);
  metrics.observeRateLimitWait(0.5);
  metrics.observeRateLimitWait(0.25);
  metrics.observeRateLimitWait(-1);  // not a wait
  metrics.observeThrottleWait(42.5);
  metrics.observeThrottleWait(0.5);
  bool ready = false;
  metrics.setReady([&ready] { return ready; });

  Exposition e = parseExposition(metrics.render());
  INFO(metrics.render());
  for (const auto& p : e.problems) FAIL_CHECK(p);
  for (const auto& p : conventionProblems(e)) FAIL_CHECK(p);
  auto info = e.all("fanpull_build_info");
  REQUIRE(info.size() == 1);
  CHECK(info[0].value == 1);
  CHECK(info[0].labels.at("version") == "0.1.0");
  CHECK(info[0].labels.at("librdkafka_version").rfind("2.", 0) == 0);
  CHECK_FALSE(info[0].labels.at("revision").empty());
  CHECK(e.value("fanpull_ready") == 0);
  ready = true;
  CHECK(parseExposition(metrics.render()).value("fanpull_ready") == 1);
  CHECK(e.value("fanpull_jobs_received_total") == 7);
  CHECK(e.value("fanpull_jobs_started_total") == 5);
  CHECK(e.value("fanpull_jobs_ended_total", {{"outcome", "completed"}}) == 4);
  CHECK(e.value("fanpull_jobs_ended_total", {{"outcome", "rejected"}}) == 2);
  // Every outcome is there from the start, so rate() and alerts work before the first one.
  for (const char* s : {"failed", "duplicate"}) {
    CHECK(e.value("fanpull_jobs_ended_total", {{"outcome", s}}) == 0);
  }
  // A deferral is a pause, not an end: counted apart, and a gauge of the jobs waiting.
  CHECK(e.all("fanpull_jobs_ended_total").size() == 4);
  CHECK(e.value("fanpull_jobs_deferrals_total") == 1);
  CHECK(e.value("fanpull_jobs_deferred") == 1);
  CHECK(e.value("fanpull_wechat_throttle_waits_total") == 2);
  CHECK(e.value("fanpull_wechat_throttle_wait_seconds_total") == 43);
  // This process's own figures.
  CHECK(e.value("process_resident_memory_bytes") > 1e6);
  CHECK(e.value("process_open_fds") >= 3);
  CHECK(e.value("process_max_fds") >= e.value("process_open_fds"));
  // CPU time counts in clock ticks: spend 50 ms of it, then it shows.
  const double cpu_before = e.value("process_cpu_seconds_total");
  CHECK(cpu_before >= 0);
  const std::clock_t spin_from = std::clock();
  volatile uint64_t spin = 0;
  while (std::clock() - spin_from < CLOCKS_PER_SEC / 20) spin = spin + 1;
  CHECK(parseExposition(metrics.render()).value("process_cpu_seconds_total") >= cpu_before + 0.03);
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(e.value("process_start_time_seconds") <= now + 1);
  CHECK(e.value("process_start_time_seconds") > now - 24 * 3600);
  CHECK(e.value("fanpull_pages_total") == 12);
  CHECK(e.value("fanpull_openids_total") == 110000);
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "ok"}}) == 2);
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "retryable"}}) == 1);
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "quota_exhausted"}}) == 0);
  CHECK(e.value("fanpull_wechat_call_duration_seconds_count") == 3);
  CHECK(e.value("fanpull_wechat_call_duration_seconds_sum") == Approx(12.23));
  CHECK(e.value("fanpull_rate_limit_wait_seconds_total") == 0.75);
  CHECK(e.value("fanpull_token_renewals_total", {{"result", "ok"}}) == 9);
  CHECK(e.value("fanpull_token_renewals_total", {{"result", "failed"}}) == 2);
  CHECK(e.value("fanpull_token_ticket_failures_total") == 1);
  CHECK(e.value("fanpull_token_persist_failures_total") == 3);
  CHECK(e.value("fanpull_produce_errors_total") == 1);
  CHECK(e.value("fanpull_offset_commit_errors_total") == 5);
  CHECK(e.value("fanpull_merchants_active") == 3);
  CHECK(e.value("fanpull_jobs_queued") == 4);
  CHECK(e.value("fanpull_partitions_assigned") == 2);
  CHECK(e.value("fanpull_partitions_paused") == 1);
  CHECK(e.value("fanpull_consumer_lag_messages") == 0);
  CHECK(e.value("fanpull_state_restores_total") == 3);
  CHECK(e.value("fanpull_state_restored_records_total") == 40);
  CHECK(e.value("fanpull_state_restore_seconds_total") == 1.5);
  CHECK(e.value("fanpull_state_partitions_unrestored") == 1);
  CHECK(e.value("fanpull_state_calls_reservations_total") == 6);
  CHECK(e.value("fanpull_transactions_total", {{"end", "committed"}}) == 70);
  CHECK(e.value("fanpull_transactions_total", {{"end", "aborted"}}) == 2);
  CHECK(e.value("fanpull_state_restores_waited_total") == 4);
}

TEST_CASE("the conventions check finds what breaks Prometheus' naming conventions",
          "[worker][unit]") {
  // The check itself must be able to fail: each family below breaks one rule.
  const std::string bad =
      "# HELP fanpull_up Up.\n# TYPE fanpull_up gauge\nfanpull_up 1\n"
      "# HELP fanpull_calls Calls.\n# TYPE fanpull_calls counter\nfanpull_calls 1\n"
      "# HELP fanpull_queued_total Queued.\n# TYPE fanpull_queued_total gauge\n"
      "fanpull_queued_total 1\n"
      "# HELP fanpull_call_duration_ms Time.\n# TYPE fanpull_call_duration_ms gauge\n"
      "fanpull_call_duration_ms 1\n"
      "# HELP fanpull_pages_by_merchant_total Pages.\n"
      "# TYPE fanpull_pages_by_merchant_total counter\n"
      "fanpull_pages_by_merchant_total{appid=\"wx1\"} 1\n"
      "# HELP fanpull_jobs_ended_total Ended.\n# TYPE fanpull_jobs_ended_total counter\n"
      "fanpull_jobs_ended_total{outcome=\"started\"} 1\n";
  auto problems = conventionProblems(parseExposition(bad));
  auto has = [&problems](const std::string& text) {
    for (const auto& p : problems) {
      if (p.find(text) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(has("fanpull_up: repeats Prometheus' own up"));
  CHECK(has("fanpull_calls: _total is for counters"));
  CHECK(has("fanpull_queued_total: _total is for counters"));
  CHECK(has("fanpull_call_duration_ms: not a base unit"));
  CHECK(has("fanpull_call_duration_ms: a time without _seconds"));
  CHECK(has("label \"appid\" is not a bounded one"));
  CHECK(has("outcome=\"started\" is not among its values"));
  CHECK(has("no fanpull_build_info"));
  CHECK(has("no process_open_fds"));
}

TEST_CASE("process metrics are read from a /proc stat line", "[worker][unit]") {
  // A command name with spaces and parentheses must not shift the fields.
  const std::string line =
      "4242 (fan pull (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 "
      "360000 123456789 5000 18446744073709551615";
  auto s = parseProcStat(line, /*boot_time_seconds=*/1700000000, /*ticks_per_second=*/100,
                         /*page_size=*/4096);
  REQUIRE(s.has_value());
  CHECK(s->cpu_seconds == 4.0);                  // (250 + 150) / 100
  CHECK(s->start_time_seconds == 1700003600.0);  // boot + 360000 / 100
  CHECK(s->virtual_bytes == 123456789.0);
  CHECK(s->resident_bytes == 5000.0 * 4096);
  CHECK_FALSE(parseProcStat("4242 no parenthesis", 0, 100, 4096).has_value());
  CHECK_FALSE(parseProcStat("4242 (x) S 1 2", 0, 100, 4096).has_value());
}

TEST_CASE("histogram buckets are cumulative and end with +Inf equal to the count",
          "[worker][unit]") {
  Histogram h({0.1, 1, 2.5});
  for (double v : {0.05, 0.1, 0.7, 0.9, 2.4, 99.0}) h.observe(v);
  ExpositionWriter out;
  out.family("fanpull_test_seconds", "histogram", "A test.");
  h.write(out, "fanpull_test_seconds");
  CHECK(out.text() ==
        "# HELP fanpull_test_seconds A test.\n"
        "# TYPE fanpull_test_seconds histogram\n"
        "fanpull_test_seconds_bucket{le=\"0.1\"} 2\n"
        "fanpull_test_seconds_bucket{le=\"1\"} 4\n"
        "fanpull_test_seconds_bucket{le=\"2.5\"} 5\n"
        "fanpull_test_seconds_bucket{le=\"+Inf\"} 6\n"
        "fanpull_test_seconds_sum 103.15\n"
        "fanpull_test_seconds_count 6\n");
  Exposition e = parseExposition(out.text());
  for (const auto& p : e.problems) FAIL_CHECK(p);
  requireHistogram(e, "fanpull_test_seconds");

  Metrics metrics;
  for (double v : {0.004, 0.006, 0.3, 0.3, 7.0, 60.0}) metrics.observeCall("ok", v);
  Exposition m = parseExposition(metrics.render());
  requireHistogram(m, "fanpull_wechat_call_duration_seconds");
  std::vector<std::string> les;
  for (const auto& b : m.all("fanpull_wechat_call_duration_seconds_bucket")) {
    les.push_back(b.labels.at("le"));
  }
  CHECK(les == std::vector<std::string>{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                                        "2.5", "5", "10", "+Inf"});
  CHECK(m.value("fanpull_wechat_call_duration_seconds_bucket", {{"le", "0.005"}}) == 1);
  CHECK(m.value("fanpull_wechat_call_duration_seconds_bucket", {{"le", "0.25"}}) == 2);
  CHECK(m.value("fanpull_wechat_call_duration_seconds_bucket", {{"le", "0.5"}}) == 4);
  CHECK(m.value("fanpull_wechat_call_duration_seconds_bucket", {{"le", "10"}}) == 5);
  CHECK(m.value("fanpull_wechat_call_duration_seconds_bucket", {{"le", "+Inf"}}) == 6);
}

TEST_CASE("label values and help text are escaped as the text format requires", "[worker][unit]") {
  CHECK(escapeLabelValue("plain") == "plain");
  CHECK(escapeLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(escapeHelp("line\none \\ \"quoted\"") == "line\\none \\\\ \"quoted\"");
  ExpositionWriter out;
  out.family("fanpull_odd_total", "counter", "Odd\nhelp.");
  out.sample("fanpull_odd_total", {{"class", "x\"y\\z\nw"}, {"result", "ok"}}, 2);
  CHECK(out.text() ==
        "# HELP fanpull_odd_total Odd\\nhelp.\n"
        "# TYPE fanpull_odd_total counter\n"
        "fanpull_odd_total{class=\"x\\\"y\\\\z\\nw\",result=\"ok\"} 2\n");
  // A parser gets the original value back.
  Exposition e = parseExposition(out.text());
  for (const auto& p : e.problems) FAIL_CHECK(p);
  CHECK(e.value("fanpull_odd_total", {{"class", "x\"y\\z\nw"}, {"result", "ok"}}) == 2);

  Metrics metrics;
  metrics.observeCall("strange \"class\"\n", 0.1);
  Exposition m = parseExposition(metrics.render());
  for (const auto& p : m.problems) FAIL_CHECK(p);
  CHECK(m.value("fanpull_wechat_calls_total", {{"class", "strange \"class\"\n"}}) == 1);
}

TEST_CASE("metric values print as the shortest text that reads back the same", "[worker][unit]") {
  CHECK(formatMetricValue(0) == "0");
  CHECK(formatMetricValue(3) == "3");
  CHECK(formatMetricValue(123456789012) == "123456789012");
  CHECK(formatMetricValue(0.1) == "0.1");
  CHECK(formatMetricValue(2.5) == "2.5");
  CHECK(formatMetricValue(-0.25) == "-0.25");
  CHECK(formatMetricValue(HUGE_VAL) == "+Inf");
  CHECK(formatMetricValue(-HUGE_VAL) == "-Inf");
  CHECK(formatMetricValue(std::nan("")) == "NaN");
  double back = 0;
  REQUIRE(parseValue(formatMetricValue(1.0 / 3), &back));
  CHECK(back == 1.0 / 3);
}

TEST_CASE("consumer lag sums librdkafka's partition lags and skips unknown ones",
          "[worker][unit]") {
  const std::string stats = R"({"name": "fanpull#consumer-1", "type": "consumer",
    "topics": {
      "jobs": {"topic": "jobs", "partitions": {
        "0": {"partition": 0, "consumer_lag": 5},
        "1": {"partition": 1, "consumer_lag": 0},
        "2": {"partition": 2, "consumer_lag": -1},
        "-1": {"partition": -1, "consumer_lag": -1}}},
      "other": {"topic": "other", "partitions": {"3": {"partition": 3, "consumer_lag": 7}}}}})";
  CHECK(consumerLagFromStatistics(stats) == 12);
  CHECK(consumerLagFromStatistics(R"({"name": "x", "topics": {}})") == 0);
  CHECK(consumerLagFromStatistics(R"({"name": "x"})") == 0);
  CHECK_FALSE(consumerLagFromStatistics("not json").has_value());

  Metrics metrics;
  metrics.observeConsumerStatistics(stats);
  CHECK(metrics.consumerLag() == 12);
  metrics.observeConsumerStatistics("garbage");  // keeps the last good figure
  CHECK(metrics.consumerLag() == 12);
  CHECK(parseExposition(metrics.render()).value("fanpull_consumer_lag_messages") == 12);
}

TEST_CASE("the endpoints answer health and readiness and 404 for other paths",
          "[worker][integration]") {
  std::atomic<bool> alive{true};
  std::mutex mutex;
  std::vector<std::string> missing = {"no jobs partition assigned yet"};
  HttpEndpointsOptions o;
  o.listen = "127.0.0.1:0";
  o.metrics = [] {
    return std::string("# HELP fanpull_ready Ready.\n# TYPE fanpull_ready gauge\nfanpull_ready 1\n");
  };
  o.alive = [&alive] { return alive.load(); };
  o.not_ready = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return missing;
  };
  auto started = HttpEndpoints::start(o);
  REQUIRE(started.ok());
  auto& endpoints = *started.value();
  REQUIRE(endpoints.port() != 0);
  CHECK(endpoints.address() == "127.0.0.1:" + std::to_string(endpoints.port()));
  const uint16_t port = endpoints.port();

  auto metrics = httpRequest("127.0.0.1", port, "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(metrics.body == "# HELP fanpull_ready Ready.\n# TYPE fanpull_ready gauge\nfanpull_ready 1\n");

  CHECK(httpRequest("127.0.0.1", port, "/healthz").status == 200);
  alive = false;
  CHECK(httpRequest("127.0.0.1", port, "/healthz").status == 503);

  auto not_ready = httpRequest("127.0.0.1", port, "/readyz");
  CHECK(not_ready.status == 503);
  CHECK(not_ready.reason == "Service Unavailable");
  CHECK(not_ready.content_type == "application/json");
  auto body = nlohmann::json::parse(not_ready.body);
  CHECK(body["ready"] == false);
  CHECK(body["missing"] == nlohmann::json::array({"no jobs partition assigned yet"}));
  {
    std::lock_guard<std::mutex> lock(mutex);
    missing.clear();
  }
  auto ready = httpRequest("127.0.0.1", port, "/readyz?verbose=1");
  CHECK(ready.status == 200);
  CHECK(nlohmann::json::parse(ready.body)["ready"] == true);

  CHECK(httpRequest("127.0.0.1", port, "/").status == 404);
  CHECK(httpRequest("127.0.0.1", port, "/metrics/extra").status == 404);
  CHECK(httpRequest("127.0.0.1", port, "/metrics", Poco::Net::HTTPRequest::HTTP_POST).status ==
        405);

  // The address is taken: a second server on it is refused with a message naming it.
  HttpEndpointsOptions again;
  again.listen = endpoints.address();
  auto refused = HttpEndpoints::start(again);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().cause.find(endpoints.address()) != std::string::npos);
  HttpEndpointsOptions malformed;
  malformed.listen = "localhost";
  CHECK_FALSE(HttpEndpoints::start(malformed).ok());

  endpoints.stop();
  CHECK_THROWS(httpRequest("127.0.0.1", port, "/healthz"));
}

TEST_CASE("a worker reports each call's duration and the rate limiter's waits to its observer",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxobserved", 30000)});
  Metrics metrics;
  TeeObserver observer(metrics);
  WorkerOptions o = f.options();
  o.default_limit = {4, 1, 0};  // 4 calls a second, no burst: each call after the first waits
  o.properties["statistics.interval.ms"] = "200";
  o.observer = &observer;
  f.startWorker(o);
  metrics.setWorkerStats([&f] { return f.worker().stats(); });
  f.enqueueJob("j-observed", "wxobserved");
  f.waitForStatus({"j-observed"}, {"completed"});
  f.requireFollowers("j-observed", "wxobserved", 30000);

  Exposition e = parseExposition(metrics.render());
  for (const auto& p : e.problems) FAIL_CHECK(p);
  const double calls =
      static_cast<double>(f.sandbox().calls("wxobserved", sandbox::kEndpointUserGet));
  CHECK(calls == 4);  // 3 data pages, then the count-0 answer
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "ok"}}) == calls);
  CHECK(e.value("fanpull_wechat_call_duration_seconds_count") == calls);
  requireHistogram(e, "fanpull_wechat_call_duration_seconds");
  // Three calls waited for the bucket, about a quarter of a second each.
  CHECK(e.value("fanpull_rate_limit_wait_seconds_total") > 0.3);
  CHECK(e.value("fanpull_rate_limit_wait_seconds_total") < 3);
  CHECK(e.value("fanpull_pages_total") == 4);  // 3 data pages and the count-0 last page
  CHECK(e.value("fanpull_openids_total") == 30000);
  // The jobs consumer's statistics reach the observer, with its partitions' lags.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto statistics = observer.statistics();
    if (!statistics.empty() &&
        statistics.back().find("\"" + f.topics().jobs + "\"") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto statistics = observer.statistics();
  REQUIRE_FALSE(statistics.empty());
  CHECK(statistics.back().find("\"" + f.topics().jobs + "\"") != std::string::npos);
  CHECK(consumerLagFromStatistics(statistics.back()).has_value());
  // The field the lag is summed from is there, and known for the partition the job came from
  // (librdkafka reports -1 for a partition the worker never consumed from: skipped).
  auto parsed = nlohmann::json::parse(statistics.back());
  int known = 0;
  for (const auto& [id, partition] : parsed["topics"][f.topics().jobs]["partitions"].items()) {
    if (id != "-1" && partition.at("consumer_lag").get<int64_t>() >= 0) ++known;
  }
  CHECK(known >= 1);
  CHECK(metrics.consumerLag() >= 0);
  f.stopWorker();
}

TEST_CASE("fanpull run serves metrics health and readiness on the address it logs",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts = {merchant("wxscrape1", 23000),
                                            merchant("wxscrape2", 10000), merchant("wxscrape3", 0)};
  WorkerFixture f(accounts);
  std::string config_file = f.writeConfig();
  nlohmann::json config = nlohmann::json::parse(std::ifstream(config_file));
  config["http"] = {{"listen", "127.0.0.1:0"}};
  std::ofstream(config_file, std::ios::trunc) << config.dump(2);

  Poco::Pipe err;
  auto child = Poco::Process::launch(FANPULL_BINARY, {"run", "--config", config_file}, nullptr,
                                     nullptr, &err);
  std::mutex mutex;
  std::vector<std::string> lines;
  std::thread reader([&err, &mutex, &lines] {
    Poco::PipeInputStream in(err);
    std::string line;
    while (std::getline(in, line)) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.push_back(line);
    }
  });
  struct Stop {
    Poco::ProcessHandle& child;
    std::thread& reader;
    ~Stop() {
      if (Poco::Process::isRunning(child)) Poco::Process::kill(child);
      if (reader.joinable()) reader.join();
    }
  } stop_on_exit{child, reader};
  auto logged = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return all;
  };

  // The address it got for port 0, from its log.
  static const std::regex kAddress("metrics and health on http://127\\.0\\.0\\.1:([0-9]+)");
  uint16_t port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (port == 0 && std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    std::string all = logged();
    if (std::regex_search(all, m, kAddress)) port = static_cast<uint16_t>(std::stoi(m[1]));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO("worker log:\n" << logged());
  REQUIRE(port != 0);

  CHECK(httpRequest("127.0.0.1", port, "/healthz").status == 200);
  // Ready once the group gave it the jobs partitions.
  HttpAnswer ready;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    ready = httpRequest("127.0.0.1", port, "/readyz");
    if (ready.status == 200) break;
    CHECK(ready.status == 503);
    CHECK(ready.reason == "Service Unavailable");
    CHECK_FALSE(nlohmann::json::parse(ready.body)["missing"].empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(ready.status == 200);
  CHECK(nlohmann::json::parse(ready.body)["ready"] == true);

  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("j-" + a.appid, a.appid);
    jobs.insert("j-" + a.appid);
  }
  f.waitForStatus(jobs, {"completed"});
  int64_t pages_in_topic = 0;
  int64_t calls = 0;
  for (const auto& a : accounts) {
    pages_in_topic += f.pagesOf("j-" + a.appid).pages;
    calls += f.sandbox().calls(a.appid, sandbox::kEndpointUserGet);
  }
  // Each merchant's pages end with a count-0 page marked last (its last data page repeated its
  // final OpenID): 3 + 1, 1 + 1, and the one page of an account without followers.
  CHECK(pages_in_topic == 4 + 2 + 1);

  // The completed counter moves once each event is delivered: scrape until it shows them all.
  Exposition e;
  std::string text;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto scraped = httpRequest("127.0.0.1", port, "/metrics");
    REQUIRE(scraped.status == 200);
    CHECK(scraped.content_type == "text/plain; version=0.0.4; charset=utf-8");
    text = scraped.body;
    e = parseExposition(text);
    if (e.value("fanpull_jobs_ended_total", {{"outcome", "completed"}}) == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(text);
  for (const auto& p : e.problems) FAIL_CHECK(p);
  for (const auto& p : conventionProblems(e)) FAIL_CHECK(p);
  CHECK(e.value("fanpull_build_info", {{"version", "0.1.0"},
                                       {"revision", fanpullRevision()},
                                       {"librdkafka_version", kafka::librdkafkaVersion()}}) == 1);
  CHECK(e.value("fanpull_ready") == 1);
  CHECK(e.value("fanpull_jobs_ended_total", {{"outcome", "completed"}}) == 3);
  CHECK(e.value("fanpull_jobs_started_total") == 3);
  CHECK(e.value("fanpull_jobs_ended_total", {{"outcome", "failed"}}) == 0);
  CHECK(e.value("process_resident_memory_bytes") > 1e6);
  CHECK(e.value("fanpull_jobs_received_total") == 3);
  CHECK(e.value("fanpull_pages_total") == pages_in_topic);
  CHECK(e.value("fanpull_openids_total") == 33000);
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "ok"}}) > 0);
  CHECK(e.value("fanpull_wechat_calls_total", {{"class", "ok"}}) == calls);
  CHECK(e.value("fanpull_wechat_call_duration_seconds_count") == calls);
  requireHistogram(e, "fanpull_wechat_call_duration_seconds");
  CHECK(e.value("fanpull_partitions_assigned") == 4);
  CHECK(e.value("fanpull_partitions_paused") == 0);
  CHECK(e.value("fanpull_jobs_queued") == 0);
  CHECK(e.value("fanpull_produce_errors_total") == 0);
  CHECK(e.value("fanpull_offset_commit_errors_total") == 0);
  CHECK(e.value("fanpull_consumer_lag_messages") >= 0);
  // Every metric the alert rules and the dashboard query is one this worker exports (a renamed
  // metric would leave an alert that never fires and a panel that stays empty).
  static const std::regex kMetricName("\\b(fanpull|process)_[a-z0-9_]*[a-z0-9]");
  for (const char* file : {"deploy/prometheus/fanpull-alerts.yml",
                           "deploy/grafana/fanpull-dashboard.json"}) {
    std::ifstream in(std::string(FANPULL_SOURCE_DIR) + "/" + file);
    REQUIRE(in);
    std::string kit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::set<std::string> names;
    for (std::sregex_iterator it(kit.begin(), kit.end(), kMetricName), none; it != none; ++it) {
      names.insert(it->str());
    }
    CHECK(names.size() >= 10);
    for (std::string name : names) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string sfx = suffix;
        if (name.size() > sfx.size() &&
            name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0 &&
            e.types.count(name.substr(0, name.size() - sfx.size())) &&
            e.types.at(name.substr(0, name.size() - sfx.size())) == "histogram") {
          name = name.substr(0, name.size() - sfx.size());
        }
      }
      INFO(file << " queries " << name);
      CHECK(e.types.count(name) == 1);
    }
  }
  // Neither a merchant nor its token shows in the metrics.
  for (const auto& a : accounts) {
    CHECK(text.find(a.appid) == std::string::npos);
    CHECK(text.find(a.access_tokens[0]) == std::string::npos);
  }

  Poco::Process::requestTermination(child.id());
  CHECK(child.wait() == 0);
  reader.join();
  CHECK(logged().find("worker stopped") != std::string::npos);
}
