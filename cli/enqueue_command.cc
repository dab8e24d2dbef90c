// `fanpull enqueue`: validates jobs (from flags, or JSON lines on stdin with `-`), then produces
// them to the jobs topic keyed by appid and reports where each one was written.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "cli/cli.h"
#include "cli/client_options.h"
#include "cli/commands.h"
#include "config/worker_config.h"
#include "kafka/producer.h"
#include "worker/job.h"

namespace fanpull {
namespace {

constexpr std::chrono::seconds kFlushTimeout{30};
// Below kFlushTimeout, so a message that cannot be written fails within the flush.
constexpr const char* kMessageTimeoutMs = "25000";

// "j-<UTC yyyymmddThhmmss>-<12 hex digits>": valid per docs/CONTRACTS.md and unique enough.
std::string generateJobId() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  std::random_device device;
  uint64_t bits = (static_cast<uint64_t>(device()) << 32) ^ device();
  char hex[16];
  std::snprintf(hex, sizeof hex, "%012llx",
                static_cast<unsigned long long>(bits & 0xffffffffffffULL));
  return std::string("j-") + stamp + "-" + hex;
}

struct Pending {
  Job job;
  int line = 0;  // 0: from the flags
  std::optional<Result<kafka::Delivery>> result;  // guarded by Batch::mutex
};

struct Batch {
  std::mutex mutex;  // guards every Pending::result and last_log
  std::vector<Pending> jobs;
  std::string last_log;  // librdkafka's last warning or error
};

// Reads JSON lines from `in` into jobs; blank lines are skipped. Every problem goes to `problems`.
void readJobLines(std::istream& in, std::vector<Pending>* jobs, std::vector<std::string>* problems) {
  std::string line;
  int number = 0;
  std::map<std::string, int> first_line_of;  // job_id -> line
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto job = parseJob(line);
    if (!job.ok()) {
      problems->push_back("line " + std::to_string(number) + ": " + job.error().describe());
      continue;
    }
    auto [it, inserted] = first_line_of.emplace(job->job_id, number);
    if (!inserted) {
      problems->push_back("line " + std::to_string(number) + ": bad_job: job_id \"" +
                          job->job_id + "\" repeats line " + std::to_string(it->second) +
                          " (the worker would ignore the second one)");
      continue;
    }
    jobs->push_back({std::move(*job), number, std::nullopt});
  }
}

std::string label(const Pending& p) {
  return p.line > 0 ? "line " + std::to_string(p.line) + ": " : std::string();
}

}  // namespace

int enqueueCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  const char* kName = "fanpull enqueue: ";
  const bool from_stdin = args.positionals().size() == 1 && args.positionals()[0] == "-";
  if (!args.positionals().empty() && !from_stdin) {
    err << kName << "unexpected argument \"" << args.positionals().front()
        << "\" (only - for stdin)\n";
    return kExitUsage;
  }
  if (from_stdin && (args.has("appid") || args.has("job-id") || args.has("next-openid"))) {
    err << kName << "give either - (jobs from stdin) or --appid [--job-id] [--next-openid]\n";
    return kExitUsage;
  }
  if (!from_stdin && !args.has("appid")) {
    err << kName << "--appid APPID (or - for JSON lines on stdin) is required\n";
    return kExitUsage;
  }

  // Everything is checked before anything is produced.
  std::vector<std::string> problems;
  auto where = clientKafka(args, [](const KafkaTopics& t) { return t.jobs; });
  if (auto* kafka_problems = std::get_if<std::vector<std::string>>(&where)) {
    problems = *kafka_problems;
  }
  Batch batch;
  if (from_stdin) {
    readJobLines(std::cin, &batch.jobs, &problems);
  } else {
    Job job{args.getOr("job-id", ""), args.getOr("appid", ""), args.getOr("next-openid", "")};
    if (!args.has("job-id")) job.job_id = generateJobId();
    auto valid = validateJob(std::move(job));
    if (valid.ok()) {
      batch.jobs.push_back({std::move(*valid), 0, std::nullopt});
    } else {
      problems.push_back(valid.error().describe());
    }
  }
  if (!problems.empty()) {
    for (const auto& p : problems) err << p << "\n";
    err << kName << "nothing produced\n";
    return kExitUsage;
  }
  if (batch.jobs.empty()) {
    err << kName << "no jobs on stdin, nothing produced\n";
    return kExitOk;
  }
  const ClientKafka& kafka_at = std::get<ClientKafka>(where);

  kafka::ProducerOptions options;
  options.bootstrap_servers = kafka_at.bootstrap_servers;
  options.properties = {{"message.timeout.ms", kMessageTimeoutMs}};
  for (const auto& [key, value] : kafka::withoutConsumerOnly(kafka_at.properties)) {
    options.properties[key] = value;
  }
  options.log = [&batch](int level, const std::string& facility, const std::string& message) {
    if (level > 4) return;
    std::lock_guard<std::mutex> lock(batch.mutex);
    batch.last_log = facility + ": " + message;
  };
  auto producer = kafka::Producer::create(options);
  if (!producer.ok()) {
    err << kafka_at.source << ": kafka.properties: " << producer.error().cause << "\n";
    return kExitUsage;
  }

  const std::string& topic = kafka_at.topic;
  const auto deadline = std::chrono::steady_clock::now() + kFlushTimeout;
  for (auto& pending : batch.jobs) {
    Pending* p = &pending;
    auto callback = [&batch, p](const Result<kafka::Delivery>& result) {
      std::lock_guard<std::mutex> lock(batch.mutex);
      p->result = result;
    };
    const std::string value = encodeJob(p->job);
    while (true) {
      auto queued = (*producer)->produce(topic, p->job.appid, value, {}, callback);
      if (queued.ok()) break;
      // A full local queue drains as deliveries complete; anything else fails this job.
      if (queued.error().error_class != ErrorClass::kRetryable ||
          std::chrono::steady_clock::now() >= deadline) {
        std::lock_guard<std::mutex> lock(batch.mutex);
        p->result = queued.error();
        break;
      }
      (void)(*producer)->flush(std::chrono::milliseconds(100));
    }
  }
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  (void)(*producer)->flush(std::max(remaining, std::chrono::milliseconds(1000)));

  int failed = 0;
  {
    std::lock_guard<std::mutex> lock(batch.mutex);
    for (const auto& p : batch.jobs) {
      if (p.result && p.result->ok()) {
        const kafka::Delivery& d = p.result->value();
        out << p.job.job_id << " " << p.job.appid << " partition " << d.partition << " offset "
            << d.offset << "\n";
        continue;
      }
      ++failed;
      err << label(p) << p.job.job_id << " " << p.job.appid << ": not produced: "
          << (p.result ? p.result->error().describe()
                       : "no delivery report after " + std::to_string(kFlushTimeout.count()) +
                             " s (it may still be written)")
          << "\n";
    }
    if (failed > 0 && !batch.last_log.empty()) err << kName << "kafka: " << batch.last_log << "\n";
  }
  out.flush();
  if (failed > 0) {
    err << kName << failed << " of " << batch.jobs.size() << " job(s) not produced to " << topic
        << " at " << kafka_at.bootstrap_servers << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace fanpull
