#include "kafka/topic_scan.h"

#include <algorithm>
#include <set>
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
    co.properties = readerProperties(properties_);
    co.report_partition_end = true;  // the end of each partition ends its part of a scan
    // A fetch at the end of a partition answers at once instead of waiting for new data, so
    // the end is known in a round trip.
    co.properties.emplace("fetch.wait.max.ms", "10");
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
  // Each partition is read from its first offset until the reader reaches the end the broker
  // reports in its fetch answers (end of partition). No ListOffsets request: librdkafka 2.0's
  // rd_kafka_query_watermark_offsets() can wait far beyond its timeout when a partition's
  // leader has just died, while the fetcher follows a moved leader by itself.
  std::vector<PartitionOffset> assignment;
  std::map<int32_t, int64_t> start;  // partition -> first offset this scan reads
  for (int32_t p = 0; p < *count; ++p) {
    int64_t first = kOffsetBeginning;
    if (!options.from.empty()) {
      auto it = options.from.find(p);
      if (it == options.from.end()) continue;
      first = it->second;
    }
    start[p] = std::max<int64_t>(first, 0);
    assignment.push_back({{topic, p}, first});
  }
  if (assignment.empty()) return int64_t{0};
  if (auto assigned = reader.assign(assignment); !assigned.ok()) return assigned.error();
  std::map<int32_t, int64_t> next = start;  // next offset expected per partition
  std::set<int32_t> open;
  for (const auto& [p, first] : start) open.insert(p);
  int64_t read = 0;
  while (!open.empty()) {
    if (Clock::now() > deadline) {
      std::string progress;
      for (int32_t p : open) {
        progress += " [" + std::to_string(p) + "] at " + std::to_string(next[p]);
      }
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "topic " + topic + " not read to its end in time; still open:" + progress;
      return e;
    }
    auto polled = reader.poll(std::min(remaining(), std::chrono::milliseconds(200)));
    if (!polled.ok() || !polled->has_value()) continue;  // transient: keep reading until deadline
    const ConsumedMessage& m = **polled;
    if (m.topic != topic || !open.count(m.partition)) continue;
    if (m.end_of_partition) {
      if (options.ends) (*options.ends)[m.partition] = m.offset;
      open.erase(m.partition);
      continue;
    }
    if (m.offset < start[m.partition]) continue;
    visit(m);
    ++read;
    next[m.partition] = m.offset + 1;
  }
  return read;
}

}  // namespace fanpull::kafka
