#include "core/buffer_pool.h"

#include <malloc.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace fanpull {

BufferPool::BufferPool(size_t max_kept_bytes, size_t min_capacity)
    : min_capacity_(min_capacity), max_kept_bytes_(max_kept_bytes) {}

std::string BufferPool::take(size_t size, size_t capacity) {
  capacity = std::max(capacity, size);
  if (capacity >= min_capacity_) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = kept_.lower_bound(capacity);
    if (it != kept_.end()) {
      std::string buffer = std::move(it->second);
      stats_.kept_bytes -= it->first;
      --stats_.kept;
      kept_.erase(it);
      ++stats_.reused;
      buffer.resize(size);  // kept at its full capacity: shrinking writes one byte
      return buffer;
    }
    ++stats_.allocated;
    // Large buffers are allocated in steps of kGranularity, so that answers a few bytes apart
    // (a page with next_openid and the last one without) can use each other's buffers.
    capacity = (capacity + kGranularity - 1) / kGranularity * kGranularity;
  }
  std::string buffer;
  buffer.reserve(capacity);
  buffer.resize(size);
  return buffer;
}

void BufferPool::give(std::string&& buffer) {
  const size_t capacity = buffer.capacity();
  if (capacity < min_capacity_) {
    std::string().swap(buffer);
    return;
  }
  std::string kept;
  kept.swap(buffer);
  std::lock_guard<std::mutex> lock(mutex_);
  if (stats_.kept_bytes + capacity > max_kept_bytes_) {
    ++stats_.dropped;
    return;  // freed after the lock is released
  }
  // Kept at its full capacity, so that take() only ever shrinks it: what is written here is
  // the few KB past its last contents, not the whole buffer.
  kept.resize(capacity);
  stats_.kept_bytes += capacity;
  ++stats_.kept;
  kept_.emplace(capacity, std::move(kept));
}

void BufferPool::setMaxKeptBytes(size_t bytes) {
  std::multimap<size_t, std::string> freed;
  std::lock_guard<std::mutex> lock(mutex_);
  max_kept_bytes_ = bytes;
  while (stats_.kept_bytes > max_kept_bytes_) {
    auto largest = std::prev(kept_.end());
    stats_.kept_bytes -= largest->first;
    --stats_.kept;
    freed.insert(kept_.extract(largest));
  }
}

size_t BufferPool::releaseKept() {
  std::multimap<size_t, std::string> freed;
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    freed.swap(kept_);
    bytes = stats_.kept_bytes;
    stats_.kept_bytes = 0;
    stats_.kept = 0;
  }
  if (bytes == 0) return 0;
  freed.clear();
  // Buffers above glibc's mmap threshold go back by themselves; the others sit in malloc's
  // arenas until trimmed.
  malloc_trim(0);
  return bytes;
}

BufferPoolStats BufferPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

BufferPool& BufferPool::bodies() {
  // Never destroyed: a delivery report may give a buffer back while the process exits.
  static BufferPool* pool = new BufferPool();
  return *pool;
}

}  // namespace fanpull
