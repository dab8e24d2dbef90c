#include <catch2/catch.hpp>

#include <vector>

#include "core/rate_limiter.h"
#include "support/simulated_clock.h"

using namespace fanpull;
using namespace std::chrono_literals;

namespace {

// Runs n calls as fast as the bucket allows, starting at the clock's time, and returns the offsets
// (ms from the start) at which each call went.
std::vector<int64_t> schedule(TokenBucket& bucket, testing::SimulatedClock& clock, int n) {
  TimePoint start = clock.now();
  std::vector<int64_t> at;
  while (static_cast<int>(at.size()) < n) {
    if (bucket.tryAcquire(clock.now())) {
      at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - start).count());
    } else {
      clock.set(bucket.nextFree(clock.now()));
    }
  }
  return at;
}

}  // namespace

TEST_CASE("a full bucket lets burst calls go at once, then one per interval", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(5, 5);
  CHECK(schedule(bucket, clock, 8) == std::vector<int64_t>{0, 0, 0, 0, 0, 200, 400, 600});
}

TEST_CASE("2 calls per second with burst 2 follows the exact schedule", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(2, 2);
  CHECK(schedule(bucket, clock, 6) == std::vector<int64_t>{0, 0, 500, 1000, 1500, 2000});
}

TEST_CASE("burst 1 spaces every call by the interval", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(4, 1);
  CHECK(schedule(bucket, clock, 4) == std::vector<int64_t>{0, 250, 500, 750});
}

TEST_CASE("a fractional rate spaces calls by more than a second", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(0.5, 1);
  CHECK(schedule(bucket, clock, 3) == std::vector<int64_t>{0, 2000, 4000});
}

TEST_CASE("an idle bucket refills up to burst and no further", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(2, 3);
  CHECK(schedule(bucket, clock, 3) == std::vector<int64_t>{0, 0, 0});
  clock.advance(1s);  // two permits back
  CHECK(schedule(bucket, clock, 3) == std::vector<int64_t>{0, 0, 500});
  clock.advance(100s);  // full again: only 3
  CHECK(schedule(bucket, clock, 4) == std::vector<int64_t>{0, 0, 0, 500});
}

TEST_CASE("a refused call changes nothing and says exactly when to come back", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(10, 1);
  REQUIRE(bucket.tryAcquire(clock.now()));
  TimePoint next = bucket.nextFree(clock.now());
  CHECK(next - clock.now() == Duration(100ms));
  clock.advance(99ms);
  CHECK_FALSE(bucket.tryAcquire(clock.now()));
  CHECK_FALSE(bucket.tryAcquire(clock.now()));
  CHECK(bucket.nextFree(clock.now()) == next);
  clock.advance(1ms);
  CHECK(bucket.tryAcquire(clock.now()));
}

TEST_CASE("no one-second window holds more than burst + rate calls", "[core][unit]") {
  testing::SimulatedClock clock;
  TokenBucket bucket(2, 2);
  std::vector<int64_t> at = schedule(bucket, clock, 40);
  for (size_t i = 0; i < at.size(); ++i) {
    int in_window = 0;
    for (size_t j = i; j < at.size() && at[j] <= at[i] + 1000; ++j) ++in_window;
    CHECK(in_window <= 4);
  }
}

TEST_CASE("the Beijing day starts at 16:00 UTC", "[core][unit]") {
  // 2026-11-27T15:59:59Z is 23:59:59 in Beijing; one second later is the next Beijing day.
  TimePoint before = fromUnixSeconds(1795795199);
  TimePoint after = fromUnixSeconds(1795795200);
  CHECK(beijingDay(after) == beijingDay(before) + 1);
  CHECK(nextBeijingMidnight(before) == after);
  CHECK(nextBeijingMidnight(after) == fromUnixSeconds(1795795200 + 86400));
  CHECK(formatBeijing(after) == "2026-11-28T00:00:00+08:00");
  CHECK(formatBeijing(before) == "2026-11-27T23:59:59+08:00");
  CHECK(nextMinute(fromUnixSeconds(1795795199)) == fromUnixSeconds(1795795200));
  CHECK(nextMinute(fromUnixSeconds(1795795200)) == fromUnixSeconds(1795795260));
}

TEST_CASE("the daily budget admits daily_calls calls, then defers until Beijing midnight",
          "[core][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200 - 3600));  // 23:00 Beijing
  RateLimiter limiter(RateLimit{1000, 1000, 3});
  for (int i = 0; i < 3; ++i) {
    Admission a = limiter.tryAcquire("wxA", clock.now());
    CHECK(a.kind == Admission::Kind::kGo);
  }
  Admission refused = limiter.tryAcquire("wxA", clock.now());
  CHECK(refused.kind == Admission::Kind::kQuotaExhausted);
  CHECK(refused.at == fromUnixSeconds(1795795200));
  CHECK(limiter.usedToday("wxA", clock.now()) == 3);
  // Other merchants have their own budget.
  CHECK(limiter.tryAcquire("wxB", clock.now()).kind == Admission::Kind::kGo);
  clock.set(fromUnixSeconds(1795795200 - 1));
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kQuotaExhausted);
  clock.set(fromUnixSeconds(1795795200));
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.usedToday("wxA", clock.now()) == 1);
}

TEST_CASE("calls another owner reserved today count as spent, never lowering the count",
          "[core][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200 + 3600));  // 01:00 Beijing
  RateLimiter limiter(RateLimit{1000, 1000, 6});
  CHECK(limiter.dailyCalls("wxA") == 6);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  limiter.spendAtLeastToday("wxA", clock.now(), 4);
  CHECK(limiter.usedToday("wxA", clock.now()) == 4);
  limiter.spendAtLeastToday("wxA", clock.now(), 2);  // older news: the count stays
  CHECK(limiter.usedToday("wxA", clock.now()) == 4);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kQuotaExhausted);
  // The next Beijing day starts from nothing.
  clock.advance(std::chrono::hours(23));
  CHECK(limiter.usedToday("wxA", clock.now()) == 0);
  limiter.setLimit("wxB", RateLimit{1000, 1000, 0});
  CHECK(limiter.dailyCalls("wxB") == 0);
}

TEST_CASE("45009 exhausts the day even with budget left", "[core][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200 + 3600));
  RateLimiter limiter(RateLimit{1000, 1000, 500});
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  limiter.markQuotaExhausted("wxA", clock.now());
  Admission a = limiter.tryAcquire("wxA", clock.now());
  CHECK(a.kind == Admission::Kind::kQuotaExhausted);
  CHECK(a.at == fromUnixSeconds(1795795200 + 86400));
  clock.set(a.at);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
}

TEST_CASE("the calls left today are the smaller of the budget's and WeChat's, none when "
          "neither bounds the day",
          "[core][unit]") {
  testing::SimulatedClock clock(fromUnixSeconds(1795795200 + 3600));  // 01:00 Beijing
  RateLimiter limiter(RateLimit{1000, 1000, 10});
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(10));
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(9));
  limiter.capToday("wxA", clock.now(), 4);  // WeChat: 4 left
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(4));
  limiter.capToday("wxA", clock.now(), 40);  // more than the budget: the budget bounds
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(9));
  limiter.markQuotaExhausted("wxA", clock.now());
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(0));
  clock.advance(std::chrono::hours(23));  // a new Beijing day: the budget again, no cap
  CHECK(limiter.leftToday("wxA", clock.now()) == std::optional<int64_t>(10));

  limiter.setLimit("wxB", RateLimit{1000, 1000, 0});
  CHECK_FALSE(limiter.leftToday("wxB", clock.now()).has_value());
  limiter.capToday("wxB", clock.now(), 7);
  CHECK(limiter.leftToday("wxB", clock.now()) == std::optional<int64_t>(7));
}

TEST_CASE("the limiter waits on the bucket and spends no budget while waiting", "[core][unit]") {
  testing::SimulatedClock clock;
  RateLimiter limiter(RateLimit{2, 1, 10});
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
  Admission wait = limiter.tryAcquire("wxA", clock.now());
  CHECK(wait.kind == Admission::Kind::kWait);
  CHECK(wait.at - clock.now() == Duration(500ms));
  CHECK(limiter.usedToday("wxA", clock.now()) == 1);
  clock.set(wait.at);
  CHECK(limiter.tryAcquire("wxA", clock.now()).kind == Admission::Kind::kGo);
}

TEST_CASE("a tenant's own limit replaces the default", "[core][unit]") {
  testing::SimulatedClock clock;
  RateLimiter limiter(RateLimit{100, 100, 0});
  limiter.setLimit("wxSlow", RateLimit{1, 1, 2});
  CHECK(limiter.tryAcquire("wxSlow", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.tryAcquire("wxSlow", clock.now()).kind == Admission::Kind::kWait);
  clock.advance(1s);
  CHECK(limiter.tryAcquire("wxSlow", clock.now()).kind == Admission::Kind::kGo);
  clock.advance(1s);
  CHECK(limiter.tryAcquire("wxSlow", clock.now()).kind == Admission::Kind::kQuotaExhausted);
  CHECK(limiter.tryAcquire("wxFast", clock.now()).kind == Admission::Kind::kGo);
  CHECK(limiter.tryAcquire("wxFast", clock.now()).kind == Admission::Kind::kGo);
}

TEST_CASE("merchants idle since an earlier Beijing day are forgotten; busy ones and today's are kept",
          "[core][unit]") {
  // 2026-11-27 10:00 in Beijing; the next Beijing day starts 14 hours later.
  const TimePoint day1 = fromUnixSeconds(1795744800);
  const TimePoint midnight = day1 + 14h;
  REQUIRE(nextBeijingMidnight(day1) == midnight);
  RateLimiter limiter(RateLimit{1, 1, 5});
  for (const char* appid : {"wxIdle", "wxBusy", "wxSpentToday", "wxCappedToday"}) {
    REQUIRE(limiter.tryAcquire(appid, day1).kind == Admission::Kind::kGo);
  }
  // One call every 10,000 s (2.8 hours), the last at 23:50.
  limiter.setLimit("wxSlow", RateLimit{0.0001, 1, 5});
  REQUIRE(limiter.tryAcquire("wxSlow", midnight - 10min).kind == Admission::Kind::kGo);
  REQUIRE(limiter.size() == 5);
  // Nothing is idle on the day its calls were made.
  CHECK(limiter.forgetIdle(midnight - 1min, {}) == 0);

  // 00:10 the next Beijing day.
  const TimePoint day2 = midnight + 10min;
  limiter.spendAtLeastToday("wxSpentToday", day2, 1);
  limiter.capToday("wxCappedToday", day2, 100);
  CHECK(limiter.forgetIdle(day2, {"wxBusy"}) == 1);  // wxIdle only
  CHECK(limiter.size() == 4);
  CHECK(limiter.usedToday("wxSpentToday", day2) == 1);
  CHECK(limiter.cappedToday("wxCappedToday", day2));
  // wxSlow's bucket is not full yet: forgetting it would let its next call go early.
  CHECK(limiter.tryAcquire("wxSlow", day2).kind == Admission::Kind::kWait);
  // A forgotten merchant comes back with the defaults until its limits are set again.
  CHECK(limiter.dailyCalls("wxIdle") == 5);
  CHECK(limiter.size() == 5);
}
