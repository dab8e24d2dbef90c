// Backoff: how long to wait before retrying a failed call. Exponential with full jitter (a uniform
// draw in [0, min(cap, base * 2^(failures-1))]), bounded in attempts. Randomness is injected so
// tests can fix it. Backoff is thread-compatible; SeededRandom is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "core/clock.h"

namespace fanpull {

class Random {
 public:
  virtual ~Random() = default;
  // A uniform draw in [0, bound]; bound >= 0.
  virtual int64_t uniform(int64_t bound) = 0;
};

class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  int64_t uniform(int64_t bound) override;

 private:
  std::mt19937_64 engine_;
};

struct BackoffPolicy {
  Duration base = std::chrono::seconds(1);
  Duration cap = std::chrono::seconds(16);
  int max_attempts = 6;  // attempts in all, the first included
};

class Backoff {
 public:
  Backoff(BackoffPolicy policy, Random& random) : policy_(policy), random_(random) {}

  // The wait before the next attempt after `failures` failed attempts (failures >= 1), or nullopt
  // when the attempts are spent and the caller must give up.
  std::optional<Duration> delayAfter(int failures);

  // The upper bound of the jitter window after `failures` failures (for documentation and tests).
  Duration ceilingAfter(int failures) const;

  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  Random& random_;
};

}  // namespace fanpull
