// The exactly-once gate alone (no broker): a group handed over while a commit holds the gate
// closed is kept, not waited for, and runs when the gate opens, in order, before any writer that
// came later; an abort forgets the groups held; the bytes held count until they run.
#include "worker/transactions.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

using fanpull::TransactionGate;

TEST_CASE("a group handed to an open gate runs at once, on the caller's thread",
          "[worker][transactions][unit]") {
  TransactionGate gate;
  std::vector<std::string> ran;
  const auto caller = std::this_thread::get_id();
  std::thread::id ran_on;
  gate.run([&] {
    ran.push_back("page 1");
    ran_on = std::this_thread::get_id();
  }, 300);
  CHECK(ran == std::vector<std::string>{"page 1"});
  CHECK(ran_on == caller);
  CHECK(gate.heldBytes() == 0);
}

TEST_CASE("while a commit holds the gate closed, groups are held without waiting and run in "
          "order when it opens",
          "[worker][transactions][unit]") {
  TransactionGate gate;
  std::vector<std::string> ran;  // written by the writer thread, then by the committer only
  gate.close();
  // A writer on another thread hands over two groups during the commit: it is not held up.
  std::thread writer([&] {
    gate.run([&] { ran.push_back("page 1 + checkpoint"); }, 1000);
    gate.run([&] { ran.push_back("page 2 + checkpoint"); }, 500);
  });
  writer.join();  // returns although the gate is still closed
  CHECK(ran.empty());
  CHECK(gate.heldBytes() == 1500);

  // A group held runs on the committer's thread when it opens, and a group it hands over then
  // (a continuation writing again) runs after it, before open() returns.
  const auto committer = std::this_thread::get_id();
  std::vector<std::thread::id> threads;
  gate.run([&] {
    ran.push_back("end event");
    threads.push_back(std::this_thread::get_id());
    gate.run([&] { ran.push_back("final state"); });
  });
  gate.open();
  CHECK(ran == std::vector<std::string>{"page 1 + checkpoint", "page 2 + checkpoint",
                                        "end event", "final state"});
  CHECK(threads == std::vector<std::thread::id>{committer});
  CHECK(gate.heldBytes() == 0);

  // Open again: a new group runs at once.
  gate.run([&] { ran.push_back("page 3"); });
  CHECK(ran.back() == "page 3");
}

TEST_CASE("an aborted transaction's held groups never run", "[worker][transactions][unit]") {
  TransactionGate gate;
  int ran = 0;
  gate.close();
  gate.run([&] { ++ran; }, 700);
  gate.run([&] { ++ran; }, 300);
  CHECK(gate.discardHeld() == 2);
  CHECK(gate.heldBytes() == 0);
  gate.open();
  CHECK(ran == 0);
}

TEST_CASE("a held group that throws neither keeps the gate closed nor stops the groups after it",
          "[worker][transactions][unit]") {
  TransactionGate gate;
  std::vector<int> ran;
  gate.close();
  gate.run([&] { ran.push_back(1); });
  gate.run([] { throw std::runtime_error("group failed"); });
  gate.run([&] { ran.push_back(3); });
  gate.open();
  CHECK(ran == std::vector<int>{1, 3});
  std::atomic<bool> entered{false};
  std::thread writer([&] {
    gate.enter();  // would wait for ever if the gate had stayed closed
    entered = true;
    gate.leave();
  });
  writer.join();
  CHECK(entered);
}

TEST_CASE("the committer waits for a group under way; writers that must write wait for the commit",
          "[worker][transactions][unit]") {
  TransactionGate gate;
  std::atomic<int> step{0};
  std::thread group([&] {
    gate.run([&] {
      step = 1;
      while (step.load() < 2) std::this_thread::yield();  // inside until the committer is closing
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      step = 3;
    });
  });
  while (step.load() < 1) std::this_thread::yield();
  step = 2;
  gate.close();  // returns only once the group has left
  CHECK(step.load() == 3);
  std::atomic<bool> wrote{false};
  std::thread writer([&] {
    gate.enter();
    wrote = true;
    gate.leave();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(wrote.load());  // enter() waits while the commit holds the gate
  gate.open();
  writer.join();
  group.join();
  CHECK(wrote.load());
}
