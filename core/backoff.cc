#include "core/backoff.h"

#include <algorithm>

namespace fanpull {

int64_t SeededRandom::uniform(int64_t bound) {
  if (bound <= 0) return 0;
  std::uniform_int_distribution<int64_t> dist(0, bound);
  return dist(engine_);
}

Duration Backoff::ceilingAfter(int failures) const {
  if (failures < 1) return Duration::zero();
  Duration ceiling = policy_.base;
  for (int i = 1; i < failures && ceiling < policy_.cap; ++i) ceiling *= 2;
  return std::min(ceiling, policy_.cap);
}

std::optional<Duration> Backoff::delayAfter(int failures) {
  if (failures >= policy_.max_attempts) return std::nullopt;
  return Duration(random_.uniform(ceilingAfter(failures).count()));
}

}  // namespace fanpull
