#include "worker/kafka/admin.h"

#include <cstring>
#include <set>

#include "worker/kafka/rdkafka_support.h"

namespace fanpull::kafka {

namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

Error timedOut(const std::string& what) {
  return detail::kafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, what);
}

}  // namespace

class Admin::Impl : public detail::HandleContext {
 public:
  detail::HandlePtr rk;

  AdminOptionsPtr options(rd_kafka_admin_op_t op, std::chrono::milliseconds timeout) {
    AdminOptionsPtr o(rd_kafka_AdminOptions_new(rk.get(), op));
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(o.get(), detail::toTimeoutMs(timeout), errstr,
                                              sizeof errstr);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
      rd_kafka_AdminOptions_set_operation_timeout(o.get(), detail::toTimeoutMs(timeout), errstr,
                                                  sizeof errstr);
    }
    return o;
  }

  // Waits for the result event of one admin request on queue q.
  EventPtr wait(rd_kafka_queue_t* q, std::chrono::milliseconds timeout) {
    return EventPtr(rd_kafka_queue_poll(q, detail::toTimeoutMs(timeout) + 1000));
  }
};

Admin::Admin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Admin::~Admin() = default;

Result<std::unique_ptr<Admin>> Admin::create(const std::string& bootstrap_servers,
                                             const Properties& properties, LogCallback log) {
  auto impl = std::make_unique<Impl>();
  impl->log = std::move(log);
  Properties defaults = {{"client.id", "fanpull-admin"}};
  if (!bootstrap_servers.empty()) defaults["bootstrap.servers"] = bootstrap_servers;
  auto conf = detail::buildConf(defaults, withoutConsumerOnly(properties));
  if (!conf.ok()) return conf.error();
  if (detail::confValue(conf->get(), "bootstrap.servers").empty()) {
    return detail::usageError("kafka admin: no bootstrap servers");
  }
  detail::installContext(conf->get(), impl.get());
  auto rk = detail::newHandle(RD_KAFKA_PRODUCER, std::move(*conf), "kafka admin");
  if (!rk.ok()) return rk.error();
  impl->rk = std::move(*rk);
  return std::unique_ptr<Admin>(new Admin(std::move(impl)));
}

Result<std::vector<TopicDescription>> Admin::describeTopics(
    const std::vector<std::string>& topics, const std::vector<std::string>& config_names,
    std::chrono::milliseconds timeout) {
  // Metadata of every topic: asking for named topics could make a cluster create them.
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(impl_->rk.get(), 1, nullptr, &raw, detail::toTimeoutMs(timeout));
  detail::MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "cluster metadata");
  std::vector<TopicDescription> out;
  for (const auto& name : topics) {
    TopicDescription d;
    d.name = name;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (name != t.topic) continue;
      if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        return detail::kafkaError(t.err, "topic " + name);
      }
      if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) break;
      d.exists = true;
      d.partitions = t.partition_cnt;
      d.replication = t.partition_cnt > 0 ? t.partitions[0].replica_cnt : 0;
    }
    out.push_back(std::move(d));
  }
  if (config_names.empty()) return out;

  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& d : out) {
    if (d.exists) {
      resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, d.name.c_str()));
    }
  }
  if (resources.empty()) return out;
  QueuePtr q(rd_kafka_queue_new(impl_->rk.get()));
  auto opts = impl_->options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_DescribeConfigs(impl_->rk.get(), resources.data(), resources.size(), opts.get(),
                           q.get());
  rd_kafka_ConfigResource_destroy_array(resources.data(), resources.size());
  EventPtr ev = impl_->wait(q.get(), timeout);
  if (!ev) return timedOut("describe topic configs");
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Error e = detail::kafkaError(rd_kafka_event_error(ev.get()), "describe topic configs");
    e.cause += std::string(": ") + rd_kafka_event_error_string(ev.get());
    return e;
  }
  const rd_kafka_DescribeConfigs_result_t* result = rd_kafka_event_DescribeConfigs_result(ev.get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** described =
      rd_kafka_DescribeConfigs_result_resources(result, &count);
  const std::set<std::string> wanted(config_names.begin(), config_names.end());
  for (size_t i = 0; i < count; ++i) {
    const char* name = rd_kafka_ConfigResource_name(described[i]);
    if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return detail::kafkaError(rd_kafka_ConfigResource_error(described[i]),
                                std::string("configs of topic ") + name);
    }
    for (auto& d : out) {
      if (d.name != name) continue;
      size_t entries = 0;
      const rd_kafka_ConfigEntry_t** configs =
          rd_kafka_ConfigResource_configs(described[i], &entries);
      for (size_t k = 0; k < entries; ++k) {
        const char* key = rd_kafka_ConfigEntry_name(configs[k]);
        const char* value = rd_kafka_ConfigEntry_value(configs[k]);
        if (key != nullptr && wanted.count(key)) d.configs[key] = value != nullptr ? value : "";
      }
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> Admin::createTopics(const std::vector<NewTopic>& topics,
                                                               std::chrono::milliseconds timeout) {
  std::map<std::string, std::string> outcome;
  if (topics.empty()) return outcome;
  char errstr[512];
  std::vector<rd_kafka_NewTopic_t*> requests;
  auto release = [&] { rd_kafka_NewTopic_destroy_array(requests.data(), requests.size()); };
  for (const auto& t : topics) {
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication,
                                                    errstr, sizeof errstr);
    if (nt == nullptr) {
      release();
      return detail::usageError("topic " + t.name + ": " + errstr);
    }
    requests.push_back(nt);
    for (const auto& [key, value] : t.configs) {
      if (rd_kafka_NewTopic_set_config(nt, key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        release();
        return detail::usageError("topic " + t.name + ": config " + key);
      }
    }
  }
  QueuePtr q(rd_kafka_queue_new(impl_->rk.get()));
  auto opts = impl_->options(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_CreateTopics(impl_->rk.get(), requests.data(), requests.size(), opts.get(), q.get());
  release();
  EventPtr ev = impl_->wait(q.get(), timeout);
  if (!ev) return timedOut("create topics");
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Error e = detail::kafkaError(rd_kafka_event_error(ev.get()), "create topics");
    e.cause += std::string(": ") + rd_kafka_event_error_string(ev.get());
    return e;
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(ev.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
    std::string reason;
    if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* text = rd_kafka_topic_result_error_string(results[i]);
      reason = std::string(rd_kafka_err2name(terr)) + (text != nullptr ? std::string(": ") + text
                                                                        : std::string());
    }
    outcome[rd_kafka_topic_result_name(results[i])] = reason;
  }
  return outcome;
}

Result<std::optional<std::string>> Admin::brokerConfig(const std::string& name,
                                                       std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(impl_->rk.get(), 0, nullptr, &raw, detail::toTimeoutMs(timeout));
  detail::MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "cluster metadata");
  if (md->broker_cnt < 1) return detail::kafkaError(RD_KAFKA_RESP_ERR__TRANSPORT, "no broker");
  const std::string id = std::to_string(md->brokers[0].id);
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, id.c_str());
  QueuePtr q(rd_kafka_queue_new(impl_->rk.get()));
  auto opts = impl_->options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_DescribeConfigs(impl_->rk.get(), &resource, 1, opts.get(), q.get());
  rd_kafka_ConfigResource_destroy(resource);
  EventPtr ev = impl_->wait(q.get(), timeout);
  if (!ev) return timedOut("describe broker config");
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return detail::kafkaError(rd_kafka_event_error(ev.get()), "describe broker config");
  }
  const rd_kafka_DescribeConfigs_result_t* result = rd_kafka_event_DescribeConfigs_result(ev.get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** described =
      rd_kafka_DescribeConfigs_result_resources(result, &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return detail::kafkaError(rd_kafka_ConfigResource_error(described[i]),
                                "describe broker config");
    }
    size_t entries = 0;
    const rd_kafka_ConfigEntry_t** configs =
        rd_kafka_ConfigResource_configs(described[i], &entries);
    for (size_t k = 0; k < entries; ++k) {
      const char* key = rd_kafka_ConfigEntry_name(configs[k]);
      if (key != nullptr && name == key) {
        const char* value = rd_kafka_ConfigEntry_value(configs[k]);
        return std::optional<std::string>(value != nullptr ? value : "");
      }
    }
  }
  return std::optional<std::string>();
}

Result<int> Admin::brokerCount(std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(impl_->rk.get(), 0, nullptr, &raw, detail::toTimeoutMs(timeout));
  detail::MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "cluster metadata");
  return md->broker_cnt;
}

}  // namespace fanpull::kafka
