#include "worker/progress_store.h"

#include <chrono>

#include "worker/kafka/consumer.h"

namespace fanpull {

void ProgressStore::apply(const ProgressRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(record.job_id);
  if (it != records_.end() && it->second.updated_ms > record.updated_ms) return;
  // A finished job stays finished: a late "running" checkpoint does not reopen it.
  if (it != records_.end() && (it->second.state == "completed" || it->second.state == "failed") &&
      record.state != "completed" && record.state != "failed") {
    return;
  }
  records_[record.job_id] = record;
}

std::optional<ProgressRecord> ProgressStore::find(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(job_id);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

size_t ProgressStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return records_.size();
}

Result<int64_t> ProgressStore::loadFromTopic(const std::string& bootstrap_servers,
                                             const std::string& topic,
                                             const kafka::Properties& properties,
                                             std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  kafka::ConsumerOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.properties = properties;
  options.properties.erase("group.id");
  options.report_partition_end = true;
  auto created = kafka::Consumer::create(options);
  if (!created.ok()) return created.error();
  auto& reader = *created.value();
  auto count = reader.partitionCount(topic, timeout);
  if (!count.ok()) {
    // No progress topic yet: nothing to resume.
    if (count.error().error_class == ErrorClass::kUnknown) return int64_t{0};
    return count.error();
  }
  std::vector<kafka::PartitionOffset> assignment;
  std::map<int32_t, int64_t> end;  // partition -> high watermark still to reach
  for (int32_t p = 0; p < *count; ++p) {
    auto marks = reader.watermarks({topic, p}, timeout);
    if (!marks.ok()) return marks.error();
    if (marks->second > marks->first) {
      end[p] = marks->second;
      assignment.push_back({{topic, p}, marks->first});
    }
  }
  if (assignment.empty()) return int64_t{0};
  auto assigned = reader.assign(assignment);
  if (!assigned.ok()) return assigned.error();
  int64_t read = 0;
  while (!end.empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "progress topic " + topic + " not read to its end in time";
      return e;
    }
    auto polled = reader.poll(std::chrono::milliseconds(200));
    if (!polled.ok()) continue;
    if (!polled->has_value()) continue;
    const kafka::ConsumedMessage& m = **polled;
    auto it = end.find(m.partition);
    if (it == end.end()) continue;
    if (!m.end_of_partition) {
      if (auto record = parseProgress(m.value)) {
        apply(*record);
        ++read;
      }
    }
    if (m.offset + (m.end_of_partition ? 0 : 1) >= it->second) end.erase(it);
  }
  return read;
}

}  // namespace fanpull
