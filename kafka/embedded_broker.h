// EmbeddedBroker: librdkafka's mock cluster (a Kafka-protocol broker on loopback TCP ports) for
// the demo, `fanpull broker` and tests, with fault injection. Its limits: only the newest 5 MiB
// of each partition are kept (kRetainedBytesPerPartition), group re-forms are slow, transactions
// are not honoured, nothing is compacted; auto-created topics get 4 partitions. Only the process that created it can inject faults. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka {

class EmbeddedBroker {
 public:
  static constexpr int kDefaultBrokers = 3;
  // The partition count the mock cluster gives an auto-created topic (fixed by librdkafka 2.0.2).
  static constexpr int kAutoCreatePartitions = 4;
  // What the mock cluster keeps of each partition (fixed by librdkafka 2.0.2): older messages
  // are dropped, so a reader that comes later finds them gone.
  static constexpr int64_t kRetainedBytesPerPartition = 5 * 1024 * 1024;

  // Starts a cluster of `brokers` brokers (ids 1..brokers) listening on 127.0.0.1, free ports.
  // Errors: brokers outside 1..64, or librdkafka failing to create the cluster (class unknown).
  static Result<std::unique_ptr<EmbeddedBroker>> start(int brokers = kDefaultBrokers);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // "127.0.0.1:PORT,127.0.0.1:PORT,..." for bootstrap.servers.
  const std::string& bootstrapServers() const { return bootstrap_servers_; }
  int brokerCount() const { return brokers_; }

  // Creates topic `name` with `partitions` partitions (replication factor min(3, brokers)).
  // Errors: partitions < 1, or the cluster refusing (e.g. TOPIC_ALREADY_EXISTS).
  Result<Done> createTopic(const std::string& name, int partitions);

  // The next errors.size() requests of type `api` (on any broker) fail with these Kafka error
  // codes in order (see kafka::errors; errors::kTransport drops the connection instead).
  void pushRequestErrors(ApiKey api, const std::vector<int>& error_codes);
  // The next requests of type `api` sent to broker `broker_id` get these (error code, delay)
  // answers in order; error 0 with a delay is a slow success (the request is carried out at
  // once, its answer delayed), e.g. to make a client time out on a write that happened.
  // Errors: an unknown broker id.
  Result<Done> pushBrokerRequestErrors(int32_t broker_id, ApiKey api,
                                       const std::vector<std::pair<int, int>>& errors_and_rtt_ms);
  // How many of the errors pushed for broker `broker_id` and `api` are still to be answered.
  // Errors: an unknown broker id.
  Result<size_t> pendingRequestErrors(int32_t broker_id, ApiKey api);
  // Forgets the errors still pushed for `api` (with pushRequestErrors).
  void clearRequestErrors(ApiKey api);
  // Takes broker `broker_id` down (its connections drop, new ones are refused) or back up.
  // Errors: an unknown broker id.
  Result<Done> setBrokerDown(int32_t broker_id);
  Result<Done> setBrokerUp(int32_t broker_id);
  // Delays every answer of broker `broker_id` by rtt_ms. Errors: an unknown broker id.
  Result<Done> setBrokerRtt(int32_t broker_id, int rtt_ms);
  // Moves the leadership of topic[partition] to broker `broker_id`. Errors: unknown partition.
  Result<Done> setPartitionLeader(const std::string& topic, int32_t partition, int32_t broker_id);

 private:
  class Impl;
  EmbeddedBroker(std::unique_ptr<Impl> impl, std::string bootstrap_servers, int brokers);

  std::unique_ptr<Impl> impl_;
  std::string bootstrap_servers_;
  int brokers_;
};

}  // namespace fanpull::kafka
