#include "worker/job_walk.h"

#include <cstddef>
#include <utility>

namespace fanpull {

namespace {

WalkNext next(WalkNext::Kind kind, TimePoint at = {}, Error error = {}) {
  WalkNext n;
  n.kind = kind;
  n.at = at;
  n.error = std::move(error);
  return n;
}

}  // namespace

JobWalk::JobWalk(BackoffPolicy backoff, WalkCheckpoint from)
    : backoff_(backoff), checkpoint_(std::move(from)) {
  cursor_ = checkpoint_.cursor;
  next_seq_ = checkpoint_.seq;
}

WalkPage JobWalk::emit(bool last, int64_t count, std::string cursor_after) {
  WalkPage page;
  page.seq = next_seq_++;
  page.last = last;
  page.count = count;
  page.cursor_after = std::move(cursor_after);
  in_flight_.push_back({page, false});
  return page;
}

int64_t JobWalk::fetchedOpenids() const {
  int64_t openids = checkpoint_.openids;
  for (const InFlight& f : in_flight_) openids += f.page.count;
  return openids;
}

WalkDecision JobWalk::answer(const FollowerPage& page) {
  WalkDecision d;
  if (over_) {
    d.next = next(WalkNext::Kind::kFail, {},
                  Error::of(ErrorClass::kUnknown, "an answer came after the last page"));
    return d;
  }
  failures_ = 0;
  renewed_ = false;
  const int64_t count = static_cast<int64_t>(page.size());
  switch (nextWalkStep(page, cursor_)) {
    case WalkStep::kStalled:
      d.next = next(WalkNext::Kind::kFail, {},
                    Error::of(ErrorClass::kUnknown,
                              "WeChat answered the cursor it was given as next_openid: the "
                              "walk does not advance"));
      return d;
    case WalkStep::kContinue:
      cursor_ = page.next_openid;
      d.page = emit(false, count, cursor_);
      d.next = next(WalkNext::Kind::kCall);
      return d;
    case WalkStep::kLastPage:
    case WalkStep::kEnd:
      // kLastPage: the empty next_openid makes this data page the last. kEnd: no OpenIDs (the
      // answer after a last page that repeated its final OpenID, or an account without
      // followers): a page of count 0 marked last ends the job's pages. The cursor stays.
      over_ = true;
      d.page = emit(true, count, cursor_);
      d.next = next(WalkNext::Kind::kComplete);
      return d;
  }
  d.next = next(WalkNext::Kind::kFail, {}, Error::of(ErrorClass::kUnknown, "unexpected walk step"));
  return d;
}

WalkNext JobWalk::backoffOrFail(const Error& error, TimePoint now, Random& random) {
  Backoff backoff(backoff_, random);
  std::optional<Duration> delay = backoff.delayAfter(++failures_);
  if (!delay) return next(WalkNext::Kind::kFail, {}, error);
  return next(WalkNext::Kind::kCall, now + *delay, error);
}

WalkNext JobWalk::error(const Error& error, TimePoint now, Random& random) {
  switch (error.error_class) {
    case ErrorClass::kTokenInvalid:
      if (renewed_) return next(WalkNext::Kind::kFail, {}, error);
      renewed_ = true;
      return next(WalkNext::Kind::kRenewToken, {}, error);
    case ErrorClass::kRetryable:
    case ErrorClass::kUnknown:
      return backoffOrFail(error, now, random);
    case ErrorClass::kRateLimited:
      return next(WalkNext::Kind::kCall, nextMinute(now), error);
    case ErrorClass::kQuotaExhausted:
      return next(WalkNext::Kind::kDefer, nextBeijingMidnight(now), error);
    default:
      return next(WalkNext::Kind::kFail, {}, error);
  }
}

WalkNext JobWalk::renewed() { return next(WalkNext::Kind::kCall); }

WalkNext JobWalk::renewFailed(const Error& refusal, const Error& why, TimePoint now,
                              Random& random) {
  if (why.error_class == ErrorClass::kRetryable) {
    // The renewal itself failed for now (network, ticket): the next attempt may renew again.
    renewed_ = false;
    return backoffOrFail(why, now, random);
  }
  if (!why.errcode) {
    // Keep WeChat's refusal (errcode, errmsg) with the reason it could not be renewed.
    Error merged = refusal;
    merged.cause = why.cause;
    return next(WalkNext::Kind::kFail, {}, merged);
  }
  return next(WalkNext::Kind::kFail, {}, why);
}

WalkNext JobWalk::budgetSpent(TimePoint until, bool wechat_quota) {
  return next(WalkNext::Kind::kDefer, until,
              Error::of(ErrorClass::kQuotaExhausted,
                        wechat_quota ? "the merchant's user/get quota for today is spent "
                                       "(openapi/quota/get)"
                                     : "the configured daily_calls budget is spent for today"));
}

bool JobWalk::delivered(int64_t seq) {
  const int64_t index = seq - checkpoint_.seq;
  if (index < 0 || index >= static_cast<int64_t>(in_flight_.size())) return false;
  in_flight_[static_cast<size_t>(index)].delivered = true;
  size_t settled = 0;
  while (settled < in_flight_.size() && in_flight_[settled].delivered) {
    WalkPage& page = in_flight_[settled].page;
    checkpoint_.seq = page.seq + 1;
    checkpoint_.openids += page.count;
    checkpoint_.cursor = std::move(page.cursor_after);
    ++settled;
  }
  in_flight_.erase(in_flight_.begin(), in_flight_.begin() + static_cast<std::ptrdiff_t>(settled));
  return settled > 0;
}

}  // namespace fanpull
