// Reading a topic to its end without a consumer group: the progress topic at start and on every
// assignment, and the events topic when a job's end is in doubt after a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "kafka/consumer.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka {

struct ScanOptions {
  // `from` maps partitions to their first offset; an empty map reads every partition from its
  // first retained offset, and an offset below a partition's first retained one starts there.
  std::map<int32_t, int64_t> from;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  // Not null: receives each partition's end as the reader met it (the offset after the last
  // record: the high watermark, or with isolation.level read_committed the last stable offset,
  // below any transaction still open).
  std::map<int32_t, int64_t>* ends = nullptr;
};

// A reader that scans topics to their end, one scan at a time, over one long-lived librdkafka
// consumer (created at the first scan). Between scans it is unassigned and fetches nothing.
//
// Keeping the consumer is deliberate: librdkafka 2.0 can abort (rd_kafka_broker_destroy_final:
// "thrd_is_current" assertion) when a consumer is destroyed while one of its broker
// connections fails, so a process that made a fresh consumer for every scan would risk that
// abort on every scan during a broker fault. Thread-safe: concurrent scans run one after another.
class TopicScanner {
 public:
  TopicScanner(std::string bootstrap_servers, Properties properties, LogCallback log = {});
  ~TopicScanner();
  TopicScanner(const TopicScanner&) = delete;
  TopicScanner& operator=(const TopicScanner&) = delete;

  // Reads `topic` up to the end of each partition (the end the broker reports when the reader
  // gets there), passing every message to `visit` in offset order per partition. A topic that
  // does not exist has nothing to read.
  // Returns the number of messages visited. Errors: the consumer could not be created (class
  // unknown); the metadata, the watermarks or the end could not be read before the timeout
  // (retryable; the cause says how far each partition got).
  Result<int64_t> scan(const std::string& topic, const ScanOptions& options,
                       const std::function<void(const ConsumedMessage&)>& visit);

 private:
  Result<int64_t> scanLocked(Consumer& reader, const std::string& topic, const ScanOptions& options,
                             const std::function<void(const ConsumedMessage&)>& visit);

  const std::string bootstrap_servers_;
  const Properties properties_;
  const LogCallback log_;
  std::mutex mutex_;
  std::unique_ptr<Consumer> reader_;
};

}  // namespace fanpull::kafka
