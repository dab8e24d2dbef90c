#include "kafka/consumer.h"

#include <unistd.h>

#include <atomic>
#include <cstring>

#include "kafka/rdkafka_support.h"

namespace fanpull::kafka {

class Consumer::Impl : public detail::HandleContext {
 public:
  detail::HandlePtr rk;
  bool has_group = false;
  bool report_partition_end = false;
  bool closed = false;
  bool close_unfinished = false;  // close() gave up: destroyed without closing again
  std::function<void(const std::vector<TopicPartition>&)> on_assigned;
  std::function<void(const std::vector<TopicPartition>&, bool)> on_revoked;
  std::function<void(const Result<std::vector<PartitionOffset>>&)> on_commit;
  std::function<void(const std::string&)> on_statistics;

  ~Impl() override {
    if (!rk) return;
    if (close_unfinished) {
      // The group was not left in time (brokers away): do not wait for it a second time.
      rd_kafka_destroy_flags(rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    } else if (!closed) {
      rd_kafka_consumer_close(rk.get());
    }
  }

  static Impl* from(void* opaque) {
    return static_cast<Impl*>(static_cast<detail::HandleContext*>(opaque));
  }

  // Runs one of the user's callbacks from a librdkafka callback: an exception must never unwind
  // through librdkafka's C frames, so it is caught and logged, and librdkafka's own work (the
  // assign or unassign around it) still happens.
  template <typename F>
  void guarded(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      logLine(3, std::string(what) + " callback threw: " + e.what());
    } catch (...) {
      logLine(3, std::string(what) + " callback threw");
    }
  }

  static void onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    Impl* self = from(opaque);
    // NULL once the consumer has left its group (a revocation while closing).
    const char* protocol = rd_kafka_rebalance_protocol(rk);
    const bool cooperative = protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
    std::vector<TopicPartition> list = detail::fromList(partitions);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        detail::ErrorObjectPtr e(rd_kafka_incremental_assign(rk, partitions));
        if (e)
          self->logLine(
              3, "incremental assign failed: " + std::string(rd_kafka_error_string(e.get())));
      } else {
        rd_kafka_assign(rk, partitions);
      }
      if (self->on_assigned) self->guarded("assignment", [&] { self->on_assigned(list); });
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      const bool lost = rd_kafka_assignment_lost(rk) != 0;
      if (self->on_revoked) self->guarded("revocation", [&] { self->on_revoked(list, lost); });
    } else {
      self->logLine(3, std::string("rebalance error: ") + rd_kafka_err2str(err));
      if (self->on_revoked) self->guarded("revocation", [&] { self->on_revoked(list, true); });
    }
    if (cooperative) {
      detail::ErrorObjectPtr e(rd_kafka_incremental_unassign(rk, partitions));
      if (e)
        self->logLine(
            3, "incremental unassign failed: " + std::string(rd_kafka_error_string(e.get())));
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }

  static void onCommit(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    Impl* self = from(opaque);
    if (!self->on_commit) return;
    self->guarded("commit", [&] { self->reportCommit(err, offsets); });
  }

  void reportCommit(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;  // nothing was to be committed
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      on_commit(Result<std::vector<PartitionOffset>>(detail::kafkaError(err, "commit")));
      return;
    }
    if (auto e = detail::firstPartitionError(offsets, "commit")) {
      on_commit(Result<std::vector<PartitionOffset>>(*e));
      return;
    }
    std::vector<PartitionOffset> done;
    for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
      done.push_back(
          {{offsets->elems[i].topic, offsets->elems[i].partition}, offsets->elems[i].offset});
    }
    on_commit(Result<std::vector<PartitionOffset>>(std::move(done)));
  }

  static int onStatistics(rd_kafka_t* /*rk*/, char* json, size_t json_len, void* opaque) {
    Impl* self = from(opaque);
    if (self->on_statistics) {
      self->guarded("statistics", [&] { self->on_statistics(std::string(json, json_len)); });
    }
    return 0;  // librdkafka frees json
  }

  void logLine(int level, const std::string& message) noexcept {
    try {
      if (log) log(level, "FANPULL", message);
    } catch (...) {  // a log sink that throws loses the line, nothing else
    }
  }

  Result<Done> ensureOpen(const char* what) const {
    if (closed)
      return Error::of(ErrorClass::kUnknown,
          std::string("kafka consumer: ") + what + " after close()");
    return Done{};
  }
};

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Consumer::~Consumer() = default;

Result<std::unique_ptr<Consumer>> Consumer::create(const ConsumerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log = options.log;
  impl->has_group = !options.group_id.empty();
  impl->report_partition_end = options.report_partition_end;
  impl->on_assigned = options.on_assigned;
  impl->on_revoked = options.on_revoked;
  impl->on_commit = options.on_commit;
  impl->on_statistics = options.on_statistics;
  Properties defaults = {
      {"client.id", "fanpull"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", options.report_partition_end ? "true" : "false"},
  };
  if (impl->has_group) {
    defaults["group.id"] = options.group_id;
    defaults["partition.assignment.strategy"] = "cooperative-sticky";
  } else {
    // librdkafka 2.0.2 refuses assign() without a group handle (_UNKNOWN_GROUP): a reader gets a
    // private group id it never joins (no subscribe) and never commits to.
    static std::atomic<uint64_t> readers{0};
    defaults["group.id"] =
        "fanpull-reader-" + std::to_string(::getpid()) + "-" + std::to_string(++readers);
  }
  if (options.on_statistics) defaults["statistics.interval.ms"] = "5000";
  if (!options.bootstrap_servers.empty()) {
    defaults["bootstrap.servers"] = options.bootstrap_servers;
  }
  auto conf = detail::buildConf(defaults, options.properties);
  if (!conf.ok()) return conf.error();
  if (detail::confValue(conf->get(), "bootstrap.servers").empty()) {
    return Error::of(ErrorClass::kUnknown, "kafka consumer: no bootstrap servers");
  }
  if (impl->has_group) rd_kafka_conf_set_rebalance_cb(conf->get(), &Impl::onRebalance);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &Impl::onCommit);
  if (impl->on_statistics) rd_kafka_conf_set_stats_cb(conf->get(), &Impl::onStatistics);
  detail::installContext(conf->get(), impl.get());
  auto rk = detail::newHandle(RD_KAFKA_CONSUMER, std::move(*conf), "kafka consumer");
  if (!rk.ok()) return rk.error();
  impl->rk = std::move(*rk);
  rd_kafka_poll_set_consumer(impl->rk.get());
  return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}

bool Consumer::hasGroup() const { return impl_->has_group; }

std::shared_ptr<const GroupMetadata> Consumer::groupMetadata() const {
  if (!impl_->has_group) return nullptr;
  rd_kafka_consumer_group_metadata_t* meta = rd_kafka_consumer_group_metadata(impl_->rk.get());
  if (meta == nullptr) return nullptr;
  return std::make_shared<const GroupMetadata>(meta);
}

Result<Done> Consumer::subscribe(const std::vector<std::string>& topics) {
  if (auto open = impl_->ensureOpen("subscribe"); !open.ok()) return open;
  if (!impl_->has_group) {
    return Error::of(ErrorClass::kUnknown,
        "kafka consumer: subscribe needs a group id (a reader uses assign)");
  }
  std::vector<TopicPartition> list;
  for (const auto& t : topics) list.push_back({t, RD_KAFKA_PARTITION_UA});
  auto plist = detail::toList(list);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(impl_->rk.get(), plist.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "subscribe");
  return Done{};
}

Result<Done> Consumer::assign(const std::vector<PartitionOffset>& partitions) {
  if (auto open = impl_->ensureOpen("assign"); !open.ok()) return open;
  auto plist = detail::toList(partitions);
  rd_kafka_resp_err_t err = rd_kafka_assign(impl_->rk.get(), plist.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "assign");
  return Done{};
}

Result<std::optional<ConsumedMessage>> Consumer::poll(std::chrono::milliseconds timeout) {
  using Out = Result<std::optional<ConsumedMessage>>;
  if (auto open = impl_->ensureOpen("poll"); !open.ok()) return open.error();
  detail::MessagePtr m(rd_kafka_consumer_poll(impl_->rk.get(), detail::toTimeoutMs(timeout)));
  if (!m) return Out(std::nullopt);
  ConsumedMessage out;
  if (m->rkt != nullptr) out.topic = rd_kafka_topic_name(m->rkt);
  out.partition = m->partition;
  out.offset = m->offset;
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (!impl_->report_partition_end) return Out(std::nullopt);
    out.end_of_partition = true;
    return Out(std::move(out));
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::string what = "consume";
    if (!out.topic.empty()) what += " " + out.topic + "[" + std::to_string(out.partition) + "]";
    Error e = detail::kafkaError(m->err, what);
    const char* detail_text = rd_kafka_message_errstr(m.get());
    if (detail_text != nullptr && std::strcmp(detail_text, rd_kafka_err2str(m->err)) != 0) {
      e.cause += ": ";
      e.cause += detail_text;
    }
    return e;
  }
  if (m->key != nullptr) out.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) out.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t ts_type;
  out.timestamp_ms = rd_kafka_message_timestamp(m.get(), &ts_type);
  rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
  if (rd_kafka_message_headers(m.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      out.headers.push_back(
          {name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
    }
  }
  return Out(std::move(out));
}

Result<Done> Consumer::commit(const std::string& topic, int32_t partition, int64_t next_offset) {
  return commit(std::vector<PartitionOffset>{{{topic, partition}, next_offset}});
}

Result<Done> Consumer::commit(const std::vector<PartitionOffset>& offsets,
                              std::chrono::milliseconds timeout) {
  if (auto open = impl_->ensureOpen("commit"); !open.ok()) return open;
  if (!impl_->has_group) return Error::of(ErrorClass::kUnknown,
      "kafka consumer: commit needs a group id");
  auto plist = detail::toList(offsets);
  // The outcome comes to a queue of this call's own, waited for at most `timeout`
  // (rd_kafka_commit would wait for a coordinator as long as there is none).
  detail::QueuePtr queue(rd_kafka_queue_new(impl_->rk.get()));
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(impl_->rk.get(), plist.get(), queue.get(), nullptr, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "commit");
  detail::EventPtr event(rd_kafka_queue_poll(queue.get(), detail::toTimeoutMs(timeout)));
  if (!event) {
    return Error::of(ErrorClass::kRetryable, "commit: no answer within " +
                                                 std::to_string(timeout.count()) + " ms");
  }
  err = rd_kafka_event_error(event.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "commit");
  if (const rd_kafka_topic_partition_list_t* done =
          rd_kafka_event_topic_partition_list(event.get())) {
    if (auto e = detail::firstPartitionError(done, "commit")) return *e;
  }
  return Done{};
}

Result<Done> Consumer::commitAsync(const std::string& topic, int32_t partition,
                                   int64_t next_offset) {
  return commitAsync(std::vector<PartitionOffset>{{{topic, partition}, next_offset}});
}

Result<Done> Consumer::commitAsync(const std::vector<PartitionOffset>& offsets) {
  if (auto open = impl_->ensureOpen("commit"); !open.ok()) return open;
  if (!impl_->has_group) return Error::of(ErrorClass::kUnknown,
      "kafka consumer: commit needs a group id");
  auto plist = detail::toList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(impl_->rk.get(), plist.get(), 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "commit");
  return Done{};
}

Result<std::optional<int64_t>> Consumer::committed(const TopicPartition& partition,
                                                   std::chrono::milliseconds timeout) {
  if (auto open = impl_->ensureOpen("committed"); !open.ok()) return open.error();
  auto plist = detail::toList(std::vector<TopicPartition>{partition});
  rd_kafka_resp_err_t err =
      rd_kafka_committed(impl_->rk.get(), plist.get(), detail::toTimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "committed offsets");
  if (auto e = detail::firstPartitionError(plist.get(), "committed offset of")) return *e;
  int64_t offset = plist->elems[0].offset;
  if (offset < 0) return Result<std::optional<int64_t>>(std::nullopt);
  return Result<std::optional<int64_t>>(offset);
}

Result<Done> Consumer::seek(const std::vector<PartitionOffset>& offsets,
                            std::chrono::milliseconds timeout) {
  if (auto open = impl_->ensureOpen("seek"); !open.ok()) return open;
  auto plist = detail::toList(offsets);
  detail::ErrorObjectPtr e(
      rd_kafka_seek_partitions(impl_->rk.get(), plist.get(), detail::toTimeoutMs(timeout)));
  if (e) return detail::kafkaError(std::move(e), "seek");
  if (auto failed = detail::firstPartitionError(plist.get(), "seek")) return *failed;
  return Done{};
}

Result<Done> Consumer::pause(const std::vector<TopicPartition>& partitions) {
  if (auto open = impl_->ensureOpen("pause"); !open.ok()) return open;
  auto plist = detail::toList(partitions);
  rd_kafka_resp_err_t err = rd_kafka_pause_partitions(impl_->rk.get(), plist.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "pause");
  if (auto e = detail::firstPartitionError(plist.get(), "pause")) return *e;
  return Done{};
}

Result<Done> Consumer::resume(const std::vector<TopicPartition>& partitions) {
  if (auto open = impl_->ensureOpen("resume"); !open.ok()) return open;
  auto plist = detail::toList(partitions);
  rd_kafka_resp_err_t err = rd_kafka_resume_partitions(impl_->rk.get(), plist.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "resume");
  if (auto e = detail::firstPartitionError(plist.get(), "resume")) return *e;
  // librdkafka 2.0.2 applies a resume on its main thread and leaves asleep the broker thread
  // that fetches the partition: with nothing else to fetch there, that thread fetches again
  // only when it next wakes by itself, up to a second later. A request to each leader wakes it
  // at once: the latest offsets of the resumed partitions, asked of their leaders without
  // waiting for the answer (timeout 0: sent, then given up; librdkafka drops the late answer).
  for (int i = 0; i < plist->cnt; ++i) plist->elems[i].offset = RD_KAFKA_OFFSET_END;
  (void)rd_kafka_offsets_for_times(impl_->rk.get(), plist.get(), 0);
  return Done{};
}

Result<std::vector<TopicPartition>> Consumer::assignment() const {
  if (auto open = impl_->ensureOpen("assignment"); !open.ok()) return open.error();
  rd_kafka_topic_partition_list_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_assignment(impl_->rk.get(), &raw);
  detail::PartitionListPtr plist(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return detail::kafkaError(err, "assignment");
  return detail::fromList(plist.get());
}

Result<int> Consumer::partitionCount(const std::string& topic, std::chrono::milliseconds timeout) {
  if (auto open = impl_->ensureOpen("metadata"); !open.ok()) return open.error();
  return detail::topicPartitionCount(impl_->rk.get(), topic, timeout);
}

Result<std::pair<int64_t, int64_t>> Consumer::watermarks(const TopicPartition& partition,
                                                         std::chrono::milliseconds timeout) {
  if (auto open = impl_->ensureOpen("watermarks"); !open.ok()) return open.error();
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
      impl_->rk.get(), partition.topic.c_str(), partition.partition, &low, &high,
      detail::toTimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return detail::kafkaError(
        err, "watermarks of " + partition.topic + "[" + std::to_string(partition.partition) + "]");
  }
  return std::make_pair(low, high);
}

Result<Done> Consumer::close(std::chrono::milliseconds timeout) {
  if (impl_->closed) return Done{};
  impl_->closed = true;
  // Closed in librdkafka's background; its events come to this queue, the revocation handled
  // here as the rebalance callback would, until the close is done or the time is up.
  detail::QueuePtr queue(rd_kafka_queue_new(impl_->rk.get()));
  if (detail::ErrorObjectPtr e{rd_kafka_consumer_close_queue(impl_->rk.get(), queue.get())}) {
    return detail::kafkaError(std::move(e), "close");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!rd_kafka_consumer_closed(impl_->rk.get())) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      impl_->close_unfinished = true;
      return Error::of(ErrorClass::kRetryable, "close: the group was not left within " +
                                                   std::to_string(timeout.count()) + " ms");
    }
    detail::EventPtr event(rd_kafka_queue_poll(
        queue.get(), static_cast<int>(std::min<int64_t>(left.count(), 100))));
    if (event && rd_kafka_event_type(event.get()) == RD_KAFKA_EVENT_REBALANCE) {
      Impl::onRebalance(impl_->rk.get(), rd_kafka_event_error(event.get()),
                        rd_kafka_event_topic_partition_list(event.get()),
                        static_cast<detail::HandleContext*>(impl_.get()));
    }
  }
  return Done{};
}

}  // namespace fanpull::kafka
