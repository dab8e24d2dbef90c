// OffsetTracker: which input offsets of the jobs partitions may be committed. A job's offset is
// committed only once every job before it in its partition is finished (done, failed, rejected,
// duplicate), so a restart never skips an unfinished job. It also remembers what was sent to the
// group so a commit is made only when it moves a partition forward, and is made again after a
// failed commit or one that landed after a later one. Pure bookkeeping, no I/O.
// Thread-compatible: the worker guards it with its mutex.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "kafka/kafka_types.h"

namespace fanpull {

class OffsetTracker {
 public:
  // The partition is ours (assignment); nothing of it is known yet.
  void assign(const kafka::TopicPartition& tp);
  // The partition left (revocation): its offsets are forgotten.
  void revoke(const kafka::TopicPartition& tp);
  std::vector<kafka::TopicPartition> partitions() const;
  size_t size() const { return partitions_.size(); }
  bool assigned(const kafka::TopicPartition& tp) const { return partitions_.count(tp) != 0; }

  // A job at `offset` arrived: unfinished until finish().
  void received(const kafka::TopicPartition& tp, int64_t offset);
  // The job at `offset` is finished. Unknown partitions and offsets are ignored.
  void finish(const kafka::TopicPartition& tp, int64_t offset);

  // What to commit: for each partition with jobs, its lowest unfinished offset (or the offset
  // after the last job seen when none is unfinished), when above what was last sent.
  std::vector<kafka::PartitionOffset> due() const;
  // The same offset for every partition with jobs, due or not: what a transaction sends with
  // its messages (docs/RELIABILITY.md, exactly-once), so that each commit is checked against
  // the group's generation even when no job finished since the last one.
  std::vector<kafka::PartitionOffset> positions() const;
  // `offsets` were sent to the group: not due again until they move.
  void sent(const std::vector<kafka::PartitionOffset>& offsets);
  // A commit failed after it was sent: every partition is due again.
  void commitFailed();
  // A commit's outcome: the offsets it set. Returns those lower than what was sent since (an
  // earlier commit that landed last, moving the group back), which are due again.
  std::vector<kafka::PartitionOffset> landed(const std::vector<kafka::PartitionOffset>& offsets);

 private:
  struct Partition {
    std::set<int64_t> unfinished;
    int64_t next = -1;       // highest offset received + 1
    int64_t committed = -1;  // last sent (or landed lower)
  };
  std::map<kafka::TopicPartition, Partition> partitions_;
};

}  // namespace fanpull
