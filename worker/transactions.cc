#include "worker/transactions.h"

#include <map>

namespace fanpull {

int& TransactionGate::depth() {
  // Per thread and per gate: workers of one process (tests run several) have a gate each.
  thread_local std::map<const TransactionGate*, int> depths;
  return depths[this];
}

void TransactionGate::run(std::function<void()> group, int64_t bytes) {
  int& d = depth();
  if (d == 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      held_bytes_ += bytes;
      held_.emplace_back(std::move(group), bytes);
      return;
    }
    ++writers_;
  }
  ++d;
  struct Leave {
    TransactionGate* gate;
    ~Leave() { gate->leave(); }
  } leave{this};
  group();
}

void TransactionGate::enter() {
  int& d = depth();
  if (d++ > 0) return;
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !closed_; });
  ++writers_;
}

void TransactionGate::leave() {
  int& d = depth();
  if (--d > 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (--writers_ == 0) changed_.notify_all();
}

void TransactionGate::close() {
  std::unique_lock<std::mutex> lock(mutex_);
  closed_ = true;  // writers arriving now wait, so a steady stream cannot starve the committer
  changed_.wait(lock, [this] { return writers_ == 0; });
}

void TransactionGate::open() {
  // The committer runs the held groups as a writer inside the closed gate: groups handed over
  // meanwhile are held behind them, so the order stays the order they were handed over in.
  int& d = depth();
  ++d;
  for (;;) {
    std::deque<std::pair<std::function<void()>, int64_t>> due;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_.empty()) {
        closed_ = false;
        break;
      }
      due.swap(held_);
    }
    for (auto& [group, bytes] : due) {
      held_bytes_ -= bytes;
      try {
        group();
      } catch (...) {
        // A group reports its own failures; one that throws must not keep the gate closed.
      }
    }
  }
  --d;
  changed_.notify_all();
}

size_t TransactionGate::discardHeld() {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t count = held_.size();
  held_.clear();
  held_bytes_ = 0;
  return count;
}

Result<kafka::Done> TransactionalRecordSink::produce(const std::string& topic, int32_t partition,
                                                     std::string_view key,
                                                     std::shared_ptr<const std::string> value,
                                                     const kafka::Headers& headers,
                                                     kafka::DeliveryCallback settled) {
  GateEntry inside(&gate_);
  uint64_t transaction = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    transaction = transaction_;
  }
  auto checked = [this, transaction, settled = std::move(settled)](const Result<kafka::Delivery>& d) {
    if (!d.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (transaction == transaction_ && !doomed_) doomed_ = d.error();
    }
    if (settled) settled(d);
  };
  auto queued =
      producer_.produce(topic, key, std::move(value), headers, std::move(checked), partition);
  if (!queued.ok()) {
    doom(queued.error());
    return queued;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  written_ = true;
  return queued;
}

bool TransactionalRecordSink::takeWritten() {
  std::lock_guard<std::mutex> lock(mutex_);
  bool was = written_;
  written_ = false;
  return was;
}

std::optional<Error> TransactionalRecordSink::doomed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return doomed_;
}

void TransactionalRecordSink::began() {
  std::lock_guard<std::mutex> lock(mutex_);
  doomed_.reset();
  written_ = false;
  ++transaction_;
}

void TransactionalRecordSink::doom(const Error& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!doomed_) doomed_ = error;
}

}  // namespace fanpull
