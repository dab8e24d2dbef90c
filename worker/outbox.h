// Outbox: writes the engine's records (pages, checkpoints, events, dead letters) until each is
// delivered or refused for good. A retryable failure (a timeout, the broker down, a leader
// moving, a full local queue) is produced again after a pause, so no partition stops moving; a
// permanent one (too large, not authorized, an invalid record, a fatal producer) is given up
// once, logged as an error and counted, and its owner decides what that means (a page fails
// its job). Keeps what operators and the memory budget need: the bytes not yet delivered, the
// failures, and the topics that are missing or forbidden (/readyz). Sees Kafka only through
// RecordSink. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/buffer_pool.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/result.h"
#include "kafka/kafka_types.h"
#include "kafka/producer.h"

namespace fanpull {

// Where the engine's records go: a Kafka producer in the program (KafkaRecordSink), a fake in
// the tests (tests/support/fake_record_sink.h).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // Queues one record for `partition` (kafka::kAnyPartition: the key's); `settled` later
  // receives its delivery result exactly once, unless queuing fails (then it is never called).
  // The sink holds `value` until then.
  virtual Result<kafka::Done> produce(const std::string& topic, int32_t partition,
                                      std::string_view key,
                                      std::shared_ptr<const std::string> value,
                                      const kafka::Headers& headers,
                                      kafka::DeliveryCallback settled) = 0;
};

// The RecordSink of a kafka::Producer (values are not copied).
class KafkaRecordSink final : public RecordSink {
 public:
  explicit KafkaRecordSink(kafka::Producer& producer) : producer_(producer) {}
  Result<kafka::Done> produce(const std::string& topic, int32_t partition, std::string_view key,
                              std::shared_ptr<const std::string> value,
                              const kafka::Headers& headers,
                              kafka::DeliveryCallback settled) override {
    return producer_.produce(topic, key, std::move(value), headers, std::move(settled), partition);
  }

 private:
  kafka::Producer& producer_;
};

struct OutboxRecord {
  OutboxRecord() = default;
  OutboxRecord(std::string topic_, std::string value_, kafka::Headers headers_ = {},
               std::string key_ = {}, int32_t partition_ = kafka::kAnyPartition)
      : topic(std::move(topic_)),
        value(std::move(value_)),
        headers(std::move(headers_)),
        key(std::move(key_)),
        partition(partition_) {}
  OutboxRecord(const OutboxRecord&) = default;
  OutboxRecord(OutboxRecord&&) = default;
  OutboxRecord& operator=(const OutboxRecord&) = default;
  OutboxRecord& operator=(OutboxRecord&&) = default;
  // A page's value is its answer's buffer: it goes back to the pool for the next answer.
  ~OutboxRecord() { BufferPool::bodies().give(std::move(value)); }

  std::string topic;
  std::string value;  // empty: a null value (a tombstone on a compacted topic)
  kafka::Headers headers;
  std::string key;  // empty: the key send() is given (the merchant's appid)
  int32_t partition = kafka::kAnyPartition;  // the key's partition unless set
};

struct OutboxStats {
  int64_t produce_errors = 0;     // failed attempts (a retryable one is made again)
  int64_t produce_failures = 0;   // records given up after a permanent error
  int64_t undelivered_bytes = 0;  // sent, not yet delivered or given up
  // Topics that do not exist or may not be written, with the last error about each; a topic
  // leaves when a record to it is delivered.
  std::map<std::string, std::string> unwritable_topics;
};

class Outbox {
 public:
  // Runs `task` at `when` (the worker's continuations executor; a test runs them by hand).
  using Scheduler = std::function<void(TimePoint when, std::function<void()> task)>;
  // Runs after a record of `bytes` was delivered or given up: its room in the budget is free.
  using Released = std::function<void(int64_t bytes)>;

  // After a failed delivery, and after a refusal to queue (a full local queue).
  static constexpr std::chrono::milliseconds kRetryAfterFailedDelivery{1000};
  static constexpr std::chrono::milliseconds kRetryAfterRefused{200};

  Outbox(RecordSink& sink, Clock& clock, Logger& log, Scheduler retry, Released released = {});

  // Writes `record` (keyed by `key`, the merchant's appid) until it is delivered or given up;
  // `settled` receives the delivery or the permanent error, exactly once, on the sink's or the
  // scheduler's thread. After stop(), a record that needs another attempt is dropped unsettled.
  void send(const std::string& key, std::shared_ptr<const OutboxRecord> record,
            kafka::DeliveryCallback settled);

  // Marks `topic` as missing or forbidden (an error line the first time), e.g. when it could
  // not be looked up at start; cleared by the next delivery to it.
  void markUnwritable(const std::string& topic, const Error& error);

  // No more attempts from now on. Idempotent.
  void stop() { stopping_ = true; }
  // Every failure settles its record at once, as a permanent one does (exactly_once: a record
  // of an aborted transaction must never be produced into the next one).
  void settleFailuresAtOnce() { no_retries_ = true; }

  int64_t undeliveredBytes() const { return undelivered_bytes_.load(); }
  OutboxStats stats() const;

 private:
  struct Attempt;
  void attempt(const std::shared_ptr<Attempt>& a);
  void onDelivery(const std::shared_ptr<Attempt>& a, const Result<kafka::Delivery>& d);
  // Retryable: schedules the next attempt; permanent: gives the record up.
  void afterFailure(const std::shared_ptr<Attempt>& a, const Error& error,
                    std::chrono::milliseconds pause);
  void settle(const std::shared_ptr<Attempt>& a, const Result<kafka::Delivery>& outcome);
  void markWritable(const std::string& topic);

  RecordSink& sink_;
  Clock& clock_;
  Logger& log_;
  Scheduler retry_;
  Released released_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> no_retries_{false};
  std::atomic<int64_t> undelivered_bytes_{0};
  std::atomic<int> unwritable_count_{0};  // unwritable_topics.size(), read without mutex_

  mutable std::mutex mutex_;  // guards what follows
  int64_t produce_errors_ = 0;
  int64_t produce_failures_ = 0;
  std::map<std::string, std::string> unwritable_topics_;
};

}  // namespace fanpull
