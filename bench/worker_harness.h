// What the worker benchmarks share: the whole system in one process (the embedded Kafka broker,
// the WeChat sandbox, a tenants file and a Worker with its token source and client), CPU and
// memory readings from getrusage and /proc, the sandbox's call log cut per merchant, and the
// figure / measured / target / verdict table each benchmark prints. Benchmarks print figures;
// they assert nothing about time. (Modelled on tests/support/worker_fixture.h, which bench code
// does not include.)
#pragma once

#include <dirent.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "kafka/consumer.h"
#include "kafka/embedded_broker.h"
#include "kafka/producer.h"
#include "sandbox/accounts.h"
#include "sandbox/sandbox_server.h"
#include "support/accounts.h"
#include "support/test_kafka.h"
#include "support/topic_reader.h"
#include "support/worker_world.h"
#include "tenants/component_token_source.h"
#include "tenants/static_token_source.h"
#include "tenants/tenant_registry.h"
#include "tenants/token_state_store.h"
#include "worker/job.h"
#include "worker/worker.h"

namespace fanpull::bench {

using testing::merchant;
using testing::TopicMessage;

using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Formatting and the table.

inline std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return buffer;
}

// "met", or "missed by X" (X in the figure's unit, and relative to the target).
inline std::string atLeast(double measured, double target, const char* unit = "") {
  if (measured >= target) return "met";
  return fmt("missed by %.3g%s (%.1f%% under)", target - measured, unit,
             100.0 * (target - measured) / target);
}
inline std::string atMost(double measured, double target, const char* unit = "") {
  if (measured <= target) return "met";
  return fmt("missed by %.3g%s (%.1f%% over)", measured - target, unit,
             100.0 * (measured - target) / target);
}
inline std::string exactly(int64_t measured, int64_t target) {
  if (measured == target) return "met";
  return fmt("missed by %+lld", static_cast<long long>(measured - target));
}

class Table {
 public:
  explicit Table(std::string title) : title_(std::move(title)) {}
  // A figure with a target; `verdict` from atLeast / atMost / exactly.
  void add(std::string figure, std::string measured, std::string target, std::string verdict) {
    rows_.push_back({std::move(figure), std::move(measured), std::move(target), std::move(verdict)});
  }
  // A figure without a target (context).
  void info(std::string figure, std::string measured) {
    rows_.push_back({std::move(figure), std::move(measured), "-", "-"});
  }
  void print(const std::string& command) const {
    size_t w[4] = {6, 8, 6, 7};
    for (const auto& r : rows_) {
      for (int i = 0; i < 4; ++i) w[i] = std::max(w[i], r[static_cast<size_t>(i)].size());
    }
    std::printf("\n%s\n", title_.c_str());
    std::printf("reproduce: %s\n", command.c_str());
    auto line = [&](const std::string& a, const std::string& b, const std::string& c,
                    const std::string& d) {
      std::printf("| %-*s | %*s | %-*s | %-*s |\n", static_cast<int>(w[0]), a.c_str(),
                  static_cast<int>(w[1]), b.c_str(), static_cast<int>(w[2]), c.c_str(),
                  static_cast<int>(w[3]), d.c_str());
    };
    line("figure", "measured", "target", "verdict");
    std::printf("|%s|%s|%s|%s|\n", std::string(w[0] + 2, '-').c_str(),
                std::string(w[1] + 2, '-').c_str(), std::string(w[2] + 2, '-').c_str(),
                std::string(w[3] + 2, '-').c_str());
    for (const auto& r : rows_) line(r[0], r[1], r[2], r[3]);
    std::fflush(stdout);
  }

 private:
  std::string title_;
  std::vector<std::array<std::string, 4>> rows_;
};

inline std::string commandLine(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

// ---------------------------------------------------------------------------------------------
// CPU and memory.

// Names the calling thread (15 characters at most). Threads inherit the name of the thread that
// creates them, so naming the main thread before a component starts names that component's
// threads, unless they name themselves (librdkafka's are "rdk:*").
inline void setThreadName(const char* name) { ::prctl(PR_SET_NAME, name, 0, 0, 0); }

inline double processCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds spent by every process of the machine (the busy columns of /proc/stat's "cpu"
// line): with a real Kafka broker, its JVM's CPU shows here and not in processCpuSeconds().
inline double machineCpuSeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct ThreadCpu {
  std::string name;
  double seconds = 0;  // utime + stime
};

// Every thread of this process: tid -> name and CPU time (/proc/self/task/*/stat: utime + stime,
// or schedstat's nanoseconds when the kernel has them).
inline std::map<int, ThreadCpu> threadCpu() {
  std::map<int, ThreadCpu> out;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) return out;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    ThreadCpu t;
    t.name = stat.substr(open + 1, close - open - 1);
    // After ") ": field 3 (state) is token 0; utime (14) is token 11, stime (15) token 12.
    std::vector<std::string> tokens;
    size_t pos = close + 2;
    while (pos < stat.size() && tokens.size() < 13) {
      size_t next = stat.find(' ', pos);
      if (next == std::string::npos) next = stat.size();
      tokens.push_back(stat.substr(pos, next - pos));
      pos = next + 1;
    }
    if (tokens.size() < 13) continue;
    t.seconds = (std::atof(tokens[11].c_str()) + std::atof(tokens[12].c_str())) / tick;
    // schedstat's first field is the time on a CPU in ns: the same figure, without tick rounding.
    std::ifstream sched(std::string("/proc/self/task/") + e->d_name + "/schedstat");
    long long ns = -1;
    if (sched >> ns && ns >= 0) t.seconds = static_cast<double>(ns) / 1e9;
    out[std::atoi(e->d_name)] = t;
  }
  ::closedir(dir);
  return out;
}

// CPU seconds spent between two threadCpu() readings, summed by name and by group.
struct CpuSplit {
  std::map<std::string, double> by_name;
  std::map<std::string, double> by_group;
  double total = 0;
};
inline CpuSplit cpuBetween(const std::map<int, ThreadCpu>& before,
                           const std::map<int, ThreadCpu>& after,
                           const std::function<std::string(const std::string&)>& group) {
  CpuSplit s;
  for (const auto& [tid, t] : after) {
    auto b = before.find(tid);
    double d = t.seconds - (b != before.end() ? b->second.seconds : 0.0);
    if (d <= 0) continue;
    s.by_name[t.name] += d;
    s.by_group[group(t.name)] += d;
    s.total += d;
  }
  return s;
}

// A field of /proc/self/status in kB (VmRSS, VmHWM, ...); -1 when absent.
inline int64_t statusKb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      return std::atoll(line.c_str() + key.size() + 1);
    }
  }
  return -1;
}
inline int64_t maxRssKb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}
// Bytes malloc has handed out and not had back (all arenas, mmapped chunks included).
inline int64_t heapInUseBytes() {
  struct mallinfo2 m = ::mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
}
// "3.26 2.28 1.68": other work on the machine competes for the same cores.
inline std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}
inline double mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// ---------------------------------------------------------------------------------------------
// The sandbox's call log.

inline std::map<std::string, std::vector<int64_t>> callTimesByAppid(
    const std::vector<sandbox::CallLogEntry>& log, const std::string& endpoint) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& e : log) {
    if (e.endpoint == endpoint) out[e.appid].push_back(e.t_ms);
  }
  for (auto& [appid, times] : out) std::sort(times.begin(), times.end());
  return out;
}

// The most calls in any window [t, t + window_ms) of sorted times.
inline int64_t maxInWindow(const std::vector<int64_t>& sorted, int64_t window_ms) {
  int64_t best = 0;
  size_t j = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (j < i) j = i;
    while (j < sorted.size() && sorted[j] < sorted[i] + window_ms) ++j;
    best = std::max<int64_t>(best, static_cast<int64_t>(j - i));
  }
  return best;
}

inline int64_t systemMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Everything in one process.

// "wxbench" + prefix + a zero-padded number, 18 characters like a real appid.
inline std::string benchAppid(const std::string& prefix, int i) {
  std::string n = std::to_string(i);
  std::string id = "wx" + prefix;
  return id + std::string(18 - id.size() - n.size(), '0') + n;
}

struct HarnessOptions {
  std::vector<sandbox::Account> accounts;
  int partitions = 32;  // of every topic
  int latency_ms = 0;
  int jitter_ms = 0;
  int max_threads = 256;
  std::size_t page_cache_bytes = std::size_t{64} << 20;
  std::size_t log_capacity = 400000;
  // Component flow: tenants carry only refresh tokens and a ComponentTokenSource renews them.
  // Otherwise static tokens (each account's first access token).
  bool component = false;
  // Added to every tenant of the tenants file (e.g. a rate_limit object).
  nlohmann::json tenant_extra = nlohmann::json::object();
};

class Harness {
 public:
  explicit Harness(HarnessOptions o) : options_(std::move(o)), world_(worldOptions(options_)) {
    std::ofstream(world_.dir().file("ticket.txt")) << sandbox::demoComponent().verify_ticket << "\n";
  }

  ~Harness() { stopWorker(); }

  // Defaults for a benchmark: the broker, topics and group of this harness, quick group joins,
  // rate limits out of the way (a benchmark sets its own), quick retries.
  WorkerOptions workerOptions() const {
    WorkerOptions o = world_.workerOptions();
    o.max_in_flight = 32;
    o.default_limit = {1e6, 1000000, 0};
    o.backoff = {std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 6};
    o.seed = 7;
    o.commit_interval = std::chrono::milliseconds(500);
    return o;
  }

  // Starts the worker (its threads are named "worker") and waits until it owns every partition
  // of the jobs topic and has read their state (restored, it takes jobs at once: the figures
  // "since the first job" then measure jobs, not the start). Throws when it cannot start or join
  // within `join_timeout`.
  void startWorker(const WorkerOptions& o,
                   std::chrono::seconds join_timeout = std::chrono::seconds(30)) {
    registry_ = std::make_unique<TenantRegistry>(world_.tenantsFile(),
                                                 TenantsOptions{options_.component});
    auto problems = registry_->load();
    if (!problems.empty()) throw std::runtime_error("tenants: " + problems[0].describe());
    HttpTransportOptions to;
    to.base_url = world_.sandbox().baseUrl();
    to.timeout = std::chrono::seconds(30);
    to.max_idle_connections = std::max<size_t>(64, o.max_in_flight * 2);
    auto transport = PocoHttpTransport::create(to);
    if (!transport.ok()) throw std::runtime_error(transport.error().describe());
    transport_ = std::move(transport).value();
    client_ = std::make_unique<UserListClient>(*transport_);
    log_ = std::make_unique<Logger>(std::getenv("FANPULL_BENCH_LOG") ? LogLevel::kInfo : LogLevel::kError, false, Logger::stderrSink());
    if (options_.component) {
      store_ = std::make_unique<TokenStateStore>(world_.dir().file("tokens.json"));
      const auto c = sandbox::demoComponent();
      component_ = std::make_unique<ComponentTokenSource>(
          ComponentSettings{c.appid, c.appsecret, world_.dir().file("ticket.txt")}, *transport_, *store_,
          SystemClock::instance(), *log_);
      auto started = component_->start();
      if (!started.ok()) throw std::runtime_error(started.error().describe());
    } else {
      static_ = std::make_unique<StaticTokenSource>(*registry_);
    }
    TokenSource& tokens = options_.component ? static_cast<TokenSource&>(*component_)
                                             : static_cast<TokenSource&>(*static_);
    setThreadName("worker");
    worker_ = std::make_unique<Worker>(o, *registry_, tokens, *client_, *log_);
    auto started = worker_->start();
    setThreadName("bench-main");
    if (!started.ok()) throw std::runtime_error(started.error().describe());
    const auto deadline = SteadyClock::now() + join_timeout;
    auto ready = [this] {
      WorkerStats st = worker_->stats();
      return st.assigned_partitions >= options_.partitions &&
             st.state_restores >= options_.partitions && st.state_unrestored == 0;
    };
    while (!ready()) {
      if (SteadyClock::now() > deadline) throw std::runtime_error("the worker did not join");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void stopWorker() {
    if (worker_) worker_->stop();
    worker_.reset();
  }

  // Produces one job per (job_id, appid), then waits until every one is written.
  void enqueue(const std::vector<std::pair<std::string, std::string>>& jobs) {
    for (const auto& [job_id, appid] : jobs) {
      const std::string value = encodeJob({job_id, appid, ""});
      while (!world_.jobsProducer().produce(world_.topics().jobs, appid, value).ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // local queue full
      }
    }
    if (!world_.jobsProducer().flush(std::chrono::seconds(30)).ok()) {
      throw std::runtime_error("jobs not written within 30 s");
    }
  }

  // Polls the worker's stats every `every` until pred holds; false on timeout.
  bool waitFor(const std::function<bool(const WorkerStats&)>& pred, std::chrono::seconds timeout,
               std::chrono::milliseconds every = std::chrono::milliseconds(2)) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!pred(worker_->stats())) {
      if (SteadyClock::now() > deadline) return false;
      std::this_thread::sleep_for(every);
    }
    return true;
  }

  // Every message of a topic up to its end now (a reader, not a group member); none when it
  // cannot be read within 30 s.
  std::vector<TopicMessage> readTopic(const std::string& topic) {
    auto read = testing::readTopic(world_.kafka().bootstrapServers(), topic);
    return read.ok() ? std::move(read).value() : std::vector<TopicMessage>{};
  }

  std::vector<nlohmann::json> events() {
    std::vector<nlohmann::json> out;
    for (const auto& m : readTopic(world_.topics().events)) {
      auto j = nlohmann::json::parse(m.value, nullptr, false);
      if (j.is_object()) out.push_back(std::move(j));
    }
    return out;
  }

  sandbox::SandboxServer& sandbox() { return world_.sandbox(); }
  // "embedded (librdkafka mock)" or "Apache Kafka": the broker the figures were measured on.
  const char* brokerName() const { return testing::brokerKindName(world_.kafka().kind()); }
  Worker& worker() { return *worker_; }
  ComponentTokenSource* componentTokens() { return component_.get(); }
  const KafkaTopics& topics() const { return world_.topics(); }

 private:
  // The broker (the embedded one, or with FANPULL_TEST_BROKER=kafka a real Apache Kafka whose
  // JVM is another process: its CPU is not in this process's figures), the sandbox with the
  // options' latency, the tenants file and the jobs producer. Each part's threads carry its name.
  static testing::WorldOptions worldOptions(const HarnessOptions& h) {
    testing::TestKafka::preferSteadyState();
    testing::WorldOptions w;
    w.accounts = h.accounts;
    w.partitions = h.partitions;
    w.names = "bench.";
    w.component = h.component;
    w.func_info = true;
    w.tenant_extra = h.tenant_extra;
    w.tune_sandbox = [latency = h.latency_ms, jitter = h.jitter_ms, threads = h.max_threads,
                      cache = h.page_cache_bytes, log = h.log_capacity](sandbox::SandboxOptions& so) {
      so.component = sandbox::demoComponent();
      so.latency_ms = latency;
      so.jitter_ms = jitter;
      so.max_threads = threads;
      so.page_cache_bytes = cache;
      so.log_capacity = log;
    };
    w.starting = [](const char* part) {
      setThreadName(std::string(part) == "main" ? "bench-main" : part);
    };
    return w;
  }

  HarnessOptions options_;
  testing::WorkerWorld world_;

  std::unique_ptr<TenantRegistry> registry_;
  std::unique_ptr<PocoHttpTransport> transport_;
  std::unique_ptr<UserListClient> client_;
  std::unique_ptr<Logger> log_;
  std::unique_ptr<TokenStateStore> store_;
  std::unique_ptr<ComponentTokenSource> component_;
  std::unique_ptr<StaticTokenSource> static_;
  std::unique_ptr<Worker> worker_;
};

}  // namespace fanpull::bench
