// Clock: where fanpull reads the time. Everything that schedules (rate limits, backoff, quota
// deferral, token expiry) takes a Clock& so tests can drive simulated time and never sleep.
// Also the Beijing calendar (UTC+8, no DST) that WeChat's daily quotas follow.
// SystemClock is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fanpull {

using Duration = std::chrono::nanoseconds;
// Wall time as nanoseconds since the Unix epoch.
using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // True when this clock moves only as the machine's clock does, so a wait for a time on it can
  // sleep until then; false for a clock a test moves (a waiter must look at it again and again).
  virtual bool followsMachineTime() const { return false; }
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
  bool followsMachineTime() const override { return true; }
  // The process-wide system clock.
  static SystemClock& instance();
};

// The Beijing calendar day of t: floor((unix_seconds + 28800) / 86400).
int64_t beijingDay(TimePoint t);
// 00:00 Beijing time of the day after t (when WeChat's daily quotas reset).
TimePoint nextBeijingMidnight(TimePoint t);
// The start of the wall-clock minute after t (when WeChat's minute quotas reset).
TimePoint nextMinute(TimePoint t);
// RFC 3339 in Beijing time, e.g. "2026-11-28T00:00:00+08:00" (the events' retry_at).
std::string formatBeijing(TimePoint t);

inline TimePoint fromUnixSeconds(int64_t s) { return TimePoint(std::chrono::seconds(s)); }
// Milliseconds since the Unix epoch (the records' *_ms fields).
inline int64_t toUnixMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace fanpull
