#include "kafka/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>

#include "kafka/rdkafka_support.h"

namespace fanpull::kafka {

static_assert(errors::kTransport == RD_KAFKA_RESP_ERR__TRANSPORT);
static_assert(errors::kNotLeaderForPartition == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
static_assert(errors::kLeaderNotAvailable == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
static_assert(errors::kRequestTimedOut == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
static_assert(errors::kUnknownTopicOrPartition == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
static_assert(errors::kNotEnoughReplicas == RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
static_assert(errors::kNotCoordinator == RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
static_assert(errors::kCoordinatorNotAvailable == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);

// Owns the handle the mock cluster needs for its bookkeeping, and the cluster. The cluster is
// destroyed before the handle.
class EmbeddedBroker::Impl : public detail::HandleContext {
 public:
  detail::HandlePtr rk;
  rd_kafka_mock_cluster_t* cluster = nullptr;

  ~Impl() override {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
  }
};

namespace {

Result<Done> check(rd_kafka_resp_err_t err, const std::string& what) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, what);
  return Done{};
}

}  // namespace

EmbeddedBroker::EmbeddedBroker(std::unique_ptr<Impl> impl, std::string bootstrap_servers,
                               int brokers)
    : impl_(std::move(impl)), bootstrap_servers_(std::move(bootstrap_servers)), brokers_(brokers) {}

EmbeddedBroker::~EmbeddedBroker() = default;

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(int brokers) {
  if (brokers < 1 || brokers > 64) {
    return Error::of(ErrorClass::kUnknown, "embedded broker: broker count must be 1..64, got " +
                              std::to_string(brokers));
  }
  auto impl = std::make_unique<Impl>();
  // The bookkeeping handle never connects anywhere; keep it quiet about that.
  auto conf = detail::buildConf({{"client.id", "fanpull-embedded-broker"}, {"log_level", "3"}}, {});
  if (!conf.ok()) return conf.error();
  detail::installContext(conf->get(), impl.get());
  auto rk = detail::newHandle(RD_KAFKA_PRODUCER, std::move(*conf), "embedded broker");
  if (!rk.ok()) return rk.error();
  impl->rk = std::move(*rk);
  impl->cluster = rd_kafka_mock_cluster_new(impl->rk.get(), brokers);
  if (impl->cluster == nullptr) {
    return Error::of(ErrorClass::kUnknown,
        "embedded broker: librdkafka could not create the mock cluster");
  }
  std::string servers = rd_kafka_mock_cluster_bootstraps(impl->cluster);
  return std::unique_ptr<EmbeddedBroker>(
      new EmbeddedBroker(std::move(impl), std::move(servers), brokers));
}

Result<Done> EmbeddedBroker::createTopic(const std::string& name, int partitions) {
  if (partitions < 1) {
    return Error::of(ErrorClass::kUnknown,
        "create topic \"" + name + "\": partitions must be >= 1");
  }
  return check(
      rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, std::min(3, brokers_)),
      "create topic \"" + name + "\"");
}

void EmbeddedBroker::pushRequestErrors(ApiKey api, const std::vector<int>& error_codes) {
  std::vector<rd_kafka_resp_err_t> errs;
  errs.reserve(error_codes.size());
  for (int code : error_codes) errs.push_back(static_cast<rd_kafka_resp_err_t>(code));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, static_cast<int16_t>(api), errs.size(),
                                          errs.data());
}

Result<Done> EmbeddedBroker::pushBrokerRequestErrors(
    int32_t broker_id, ApiKey api, const std::vector<std::pair<int, int>>& errors_and_rtt_ms) {
  // librdkafka 2.0.2 has only a variadic form: push one (error, rtt) tuple at a time.
  for (const auto& [code, rtt_ms] : errors_and_rtt_ms) {
    rd_kafka_resp_err_t err = rd_kafka_mock_broker_push_request_error_rtts(
        impl_->cluster, broker_id, static_cast<int16_t>(api), 1,
        static_cast<rd_kafka_resp_err_t>(code), rtt_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return detail::kafkaError(err, "push errors to broker " + std::to_string(broker_id));
    }
  }
  return Done{};
}

Result<size_t> EmbeddedBroker::pendingRequestErrors(int32_t broker_id, ApiKey api) {
  size_t count = 0;
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_error_stack_cnt(impl_->cluster, broker_id,
                                                                 static_cast<int16_t>(api), &count);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return detail::kafkaError(err, "errors pending on broker " + std::to_string(broker_id));
  }
  return count;
}

void EmbeddedBroker::clearRequestErrors(ApiKey api) {
  rd_kafka_mock_clear_request_errors(impl_->cluster, static_cast<int16_t>(api));
}

Result<Done> EmbeddedBroker::setBrokerDown(int32_t broker_id) {
  return check(rd_kafka_mock_broker_set_down(impl_->cluster, broker_id),
               "broker " + std::to_string(broker_id) + " down");
}

Result<Done> EmbeddedBroker::setBrokerUp(int32_t broker_id) {
  return check(rd_kafka_mock_broker_set_up(impl_->cluster, broker_id),
               "broker " + std::to_string(broker_id) + " up");
}

Result<Done> EmbeddedBroker::setBrokerRtt(int32_t broker_id, int rtt_ms) {
  return check(rd_kafka_mock_broker_set_rtt(impl_->cluster, broker_id, rtt_ms),
               "broker " + std::to_string(broker_id) + " rtt");
}

Result<Done> EmbeddedBroker::setPartitionLeader(const std::string& topic, int32_t partition,
                                                int32_t broker_id) {
  return check(
      rd_kafka_mock_partition_set_leader(impl_->cluster, topic.c_str(), partition, broker_id),
      "leader of " + topic + "[" + std::to_string(partition) + "]");
}

}  // namespace fanpull::kafka
