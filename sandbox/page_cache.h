// A byte-bounded LRU cache of rendered response bodies, shared by the sandbox's request threads.
// Thread-safe: one mutex guards the map and the recency list; values are immutable shared strings.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fanpull::sandbox {

class PageCache {
 public:
  explicit PageCache(std::size_t capacityBytes);

  // The body cached under `key` (now the most recent), or nullptr.
  std::shared_ptr<const std::string> get(const std::string& key);

  // Caches `body` under `key`, evicting the least recent entries beyond the capacity. A body larger
  // than the whole capacity is not cached.
  void put(const std::string& key, std::shared_ptr<const std::string> body);

  std::size_t bytes() const;
  std::size_t entries() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const std::string>>;
  const std::size_t capacity_;
  mutable std::mutex mutex_;  // guards everything below
  std::size_t bytes_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace fanpull::sandbox
