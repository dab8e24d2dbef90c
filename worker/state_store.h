// StateStore: what the state topic (docs/CONTRACTS.md, "State") says about the jobs of the jobs
// partitions this worker owns: the newest checkpoint of every job under way and a small "done"
// record of every job that ended in the last 7 days (duplicate detection). Jobs partition p's
// records live in state partition p, keyed "job/<job_id>"; a worker assigned p restores state
// partition p before it runs any job of p, and forgets it when p is revoked, so memory holds
// what the owned partitions need, not history. Within a partition the log's order decides which
// record wins, never a clock. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "kafka/topic_scan.h"
#include "worker/messages.h"

namespace fanpull {

// The state topic's key of a job's checkpoint and done record.
std::string jobStateKey(const std::string& job_id);

// The calls a merchant's owner reserved on one Beijing day: written (and acknowledged) before
// the calls are made, so whoever owns the merchant next, after a crash, a restart or a
// rebalance, continues the same count; a crash may waste reserved calls, never exceed the
// budget. Key "calls/<appid>", one record per merchant (compaction keeps the newest).
struct CallsReserved {
  std::string appid;
  int64_t day_end_ms = 0;  // the Beijing midnight that ends the day the calls belong to
  int64_t reserved = 0;
};
std::string callsStateKey(const std::string& appid);
std::string encodeCalls(const CallsReserved& calls);
std::optional<CallsReserved> parseCalls(std::string_view value);

// The state topic's key of a merchant's sealed tokens (worker/state_token_store.h).
std::string tokenStateKey(const std::string& appid);

// True for a record that ends its job (completed or failed): kept as a done record.
bool isDone(const ProgressRecord& record);

// The record the state topic keeps for `record`: a done record drops the cursor and the end event
// (nothing resumes from it); any other record is kept whole.
ProgressRecord stateRecordOf(const ProgressRecord& record);

struct StateRestore {
  int64_t records = 0;  // state records read from the partition
  int64_t jobs = 0;     // jobs known afterwards (under way and done)
  std::chrono::milliseconds took{0};
  // Keys of done records older than kDoneKept: forgotten here; the worker writes their
  // tombstones so that compaction removes them from the topic too.
  std::vector<std::string> expired;
  // The newest calls reservation of each merchant of the partition, by appid.
  std::map<std::string, CallsReserved> calls;
  // The newest token record of each merchant of the partition, by appid, as written (sealed).
  std::map<std::string, std::string> tokens;
};

// Reads partition `partition` of `topic` with `scanner` to the end the broker reports.
// Errors: not read before `timeout` (retryable).
std::function<Result<int64_t>(
    const std::function<void(std::string_view key, std::string_view value)>&)>
partitionReader(kafka::TopicScanner& scanner, std::string topic, int32_t partition,
                std::chrono::milliseconds timeout);

// True for the keys written outside transactions with exactly_once (the day's calls, tokens).
bool isDurableStateKey(std::string_view key);

// The start of the cause transactionalPartitionReader() gives when a transaction is still open
// in the partition (the worker waits and reads again).
inline constexpr std::string_view kTransactionStillOpen = "a transaction is still open";

// exactly_once: reads partition `partition` of `topic` twice, the records written outside
// transactions with `uncommitted` (isolation.level read_uncommitted: a transaction left open
// must not hide a call reserved after it began) and the others with `committed`. Errors: those
// of the scans; a transaction still open in the partition (retryable: the partition's previous
// owner crashed or lost it, and the cluster aborts it within transaction.timeout.ms).
std::function<Result<int64_t>(
    const std::function<void(std::string_view key, std::string_view value)>&)>
transactionalPartitionReader(kafka::TopicScanner& committed, kafka::TopicScanner& uncommitted,
                             std::string topic, int32_t partition,
                             std::chrono::milliseconds timeout);

class StateStore {
 public:
  // How long a finished job's id is remembered (docs/CONTRACTS.md, Event: `duplicate`).
  static constexpr std::chrono::hours kDoneKept{24 * 7};

  // Reads one state partition's records in the log's order, passing each key and value (empty:
  // a tombstone) to `visit`; returns how many it read.
  using Visit = std::function<void(std::string_view key, std::string_view value)>;
  using PartitionReader = std::function<Result<int64_t>(const Visit& visit)>;

  // Reads `partition` with `read` (from its first record to its end), replacing what was known
  // of it, and holds it from then on. `now` decides which done records have expired.
  // Errors: those of `read` (the partition is then not held, and its jobs must not run).
  Result<StateRestore> restore(int32_t partition, TimePoint now, const PartitionReader& read);

  // A record of the log, in the log's order: it replaces the job's record (a null value, a
  // tombstone, removes it) unless that record already ended the job or is ending it, which a
  // late checkpoint of the walk never reopens. Ignored for a partition not held.
  void applyLogged(int32_t partition, std::string_view key, std::string_view value);
  // This worker's own checkpoint of a job of `partition`, about to be written to the topic.
  // Returns the value the state topic keeps for it (stateRecordOf, encoded), held or not.
  std::string apply(int32_t partition, const ProgressRecord& record);

  std::optional<ProgressRecord> find(int32_t partition, const std::string& job_id) const;
  // Drops what is known of `partition` (revoked).
  void forget(int32_t partition);
  bool holds(int32_t partition) const;
  // Jobs known over every partition held.
  size_t size() const;

 private:
  struct Kept {
    int rank = 0;       // 0 under way, 1 ending, 2 completed or failed
    std::string value;  // the record as the state topic holds it, parsed by find()
  };
  using Jobs = std::map<std::string, Kept>;  // by job_id
  static void keep(Jobs& jobs, const std::string& job_id, int rank, std::string value);
  static void keepLogged(Jobs& jobs, std::string_view key, std::string_view value);

  mutable std::mutex mutex_;  // guards partitions_
  std::map<int32_t, Jobs> partitions_;  // by partition
};

}  // namespace fanpull
