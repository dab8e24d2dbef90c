// The end-of-job protocol alone: which records end a job, in which order, and what a restart
// after a crash between any two of them writes. No broker: the worker's kill loops prove the
// same on both brokers (docs/RELIABILITY.md).
#include "worker/job_ending.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "worker/messages.h"

using fanpull::EndingPlan;
using fanpull::EndingWrite;
using fanpull::finalProgressState;
using fanpull::planEnding;
using fanpull::planSettling;

namespace {

bool contains(const std::vector<EndingWrite>& group, EndingWrite write) {
  return std::find(group.begin(), group.end(), write) != group.end();
}

// End events in the first `groups` groups of `plan`.
int eventsIn(const EndingPlan& plan, size_t groups) {
  int n = 0;
  for (size_t g = 0; g < groups && g < plan.size(); ++g) n += contains(plan[g], EndingWrite::kEvent);
  return n;
}

}  // namespace

TEST_CASE("without transactions a job ends in three deliveries: ending with its event, the "
          "event, the final state",
          "[worker][unit][ending]") {
  const EndingPlan plan = planEnding(false);
  REQUIRE(plan.size() == 3);
  CHECK(plan[0] == std::vector<EndingWrite>{EndingWrite::kEndingCheckpoint});
  CHECK(plan[1] == std::vector<EndingWrite>{EndingWrite::kEvent});
  CHECK(plan[2] == std::vector<EndingWrite>{EndingWrite::kFinalCheckpoint});
}

TEST_CASE("with transactions the event and the final state are one group", "[worker][unit][ending]") {
  const EndingPlan plan = planEnding(true);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0] == std::vector<EndingWrite>{EndingWrite::kEvent, EndingWrite::kFinalCheckpoint});
}

TEST_CASE("a job found ending writes its event only when the events topic does not have it",
          "[worker][unit][ending]") {
  CHECK(planSettling(false) ==
        EndingPlan{{EndingWrite::kEvent}, {EndingWrite::kFinalCheckpoint}});
  CHECK(planSettling(true) == EndingPlan{{EndingWrite::kFinalCheckpoint}});
}

TEST_CASE("a crash between any two deliveries of an end leaves exactly one end event",
          "[worker][unit][ending]") {
  const EndingPlan plan = planEnding(false);
  for (size_t delivered = 0; delivered <= plan.size(); ++delivered) {
    INFO(delivered << " groups delivered before the crash");
    const int before = eventsIn(plan, delivered);
    const bool ending_written = delivered >= 1;
    const bool final_written = delivered == plan.size();
    int after = 0;
    if (!ending_written) {
      // The state still says "running": the walk resumes from its last page and ends again,
      // from the start of the plan.
      after = eventsIn(plan, plan.size());
    } else if (!final_written) {
      // "ending" found: the restart settles, writing the event only if it is not there.
      const EndingPlan settle = planSettling(before > 0);
      after = eventsIn(settle, settle.size());
      CHECK(contains(settle.back(), EndingWrite::kFinalCheckpoint));
    }
    CHECK(before + after == 1);
  }
}

TEST_CASE("the final state follows the end event's status", "[worker][unit][ending]") {
  CHECK(std::string(finalProgressState("failed")) == fanpull::kProgressFailed);
  CHECK(std::string(finalProgressState("completed")) == fanpull::kProgressCompleted);
  CHECK(std::string(finalProgressState("")) == fanpull::kProgressCompleted);
}
