#include "worker/call_reservations.h"

#include <algorithm>

#include "core/erase_if.h"

namespace fanpull {

int64_t CallReservations::blockOf(int64_t limit) { return std::clamp<int64_t>(limit / 10, 1, 10); }

int64_t CallReservations::toReserve(const std::string& appid, int64_t day_end_ms, int64_t used,
                                    int64_t limit) const {
  if (limit <= 0 || used >= limit) return 0;
  if (used < reserved(appid, day_end_ms)) return 0;
  return std::min(limit, used + blockOf(limit));
}

void CallReservations::acknowledged(const std::string& appid, int64_t day_end_ms,
                                    int64_t reserved) {
  Day& day = days_[appid];
  if (day.day_end_ms > day_end_ms) return;
  if (day.day_end_ms < day_end_ms) day = {day_end_ms, 0};
  day.reserved = std::max(day.reserved, reserved);
}

int64_t CallReservations::reserved(const std::string& appid, int64_t day_end_ms) const {
  auto it = days_.find(appid);
  return it != days_.end() && it->second.day_end_ms == day_end_ms ? it->second.reserved : 0;
}

size_t CallReservations::forgetBefore(int64_t day_end_ms) {
  return eraseIf(days_,
                 [day_end_ms](const auto& day) { return day.second.day_end_ms < day_end_ms; });
}

}  // namespace fanpull
