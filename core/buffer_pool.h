// BufferPool: large byte buffers used again instead of handed back to malloc. An answer's body
// becomes its page message in the same buffer (encodePageMessages) and lives until Kafka has the
// message; a worker fetching hundreds of pages a second would otherwise ask malloc for a fresh
// 310 KB every page: the kernel faults every new page in, and the freed buffers scatter over
// malloc's per-thread arenas, so the process's resident memory grows with how long it has been
// busy rather than with what it holds. Buffers below min_capacity are not kept. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace fanpull {

struct BufferPoolStats {
  size_t kept = 0;        // buffers waiting to be used again
  size_t kept_bytes = 0;  // their capacity
  uint64_t reused = 0;    // take() that returned a kept buffer
  uint64_t allocated = 0; // take() of at least min_capacity that allocated
  uint64_t dropped = 0;   // give() of a large buffer freed because the pool was full
};

class BufferPool {
 public:
  static constexpr size_t kDefaultMinCapacity = 64 * 1024;
  static constexpr size_t kDefaultMaxKeptBytes = 16 * 1024 * 1024;
  static constexpr size_t kGranularity = 16 * 1024;

  explicit BufferPool(size_t max_kept_bytes = kDefaultMaxKeptBytes,
                      size_t min_capacity = kDefaultMinCapacity);

  // A string of `size` bytes with room for at least `capacity` (>= size): the smallest kept
  // buffer that is large enough when there is one, else a new one. Its bytes are unspecified (a
  // kept buffer's earlier contents): the caller overwrites them. A kept buffer is not zeroed
  // again, which saves writing a whole page of memory before the answer is read into it.
  std::string take(size_t size, size_t capacity);

  // Keeps `buffer` for a later take() when it has at least min_capacity and the kept buffers
  // stay within max_kept_bytes; frees it otherwise. `buffer` is left empty.
  void give(std::string&& buffer);

  // At most `bytes` of capacity kept from now on (kept buffers over it are freed).
  void setMaxKeptBytes(size_t bytes);

  // Frees every kept buffer and hands the freed memory back to the system (malloc_trim), for a
  // worker that has been quiet for a while; returns the capacity freed. Later take()s allocate
  // again.
  size_t releaseKept();

  BufferPoolStats stats() const;

  // The process's pool for HTTP answers' bodies and the page messages written in them.
  static BufferPool& bodies();

 private:
  const size_t min_capacity_;
  mutable std::mutex mutex_;  // guards everything below
  size_t max_kept_bytes_;
  std::multimap<size_t, std::string> kept_;  // by capacity
  BufferPoolStats stats_;
};

}  // namespace fanpull
