// CallReservations: a merchant's daily calls are reserved in the state topic before they are made
// (docs/CONTRACTS.md, the state topic's calls records). A merchant with a daily budget
// (rate_limit.daily_calls, or the remain of openapi/quota/get) makes a call only when the calls
// the state topic acknowledged for its Beijing day cover it; otherwise the worker first writes a
// larger reservation, a block of a tenth of the budget (1 to 10 calls), and waits for it. So a
// crash, a restart or the merchant's next owner never spends beyond the day's budget, and a
// crash wastes at most the rest of a block; a record per call would cost a round trip to the
// brokers per call. Pure bookkeeping (no I/O, no clock); thread-compatible: the worker guards it
// with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace fanpull {

class CallReservations {
 public:
  // Before the day's call number used + 1 of `appid` (the day ends at `day_end_ms`, unix ms),
  // with `limit` calls a day: 0 when the call may go (the acknowledged reservation covers it,
  // there is no daily budget, or the budget is spent and the limiter defers the walk); else the
  // reservation to write first (calls from the day's start, at most `limit`).
  int64_t toReserve(const std::string& appid, int64_t day_end_ms, int64_t used,
                    int64_t limit) const;

  // The state topic has `reserved` calls of `appid` for the day ending at `day_end_ms`: a
  // reservation of this worker acknowledged, or a previous owner's read at a restore. It only
  // raises what is known of that day; a later day replaces an earlier one, an earlier day's is
  // ignored (an acknowledgement that comes after midnight).
  void acknowledged(const std::string& appid, int64_t day_end_ms, int64_t reserved);

  // The calls acknowledged for `appid` on the day ending at `day_end_ms` (0: none).
  int64_t reserved(const std::string& appid, int64_t day_end_ms) const;

  // The reservation's step for a budget of `limit` calls a day: a tenth of it, 1 to 10 calls.
  static int64_t blockOf(int64_t limit);

  // Forgets the days that ended before `day_end_ms` (they cover no call after it); returns how
  // many merchants' were forgotten.
  size_t forgetBefore(int64_t day_end_ms);
  // Merchants with a day known.
  size_t size() const { return days_.size(); }

 private:
  struct Day {
    int64_t day_end_ms = 0;  // the Beijing day it counts for
    int64_t reserved = 0;    // calls acknowledged by the state topic that day
  };
  std::map<std::string, Day> days_;  // by appid
};

}  // namespace fanpull
