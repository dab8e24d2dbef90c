#include "kafka/producer.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "kafka/rdkafka_support.h"

namespace fanpull::kafka {

class Producer::Impl : public detail::HandleContext {
 public:
  detail::HandlePtr rk;
  size_t max_message_bytes = 0;
  bool background = true;
  std::chrono::milliseconds close_timeout{0};

  std::thread poller;
  std::atomic<bool> stop{false};
  std::mutex served_mu;  // guards nothing but the wait in flush(); pairs with served_cv
  std::condition_variable served_cv;

  ~Impl() override { shutdown(); }

  void pollLoop() {
    while (!stop.load()) {
      rd_kafka_poll(rk.get(), 100);
      std::lock_guard<std::mutex> lock(served_mu);
      served_cv.notify_all();
    }
  }

  // Waits until no message is in flight (the poll thread serving callbacks), or the deadline.
  bool waitDrained(std::chrono::milliseconds timeout) {
    if (!background) {
      rd_kafka_flush(rk.get(), detail::toTimeoutMs(timeout));
      return rd_kafka_outq_len(rk.get()) == 0;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(served_mu);
    return served_cv.wait_until(lock, deadline, [&] { return rd_kafka_outq_len(rk.get()) == 0; });
  }

  void shutdown() {
    if (!rk) return;
    if (!waitDrained(close_timeout)) {
      rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      waitDrained(std::chrono::milliseconds(2000));
    }
    stop = true;
    if (poller.joinable()) poller.join();
    // Serve what is left so no callback (and its heap state) is lost.
    while (rd_kafka_outq_len(rk.get()) > 0 && rd_kafka_poll(rk.get(), 0) > 0) {
    }
    rk.reset();
  }

  // What a message carries to its delivery report: the callback, and the value when it was
  // not copied (librdkafka reads it until then).
  struct Pending {
    DeliveryCallback callback;
    std::shared_ptr<const std::string> value;
  };

  static void onDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* pending = static_cast<Pending*>(m->_private);
    if (pending == nullptr) return;
    std::unique_ptr<Pending> owned(pending);
    if (!owned->callback) return;
    auto* self = static_cast<Impl*>(static_cast<detail::HandleContext*>(opaque));
    std::string topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
    try {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        owned->callback(Result<Delivery>(detail::kafkaError(m->err, "deliver to " + topic)));
      } else {
        owned->callback(Result<Delivery>(Delivery{topic, m->partition, m->offset}));
      }
    } catch (const std::exception& ex) {
      self->report(std::string("delivery callback threw: ") + ex.what());
    } catch (...) {
      self->report("delivery callback threw");
    }
  }

  // `kept`: the value's owner, held until the delivery report instead of copying the value.
  Result<Done> produce(const std::string& topic, std::string_view key, std::string_view value,
                       std::shared_ptr<const std::string> kept, const Headers& headers,
                       DeliveryCallback callback, int32_t partition) {
    detail::HeadersPtr hdrs;
    if (!headers.empty()) {
      hdrs.reset(rd_kafka_headers_new(headers.size()));
      for (const auto& h : headers) {
        rd_kafka_header_add(hdrs.get(), h.key.data(), static_cast<ssize_t>(h.key.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    const bool copy = kept == nullptr;
    std::unique_ptr<Pending> pending;
    if (callback || kept) pending.reset(new Pending{std::move(callback), std::move(kept)});
    // librdkafka copies the key, and the value too unless its owner is kept (F_COPY); it takes
    // the headers only on success.
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(value.empty() ? nullptr : const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(copy ? RD_KAFKA_MSG_F_COPY : 0), RD_KAFKA_V_HEADERS(hdrs.get()),
        RD_KAFKA_V_OPAQUE(pending.get()), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (err == RD_KAFKA_RESP_ERR__FATAL) {
        if (auto fatal = fatalError()) return *fatal;
      }
      return detail::kafkaError(err, "produce to " + topic);
    }
    hdrs.release();
    pending.release();
    return Done{};
  }

  std::optional<Error> fatalError() const {
    char reason[512];
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk.get(), reason, sizeof reason);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
    Error e = detail::kafkaError(err, "kafka producer fatal error");
    e.error_class = ErrorClass::kUnknown;
    e.cause += ": ";
    e.cause += reason;
    return e;
  }

  void report(const std::string& message) {
    if (log) {
      log(3, "FANPULL", message);
    } else {
      std::fprintf(stderr, "fanpull kafka producer: %s\n", message.c_str());
    }
  }
};

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Producer::~Producer() = default;

Result<std::unique_ptr<Producer>> Producer::create(const ProducerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log = options.log;
  impl->background = options.background_poll;
  impl->close_timeout = options.close_timeout;
  Properties defaults = {
      {"client.id", "fanpull"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
  };
  if (!options.bootstrap_servers.empty()) {
    defaults["bootstrap.servers"] = options.bootstrap_servers;
  }
  if (!options.transactional_id.empty()) defaults["transactional.id"] = options.transactional_id;
  auto conf = detail::buildConf(defaults, options.properties);
  if (!conf.ok()) return conf.error();
  if (detail::confValue(conf->get(), "bootstrap.servers").empty()) {
    return Error::of(ErrorClass::kUnknown, "kafka producer: no bootstrap servers");
  }
  impl->max_message_bytes =
      static_cast<size_t>(std::stoull(detail::confValue(conf->get(), "message.max.bytes")));
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Impl::onDelivery);
  detail::installContext(conf->get(), impl.get());
  auto rk = detail::newHandle(RD_KAFKA_PRODUCER, std::move(*conf), "kafka producer");
  if (!rk.ok()) return rk.error();
  impl->rk = std::move(*rk);
  if (impl->background) {
    Impl* raw = impl.get();
    impl->poller = std::thread([raw] { raw->pollLoop(); });
  }
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Result<Done> Producer::produce(const std::string& topic, std::string_view key,
                               std::string_view value, const Headers& headers,
                               DeliveryCallback callback) {
  return impl_->produce(topic, key, value, nullptr, headers, std::move(callback), kAnyPartition);
}

Result<Done> Producer::produce(const std::string& topic, std::string_view key,
                               std::shared_ptr<const std::string> value, const Headers& headers,
                               DeliveryCallback callback, int32_t partition) {
  const std::string_view view = value ? std::string_view(*value) : std::string_view();
  return impl_->produce(topic, key, view, std::move(value), headers, std::move(callback),
                        partition);
}

namespace {

// A transactional call's outcome: what librdkafka says is left to do.
TxnOutcome txnOutcome(rd_kafka_error_t* raw, std::string_view what) {
  if (raw == nullptr) return std::nullopt;
  const TxnNext next = rd_kafka_error_is_fatal(raw)             ? TxnNext::kFatal
                       : rd_kafka_error_txn_requires_abort(raw) ? TxnNext::kAbort
                       : rd_kafka_error_is_retriable(raw)       ? TxnNext::kRetry
                                                                : TxnNext::kAbort;
  return TxnError{next, detail::kafkaError(detail::ErrorObjectPtr(raw), what)};
}

}  // namespace

TxnOutcome Producer::initTransactions(std::chrono::milliseconds timeout) {
  return txnOutcome(rd_kafka_init_transactions(impl_->rk.get(), detail::toTimeoutMs(timeout)),
                    "kafka init transactions");
}

TxnOutcome Producer::beginTransaction() {
  return txnOutcome(rd_kafka_begin_transaction(impl_->rk.get()), "kafka begin transaction");
}

TxnOutcome Producer::sendOffsetsToTransaction(const std::vector<PartitionOffset>& offsets,
                                              const GroupMetadata& group,
                                              std::chrono::milliseconds timeout) {
  detail::PartitionListPtr list = detail::toList(offsets);
  return txnOutcome(rd_kafka_send_offsets_to_transaction(impl_->rk.get(), list.get(), group.meta,
                                                         detail::toTimeoutMs(timeout)),
                    "kafka send offsets to transaction");
}

TxnOutcome Producer::commitTransaction(std::chrono::milliseconds timeout) {
  return txnOutcome(rd_kafka_commit_transaction(impl_->rk.get(), detail::toTimeoutMs(timeout)),
                    "kafka commit transaction");
}

TxnOutcome Producer::abortTransaction(std::chrono::milliseconds timeout) {
  return txnOutcome(rd_kafka_abort_transaction(impl_->rk.get(), detail::toTimeoutMs(timeout)),
                    "kafka abort transaction");
}

int Producer::poll(std::chrono::milliseconds timeout) {
  if (impl_->background) return 0;
  return rd_kafka_poll(impl_->rk.get(), detail::toTimeoutMs(timeout));
}

Result<Done> Producer::flush(std::chrono::milliseconds timeout) {
  if (impl_->waitDrained(timeout)) return Done{};
  return Error::of(ErrorClass::kRetryable, "kafka flush: " + std::to_string(inFlight()) +
                                               " message(s) still in flight after " +
                                               std::to_string(timeout.count()) + " ms");
}

Result<int> Producer::prepareTopic(const std::string& topic, std::chrono::milliseconds timeout) {
  auto partitions = detail::topicPartitionCount(impl_->rk.get(), topic, timeout);
  if (!partitions.ok() && isTopicUnavailable(partitions.error())) {
    Error e = partitions.error();
    e.error_class = ErrorClass::kUnknown;  // waiting does not make a missing topic appear
    return e;
  }
  return partitions;
}

int Producer::inFlight() const { return rd_kafka_outq_len(impl_->rk.get()); }

size_t Producer::maxMessageBytes() const { return impl_->max_message_bytes; }

std::optional<Error> Producer::fatalError() const { return impl_->fatalError(); }

bool isTopicUnavailable(const Error& error) {
  // The cause ends with librdkafka's error name in parentheses (detail::kafkaError).
  for (const char* name : {"(UNKNOWN_TOPIC_OR_PART)", "(_UNKNOWN_TOPIC)",
                           "(TOPIC_AUTHORIZATION_FAILED)"}) {
    if (error.cause.find(name) != std::string::npos) return true;
  }
  return false;
}

}  // namespace fanpull::kafka
