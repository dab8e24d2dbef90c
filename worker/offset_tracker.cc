#include "worker/offset_tracker.h"

#include <algorithm>

namespace fanpull {

void OffsetTracker::assign(const kafka::TopicPartition& tp) { partitions_[tp]; }

void OffsetTracker::revoke(const kafka::TopicPartition& tp) { partitions_.erase(tp); }

std::vector<kafka::TopicPartition> OffsetTracker::partitions() const {
  std::vector<kafka::TopicPartition> out;
  out.reserve(partitions_.size());
  for (const auto& [tp, p] : partitions_) out.push_back(tp);
  return out;
}

void OffsetTracker::received(const kafka::TopicPartition& tp, int64_t offset) {
  Partition& p = partitions_[tp];
  p.unfinished.insert(offset);
  p.next = std::max(p.next, offset + 1);
}

void OffsetTracker::finish(const kafka::TopicPartition& tp, int64_t offset) {
  auto it = partitions_.find(tp);
  if (it != partitions_.end()) it->second.unfinished.erase(offset);
}

std::vector<kafka::PartitionOffset> OffsetTracker::due() const {
  std::vector<kafka::PartitionOffset> out;
  for (const auto& po : positions()) {
    if (po.offset > partitions_.at(po.partition).committed) out.push_back(po);
  }
  return out;
}

std::vector<kafka::PartitionOffset> OffsetTracker::positions() const {
  std::vector<kafka::PartitionOffset> out;
  for (const auto& [tp, p] : partitions_) {
    if (p.next < 0) continue;
    out.push_back({tp, p.unfinished.empty() ? p.next : *p.unfinished.begin()});
  }
  return out;
}

void OffsetTracker::sent(const std::vector<kafka::PartitionOffset>& offsets) {
  for (const auto& po : offsets) {
    auto it = partitions_.find(po.partition);
    if (it != partitions_.end()) it->second.committed = std::max(it->second.committed, po.offset);
  }
}

void OffsetTracker::commitFailed() {
  for (auto& [tp, p] : partitions_) p.committed = -1;
}

std::vector<kafka::PartitionOffset> OffsetTracker::landed(
    const std::vector<kafka::PartitionOffset>& offsets) {
  std::vector<kafka::PartitionOffset> back;
  for (const auto& po : offsets) {
    auto it = partitions_.find(po.partition);
    if (it == partitions_.end() || po.offset >= it->second.committed) continue;
    it->second.committed = po.offset;
    back.push_back(po);
  }
  return back;
}

}  // namespace fanpull
