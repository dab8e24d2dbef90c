// The executor that runs the worker's steps: tasks now and at a time of an injected clock, and a
// task that throws never takes its thread (or the process) down.
#include "worker/executor.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>

#include "support/simulated_clock.h"

using namespace fanpull;

namespace {

bool waitUntil(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

}  // namespace

TEST_CASE("a task that throws is reported and the executor keeps running tasks", "[worker][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  std::mutex mutex;
  std::vector<std::string> reported;
  std::atomic<int> ran{0};
  {
    Executor executor(1, clock, [&](const std::string& what) {
      std::lock_guard<std::mutex> lock(mutex);
      reported.push_back(what);
    });
    executor.post([] { throw std::runtime_error("task broke"); });
    executor.post([] { throw 42; });
    executor.post([&] { ran++; });  // the same, only thread runs it
    REQUIRE(waitUntil([&] { return ran == 1; }));
  }
  CHECK(reported == std::vector<std::string>{"task broke", "unknown exception"});
}

TEST_CASE("a task due later runs once the clock reaches its time", "[worker][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  std::atomic<int> ran{0};
  Executor executor(2, clock);
  executor.postAt(clock.now() + std::chrono::seconds(30), [&] { ran++; });
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  CHECK(ran == 0);
  CHECK(executor.pending() == 1);
  clock.advance(std::chrono::seconds(30));
  CHECK(waitUntil([&] { return ran == 1; }));
  CHECK(executor.pending() == 0);
}

namespace {

// The machine's clock, counting how often it is read.
class CountingClock final : public Clock {
 public:
  TimePoint now() const override {
    reads_++;
    return SystemClock::instance().now();
  }
  bool followsMachineTime() const override { return true; }
  int reads() const { return reads_; }

 private:
  mutable std::atomic<int> reads_{0};
};

}  // namespace

TEST_CASE("on the machine's clock a timer wakes at its time without polling", "[worker][unit]") {
  CountingClock clock;
  Executor executor(2, clock);
  std::atomic<int64_t> ran_at_ms{0};
  const auto t0 = std::chrono::steady_clock::now();
  executor.postAt(clock.now() + std::chrono::milliseconds(300), [&] {
    ran_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
  });
  REQUIRE(waitUntil([&] { return ran_at_ms > 0; }));
  CHECK(ran_at_ms >= 299);
  CHECK(ran_at_ms < 450);
  // A 20 ms recheck would have read the clock about 30 times (15 per thread) in 300 ms.
  CHECK(clock.reads() < 10);
}
