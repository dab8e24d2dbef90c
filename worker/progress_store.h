// ProgressStore: the newest progress record of every job this worker knows of: read from the
// progress topic at start and whenever partitions are assigned (so a job another worker started
// resumes where it stopped), and updated with this worker's own checkpoints. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/result.h"
#include "kafka/kafka_types.h"
#include "kafka/topic_scan.h"
#include "worker/messages.h"

namespace fanpull {

class ProgressStore {
 public:
  // Keeps `record` unless a newer one (updated_ms) is already known for its job.
  void apply(const ProgressRecord& record);
  std::optional<ProgressRecord> find(const std::string& job_id) const;
  size_t size() const;

  // Reads the whole progress topic (every partition, to its current end) with `scanner`.
  // Returns the number of records read. Errors: the topic cannot be read before `timeout`.
  Result<int64_t> loadFromTopic(kafka::TopicScanner& scanner, const std::string& topic,
                                std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mutex_;  // guards records_
  std::map<std::string, ProgressRecord> records_;  // by job_id
};

}  // namespace fanpull
