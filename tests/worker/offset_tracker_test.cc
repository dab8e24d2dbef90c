// Which input offsets may be committed: never past an unfinished job, only when a partition
// moves, again after a failed commit or one that landed late. Bookkeeping alone, no broker.
#include "worker/offset_tracker.h"

#include <catch2/catch.hpp>

using fanpull::OffsetTracker;
using fanpull::kafka::PartitionOffset;
using fanpull::kafka::TopicPartition;

namespace {

const TopicPartition kP0{"jobs", 0};
const TopicPartition kP1{"jobs", 1};

// The due offsets as (partition, offset) pairs.
std::vector<std::pair<int32_t, int64_t>> due(const OffsetTracker& t) {
  std::vector<std::pair<int32_t, int64_t>> out;
  for (const auto& po : t.due()) out.push_back({po.partition.partition, po.offset});
  return out;
}

}  // namespace

TEST_CASE("an offset is committed only below the lowest unfinished job of its partition",
          "[worker][offsets][unit]") {
  OffsetTracker t;
  t.assign(kP0);
  CHECK(due(t).empty());  // nothing received: nothing to commit
  for (int64_t o : {10, 11, 12}) t.received(kP0, o);
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 10}});  // 10 is unfinished
  t.finish(kP0, 11);  // finished out of order: 10 still holds the partition
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 10}});
  t.finish(kP0, 10);
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 12}});
  t.finish(kP0, 12);
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 13}});  // after the last job seen
}

TEST_CASE("a commit is due only when it moves its partition forward", "[worker][offsets][unit]") {
  OffsetTracker t;
  t.assign(kP0);
  t.assign(kP1);
  t.received(kP0, 0);
  t.received(kP1, 5);
  t.finish(kP0, 0);
  auto first = t.due();
  REQUIRE(first.size() == 2);
  t.sent(first);
  CHECK(due(t).empty());
  t.received(kP1, 6);
  t.finish(kP1, 5);
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{1, 6}});
}

TEST_CASE("a failed commit makes every partition due again", "[worker][offsets][unit]") {
  OffsetTracker t;
  t.assign(kP0);
  t.received(kP0, 3);
  t.finish(kP0, 3);
  t.sent(t.due());
  REQUIRE(due(t).empty());
  t.commitFailed();
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 4}});
}

TEST_CASE("an earlier commit that lands last is reported and made again",
          "[worker][offsets][unit]") {
  OffsetTracker t;
  t.assign(kP0);
  t.received(kP0, 0);
  t.finish(kP0, 0);
  std::vector<PartitionOffset> early = t.due();  // offset 1
  t.sent(early);
  t.received(kP0, 1);
  t.finish(kP0, 1);
  std::vector<PartitionOffset> later = t.due();  // offset 2
  t.sent(later);
  CHECK(t.landed(later).empty());
  auto back = t.landed(early);  // the group's offset went back to 1
  REQUIRE(back.size() == 1);
  CHECK(back[0].offset == 1);
  CHECK(due(t) == std::vector<std::pair<int32_t, int64_t>>{{0, 2}});
}

TEST_CASE("a revoked partition is forgotten and jobs finished after it are ignored",
          "[worker][offsets][unit]") {
  OffsetTracker t;
  t.assign(kP0);
  t.assign(kP1);
  t.received(kP0, 7);
  CHECK(t.size() == 2);
  t.revoke(kP0);
  t.finish(kP0, 7);
  CHECK(t.size() == 1);
  CHECK(t.partitions() == std::vector<TopicPartition>{kP1});
  CHECK(due(t).empty());
}
