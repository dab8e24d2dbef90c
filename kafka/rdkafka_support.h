// Internal to worker/kafka: RAII owners of librdkafka handles, building a configuration from
// fanpull's defaults plus user properties, and translating librdkafka errors into fanpull Errors.
// Only kafka/*.cc include this header (it exposes librdkafka). Free functions are
// thread-safe; the owners are as thread-safe as the handle they own.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/result.h"
#include "kafka/kafka_types.h"

namespace fanpull::kafka::detail {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};
struct ErrorObjectDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};

using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using ErrorObjectPtr = std::unique_ptr<rd_kafka_error_t, ErrorObjectDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// A new configuration: `defaults` first, then `user` (so the user wins). An unknown property or
// an invalid value is an Error naming the property and librdkafka's reason.
Result<ConfPtr> buildConf(const Properties& defaults, const Properties& user);

// The value of a property of conf ("" when it has none).
std::string confValue(const rd_kafka_conf_t* conf, const char* name);

// rd_kafka_new() over conf (taken on success and on failure).
Result<HandlePtr> newHandle(rd_kafka_type_t type, ConfPtr conf, std::string_view what);

// True for errors that go away by themselves (broker down, leader moving, timeouts...).
bool isRetryable(rd_kafka_resp_err_t err);

// "<what>: <librdkafka's description> (<ERROR_NAME>)", class retryable or unknown.
Error kafkaError(rd_kafka_resp_err_t err, std::string_view what);
// The same for an rd_kafka_error_t, which it takes.
Error kafkaError(ErrorObjectPtr error, std::string_view what);

PartitionListPtr toList(const std::vector<TopicPartition>& partitions);
PartitionListPtr toList(const std::vector<PartitionOffset>& offsets);
std::vector<TopicPartition> fromList(const rd_kafka_topic_partition_list_t* list);
// The first per-partition error of list, if any.
std::optional<Error> firstPartitionError(const rd_kafka_topic_partition_list_t* list,
                                         std::string_view what);

int toTimeoutMs(std::chrono::milliseconds timeout);

// The partition count of `topic`, from a metadata request about it alone (a producer's request
// may make a cluster that auto-creates topics create it). Errors: the request failing, or the
// topic's own error (UNKNOWN_TOPIC_OR_PART when it does not exist), named after the topic.
Result<int> topicPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                std::chrono::milliseconds timeout);

// What every handle's opaque points to: the owner's state, with its log function. Callbacks
// recover their owner from rd_kafka_opaque(rk).
using LogFunction =
    std::function<void(int level, const std::string& facility, const std::string& message)>;
struct HandleContext {
  virtual ~HandleContext() = default;
  LogFunction log;  // empty: librdkafka's default (stderr)
};
// Sets conf's opaque to context (which must outlive the handle) and, when context->log is set,
// routes librdkafka's log lines to it.
void installContext(rd_kafka_conf_t* conf, HandleContext* context);

}  // namespace fanpull::kafka::detail

namespace fanpull::kafka {

struct GroupMetadata {
  explicit GroupMetadata(rd_kafka_consumer_group_metadata_t* m) : meta(m) {}
  ~GroupMetadata() { rd_kafka_consumer_group_metadata_destroy(meta); }
  GroupMetadata(const GroupMetadata&) = delete;
  GroupMetadata& operator=(const GroupMetadata&) = delete;
  rd_kafka_consumer_group_metadata_t* meta;
};

}  // namespace fanpull::kafka
