// Plain value types shared by fanpull's Kafka layer (fanpull::kafka): headers, partitions,
// client properties, protocol ApiKeys and error codes for fault injection. No librdkafka types
// appear here, so users of the Kafka layer do not include librdkafka. Thread-compatible values.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fanpull::kafka {

// The value of an operation that returns nothing on success: Result<Done>.
struct Done {};

// librdkafka configuration properties ("session.timeout.ms" -> "6000"), as in the config's
// kafka.properties. Applied after fanpull's defaults, so a user can override any of them.
using Properties = std::map<std::string, std::string>;

// `properties` without the consumer-only ones (group.id, session.timeout.ms, ...), which a
// producer or an admin client would only warn about: one config's kafka.properties serves all.
Properties withoutConsumerOnly(const Properties& properties);

// `properties` without the producer-only ones (transaction.timeout.ms, acks, linger.ms, ...),
// which a consumer would only warn about.
Properties withoutProducerOnly(const Properties& properties);

// What librdkafka itself says of `properties`: one "kafka property \"NAME\": reason" per
// unknown name or invalid value (empty when all are accepted). Connects to nothing.
std::vector<std::string> checkProperties(const Properties& properties);

// The properties of a group member made fit for a reader that joins no group and commits
// nothing (fanpull collect, the progress scanner): group membership, assignment and commit
// settings, enable.partition.eof (the reader sets its own) and producer settings are dropped.
Properties readerProperties(const Properties& properties);

// The version of the librdkafka linked at run time, e.g. "2.0.2".
std::string librdkafkaVersion();

// Receives librdkafka's log lines (syslog levels: 3 error ... 7 debug) from librdkafka's
// threads. Must not throw.
using LogCallback =
    std::function<void(int level, const std::string& facility, const std::string& message)>;

// One message header. A value may hold any bytes.
struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header& o) const { return key == o.key && value == o.value; }
};
using Headers = std::vector<Header>;

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator==(const TopicPartition& o) const {
    return partition == o.partition && topic == o.topic;
  }
  bool operator<(const TopicPartition& o) const {
    return topic != o.topic ? topic < o.topic : partition < o.partition;
  }
};

// A partition and an offset: for commits it is the next offset to consume (last processed + 1).
// A consumer group member's identity (group, generation, member id) as a transaction carries
// it with the input offsets (Consumer::groupMetadata, Producer::sendOffsetsToTransaction).
struct GroupMetadata;

struct PartitionOffset {
  TopicPartition partition;
  int64_t offset = 0;
};

// Logical offsets accepted by Consumer::assign().
// A message produced to kAnyPartition goes where the partitioner puts its key.
constexpr int32_t kAnyPartition = -1;
constexpr int64_t kOffsetBeginning = -2;
constexpr int64_t kOffsetEnd = -1;
constexpr int64_t kOffsetStored = -1000;  // the group's committed offset, else auto.offset.reset

// Kafka protocol request types (ApiKeys), for EmbeddedBroker::pushRequestErrors().
enum class ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kInitProducerId = 22,
};

// Kafka protocol error codes (and librdkafka's negative local ones) for fault injection; the
// values are librdkafka's rd_kafka_resp_err_t.
namespace errors {
constexpr int kTransport = -195;  // the mock broker drops the connection
constexpr int kUnknownTopicOrPartition = 3;
constexpr int kLeaderNotAvailable = 5;
constexpr int kNotLeaderForPartition = 6;
constexpr int kRequestTimedOut = 7;
constexpr int kNotEnoughReplicas = 19;
constexpr int kNotCoordinator = 16;
constexpr int kCoordinatorNotAvailable = 15;
}  // namespace errors

}  // namespace fanpull::kafka
