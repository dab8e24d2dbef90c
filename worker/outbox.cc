#include "worker/outbox.h"

#include <utility>

namespace fanpull {

struct Outbox::Attempt {
  std::string key;
  std::shared_ptr<const OutboxRecord> record;
  kafka::DeliveryCallback settled;
  int64_t bytes = 0;
};

Outbox::Outbox(RecordSink& sink, Clock& clock, Logger& log, Scheduler retry, Released released)
    : sink_(sink),
      clock_(clock),
      log_(log),
      retry_(std::move(retry)),
      released_(std::move(released)) {}

void Outbox::send(const std::string& key, std::shared_ptr<const OutboxRecord> record,
                  kafka::DeliveryCallback settled) {
  auto a = std::make_shared<Attempt>();
  a->key = record->key.empty() ? key : record->key;
  a->bytes = static_cast<int64_t>(record->value.size());
  a->record = std::move(record);
  a->settled = std::move(settled);
  undelivered_bytes_ += a->bytes;
  attempt(a);
}

void Outbox::attempt(const std::shared_ptr<Attempt>& a) {
  // Not copied: the sink holds the record until its delivery report.
  std::shared_ptr<const std::string> value(a->record, &a->record->value);
  auto queued = sink_.produce(a->record->topic, a->record->partition, a->key, std::move(value),
                              a->record->headers,
                              [this, a](const Result<kafka::Delivery>& d) { onDelivery(a, d); });
  if (!queued.ok()) afterFailure(a, queued.error(), kRetryAfterRefused);
}

void Outbox::onDelivery(const std::shared_ptr<Attempt>& a, const Result<kafka::Delivery>& d) {
  if (!d.ok()) {
    if (d.error().error_class == ErrorClass::kRetryable && !no_retries_) {
      log_.warn("delivery failed, producing again", {{"error", d.error().describe()}});
    }
    return afterFailure(a, d.error(), kRetryAfterFailedDelivery);
  }
  markWritable(a->record->topic);
  settle(a, d);
}

void Outbox::afterFailure(const std::shared_ptr<Attempt>& a, const Error& error,
                          std::chrono::milliseconds pause) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++produce_errors_;
  }
  if (kafka::isTopicUnavailable(error)) markUnwritable(a->record->topic, error);
  if (error.error_class == ErrorClass::kRetryable && no_retries_) {
    // Its transaction is aborted, and what it belonged to is written again from the last
    // committed one.
    log_.debug("message not written: its transaction is aborted",
               {{"topic", a->record->topic}, {"error", error.describe()}});
    return settle(a, error);
  }
  if (error.error_class != ErrorClass::kRetryable) {
    // Producing again cannot cure it: given up, once, loudly.
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++produce_failures_;
    }
    log_.error("message not written: permanent error", {{"topic", a->record->topic},
                                                        {"bytes", a->bytes},
                                                        {"error", error.describe()}});
    return settle(a, error);
  }
  if (stopping_) return;  // shutting down: the record's owner is abandoned too
  retry_(clock_.now() + pause, [this, a] { attempt(a); });
}

void Outbox::settle(const std::shared_ptr<Attempt>& a, const Result<kafka::Delivery>& outcome) {
  undelivered_bytes_ -= a->bytes;
  if (released_) released_(a->bytes);
  if (a->settled) a->settled(outcome);
}

void Outbox::markUnwritable(const std::string& topic, const Error& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, inserted] = unwritable_topics_.insert({topic, error.describe()});
    if (!inserted) {
      it->second = error.describe();
      return;
    }
    ++unwritable_count_;
  }
  log_.error("topic cannot be written", {{"topic", topic}, {"error", error.describe()}});
}

void Outbox::markWritable(const std::string& topic) {
  if (unwritable_count_.load() == 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (unwritable_topics_.erase(topic) == 0) return;
    --unwritable_count_;
  }
  log_.info("topic writable again", {{"topic", topic}});
}

OutboxStats Outbox::stats() const {
  OutboxStats s;
  s.undelivered_bytes = undelivered_bytes_.load();
  std::lock_guard<std::mutex> lock(mutex_);
  s.produce_errors = produce_errors_;
  s.produce_failures = produce_failures_;
  s.unwritable_topics = unwritable_topics_;
  return s;
}

}  // namespace fanpull
