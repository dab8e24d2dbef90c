#include "worker/kafka/topic_scan.h"

#include <algorithm>
#include <vector>

namespace fanpull::kafka {

Result<int64_t> scanToEnd(const std::string& bootstrap_servers, const Properties& properties,
                          const std::string& topic, const std::map<int32_t, int64_t>& from,
                          const std::function<void(const ConsumedMessage&)>& visit,
                          std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto remaining = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  ConsumerOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.properties = properties;
  options.properties.erase("group.id");
  options.report_partition_end = true;  // ends a partition whose last offsets hold no data
  auto created = Consumer::create(options);
  if (!created.ok()) return created.error();
  Consumer& reader = *created.value();

  auto count = reader.partitionCount(topic, remaining());
  if (!count.ok()) {
    if (count.error().cause.find("UNKNOWN_TOPIC") != std::string::npos) return int64_t{0};
    Error e = count.error();
    e.error_class = ErrorClass::kRetryable;
    return e;
  }
  std::vector<PartitionOffset> assignment;
  std::map<int32_t, int64_t> end;  // partition -> high watermark still to reach
  for (int32_t p = 0; p < *count; ++p) {
    int64_t start = 0;
    if (!from.empty()) {
      auto it = from.find(p);
      if (it == from.end()) continue;
      start = it->second;
    }
    auto marks = reader.watermarks({topic, p}, remaining());
    if (!marks.ok()) {
      Error e = marks.error();
      e.error_class = ErrorClass::kRetryable;
      return e;
    }
    start = std::max(start, marks->first);
    if (marks->second > start) {
      end[p] = marks->second;
      assignment.push_back({{topic, p}, start});
    }
  }
  if (assignment.empty()) return int64_t{0};
  if (auto assigned = reader.assign(assignment); !assigned.ok()) return assigned.error();
  int64_t read = 0;
  while (!end.empty()) {
    if (Clock::now() > deadline) {
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "topic " + topic + " not read to its end in time";
      return e;
    }
    auto polled = reader.poll(std::min(remaining(), std::chrono::milliseconds(200)));
    if (!polled.ok() || !polled->has_value()) continue;  // transient: keep reading until deadline
    const ConsumedMessage& m = **polled;
    auto it = end.find(m.partition);
    if (it == end.end()) continue;
    if (!m.end_of_partition && m.offset < it->second) {
      visit(m);
      ++read;
    }
    if (m.offset + (m.end_of_partition ? 0 : 1) >= it->second) end.erase(it);
  }
  (void)reader.close();
  return read;
}

}  // namespace fanpull::kafka
