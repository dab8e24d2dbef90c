// The exactly-once mode's plumbing (kafka.exactly_once, docs/RELIABILITY.md): a gate that keeps
// a group of messages inside one transaction, and the RecordSink of a transactional producer
// that says whether the open transaction holds anything and whether it can still be committed.
//
// Every message of a transactional producer belongs to the transaction open when it is queued.
// Writers hand the gate a group (a page and its checkpoint; an event and the offset of its job)
// to run inside it; the committer closes it, commits and begins the next transaction, then opens
// it again: a group is never split by a commit. A group handed over while the gate is closed is
// held, not waited for: it runs when the gate opens, in the next transaction, so lanes go on
// calling WeChat while a commit waits for the broker. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "kafka/producer.h"
#include "worker/outbox.h"

namespace fanpull {

class TransactionGate {
 public:
  // Runs `group` inside the gate now if it is open (or this thread is inside already);
  // while the committer holds it closed, keeps it, with `bytes` counted in heldBytes(), to run
  // at open(). Never waits for a commit. Groups run in the order they were handed over.
  void run(std::function<void()> group, int64_t bytes = 0);

  // Writers that must write now. Reentrant on a thread (a group may send through code that
  // enters again). Waits while the committer holds the gate closed.
  void enter();
  void leave();

  // The committer: waits until no writer is inside (new writers wait, new groups are held from
  // now on), then holds the gate closed until open(). Not reentrant; one committer at a time.
  void close();
  // Runs the groups held meanwhile on this thread (and any handed over while they run), then
  // lets writers in again.
  void open();
  // With the gate closed: forgets the groups held (their transaction was aborted; what they
  // belong to is done again from the last committed transaction).
  size_t discardHeld();

  // Bytes of the groups held now (an undelivered budget counts them).
  int64_t heldBytes() const { return held_bytes_.load(); }

 private:
  int& depth();  // this thread's entries into this gate

  std::mutex mutex_;
  std::condition_variable changed_;
  int writers_ = 0;
  bool closed_ = false;
  std::deque<std::pair<std::function<void()>, int64_t>> held_;
  std::atomic<int64_t> held_bytes_{0};
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
