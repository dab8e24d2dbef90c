// Executor: a fixed pool of threads running tasks now or at a time read from an injected Clock.
// A task waiting for its time holds no thread. On the system clock a thread sleeps until the
// first due time (looking again at least every second, in case the wall clock is set); with a
// clock a test moves, due times are rechecked every 20 ms, so advancing it releases the tasks it
// made due. A task that
// throws does not end its thread: the exception is handed to `on_uncaught` (or dropped) and the
// next task runs. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"

namespace fanpull {

class Executor {
 public:
  // Receives the what() of an exception a task let escape ("unknown exception" for a
  // non-standard one), on the task's thread. Must not throw.
  using UncaughtHandler = std::function<void(const std::string& what)>;

  Executor(size_t threads, Clock& clock, UncaughtHandler on_uncaught = {});
  ~Executor();  // stop()

  void post(std::function<void()> task);
  void postAt(TimePoint when, std::function<void()> task);
  // Tasks waiting for a thread or for their time.
  size_t pending() const;
  // Tasks running now.
  size_t running() const;
  // Stops taking tasks, drops the waiting ones, joins the threads. Idempotent.
  void stop();

 private:
  void run();

  Clock& clock_;
  UncaughtHandler on_uncaught_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  std::multimap<TimePoint, std::function<void()>> queue_;  // by due time
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fanpull
