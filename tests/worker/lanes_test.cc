#include <catch2/catch.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "worker/lanes.h"

using namespace fanpull;

namespace {

// A job as the tests see it: its name; "x" jobs are the ones a revocation takes away.
using Jobs = std::vector<std::string>;

}  // namespace

TEST_CASE("a merchant's jobs run one at a time in the order they came", "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  CHECK(lanes.add("wxA", "a1"));  // the lane's only job: starts now
  CHECK_FALSE(lanes.add("wxA", "a2"));
  CHECK_FALSE(lanes.add("wxA", "a3"));
  CHECK(lanes.add("wxB", "b1"));  // another merchant does not wait for wxA
  CHECK(lanes.lanes() == 2);
  CHECK(lanes.queued() == 4);

  CHECK(lanes.finish("wxA", "a1") == std::optional<std::string>("a2"));
  CHECK(lanes.finish("wxA", "a2") == std::optional<std::string>("a3"));
  CHECK(lanes.queued() == 2);
  CHECK(lanes.appids() == std::set<std::string>{"wxA", "wxB"});
  CHECK_FALSE(lanes.finish("wxA", "a3").has_value());  // the lane is empty and goes
  CHECK(lanes.lanes() == 1);
  CHECK(lanes.appids() == std::set<std::string>{"wxB"});  // a merchant with no job is not busy
  CHECK(lanes.add("wxA", "a4"));  // a new job of a merchant whose lane went starts at once
}

TEST_CASE("a job that is not its lane's front hands nothing on", "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  lanes.add("wxA", "a1");
  lanes.add("wxA", "a2");
  // Settled twice, or settled after it left its lane: the running job keeps its place.
  CHECK_FALSE(lanes.finish("wxA", "a2").has_value());
  CHECK_FALSE(lanes.finish("wxB", "a1").has_value());
  CHECK(lanes.queued() == 2);
  CHECK(lanes.finish("wxA", "a1") == std::optional<std::string>("a2"));
  CHECK_FALSE(lanes.finish("wxA", "a1").has_value());
  CHECK(lanes.queued() == 1);
}

TEST_CASE("revoked jobs leave their lanes and a lane whose front left starts its next job",
          "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  lanes.add("wxA", "xa1");  // running, revoked
  lanes.add("wxA", "a2");
  lanes.add("wxA", "xa3");
  lanes.add("wxB", "b1");  // running, stays
  lanes.add("wxB", "xb2");
  lanes.add("wxC", "xc1");  // the whole lane goes
  auto gone = [](const std::string& job) { return job[0] == 'x'; };
  CHECK(lanes.drop(gone) == Jobs{"a2"});  // b1 was running already: nothing to start for wxB
  CHECK(lanes.lanes() == 2);
  CHECK(lanes.queued() == 2);
  CHECK_FALSE(lanes.finish("wxB", "b1").has_value());  // xb2 went with the revocation
  CHECK_FALSE(lanes.finish("wxA", "a2").has_value());
  CHECK(lanes.queued() == 0);
}

TEST_CASE("a thousand queued jobs cost their handles and start one per merchant",
          "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  int started = 0;
  for (int i = 0; i < 1000; ++i) {
    if (lanes.add("wx" + std::to_string(i % 100), "job" + std::to_string(i))) ++started;
  }
  CHECK(started == 100);
  CHECK(lanes.lanes() == 100);
  CHECK(lanes.queued() == 1000);
}

TEST_CASE("a held lane's jobs are queued but not ready until its front moves on",
          "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  CHECK(lanes.add("wxA", "a1"));
  CHECK_FALSE(lanes.add("wxA", "a2"));
  CHECK(lanes.add("wxB", "b1"));
  CHECK(lanes.ready() == 3);
  // a1 is deferred to the next day: its lane's two jobs wait whatever the worker does.
  lanes.hold("wxA", true);
  lanes.hold("wxA", true);  // twice is once
  CHECK(lanes.queued() == 3);
  CHECK(lanes.ready() == 1);
  CHECK_FALSE(lanes.add("wxA", "a3"));  // behind the held front: not ready either
  CHECK(lanes.ready() == 1);
  lanes.hold("wxC", true);  // no lane: nothing
  CHECK(lanes.ready() == 1);
  // Its day came: a1 runs again.
  lanes.hold("wxA", false);
  CHECK(lanes.ready() == 4);
  lanes.hold("wxA", true);
  // A held front that ends hands on a job that is ready.
  CHECK(lanes.finish("wxA", "a1") == std::optional<std::string>("a2"));
  CHECK(lanes.ready() == 3);
  CHECK(lanes.queued() == 3);
}

TEST_CASE("revoking jobs of a held lane keeps ready() true to what stays",
          "[worker][unit][lanes]") {
  Lanes<std::string> lanes;
  for (const char* job : {"a1", "xa2", "a3"}) lanes.add("wxA", job);
  for (const char* job : {"xb1", "b2"}) lanes.add("wxB", job);
  lanes.hold("wxA", true);
  lanes.hold("wxB", true);
  CHECK(lanes.ready() == 0);
  auto gone = [](const std::string& job) { return job[0] == 'x'; };
  // wxA keeps its held front (a1) and a3; wxB's front left, so b2 starts: ready.
  CHECK(lanes.drop(gone) == Jobs{"b2"});
  CHECK(lanes.queued() == 3);
  CHECK(lanes.ready() == 1);
  lanes.hold("wxA", false);
  CHECK(lanes.ready() == 3);
}

TEST_CASE("calls reserve their bytes under the budget and are parked over it",
          "[worker][unit][lanes]") {
  UndeliveredBudget<std::string> budget(1000);
  CHECK(budget.tryReserve(0, 400, false, "a"));
  CHECK(budget.tryReserve(0, 400, false, "b"));
  CHECK(budget.reserved() == 800);
  // 800 reserved and 300 waiting elsewhere: over the budget, whatever the call would fetch.
  CHECK_FALSE(budget.tryReserve(300, 1, true, "c"));
  // Under it by a byte: the call goes and may take the total past the budget by one page.
  CHECK(budget.tryReserve(199, 400, false, "d"));
  CHECK(budget.reserved() == 1200);
  CHECK(budget.parked() == 1);
}

TEST_CASE("room made wakes walks under way before walks not begun, one per release",
          "[worker][unit][lanes]") {
  UndeliveredBudget<std::string> budget(1000);
  REQUIRE(budget.tryReserve(0, 900, false, "running"));
  CHECK_FALSE(budget.tryReserve(200, 100, false, "new1"));
  CHECK_FALSE(budget.tryReserve(200, 100, true, "started1"));
  CHECK_FALSE(budget.tryReserve(200, 100, false, "new2"));
  CHECK_FALSE(budget.tryReserve(200, 100, true, "started2"));
  CHECK(budget.parked() == 4);

  // Still over the budget after the release (900 - 300 reserved, 500 elsewhere): nobody.
  CHECK(budget.release(500, 300).empty());
  // 600 reserved and 600 elsewhere: still nobody.
  CHECK(budget.release(600, 0).empty());
  REQUIRE(budget.reserved() == 600);
  CHECK(budget.release(200, 100) == Jobs{"started1"});  // 700 in all: one per release
  CHECK(budget.release(300, 0) == Jobs{"started2"});
  CHECK(budget.release(300, 0) == Jobs{"new1"});
  // Below half the budget every parked job wakes (each checks again).
  CHECK(budget.release(0, 100) == Jobs{"new2"});
  CHECK(budget.parked() == 0);
  CHECK(budget.reserved() == 400);
}

TEST_CASE("below half the budget every parked job wakes at once", "[worker][unit][lanes]") {
  UndeliveredBudget<std::string> budget(1000);
  for (const char* job : {"s1", "s2"}) CHECK_FALSE(budget.tryReserve(1000, 1, true, job));
  for (const char* job : {"n1", "n2"}) CHECK_FALSE(budget.tryReserve(1000, 1, false, job));
  CHECK(budget.release(499, 0) == Jobs{"s1", "s2", "n1", "n2"});
}

TEST_CASE("a first page's estimate takes a larger page at once and a smaller one by an eighth",
          "[worker][unit][lanes]") {
  using Budget = UndeliveredBudget<std::string>;
  // Before any page: a full page of 10,000 OpenIDs.
  CHECK(Budget::kFirstPageEstimate >= 10000 * 31);
  CHECK(Budget::nextEstimate(100000, 300000) == 300000);
  CHECK(Budget::nextEstimate(300000, 100000) == 300000 - 200000 / 8);
  // Fifty small first pages in a row bring it down to their size.
  int64_t estimate = Budget::kFirstPageEstimate;
  for (int i = 0; i < 50; ++i) estimate = Budget::nextEstimate(estimate, 5000);
  CHECK(estimate < 5000 + 1000);
  CHECK(estimate >= 5000);
}

TEST_CASE("a walk's next page is expected as large as the followers WeChat says are left",
          "[worker][unit][lanes]") {
  using Budget = UndeliveredBudget<std::string>;
  // A full page of 10,000 OpenIDs in 310,000 bytes: 31 bytes each.
  // 20,000 followers, 10,000 fetched: another full page.
  CHECK(Budget::nextPageEstimate(310000, 10000, 20000, 10000) == 310000);
  // 15,000 followers: the 5,000 left.
  CHECK(Budget::nextPageEstimate(310000, 10000, 15000, 10000) == 155000);
  // Never more than a full page, however many are left.
  CHECK(Budget::nextPageEstimate(310000, 10000, 1000000, 10000) == 310000);
  // None left (a list of whole pages ends with an empty page): the empty page's size.
  CHECK(Budget::nextPageEstimate(310000, 10000, 20000, 20000) == Budget::kEmptyPageBytes);
  // Followers lost during the walk: fetched beyond the total reads as none left.
  CHECK(Budget::nextPageEstimate(310000, 10000, 19000, 20000) == Budget::kEmptyPageBytes);
  // No total said, or a page without OpenIDs: as large as this page.
  CHECK(Budget::nextPageEstimate(310000, 10000, 0, 10000) == 310000);
  CHECK(Budget::nextPageEstimate(900, 0, 20000, 20000) == 900);
}
