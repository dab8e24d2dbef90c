// Per-AppID call admission: a token bucket (requests_per_second, burst) and a daily call budget
// counted per Beijing calendar day (UTC+8). Nothing here blocks: tryAcquire() either admits the
// call or says when to ask again, so a scheduler can park a merchant without holding a thread.
// TokenBucket and DailyBudget are thread-compatible; RateLimiter is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>

#include "core/clock.h"

namespace fanpull {

struct RateLimit {
  // The range a configuration may give requests_per_second (one call per 1,000 s up to a
  // million a second): inside it, the interval between calls and the burst's tolerance
  // (interval x burst, burst up to 1,000,000) fit in 64-bit nanoseconds.
  static constexpr double kMinRequestsPerSecond = 0.001;
  static constexpr double kMaxRequestsPerSecond = 1000000;
  static constexpr const char* kRequestsPerSecondRange = "expected a number from 0.001 to 1000000";
  static bool validRequestsPerSecond(double v) {
    return v >= kMinRequestsPerSecond && v <= kMaxRequestsPerSecond;
  }

  double requests_per_second = 5;
  int burst = 5;
  int64_t daily_calls = 500;  // 0: no daily budget
};

// A token bucket in its GCRA form: one "theoretical arrival time" instead of a token count, so
// schedules are exact in integer nanoseconds. Starts full (burst calls may go at once).
class TokenBucket {
 public:
  TokenBucket(double requests_per_second, int burst);

  // The earliest time >= now at which one call may go. Does not take a permit.
  TimePoint nextFree(TimePoint now) const;
  // Takes a permit if one is free at `now`; false (and no change) otherwise.
  bool tryAcquire(TimePoint now);

  Duration interval() const { return interval_; }
  // True when every permit is free at `now` (the bucket is as a new one would be).
  bool full(TimePoint now) const { return tat_ <= now; }

 private:
  Duration interval_;   // 1 / rate
  Duration tolerance_;  // (burst - 1) * interval
  TimePoint tat_;       // theoretical arrival time of the next call
};

// Calls spent on the current Beijing day. A new day starts with a full budget.
class DailyBudget {
 public:
  explicit DailyBudget(int64_t calls_per_day) : limit_(calls_per_day) {}

  bool exhausted(TimePoint now) const;
  // Counts one call at `now`.
  void spend(TimePoint now);
  // Marks the day spent (WeChat answered 45009 before our count reached the limit).
  void exhaust(TimePoint now);
  // At least `calls` are spent on the Beijing day of `now` (what the state topic says this
  // merchant's previous owner reserved today).
  void spendAtLeast(TimePoint now, int64_t calls);
  int64_t used(TimePoint now) const;
  // Calls still allowed on the Beijing day of `now` by the limit and WeChat's cap; nullopt when
  // neither bounds the day (no limit and no cap).
  std::optional<int64_t> left(TimePoint now) const;
  int64_t limit() const { return limit_; }
  // Changes the limit; what today has spent stays spent.
  void setLimit(int64_t calls_per_day) { limit_ = calls_per_day; }
  // WeChat says `remain` calls are left today (openapi/quota/get): at most that many more are
  // admitted today, whatever the limit allows.
  void cap(TimePoint now, int64_t remain);
  // True when cap() was told on the Beijing day of `now`.
  bool capped(TimePoint now) const;
  // True when nothing was spent, exhausted or capped on the Beijing day of `now` (the budget is
  // as a new one would be that day).
  bool untouched(TimePoint now) const { return day_ != beijingDay(now); }

 private:
  void roll(TimePoint now);  // a new Beijing day starts with nothing spent and no cap

  int64_t limit_;
  int64_t day_ = INT64_MIN;
  int64_t used_ = 0;
  bool exhausted_ = false;
  bool capped_ = false;
  int64_t cap_ = 0;  // used_ may not reach beyond it today when capped_
};

struct Admission {
  enum class Kind {
    kGo,              // the call may go now; a permit and a unit of budget were taken
    kWait,            // the bucket is empty: ask again at `at`
    kQuotaExhausted,  // the daily budget is spent: defer until `at` (00:00 Beijing time)
  };
  Kind kind = Kind::kGo;
  TimePoint at;
};

// The limits of every AppID, each with its own bucket and budget.
class RateLimiter {
 public:
  explicit RateLimiter(RateLimit defaults) : defaults_(defaults) {}

  // Sets the limits of one AppID (a tenant's own rate_limit). Keeps the day's spent budget.
  void setLimit(const std::string& appid, RateLimit limit);
  // Admits one call of `appid` at `now`, or says until when it must wait.
  Admission tryAcquire(const std::string& appid, TimePoint now);
  // WeChat answered 45009: no more calls for `appid` until the next Beijing midnight.
  void markQuotaExhausted(const std::string& appid, TimePoint now);
  // Calls admitted for `appid` on the Beijing day of `now`.
  int64_t usedToday(const std::string& appid, TimePoint now);
  // Counts at least `calls` as spent by `appid` on the Beijing day of `now`.
  void spendAtLeastToday(const std::string& appid, TimePoint now, int64_t calls);
  // Calls `appid` may still make on the Beijing day of `now` (DailyBudget::left).
  std::optional<int64_t> leftToday(const std::string& appid, TimePoint now);
  // The daily_calls of `appid` (0: no daily budget).
  int64_t dailyCalls(const std::string& appid);
  // WeChat reports `remain` calls left today for `appid` (see DailyBudget::cap).
  void capToday(const std::string& appid, TimePoint now, int64_t remain);
  // True once capToday() was told for `appid` on the Beijing day of `now`.
  bool cappedToday(const std::string& appid, TimePoint now);

  // Forgets the AppIDs not in `busy` whose bucket is full and whose budget is untouched on the
  // Beijing day of `now`: what is kept of them is what a new entry would hold, but for their
  // own limits, which setLimit() gives again before their next call. So a worker's memory
  // follows the merchants it serves these days, not every merchant it ever served. Returns how
  // many were forgotten.
  size_t forgetIdle(TimePoint now, const std::set<std::string>& busy);
  // AppIDs with an entry.
  size_t size();

 private:
  struct Entry {
    RateLimit limit;
    TokenBucket bucket;
    DailyBudget budget;
  };
  Entry& entryLocked(const std::string& appid);

  const RateLimit defaults_;
  std::mutex mutex_;                      // guards entries_
  std::map<std::string, Entry> entries_;  // by appid
};

}  // namespace fanpull
