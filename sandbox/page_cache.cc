#include "sandbox/page_cache.h"

namespace fanpull::sandbox {

PageCache::PageCache(std::size_t capacityBytes) : capacity_(capacityBytes) {}

std::shared_ptr<const std::string> PageCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void PageCache::put(const std::string& key, std::shared_ptr<const std::string> body) {
  const std::size_t size = body->size() + key.size();
  if (size > capacity_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    bytes_ -= it->second->second->size() + key.size();
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, std::move(body));
  index_.emplace(key, lru_.begin());
  bytes_ += size;
  while (bytes_ > capacity_ && !lru_.empty()) {
    const Entry& last = lru_.back();
    bytes_ -= last.second->size() + last.first.size();
    index_.erase(last.first);
    lru_.pop_back();
  }
}

std::size_t PageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::size_t PageCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}

}  // namespace fanpull::sandbox
