#include "worker/kafka/topic_scan.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace fanpull::kafka {

TopicScanner::TopicScanner(std::string bootstrap_servers, Properties properties, LogCallback log)
    : bootstrap_servers_(std::move(bootstrap_servers)),
      properties_(std::move(properties)),
      log_(std::move(log)) {}

TopicScanner::~TopicScanner() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reader_) (void)reader_->close();
}

Result<int64_t> TopicScanner::scan(const std::string& topic, const ScanOptions& options,
                                   const std::function<void(const ConsumedMessage&)>& visit) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!reader_) {
    ConsumerOptions co;
    co.bootstrap_servers = bootstrap_servers_;
    co.properties = properties_;
    co.properties.erase("group.id");
    co.properties.erase("group.instance.id");
    co.report_partition_end = true;  // ends a partition whose last offsets hold no data
    co.log = log_;
    auto created = Consumer::create(co);
    if (!created.ok()) return created.error();
    reader_ = std::move(created).value();
  }
  auto read = scanLocked(*reader_, topic, options, visit);
  // Idle between scans: nothing assigned, nothing fetched, nothing left queued from this scan.
  (void)reader_->assign({});
  for (int drained = 0; drained < 100000; ++drained) {
    auto left = reader_->poll(std::chrono::milliseconds(0));
    if (left.ok() && !left->has_value()) break;
  }
  return read;
}

Result<int64_t> TopicScanner::scanLocked(Consumer& reader, const std::string& topic,
                                         const ScanOptions& options,
                                         const std::function<void(const ConsumedMessage&)>& visit) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options.timeout;
  auto remaining = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  auto count = reader.partitionCount(topic, remaining());
  if (!count.ok()) {
    if (count.error().cause.find("UNKNOWN_TOPIC") != std::string::npos) return int64_t{0};
    Error e = count.error();
    e.error_class = ErrorClass::kRetryable;
    return e;
  }
  std::vector<PartitionOffset> assignment;
  std::map<int32_t, int64_t> start;  // partition -> first offset this scan reads
  std::map<int32_t, int64_t> end;    // partition -> high watermark still to reach
  for (int32_t p = 0; p < *count; ++p) {
    int64_t first = 0;
    if (!options.from.empty()) {
      auto it = options.from.find(p);
      if (it == options.from.end()) continue;
      first = it->second;
    }
    auto marks = reader.watermarks({topic, p}, remaining());
    if (!marks.ok()) {
      Error e = marks.error();
      e.error_class = ErrorClass::kRetryable;
      return e;
    }
    first = std::max(first, marks->first);
    if (marks->second > first) {
      start[p] = first;
      end[p] = marks->second;
      assignment.push_back({{topic, p}, first});
    }
  }
  if (assignment.empty()) return int64_t{0};
  if (auto assigned = reader.assign(assignment); !assigned.ok()) return assigned.error();
  std::map<int32_t, int64_t> next = start;  // next offset expected per partition
  int64_t read = 0;
  size_t open = end.size();
  while (open > 0) {
    if (Clock::now() > deadline) {
      std::string progress;
      for (const auto& [p, e] : end) {
        progress += " [" + std::to_string(p) + "] " + std::to_string(next[p]) + "/" +
                    std::to_string(e);
      }
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "topic " + topic + " not read to its end in time; read up to" + progress;
      return e;
    }
    auto polled = reader.poll(std::min(remaining(), std::chrono::milliseconds(200)));
    if (!polled.ok() || !polled->has_value()) continue;  // transient: keep reading until deadline
    const ConsumedMessage& m = **polled;
    if (m.topic != topic) continue;
    auto it = end.find(m.partition);
    if (it == end.end() || m.offset < start[m.partition]) continue;
    int64_t& at = next[m.partition];
    if (at >= it->second) continue;  // this partition is done
    if (!m.end_of_partition && m.offset < it->second) {
      visit(m);
      ++read;
    }
    at = std::max(at, m.offset + (m.end_of_partition ? 0 : 1));
    if (at >= it->second) --open;
  }
  return read;
}

}  // namespace fanpull::kafka
