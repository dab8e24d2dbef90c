#include "kafka/rdkafka_support.h"

#include <algorithm>
#include <climits>
#include <initializer_list>

namespace fanpull::kafka {

namespace {

Properties without(const Properties& properties, std::initializer_list<const char*> names) {
  Properties out = properties;
  for (const char* name : names) out.erase(name);
  return out;
}

}  // namespace

Properties withoutConsumerOnly(const Properties& properties) {
  return without(properties,
                 {"group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms",
                  "max.poll.interval.ms", "partition.assignment.strategy", "auto.offset.reset",
                  "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store",
                  "isolation.level", "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes",
                  "max.partition.fetch.bytes", "enable.partition.eof", "check.crcs",
                  "queued.min.messages", "queued.max.messages.kbytes", "fetch.error.backoff.ms",
                  "group.protocol.type", "coordinator.query.interval.ms",
                  "consume.callback.max.messages", "offset.store.method"});
}

Properties withoutProducerOnly(const Properties& properties) {
  return without(properties,
                 {"transactional.id", "transaction.timeout.ms", "enable.idempotence",
                  "enable.gapless.guarantee", "queue.buffering.max.messages",
                  "queue.buffering.max.kbytes", "queue.buffering.max.ms", "linger.ms",
                  "message.send.max.retries", "retries", "batch.num.messages", "batch.size",
                  "delivery.report.only.error", "sticky.partitioning.linger.ms", "acks",
                  "request.required.acks", "request.timeout.ms", "message.timeout.ms",
                  "delivery.timeout.ms", "partitioner", "compression.codec",
                  "compression.type", "compression.level"});
}

Properties readerProperties(const Properties& properties) {
  return without(withoutProducerOnly(properties),
                 {"group.id", "group.instance.id", "group.protocol.type", "session.timeout.ms",
                  "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy",
                  "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store",
                  "enable.partition.eof", "coordinator.query.interval.ms"});
}

std::string librdkafkaVersion() { return rd_kafka_version_str(); }

std::vector<std::string> checkProperties(const Properties& properties) {
  std::vector<std::string> problems;
  for (const auto& [name, value] : properties) {
    auto conf = detail::buildConf({}, {{name, value}});
    if (!conf.ok()) problems.push_back(conf.error().cause);
  }
  return problems;
}

}  // namespace fanpull::kafka

namespace fanpull::kafka::detail {

Result<ConfPtr> buildConf(const Properties& defaults, const Properties& user) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const Properties* props : {&defaults, &user}) {
    for (const auto& [name, value] : *props) {
      if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        return Error::of(ErrorClass::kUnknown, "kafka property \"" + name + "\": " + errstr);
      }
    }
  }
  return conf;
}

std::string confValue(const rd_kafka_conf_t* conf, const char* name) {
  char buf[512];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) return "";
  return std::string(buf);
}

Result<HandlePtr> newHandle(rd_kafka_type_t type, ConfPtr conf, std::string_view what) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    return Error::of(ErrorClass::kUnknown, std::string(what) + ": " + errstr);
  }
  conf.release();  // rd_kafka_new() took it
  return HandlePtr(rk);
}

bool isRetryable(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return true;
    default:
      return false;
  }
}

Error kafkaError(rd_kafka_resp_err_t err, std::string_view what) {
  return Error::of(isRetryable(err) ? ErrorClass::kRetryable : ErrorClass::kUnknown,
      std::string(what) + ": " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")");
}

Error kafkaError(ErrorObjectPtr error, std::string_view what) {
  Error e;
  rd_kafka_resp_err_t code = rd_kafka_error_code(error.get());
  e.error_class = (rd_kafka_error_is_retriable(error.get()) || isRetryable(code)) &&
                          !rd_kafka_error_is_fatal(error.get())
                      ? ErrorClass::kRetryable
                      : ErrorClass::kUnknown;
  e.cause = std::string(what) + ": " + rd_kafka_error_string(error.get()) + " (" +
            rd_kafka_error_name(error.get()) + ")";
  return e;
}

PartitionListPtr toList(const std::vector<TopicPartition>& partitions) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(std::max<size_t>(1, partitions.size()))));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

PartitionListPtr toList(const std::vector<PartitionOffset>& offsets) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(std::max<size_t>(1, offsets.size()))));
  for (const auto& po : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), po.partition.topic.c_str(),
                                      po.partition.partition)
        ->offset = po.offset;
  }
  return list;
}

std::vector<TopicPartition> fromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

std::optional<Error> firstPartitionError(const rd_kafka_topic_partition_list_t* list,
                                         std::string_view what) {
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    const auto& el = list->elems[i];
    if (el.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafkaError(
          el.err, std::string(what) + " " + el.topic + "[" + std::to_string(el.partition) + "]");
    }
  }
  return std::nullopt;
}

Result<int> topicPartitionCount(rd_kafka_t* rk, const std::string& topic,
                                std::chrono::milliseconds timeout) {
  TopicPtr rkt(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (!rkt) return Error::of(ErrorClass::kUnknown, "metadata: invalid topic \"" + topic + "\"");
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt.get(), &raw, toTimeoutMs(timeout));
  MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafkaError(err, "metadata of " + topic);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafkaError(t.err, "topic " + topic);
    return t.partition_cnt;
  }
  return kafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "topic " + topic);
}

int toTimeoutMs(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return 0;
  if (timeout.count() > INT_MAX) return INT_MAX;
  return static_cast<int>(timeout.count());
}

namespace {

void logTrampoline(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  auto* context = static_cast<HandleContext*>(rd_kafka_opaque(rk));
  if (context == nullptr || !context->log) return;
  try {
    context->log(level, facility, message);
  } catch (...) {  // never through librdkafka's C frames; a sink that throws loses the line
  }
}

}  // namespace

void installContext(rd_kafka_conf_t* conf, HandleContext* context) {
  rd_kafka_conf_set_opaque(conf, context);
  if (context->log) rd_kafka_conf_set_log_cb(conf, logTrampoline);
}

}  // namespace fanpull::kafka::detail
