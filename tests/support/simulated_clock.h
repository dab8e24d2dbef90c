// SimulatedClock: a Clock that only moves when a test advances it. Thread-safe.
#pragma once

#include <atomic>

#include "core/clock.h"

namespace fanpull::testing {

class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(TimePoint start = fromUnixSeconds(1'800'000'000)) : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(Duration(now_.load())); }
  void advance(Duration d) { now_ += d.count(); }
  void set(TimePoint t) { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace fanpull::testing
