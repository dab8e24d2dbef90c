#include <catch2/catch.hpp>

#include "core/backoff.h"
#include "support/fraction_random.h"

using namespace fanpull;
using namespace std::chrono_literals;

TEST_CASE("backoff ceilings double from the base up to the cap", "[core][unit]") {
  testing::FractionRandom top(1.0);
  Backoff b({1s, 16s, 10}, top);
  CHECK(b.ceilingAfter(1) == 1s);
  CHECK(b.ceilingAfter(2) == 2s);
  CHECK(b.ceilingAfter(3) == 4s);
  CHECK(b.ceilingAfter(4) == 8s);
  CHECK(b.ceilingAfter(5) == 16s);
  CHECK(b.ceilingAfter(6) == 16s);
  CHECK(b.ceilingAfter(60) == 16s);
  // With the draw at the top of its window the delays are the ceilings (WxJava's 1,2,4,8,16 s).
  CHECK(b.delayAfter(1) == Duration(1s));
  CHECK(b.delayAfter(5) == Duration(16s));
}

TEST_CASE("full jitter draws uniformly below the ceiling", "[core][unit]") {
  testing::FractionRandom half(0.5);
  Backoff b({100ms, 10s, 10}, half);
  CHECK(b.delayAfter(1) == Duration(50ms));
  CHECK(b.delayAfter(3) == Duration(200ms));
  testing::FractionRandom bottom(0.0);
  Backoff z({100ms, 10s, 10}, bottom);
  CHECK(z.delayAfter(4) == Duration(0));

  SeededRandom seeded(42);
  Backoff s({1s, 16s, 100}, seeded);
  bool below_half = false;
  bool above_half = false;
  for (int i = 0; i < 200; ++i) {
    Duration d = *s.delayAfter(5);
    REQUIRE(d >= Duration(0));
    REQUIRE(d <= Duration(16s));
    below_half |= d < Duration(8s);
    above_half |= d > Duration(8s);
  }
  CHECK(below_half);
  CHECK(above_half);
}

TEST_CASE("backoff gives up after max_attempts attempts", "[core][unit]") {
  testing::FractionRandom top(1.0);
  Backoff b({1s, 16s, 3}, top);
  CHECK(b.delayAfter(1).has_value());
  CHECK(b.delayAfter(2).has_value());
  CHECK_FALSE(b.delayAfter(3).has_value());
  CHECK_FALSE(b.delayAfter(4).has_value());
}
