#include <catch2/catch.hpp>

#include <cstdint>

#include "worker/call_reservations.h"

using namespace fanpull;

namespace {

constexpr int64_t kDay1 = 1796400000000;  // end of a Beijing day, unix ms
constexpr int64_t kDay2 = kDay1 + 24 * 3600 * 1000;

}  // namespace

TEST_CASE("a reservation is a tenth of the daily budget, 1 to 10 calls",
          "[worker][unit][reservations]") {
  CHECK(CallReservations::blockOf(1) == 1);
  CHECK(CallReservations::blockOf(9) == 1);
  CHECK(CallReservations::blockOf(25) == 2);
  CHECK(CallReservations::blockOf(100) == 10);
  CHECK(CallReservations::blockOf(100000) == 10);
}

TEST_CASE("a call goes when the acknowledged reservation covers it, else a block is reserved first",
          "[worker][unit][reservations]") {
  CallReservations r;
  // Nothing acknowledged yet: the first call needs calls 1 to 5 of 50 reserved.
  CHECK(r.toReserve("wxA", kDay1, 0, 50) == 5);
  r.acknowledged("wxA", kDay1, 5);
  for (int64_t used = 0; used < 5; ++used) CHECK(r.toReserve("wxA", kDay1, used, 50) == 0);
  CHECK(r.toReserve("wxA", kDay1, 5, 50) == 10);
  // The last block stops at the budget; a spent budget reserves nothing (the limiter defers).
  r.acknowledged("wxA", kDay1, 48);
  CHECK(r.toReserve("wxA", kDay1, 48, 50) == 50);
  CHECK(r.toReserve("wxA", kDay1, 50, 50) == 0);
  // No daily budget: nothing to keep.
  CHECK(r.toReserve("wxB", kDay1, 0, 0) == 0);
  // Another merchant's reservation covers nothing of this one.
  CHECK(r.toReserve("wxB", kDay1, 0, 50) == 5);
}

TEST_CASE("what is acknowledged only rises within a day, and a new day starts from nothing",
          "[worker][unit][reservations]") {
  CallReservations r;
  r.acknowledged("wxA", kDay1, 10);
  r.acknowledged("wxA", kDay1, 5);  // an older, smaller reservation acknowledged late
  CHECK(r.reserved("wxA", kDay1) == 10);
  // After midnight yesterday's reservation covers nothing.
  CHECK(r.reserved("wxA", kDay2) == 0);
  CHECK(r.toReserve("wxA", kDay2, 0, 50) == 5);
  r.acknowledged("wxA", kDay2, 5);
  // Yesterday's acknowledgement arriving after midnight changes nothing of today.
  r.acknowledged("wxA", kDay1, 20);
  CHECK(r.reserved("wxA", kDay2) == 5);
  CHECK(r.reserved("wxA", kDay1) == 0);
}

TEST_CASE("a previous owner's reservation read at a restore counts as spent here",
          "[worker][unit][reservations]") {
  CallReservations r;
  r.acknowledged("wxA", kDay1, 3);   // this worker's own, earlier
  r.acknowledged("wxA", kDay1, 30);  // the state topic's record from the merchant's last owner
  CHECK(r.reserved("wxA", kDay1) == 30);
  CHECK(r.toReserve("wxA", kDay1, 29, 50) == 0);
  CHECK(r.toReserve("wxA", kDay1, 30, 50) == 35);
}

TEST_CASE("an earlier day's reservations are forgotten, today's are kept",
          "[worker][unit][reservations]") {
  CallReservations r;
  r.acknowledged("wxYesterday", kDay1, 5);
  r.acknowledged("wxToday", kDay2, 3);
  REQUIRE(r.size() == 2);

  CHECK(r.forgetBefore(kDay1) == 0);  // kDay1 is not before itself
  CHECK(r.forgetBefore(kDay2) == 1);
  CHECK(r.size() == 1);
  CHECK(r.reserved("wxYesterday", kDay1) == 0);
  CHECK(r.reserved("wxToday", kDay2) == 3);
  // Forgotten or not, yesterday's reservation covers no call today.
  CHECK(r.toReserve("wxYesterday", kDay2, 0, 50) == 5);
}
