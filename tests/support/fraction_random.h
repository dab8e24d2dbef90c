// FractionRandom: a Random whose draw is a fixed fraction of its range, so backoff schedules are
// exact in tests. Thread-compatible.
#pragma once

#include "core/backoff.h"

namespace fanpull::testing {

class FractionRandom final : public Random {
 public:
  explicit FractionRandom(double fraction) : fraction_(fraction) {}
  int64_t uniform(int64_t bound) override {
    return static_cast<int64_t>(static_cast<double>(bound) * fraction_);
  }

 private:
  double fraction_;
};

}  // namespace fanpull::testing
