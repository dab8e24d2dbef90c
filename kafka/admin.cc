#include "kafka/admin.h"

#include <cstring>
#include <set>

#include "kafka/rdkafka_support.h"

namespace fanpull::kafka {

namespace {

struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using detail::EventPtr;
using detail::QueuePtr;
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

  // The result event of the one admin request sent to queue q. Errors: no answer in time
  // (retryable), or the request as a whole failing, named `what` with librdkafka's words.
  Result<EventPtr> awaitResult(rd_kafka_queue_t* q, std::chrono::milliseconds timeout,
                         const std::string& what) {
    EventPtr ev(rd_kafka_queue_poll(q, detail::toTimeoutMs(timeout) + 1000));
    if (!ev) return timedOut(what);
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Error e = detail::kafkaError(rd_kafka_event_error(ev.get()), what);
      e.cause += std::string(": ") + rd_kafka_event_error_string(ev.get());
      return e;
    }
    return ev;
  }

  // The cluster's metadata: every topic's when all_topics, else the brokers' only.
  Result<detail::MetadataPtr> metadata(bool all_topics, std::chrono::milliseconds timeout) {
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), all_topics ? 1 : 0, nullptr, &raw,
                                                detail::toTimeoutMs(timeout));
    detail::MetadataPtr md(raw);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "cluster metadata");
    return md;
  }

  // The values of `wanted` configs of each resource of `type` named in `names`:
  // resource name -> config name -> value. Errors: as awaitResult(), or a resource refused.
  Result<std::map<std::string, std::map<std::string, std::string>>> describeConfigs(
      rd_kafka_ResourceType_t type, const std::vector<std::string>& names,
      const std::set<std::string>& wanted, std::chrono::milliseconds timeout,
      const std::string& what) {
    std::vector<rd_kafka_ConfigResource_t*> resources;
    for (const auto& name : names) {
      resources.push_back(rd_kafka_ConfigResource_new(type, name.c_str()));
    }
    QueuePtr q(rd_kafka_queue_new(rk.get()));
    auto opts = options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
    rd_kafka_DescribeConfigs(rk.get(), resources.data(), resources.size(), opts.get(), q.get());
    rd_kafka_ConfigResource_destroy_array(resources.data(), resources.size());
    auto ev = awaitResult(q.get(), timeout, what);
    if (!ev.ok()) return ev.error();
    const rd_kafka_DescribeConfigs_result_t* result =
        rd_kafka_event_DescribeConfigs_result(ev->get());
    size_t count = 0;
    const rd_kafka_ConfigResource_t** described =
        rd_kafka_DescribeConfigs_result_resources(result, &count);
    std::map<std::string, std::map<std::string, std::string>> out;
    for (size_t i = 0; i < count; ++i) {
      const char* name = rd_kafka_ConfigResource_name(described[i]);
      if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return detail::kafkaError(rd_kafka_ConfigResource_error(described[i]),
                                  what + " of " + name);
      }
      auto& values = out[name];
      size_t entries = 0;
      const rd_kafka_ConfigEntry_t** configs =
          rd_kafka_ConfigResource_configs(described[i], &entries);
      for (size_t k = 0; k < entries; ++k) {
        const char* key = rd_kafka_ConfigEntry_name(configs[k]);
        const char* value = rd_kafka_ConfigEntry_value(configs[k]);
        if (key != nullptr && wanted.count(key)) values[key] = value != nullptr ? value : "";
      }
    }
    return out;
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
    return Error::of(ErrorClass::kUnknown, "kafka admin: no bootstrap servers");
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
  auto md = impl_->metadata(true, timeout);
  if (!md.ok()) return md.error();
  std::vector<TopicDescription> out;
  std::vector<std::string> existing;
  for (const auto& name : topics) {
    TopicDescription d;
    d.name = name;
    for (int i = 0; i < (*md)->topic_cnt; ++i) {
      const auto& t = (*md)->topics[i];
      if (name != t.topic) continue;
      if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        return detail::kafkaError(t.err, "topic " + name);
      }
      if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) break;
      d.exists = true;
      d.partitions = t.partition_cnt;
      d.replication = t.partition_cnt > 0 ? t.partitions[0].replica_cnt : 0;
      existing.push_back(name);
    }
    out.push_back(std::move(d));
  }
  if (config_names.empty() || existing.empty()) return out;
  auto configs = impl_->describeConfigs(
      RD_KAFKA_RESOURCE_TOPIC, existing,
      std::set<std::string>(config_names.begin(), config_names.end()), timeout,
      "describe topic configs");
  if (!configs.ok()) return configs.error();
  for (auto& d : out) {
    if (auto it = configs->find(d.name); it != configs->end()) d.configs = it->second;
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
      return Error::of(ErrorClass::kUnknown, "topic " + t.name + ": " + errstr);
    }
    requests.push_back(nt);
    for (const auto& [key, value] : t.configs) {
      if (rd_kafka_NewTopic_set_config(nt, key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        release();
        return Error::of(ErrorClass::kUnknown, "topic " + t.name + ": config " + key);
      }
    }
  }
  QueuePtr q(rd_kafka_queue_new(impl_->rk.get()));
  auto opts = impl_->options(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_CreateTopics(impl_->rk.get(), requests.data(), requests.size(), opts.get(), q.get());
  release();
  auto ev = impl_->awaitResult(q.get(), timeout, "create topics");
  if (!ev.ok()) return ev.error();
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(ev->get());
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
  auto md = impl_->metadata(false, timeout);
  if (!md.ok()) return md.error();
  if ((*md)->broker_cnt < 1) return detail::kafkaError(RD_KAFKA_RESP_ERR__TRANSPORT, "no broker");
  const std::string id = std::to_string((*md)->brokers[0].id);
  auto configs = impl_->describeConfigs(RD_KAFKA_RESOURCE_BROKER, {id}, {name}, timeout,
                                        "describe broker config");
  if (!configs.ok()) return configs.error();
  for (const auto& [resource, values] : *configs) {
    if (auto it = values.find(name); it != values.end()) {
      return std::optional<std::string>(it->second);
    }
  }
  return std::optional<std::string>();
}

Result<int> Admin::brokerCount(std::chrono::milliseconds timeout) {
  auto md = impl_->metadata(false, timeout);
  if (!md.ok()) return md.error();
  return (*md)->broker_cnt;
}

}  // namespace fanpull::kafka
