// The exactly-once mode's plumbing (kafka.exactly_once, docs/RELIABILITY.md): a gate that keeps
// a group of messages inside one transaction, and the RecordSink of a transactional producer
// that says whether the open transaction holds anything and whether it can still be committed.
//
// Every message of a transactional producer belongs to the transaction open when it is queued.
// Writers enter the gate around a group (a page and its checkpoint; an event and the offset of
// its job), the committer closes it, commits and begins the next transaction, then opens it
// again: a group is never split by a commit. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "kafka/producer.h"
#include "worker/outbox.h"

namespace fanpull {

class TransactionGate {
 public:
  // Writers. Reentrant on a thread (a group may send through code that enters again). Waits
  // while the committer holds the gate closed.
  void enter();
  void leave();

  // The committer: waits until no writer is inside (new writers wait from now on), then holds
  // the gate closed until open(). Not reentrant; one committer at a time.
  void close();
  void open();

 private:
  int& depth();  // this thread's entries into this gate

  std::mutex mutex_;
  std::condition_variable changed_;
  int writers_ = 0;
  bool closed_ = false;
};

// Holds `gate` entered for its scope.
class GateEntry {
 public:
  explicit GateEntry(TransactionGate* gate) : gate_(gate) {
    if (gate_) gate_->enter();
  }
  ~GateEntry() {
    if (gate_) gate_->leave();
  }
  GateEntry(const GateEntry&) = delete;
  GateEntry& operator=(const GateEntry&) = delete;

 private:
  TransactionGate* gate_;
};

// A RecordSink writing through a transactional producer inside `gate`. Any message that fails
// (refused at queuing, or its delivery failed) dooms the open transaction: it can only be aborted.
class TransactionalRecordSink final : public RecordSink {
 public:
  TransactionalRecordSink(kafka::Producer& producer, TransactionGate& gate)
      : producer_(producer), gate_(gate) {}

  Result<kafka::Done> produce(const std::string& topic, int32_t partition, std::string_view key,
                              std::shared_ptr<const std::string> value,
                              const kafka::Headers& headers,
                              kafka::DeliveryCallback settled) override;

  // With the gate closed: whether anything was queued since the last call (and forgets it).
  bool takeWritten();
  // Why the open transaction cannot be committed; nullopt while it can.
  std::optional<Error> doomed() const;
  // A new transaction began (the gate closed): nothing of the aborted one dooms it.
  void began();
 private:
  void doom(const Error& error);

  kafka::Producer& producer_;
  TransactionGate& gate_;
  mutable std::mutex mutex_;
  bool written_ = false;
  std::optional<Error> doomed_;
  uint64_t transaction_ = 0;  // began() calls: a late failure of an aborted one dooms nothing
};

}  // namespace fanpull
