// FakeRecordSink: a RecordSink that keeps every record produced and delivers, fails or refuses
// them when the test says so, on the test's thread. Thread-safe.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "worker/outbox.h"

namespace fanpull::testing {

class FakeRecordSink final : public RecordSink {
 public:
  struct Produced {
    std::string topic;
    int32_t partition = kafka::kAnyPartition;
    std::string key;
    std::shared_ptr<const std::string> value;
    kafka::Headers headers;
    kafka::DeliveryCallback settled;
  };

  Result<kafka::Done> produce(const std::string& topic, int32_t partition, std::string_view key,
                              std::shared_ptr<const std::string> value,
                              const kafka::Headers& headers,
                              kafka::DeliveryCallback settled) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++attempts_;
    if (!refusals_.empty()) {
      Error e = refusals_.front();
      refusals_.pop_front();
      return e;
    }
    pending_.push_back(
        {topic, partition, std::string(key), std::move(value), headers, std::move(settled)});
    return kafka::Done{};
  }

  // The next produce() calls fail to queue with these errors, one each.
  void refuseNext(Error error) {
    std::lock_guard<std::mutex> lock(mutex_);
    refusals_.push_back(std::move(error));
  }

  // Settles the oldest record waiting for its report: delivered at the next offset, or failed.
  void deliverOldest() { settleOldest(std::nullopt); }
  void failOldest(Error error) { settleOldest(std::move(error)); }

  size_t pending() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.size();
  }
  // produce() calls, refused ones included.
  int attempts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return attempts_;
  }
  std::vector<std::string> delivered() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return delivered_;
  }
  // The value the oldest pending record points at (the sink holds it, not a copy).
  const std::string* oldestValue() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.empty() ? nullptr : pending_.front().value.get();
  }

 private:
  void settleOldest(std::optional<Error> error) {
    Produced p;
    int64_t offset = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (pending_.empty()) return;
      p = std::move(pending_.front());
      pending_.pop_front();
      if (!error) {
        offset = static_cast<int64_t>(delivered_.size());
        delivered_.push_back(*p.value);
      }
    }
    if (!p.settled) return;
    if (error) {
      p.settled(Result<kafka::Delivery>(*error));
    } else {
      p.settled(Result<kafka::Delivery>(kafka::Delivery{p.topic, 0, offset}));
    }
  }

  mutable std::mutex mutex_;
  std::deque<Produced> pending_;
  std::deque<Error> refusals_;
  std::vector<std::string> delivered_;
  int attempts_ = 0;
};

}  // namespace fanpull::testing
