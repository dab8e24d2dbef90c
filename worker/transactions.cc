#include "worker/transactions.h"

#include <map>

namespace fanpull {

int& TransactionGate::depth() {
  // Per thread and per gate: workers of one process (tests run several) have a gate each.
  thread_local std::map<const TransactionGate*, int> depths;
  return depths[this];
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = false;
  }
  changed_.notify_all();
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
