// Consumer: a Kafka consumer, either a group member (subscribe; cooperative-sticky assignment,
// manual commits: nothing is committed or stored unless commit() is called) or, without a group
// id, a reader of explicitly assigned partitions. Not thread-safe: use one Consumer from one
// thread; assignment and commit callbacks run on that thread, inside poll() and close().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka {

// A consumed message, owned (copied out of librdkafka, so it may outlive the Consumer).
struct ConsumedMessage {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;  // nullopt: no key
  std::string value;               // a null value reads as empty
  Headers headers;
  int64_t timestamp_ms = -1;  // -1 when the broker gave none
  // With ConsumerOptions::report_partition_end, a message with this set (and no payload)
  // says the partition has no more messages for now; `offset` is the next offset.
  bool end_of_partition = false;
};

struct ConsumerOptions {
  std::string bootstrap_servers;  // required unless properties hold bootstrap.servers
  std::string group_id;           // empty: a reader; use assign(), never subscribe() or commit()
  Properties properties;          // applied after fanpull's defaults
  bool report_partition_end = false;

  // Group mode: partitions added to this member's assignment (incremental with the cooperative
  // protocol), after they are assigned (so pause() works on them).
  std::function<void(const std::vector<TopicPartition>&)> on_assigned;
  // Group mode: partitions taken away, before they are unassigned (so their offsets can still be
  // committed). `lost` is true when they were lost (session timed out) rather than handed over:
  // a commit for them would then fail.
  std::function<void(const std::vector<TopicPartition>&, bool lost)> on_revoked;
  // The outcome of each commitAsync() (librdkafka may report synchronous commits here too).
  std::function<void(const Result<std::vector<PartitionOffset>>&)> on_commit;
  // librdkafka's statistics JSON (STATISTICS.md), every statistics.interval.ms (5000 unless the
  // properties say otherwise; statistics are off when this is empty), on the polling thread.
  std::function<void(const std::string& json)> on_statistics;
  LogCallback log;  // empty: librdkafka logs to stderr
};

class Consumer {
 public:
  // Errors (class unknown): an unknown or invalid property, or no bootstrap servers.
  static Result<std::unique_ptr<Consumer>> create(const ConsumerOptions& options);
  // Leaves the group (close()) if still in it.
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  bool hasGroup() const;

  // Joins the group for these topics (replacing any previous subscription).
  // Errors: no group id (a reader), an invalid topic name.
  Result<Done> subscribe(const std::vector<std::string>& topics);

  // Reads these partitions from these offsets (an offset, kOffsetBeginning, kOffsetEnd, or
  // kOffsetStored), replacing the assignment. For readers. Errors: an invalid partition list.
  Result<Done> assign(const std::vector<PartitionOffset>& partitions);

  // The next message, waiting up to `timeout`; nullopt when none came. Errors: a consumer
  // error from librdkafka (retryable ones, e.g. all brokers down, are reported and then cleared
  // by librdkafka itself; others, e.g. an unknown topic or a fatal error, are class unknown).
  Result<std::optional<ConsumedMessage>> poll(std::chrono::milliseconds timeout);

  // Commits next_offset (the offset of the next message to read: last processed + 1) for a
  // partition, waiting for the coordinator. Errors: retryable (coordinator moving, rebalance in
  // progress...), unknown for a partition no longer assigned or a reader.
  Result<Done> commit(const std::string& topic, int32_t partition, int64_t next_offset);
  // At most `timeout`: then retryable ("no answer within").
  Result<Done> commit(const std::vector<PartitionOffset>& offsets,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // The same without waiting; the outcome goes to on_commit. Errors: only a reader or an invalid
  // argument.
  Result<Done> commitAsync(const std::string& topic, int32_t partition, int64_t next_offset);
  Result<Done> commitAsync(const std::vector<PartitionOffset>& offsets);

  // This member's identity in its group now (group, generation, member id), for a transaction
  // that commits input offsets (Producer::sendOffsetsToTransaction); null without a group.
  std::shared_ptr<const GroupMetadata> groupMetadata() const;

  // The group's committed offset for a partition, nullopt when it has none.
  // Errors: retryable on timeout or an unavailable coordinator.
  Result<std::optional<int64_t>> committed(const TopicPartition& partition,
                                           std::chrono::milliseconds timeout);

  // Stops / restarts fetching from these assigned partitions (the consumer stays in the group).
  // Errors: a partition not assigned to this consumer.
  // Moves assigned partitions to `offsets` (kOffsetBeginning for the first retained); what was
  // fetched beyond is dropped. Errors: a partition not assigned, or the timeout.
  Result<Done> seek(const std::vector<PartitionOffset>& offsets, std::chrono::milliseconds timeout);
  Result<Done> pause(const std::vector<TopicPartition>& partitions);
  // Fetching starts again at once, not at the fetcher's next wake-up (see consumer.cc).
  Result<Done> resume(const std::vector<TopicPartition>& partitions);

  // The partitions currently assigned. Errors: a consumer error.
  Result<std::vector<TopicPartition>> assignment() const;

  // The number of partitions of `topic`. Errors: unknown topic (class unknown), timeout.
  Result<int> partitionCount(const std::string& topic, std::chrono::milliseconds timeout);
  // The low and high watermarks (first offset, next offset to be written) of a partition.
  Result<std::pair<int64_t, int64_t>> watermarks(const TopicPartition& partition,
                                                 std::chrono::milliseconds timeout);

  // Leaves the group (revoking the assignment through on_revoked) and stops fetching; later
  // calls fail. Idempotent. Waits at most `timeout`: after that (brokers away) it returns a
  // retryable error, and the destructor does not try to leave the group again. Errors:
  // librdkafka failing to leave cleanly, or the time running out.
  Result<Done> close(std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  class Impl;
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanpull::kafka
