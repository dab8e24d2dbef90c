#include "worker/progress_store.h"

#include <chrono>

namespace fanpull {

namespace {

// How far along a job's end a state is: a record never moves a job back to an earlier rank.
int endRank(const std::string& state) {
  if (state == kProgressCompleted || state == kProgressFailed) return 2;
  if (state == kProgressEnding) return 1;
  return 0;
}

}  // namespace

void ProgressStore::apply(const ProgressRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = records_.find(record.job_id);
  if (it != records_.end() && it->second.updated_ms > record.updated_ms) return;
  // A finished (or finishing) job stays so: a late "running" checkpoint does not reopen it.
  if (it != records_.end() && endRank(record.state) < endRank(it->second.state)) return;
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

Result<int64_t> ProgressStore::loadFromTopic(kafka::TopicScanner& scanner, const std::string& topic,
                                             std::chrono::milliseconds timeout) {
  int64_t records = 0;
  kafka::ScanOptions options;
  options.timeout = timeout;
  auto read = scanner.scan(topic, options, [&](const kafka::ConsumedMessage& m) {
    if (auto record = parseProgress(m.value)) {
      apply(*record);
      ++records;
    }
  });
  if (!read.ok()) return read.error();
  return records;
}

}  // namespace fanpull
