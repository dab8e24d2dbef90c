// `fanpull collect`: the reference downstream consumer. Reads every partition of the pages topic
// from the beginning (a reader, no consumer group, read_committed), feeds one job's pages to a
// PageCollector until the job is complete or the timeout passes, writes the OpenIDs and prints a
// summary.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "cli/cli.h"
#include "cli/client_options.h"
#include "cli/commands.h"
#include "cli/page_collector.h"
#include "config/worker_config.h"
#include "kafka/consumer.h"
#include "worker/job.h"

namespace fanpull {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr long long kDefaultTimeoutSeconds = 60;

// Writes every byte of `data` to fd. False (errno set) on failure.
bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes the OpenIDs, one a line, to a temporary file beside `path`, syncs it and renames it to
// `path`: a reader sees the old file or the whole new one. An error message, or empty.
std::string writeOpenIdsAtomically(const std::string& path, const std::vector<std::string>& ids) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return tmp + ": " + std::strerror(errno);
  std::string chunk;
  bool ok = true;
  for (size_t i = 0; i < ids.size() && ok; ++i) {
    chunk += ids[i];
    chunk += '\n';
    if (chunk.size() >= (1u << 20) || i + 1 == ids.size()) {
      ok = writeAll(fd, chunk);
      chunk.clear();
    }
  }
  if (ok) ok = ::fsync(fd) == 0;
  int saved = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return path + ": " + std::strerror(saved);
  }
  return "";
}

milliseconds until(SteadyClock::time_point deadline, milliseconds cap) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
  return std::clamp(left, milliseconds(1), cap);
}

}  // namespace

int collectCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  const char* kName = "fanpull collect: ";
  auto job_id = args.get("job-id");
  if (!job_id) {
    err << kName << "--job-id ID is required\n";
    return kExitUsage;
  }
  if (!args.positionals().empty()) {
    err << kName << "unexpected argument \"" << args.positionals().front() << "\"\n";
    return kExitUsage;
  }
  if (auto valid = validateJob(Job{*job_id, "placeholder", ""}); !valid.ok()) {
    err << kName << "--job-id: " << valid.error().describe() << "\n";
    return kExitUsage;
  }
  std::string problem;
  auto timeout_s = args.getInt("timeout", kDefaultTimeoutSeconds, 1, 7 * 24 * 3600, &problem);
  if (!timeout_s) {
    err << kName << problem << "\n";
    return kExitUsage;
  }
  auto where = clientKafka(args, [](const KafkaTopics& t) { return t.pages; });
  if (auto* problems = std::get_if<std::vector<std::string>>(&where)) {
    for (const auto& p : *problems) err << kName << p << "\n";
    return kExitUsage;
  }
  const ClientKafka& kafka_at = std::get<ClientKafka>(where);
  const std::string& topic = kafka_at.topic;

  std::mutex log_mutex;
  std::string last_log;  // guarded by log_mutex: librdkafka's last warning or error
  kafka::ConsumerOptions options;
  options.bootstrap_servers = kafka_at.bootstrap_servers;
  options.report_partition_end = true;
  // A reader: no group of the workers' is joined or committed to; transactions' aborted pages
  // are never seen.
  options.properties = kafka::readerProperties(kafka_at.properties);
  options.properties["isolation.level"] = "read_committed";
  options.log = [&log_mutex, &last_log](int level, const std::string& facility,
                                        const std::string& message) {
    if (level > 4) return;
    std::lock_guard<std::mutex> lock(log_mutex);
    last_log = facility + ": " + message;
  };
  auto consumer = kafka::Consumer::create(options);
  if (!consumer.ok()) {
    err << kafka_at.source << ": kafka.properties: " << consumer.error().cause << "\n";
    return kExitUsage;
  }
  kafka::Consumer& c = **consumer;

  const auto deadline = SteadyClock::now() + std::chrono::seconds(*timeout_s);
  std::vector<std::string> kafka_problems;
  std::string last_error;

  // The topic may not exist yet (no page produced): ask again until the deadline.
  std::optional<int> partitions;
  while (!partitions && SteadyClock::now() < deadline) {
    auto count = c.partitionCount(topic, until(deadline, milliseconds(5000)));
    if (count.ok()) {
      partitions = *count;
    } else {
      last_error = count.error().describe();
      std::this_thread::sleep_for(until(deadline, milliseconds(500)));
    }
  }
  PageCollector collector(*job_id);
  if (partitions) {
    std::vector<kafka::PartitionOffset> assignment;
    for (int32_t p = 0; p < *partitions; ++p) {
      assignment.push_back({{topic, p}, kafka::kOffsetBeginning});
    }
    if (auto assigned = c.assign(assignment); !assigned.ok()) {
      err << kName << assigned.error().describe() << "\n";
      return kExitFailure;
    }
    // A partition is at its end once it reported so after its last message; the job is decided
    // once it is complete (or inconsistent) and every partition was read to its end, so that
    // later duplicates and contradictions are seen too.
    std::map<int32_t, bool> at_end;
    for (int32_t p = 0; p < *partitions; ++p) at_end[p] = false;
    auto all_at_end = [&at_end] {
      return std::all_of(at_end.begin(), at_end.end(), [](const auto& e) { return e.second; });
    };
    PageCollector::Status status = collector.status();
    while (SteadyClock::now() < deadline) {
      if (status != PageCollector::Status::kIncomplete && all_at_end()) break;
      auto m = c.poll(until(deadline, milliseconds(200)));
      if (!m.ok()) {
        last_error = m.error().describe();
        continue;
      }
      if (!m->has_value()) continue;
      kafka::ConsumedMessage& msg = **m;
      if (msg.end_of_partition) {
        at_end[msg.partition] = true;
        continue;
      }
      at_end[msg.partition] = false;
      auto added = collector.add(msg.value, msg.headers,
                                 "partition " + std::to_string(msg.partition) + " offset " +
                                     std::to_string(msg.offset));
      if (added == PageCollector::Added::kNew || added == PageCollector::Added::kRejected) {
        status = collector.status();
      }
    }
  } else {
    kafka_problems.push_back("cannot read the pages topic " + topic + " at " +
                             kafka_at.bootstrap_servers +
                             (last_error.empty() ? "" : ": " + last_error));
  }
  (void)c.close();

  const PageCollector::Status status = collector.status();
  std::vector<std::string> problems = collector.problems();
  if (status == PageCollector::Status::kIncomplete) {
    problems.push_back("timed out after " + std::to_string(*timeout_s) + " s");
    if (collector.messages() == 0 && kafka_problems.empty() && !last_error.empty()) {
      problems.push_back("last kafka error: " + last_error);
    }
    std::lock_guard<std::mutex> lock(log_mutex);
    if (collector.messages() == 0 && !last_log.empty()) {
      problems.push_back("last kafka log: " + last_log);
    }
  }
  problems.insert(problems.begin(), kafka_problems.begin(), kafka_problems.end());

  int code = status == PageCollector::Status::kComplete ? kExitOk : kExitFailure;
  auto out_path = args.get("out");
  std::string out_line;
  if (out_path && status != PageCollector::Status::kComplete) {
    out_line = "not written (the job is not complete)";
  } else if (out_path) {
    std::string failure = writeOpenIdsAtomically(*out_path, collector.openids());
    if (failure.empty()) {
      out_line = *out_path;
    } else {
      err << kName << "cannot write " << failure << "\n";
      out_line = "not written (" + failure + ")";
      code = kExitFailure;
    }
  }

  out << "job: " << collector.jobId() << "\n"
      << "appid: " << (collector.appid().empty() ? "-" : collector.appid()) << "\n"
      << "pages: " << collector.pages() << " (" << collector.messages() << " messages)\n"
      << "openids: " << collector.openidCount() << "\n"
      << "duplicates dropped: " << collector.duplicates() << "\n"
      << "total: " << (collector.total() ? std::to_string(*collector.total()) : "-") << "\n"
      << "status: " << pageStatusName(status) << "\n";
  for (const auto& p : problems) out << "problem: " << p << "\n";
  if (out_path) out << "out: " << out_line << "\n";
  out.flush();
  return code;
}

}  // namespace fanpull
