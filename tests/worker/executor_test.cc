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
