#include "core/clock.h"

#include <cstdio>
#include <ctime>

namespace fanpull {
namespace {

constexpr int64_t kBeijingOffsetSeconds = 8 * 3600;
constexpr int64_t kDaySeconds = 86400;

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t unixSeconds(TimePoint t) {
  return floorDiv(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(),
                  1'000'000'000);
}

}  // namespace

TimePoint SystemClock::now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

int64_t beijingDay(TimePoint t) {
  return floorDiv(unixSeconds(t) + kBeijingOffsetSeconds, kDaySeconds);
}

TimePoint nextBeijingMidnight(TimePoint t) {
  return fromUnixSeconds((beijingDay(t) + 1) * kDaySeconds - kBeijingOffsetSeconds);
}

TimePoint nextMinute(TimePoint t) { return fromUnixSeconds((floorDiv(unixSeconds(t), 60) + 1) * 60); }

std::string formatBeijing(TimePoint t) {
  std::time_t s = static_cast<std::time_t>(unixSeconds(t) + kBeijingOffsetSeconds);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+08:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace fanpull
