#include "core/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "core/erase_if.h"

namespace fanpull {

TokenBucket::TokenBucket(double requests_per_second, int burst)
    : interval_(Duration(static_cast<int64_t>(std::llround(1e9 / requests_per_second)))),
      tolerance_(interval_ * std::max(0, burst - 1)),
      tat_(TimePoint::min() + interval_ + tolerance_) {}

TimePoint TokenBucket::nextFree(TimePoint now) const {
  return std::max(now, tat_ - tolerance_);
}

bool TokenBucket::tryAcquire(TimePoint now) {
  if (now < tat_ - tolerance_) return false;
  tat_ = std::max(tat_, now) + interval_;
  return true;
}

bool DailyBudget::exhausted(TimePoint now) const {
  if (beijingDay(now) != day_) return false;
  return exhausted_ || (limit_ > 0 && used_ >= limit_) || (capped_ && used_ >= cap_);
}

void DailyBudget::roll(TimePoint now) {
  int64_t day = beijingDay(now);
  if (day != day_) {
    day_ = day;
    used_ = 0;
    exhausted_ = false;
    capped_ = false;
  }
}

void DailyBudget::spend(TimePoint now) {
  roll(now);
  ++used_;
}

void DailyBudget::exhaust(TimePoint now) {
  roll(now);
  exhausted_ = true;
}

void DailyBudget::spendAtLeast(TimePoint now, int64_t calls) {
  roll(now);
  if (calls > used_) used_ = calls;
}

void DailyBudget::cap(TimePoint now, int64_t remain) {
  roll(now);
  capped_ = true;
  cap_ = used_ + (remain > 0 ? remain : 0);
}

bool DailyBudget::capped(TimePoint now) const { return beijingDay(now) == day_ && capped_; }

int64_t DailyBudget::used(TimePoint now) const { return beijingDay(now) == day_ ? used_ : 0; }

std::optional<int64_t> DailyBudget::left(TimePoint now) const {
  const bool today = beijingDay(now) == day_;
  if (today && exhausted_) return 0;
  const int64_t used_today = today ? used_ : 0;
  std::optional<int64_t> out;
  if (limit_ > 0) out = std::max<int64_t>(0, limit_ - used_today);
  if (today && capped_) {
    const int64_t by_cap = std::max<int64_t>(0, cap_ - used_today);
    out = out ? std::min(*out, by_cap) : by_cap;
  }
  return out;
}

RateLimiter::Entry& RateLimiter::entryLocked(const std::string& appid) {
  auto it = entries_.find(appid);
  if (it == entries_.end()) {
    it = entries_
             .emplace(appid, Entry{defaults_,
                                   TokenBucket(defaults_.requests_per_second, defaults_.burst),
                                   DailyBudget(defaults_.daily_calls)})
             .first;
  }
  return it->second;
}

void RateLimiter::setLimit(const std::string& appid, RateLimit limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entryLocked(appid);
  if (e.limit.requests_per_second != limit.requests_per_second || e.limit.burst != limit.burst) {
    e.bucket = TokenBucket(limit.requests_per_second, limit.burst);
  }
  e.budget.setLimit(limit.daily_calls);
  e.limit = limit;
}

Admission RateLimiter::tryAcquire(const std::string& appid, TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entryLocked(appid);
  if (e.budget.exhausted(now)) return {Admission::Kind::kQuotaExhausted, nextBeijingMidnight(now)};
  if (!e.bucket.tryAcquire(now)) return {Admission::Kind::kWait, e.bucket.nextFree(now)};
  e.budget.spend(now);
  return {Admission::Kind::kGo, now};
}

void RateLimiter::markQuotaExhausted(const std::string& appid, TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  entryLocked(appid).budget.exhaust(now);
}

int64_t RateLimiter::usedToday(const std::string& appid, TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  return entryLocked(appid).budget.used(now);
}

void RateLimiter::spendAtLeastToday(const std::string& appid, TimePoint now, int64_t calls) {
  std::lock_guard<std::mutex> lock(mutex_);
  entryLocked(appid).budget.spendAtLeast(now, calls);
}

std::optional<int64_t> RateLimiter::leftToday(const std::string& appid, TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  return entryLocked(appid).budget.left(now);
}

int64_t RateLimiter::dailyCalls(const std::string& appid) {
  std::lock_guard<std::mutex> lock(mutex_);
  return entryLocked(appid).limit.daily_calls;
}

void RateLimiter::capToday(const std::string& appid, TimePoint now, int64_t remain) {
  std::lock_guard<std::mutex> lock(mutex_);
  entryLocked(appid).budget.cap(now, remain);
}

bool RateLimiter::cappedToday(const std::string& appid, TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  return entryLocked(appid).budget.capped(now);
}

size_t RateLimiter::forgetIdle(TimePoint now, const std::set<std::string>& busy) {
  std::lock_guard<std::mutex> lock(mutex_);
  return eraseIf(entries_, [&](const auto& entry) {
    const Entry& e = entry.second;
    return !busy.count(entry.first) && e.bucket.full(now) && e.budget.untouched(now);
  });
}

size_t RateLimiter::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace fanpull
