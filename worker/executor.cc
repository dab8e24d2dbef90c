#include "worker/executor.h"

namespace fanpull {

Executor::Executor(size_t threads, Clock& clock, UncaughtHandler on_uncaught)
    : clock_(clock), on_uncaught_(std::move(on_uncaught)) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

Executor::~Executor() { stop(); }

void Executor::post(std::function<void()> task) { postAt(TimePoint::min(), std::move(task)); }

void Executor::postAt(TimePoint when, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    queue_.emplace(when, std::move(task));
  }
  cv_.notify_one();
}

size_t Executor::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

size_t Executor::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

void Executor::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
  threads_.clear();
}

void Executor::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    TimePoint now = clock_.now();
    auto first = queue_.begin();
    if (first->first > now) {
      const Duration recheck = clock_.followsMachineTime() ? Duration(std::chrono::seconds(1))
                                                           : Duration(std::chrono::milliseconds(20));
      auto wait = std::min<Duration>(first->first - now, recheck);
      cv_.wait_for(lock, wait);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    queue_.erase(first);
    ++running_;
    lock.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      if (on_uncaught_) on_uncaught_(e.what());
    } catch (...) {
      if (on_uncaught_) on_uncaught_("unknown exception");
    }
    lock.lock();
    --running_;
  }
}

}  // namespace fanpull
