// Producer: an idempotent Kafka producer (enable.idempotence, acks=all, murmur2 partitioner as
// Java clients use, so a key lands in the same partition whoever produced it) whose delivery
// results reach a per-message callback. Thread-safe: produce(), flush() and the accessors may be
// called from any thread; delivery callbacks run on the producer's poll thread (its own
// background thread, or the thread calling poll() when background polling is off).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka {

// Where a message was written.
struct Delivery {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Receives the delivery result of one message: the Delivery, or an Error (class retryable when
// producing again may succeed, e.g. a message timed out or purged at shutdown). Must not throw.
using DeliveryCallback = std::function<void(const Result<Delivery>&)>;

struct ProducerOptions {
  std::string bootstrap_servers;  // required unless properties hold bootstrap.servers
  Properties properties;          // applied after fanpull's defaults
  // true: a background thread polls and runs delivery callbacks; false: call poll() yourself.
  bool background_poll = true;
  // How long the destructor waits for messages in flight before purging them (their callbacks
  // then receive a retryable error).
  std::chrono::milliseconds close_timeout{10000};
  LogCallback log;  // empty: librdkafka logs to stderr
  // Non-empty: a transactional producer (transactional.id): initTransactions() before anything
  // else, then every message inside a transaction. A newer producer with the same id fences
  // this one (its next transactional call is kFatal).
  std::string transactional_id;
};

// What a failed transactional call leaves the caller to do, as librdkafka classifies it.
enum class TxnNext {
  kRetry,  // call it again (a timeout, a coordinator moving)
  kAbort,  // abortTransaction(), then begin again: the transaction's messages are discarded
  kFatal,  // this producer is done (fenced by a newer one with its transactional.id, or broken)
};
struct TxnError {
  TxnNext next = TxnNext::kFatal;
  Error error;
};
// nullopt: the call succeeded.
using TxnOutcome = std::optional<TxnError>;

class Producer {
 public:
  // A connected-on-demand producer. Errors (class unknown): an unknown or invalid property,
  // named with librdkafka's reason, e.g. `kafka property "acks": Invalid value ...`.
  static Result<std::unique_ptr<Producer>> create(const ProducerOptions& options);
  // Waits up to close_timeout for messages in flight, purges the rest (their callbacks run with
  // an error), then closes the handle.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues one message; `callback` (optional) later receives its delivery result exactly once.
  // An empty key is no key; an empty value is a null value. Success means queued, not written.
  // Errors: retryable when the local queue is full; unknown for a message larger than
  // maxMessageBytes(), an invalid topic, or a producer in a fatal state (see fatalError()).
  // When produce() fails the callback is not called.
  Result<Done> produce(const std::string& topic, std::string_view key, std::string_view value,
                       const Headers& headers = {}, DeliveryCallback callback = {});
  // The same without copying the value: the producer holds `value` until its callback has run
  // (a page of 10,000 OpenIDs is about 300 KB; copying it cost more than encoding it).
  // `partition` other than kAnyPartition writes to that partition whatever the key.
  Result<Done> produce(const std::string& topic, std::string_view key,
                       std::shared_ptr<const std::string> value, const Headers& headers = {},
                       DeliveryCallback callback = {}, int32_t partition = kAnyPartition);

  // Runs due delivery callbacks on this thread, waiting up to `timeout` for one; returns how
  // many events were served. Only for background_poll = false (returns 0 otherwise).
  int poll(std::chrono::milliseconds timeout);

  // Waits until every queued message has been delivered (or failed) and its callback has run.
  // Errors: retryable when messages are still in flight after `timeout`.
  Result<Done> flush(std::chrono::milliseconds timeout);

  // Looks `topic` up so that the first message to it is sent at once: without this, librdkafka
  // 2.0 learns a topic new to the producer on its one-second topic scan, and messages wait for
  // it (a crash in that second loses them). Returns the topic's partition count.
  // Errors: the topic does not exist and the cluster did not create it, or is not authorized
  // (class unknown, the cause names the topic); the cluster not answering (retryable).
  Result<int> prepareTopic(const std::string& topic, std::chrono::milliseconds timeout);

  // Messages queued or in flight whose callbacks have not run yet.
  int inFlight() const;

  // The effective message.max.bytes: the largest message (value + key + headers + overhead)
  // this producer accepts.
  size_t maxMessageBytes() const;

  // The producer's fatal error (e.g. the idempotence sequence broken), after which every
  // produce() fails; nullopt while healthy.
  std::optional<Error> fatalError() const;

  // Transactions (transactional_id set). initTransactions() once, fencing any older producer
  // with the same id and ending its open transaction. Then begin, produce, optionally send the
  // consumer group's input offsets (KIP-447: fenced through the group's generation too), commit
  // (flushes first) or abort. Each says what is left to do when it fails.
  [[nodiscard]] TxnOutcome initTransactions(std::chrono::milliseconds timeout);
  [[nodiscard]] TxnOutcome beginTransaction();
  [[nodiscard]] TxnOutcome sendOffsetsToTransaction(const std::vector<PartitionOffset>& offsets,
                                                    const GroupMetadata& group,
                                                    std::chrono::milliseconds timeout);
  [[nodiscard]] TxnOutcome commitTransaction(std::chrono::milliseconds timeout);
  [[nodiscard]] TxnOutcome abortTransaction(std::chrono::milliseconds timeout);

 private:
  class Impl;
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when `error` says a topic does not exist or may not be written (UNKNOWN_TOPIC_OR_PART,
// _UNKNOWN_TOPIC, TOPIC_AUTHORIZATION_FAILED): waiting alone will not cure it.
bool isTopicUnavailable(const Error& error);

}  // namespace fanpull::kafka
