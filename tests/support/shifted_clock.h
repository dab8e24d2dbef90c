// ShiftedClock: real time moved to a chosen start, which a test can jump forward (to the next
// minute, past Beijing midnight) while everything else keeps running in real time. Thread-safe.
#pragma once

#include <atomic>

#include "core/clock.h"

namespace fanpull::testing {

class ShiftedClock final : public Clock {
 public:
  explicit ShiftedClock(TimePoint start)
      : offset_((start - SystemClock::instance().now()).count()) {}
  TimePoint now() const override { return SystemClock::instance().now() + Duration(offset_.load()); }
  void advance(Duration d) { offset_ += d.count(); }

 private:
  std::atomic<int64_t> offset_;
};

}  // namespace fanpull::testing
