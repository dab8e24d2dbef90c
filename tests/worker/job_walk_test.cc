// The job walk alone: every decision of a walk (both ends of a list, every error class, token
// renewal, 45011, 45009, the daily budget, resume from a checkpoint, deliveries out of order),
// with times as arguments. No broker, no HTTP, no threads: each case runs in microseconds.
#include "worker/job_walk.h"

#include <catch2/catch.hpp>

#include "support/fraction_random.h"

using fanpull::Error;
using fanpull::ErrorClass;
using fanpull::FollowerPage;
using fanpull::JobWalk;
using fanpull::TimePoint;
using fanpull::WalkCheckpoint;
using fanpull::WalkNext;
using fanpull::testing::FractionRandom;
using namespace std::chrono_literals;

namespace {

using Kind = WalkNext::Kind;

// 2026-12-02 10:15:30 Beijing time (02:15:30 UTC).
const TimePoint kNow = fanpull::fromUnixSeconds(1'796'177'730);

FollowerPage page(std::vector<std::string> ids, std::string next_openid, int64_t total = 100) {
  FollowerPage p;
  p.total = total;
  p.count = static_cast<int64_t>(ids.size());
  p.next_openid = std::move(next_openid);
  p.has_data = !ids.empty();
  for (const auto& id : ids) p.add(id);
  return p;
}

Error wechatError(ErrorClass cls, long errcode, std::string errmsg = "") {
  Error e;
  e.error_class = cls;
  e.errcode = errcode;
  e.errmsg = std::move(errmsg);
  e.cause = "WeChat refused the call";
  return e;
}

Error causeOnly(ErrorClass cls, std::string cause) {
  Error e;
  e.error_class = cls;
  e.cause = std::move(cause);
  return e;
}

}  // namespace

TEST_CASE("a page with a cursor is produced at once and the walk calls again with it",
          "[worker][walk][unit]") {
  JobWalk walk;
  CHECK(walk.cursor().empty());
  auto d = walk.answer(page({"o1", "o2"}, "o2"));
  REQUIRE(d.page);
  CHECK(d.page->seq == 0);
  CHECK_FALSE(d.page->last);
  CHECK(d.page->count == 2);
  CHECK(d.next == Kind::kCall);
  CHECK(d.next.at == TimePoint{});
  CHECK(walk.cursor() == "o2");
  // Nothing is delivered yet: the checkpoint has not moved.
  CHECK(walk.checkpoint() == WalkCheckpoint{});
  CHECK(walk.undelivered() == 1);
  CHECK(walk.emitted() == 1);
  CHECK_FALSE(walk.over());
}

TEST_CASE("an empty next_openid on a data page makes it the last page", "[worker][walk][unit]") {
  JobWalk walk;
  REQUIRE(walk.answer(page({"o1", "o2"}, "o2")).page);
  auto d = walk.answer(page({"o3"}, ""));
  REQUIRE(d.page);
  CHECK(d.page->seq == 1);
  CHECK(d.page->last);
  CHECK(d.page->count == 1);
  CHECK(d.next == Kind::kComplete);
  CHECK(walk.over());
  // Nothing may follow the last page.
  auto late = walk.answer(page({"o4"}, ""));
  CHECK_FALSE(late.page);
  CHECK(late.next == Kind::kFail);
  CHECK(walk.delivered(0));
  CHECK(walk.delivered(1));
  CHECK(walk.checkpoint() == WalkCheckpoint{2, "o2", 3});
  CHECK(walk.undelivered() == 0);
}

TEST_CASE("an answer without OpenIDs after a full page ends the walk with a last page of count 0",
          "[worker][walk][unit]") {
  // The second way a list ends (docs/WECHAT.md): the last data page repeats its final OpenID as
  // next_openid, and the call with it answers count 0 and no data.
  JobWalk walk;
  auto first = walk.answer(page({"o1", "o2"}, "o2"));
  REQUIRE(first.next == Kind::kCall);
  auto d = walk.answer(page({}, ""));
  REQUIRE(d.page);
  CHECK(d.page->seq == 1);
  CHECK(d.page->last);
  CHECK(d.page->count == 0);
  CHECK(d.next == Kind::kComplete);
  walk.delivered(0);
  walk.delivered(1);
  CHECK(walk.checkpoint() == WalkCheckpoint{2, "o2", 2});
}

TEST_CASE("an account without followers gives one page of count 0 marked last",
          "[worker][walk][unit]") {
  JobWalk walk;
  auto d = walk.answer(page({}, "", 0));
  REQUIRE(d.page);
  CHECK(d.page->seq == 0);
  CHECK(d.page->last);
  CHECK(d.page->count == 0);
  CHECK(d.next == Kind::kComplete);
}

TEST_CASE("a cursor that does not advance fails the job without a page", "[worker][walk][unit]") {
  JobWalk walk;
  walk.answer(page({"o1", "o2"}, "o2"));
  auto d = walk.answer(page({"o2"}, "o2"));
  CHECK_FALSE(d.page);
  CHECK(d.next == Kind::kFail);
  CHECK(d.next.error.error_class == ErrorClass::kUnknown);
  CHECK(d.next.error.cause.find("does not advance") != std::string::npos);
}

TEST_CASE("a resumed walk calls with its checkpoint's cursor and goes on numbering from its seq",
          "[worker][walk][unit]") {
  JobWalk walk({}, WalkCheckpoint{3, "o30", 30000});
  CHECK(walk.cursor() == "o30");
  auto d = walk.answer(page({"o31"}, ""));
  REQUIRE(d.page);
  CHECK(d.page->seq == 3);
  CHECK(d.page->last);
  CHECK(walk.delivered(3));
  CHECK(walk.checkpoint() == WalkCheckpoint{4, "o30", 30001});
}

TEST_CASE("the checkpoint follows deliveries in order, whatever order they come in",
          "[worker][walk][unit]") {
  JobWalk walk;
  walk.answer(page({"a"}, "a"));
  walk.answer(page({"b", "c"}, "c"));
  walk.answer(page({"d"}, "d"));
  CHECK(walk.undelivered() == 3);
  CHECK(walk.cursor() == "d");  // the calls went ahead of the deliveries
  CHECK_FALSE(walk.delivered(1));  // page 0 is not delivered: the checkpoint cannot pass it
  CHECK(walk.checkpoint() == WalkCheckpoint{});
  CHECK(walk.delivered(0));
  CHECK(walk.checkpoint() == WalkCheckpoint{2, "c", 3});
  CHECK_FALSE(walk.delivered(0));  // a repeated report changes nothing
  CHECK_FALSE(walk.delivered(7));  // nor one for a page never produced
  CHECK(walk.delivered(2));
  CHECK(walk.checkpoint() == WalkCheckpoint{3, "d", 4});
  CHECK(walk.undelivered() == 0);
}

TEST_CASE("the OpenIDs fetched count the pages out and the checkpoint resumed from",
          "[worker][walk][unit]") {
  JobWalk walk({}, WalkCheckpoint{3, "o30", 30000});
  CHECK(walk.fetchedOpenids() == 30000);
  walk.answer(page({"a", "b"}, "b"));
  walk.answer(page({"c"}, "c"));
  CHECK(walk.fetchedOpenids() == 30003);  // neither page delivered yet
  CHECK_FALSE(walk.delivered(4));  // out of order: the checkpoint waits for page 3
  CHECK(walk.fetchedOpenids() == 30003);
  CHECK(walk.delivered(3));
  CHECK(walk.fetchedOpenids() == 30003);  // now all in the checkpoint
  CHECK(walk.checkpoint().openids == 30003);
}

TEST_CASE("token_invalid renews once; a second refusal in a row fails the job",
          "[worker][walk][unit]") {
  FractionRandom random(0.5);
  JobWalk walk;
  Error stale = wechatError(ErrorClass::kTokenInvalid, 40001, "invalid credential");
  auto first = walk.error(stale, kNow, random);
  CHECK(first == Kind::kRenewToken);
  CHECK(walk.renewed() == Kind::kCall);
  auto second = walk.error(stale, kNow, random);
  CHECK(second == Kind::kFail);
  CHECK(second.error.errcode == 40001L);
}

TEST_CASE("an answer between two refusals allows another renewal", "[worker][walk][unit]") {
  FractionRandom random(0.5);
  JobWalk walk;
  Error stale = wechatError(ErrorClass::kTokenInvalid, 42001, "access_token expired");
  REQUIRE(walk.error(stale, kNow, random) == Kind::kRenewToken);
  walk.renewed();
  walk.answer(page({"o1"}, "o1"));
  CHECK(walk.error(stale, kNow, random) == Kind::kRenewToken);
}

TEST_CASE("a renewal that fails for now backs off and may renew again", "[worker][walk][unit]") {
  FractionRandom random(1.0);  // the top of each jitter window
  fanpull::BackoffPolicy policy;
  policy.base = 1s;
  policy.cap = 16s;
  policy.max_attempts = 3;
  JobWalk walk(policy);
  Error stale = wechatError(ErrorClass::kTokenInvalid, 40001);
  REQUIRE(walk.error(stale, kNow, random) == Kind::kRenewToken);
  auto wait = walk.renewFailed(stale, causeOnly(ErrorClass::kRetryable, "ticket not yet pushed"),
                               kNow, random);
  CHECK(wait == Kind::kCall);
  CHECK(wait.at == kNow + 1s);
  // The call after the wait is refused again: the walk may renew again (the renewal never
  // happened).
  CHECK(walk.error(stale, kNow + 1s, random) == Kind::kRenewToken);
  auto again = walk.renewFailed(stale, causeOnly(ErrorClass::kRetryable, "network"), kNow, random);
  CHECK(again.at == kNow + 2s);
  REQUIRE(walk.error(stale, kNow, random) == Kind::kRenewToken);
  auto spent = walk.renewFailed(stale, causeOnly(ErrorClass::kRetryable, "network"), kNow, random);
  CHECK(spent == Kind::kFail);
  CHECK(spent.error.cause == "network");
}

TEST_CASE("a renewal refused for good fails with WeChat's refusal and the renewal's reason",
          "[worker][walk][unit]") {
  FractionRandom random(0.5);
  JobWalk walk;
  Error stale = wechatError(ErrorClass::kTokenInvalid, 40001, "invalid credential");
  REQUIRE(walk.error(stale, kNow, random) == Kind::kRenewToken);
  // A static token cannot be renewed: no errcode of its own, WeChat's is kept.
  auto merged = walk.renewFailed(
      stale, causeOnly(ErrorClass::kTokenInvalid, "a static token cannot be renewed"), kNow,
      random);
  CHECK(merged == Kind::kFail);
  CHECK(merged.error.errcode == 40001L);
  CHECK(merged.error.errmsg == "invalid credential");
  CHECK(merged.error.cause == "a static token cannot be renewed");

  // The refresh token refused (61023): the renewal's own errcode wins.
  JobWalk other;
  REQUIRE(other.error(stale, kNow, random) == Kind::kRenewToken);
  auto refused = other.renewFailed(
      stale, wechatError(ErrorClass::kTokenInvalid, 61023, "invalid refresh_token"), kNow, random);
  CHECK(refused == Kind::kFail);
  CHECK(refused.error.errcode == 61023L);
}

TEST_CASE("retryable and unknown errors back off within the jitter window until the attempts "
          "are spent",
          "[worker][walk][unit]") {
  auto cls = GENERATE(ErrorClass::kRetryable, ErrorClass::kUnknown);
  FractionRandom random(1.0);
  fanpull::BackoffPolicy policy;
  policy.base = 1s;
  policy.cap = 4s;
  policy.max_attempts = 5;
  JobWalk walk(policy);
  Error busy = wechatError(cls, -1, "system error");
  std::vector<fanpull::Duration> waits;
  for (int i = 0; i < 4; ++i) {
    auto n = walk.error(busy, kNow, random);
    REQUIRE(n == Kind::kCall);
    CHECK(n.error.errcode == -1L);
    waits.push_back(n.at - kNow);
  }
  CHECK(waits == std::vector<fanpull::Duration>{1s, 2s, 4s, 4s});  // capped at 4 s
  auto spent = walk.error(busy, kNow, random);
  CHECK(spent == Kind::kFail);
  CHECK(spent.error.errcode == -1L);
  CHECK(walk.failures() == 5);
}

TEST_CASE("an answer resets the attempts", "[worker][walk][unit]") {
  FractionRandom random(0.0);
  fanpull::BackoffPolicy policy;
  policy.max_attempts = 2;
  JobWalk walk(policy);
  Error busy = wechatError(ErrorClass::kRetryable, -1);
  REQUIRE(walk.error(busy, kNow, random) == Kind::kCall);
  walk.answer(page({"o1"}, "o1"));
  CHECK(walk.failures() == 0);
  CHECK(walk.error(busy, kNow, random) == Kind::kCall);
  CHECK(walk.error(busy, kNow, random) == Kind::kFail);
}

TEST_CASE("45011 waits for the next minute, without counting an attempt", "[worker][walk][unit]") {
  FractionRandom random(0.5);
  JobWalk walk;
  auto n = walk.error(wechatError(ErrorClass::kRateLimited, 45011, "api minute-quota reach limit"),
                      kNow, random);
  CHECK(n == Kind::kCall);
  CHECK(n.at == fanpull::fromUnixSeconds(1'796'177'760));  // 10:16:00 Beijing
  CHECK(walk.failures() == 0);
}

TEST_CASE("45009 defers the job to the next Beijing midnight", "[worker][walk][unit]") {
  FractionRandom random(0.5);
  JobWalk walk;
  walk.answer(page({"o1"}, "o1"));
  auto n = walk.error(wechatError(ErrorClass::kQuotaExhausted, 45009, "reach max api daily quota limit"),
                      kNow, random);
  CHECK(n == Kind::kDefer);
  // 2026-12-03 00:00 Beijing = 2026-12-02 16:00 UTC.
  CHECK(n.at == fanpull::fromUnixSeconds(1'796'227'200));
  CHECK(n.error.errcode == 45009L);
  CHECK(walk.cursor() == "o1");  // the walk resumes where it stood
}

TEST_CASE("a spent daily_calls budget defers with class quota_exhausted", "[worker][walk][unit]") {
  JobWalk walk;
  auto n = walk.budgetSpent(kNow + 5h);
  CHECK(n == Kind::kDefer);
  CHECK(n.at == kNow + 5h);
  CHECK(n.error.error_class == ErrorClass::kQuotaExhausted);
  CHECK_FALSE(n.error.errcode);
  CHECK(n.error.cause.find("daily_calls") != std::string::npos);
}

TEST_CASE("every other error class fails the job with the error as given", "[worker][walk][unit]") {
  auto cls = GENERATE(ErrorClass::kPermissionDenied, ErrorClass::kInvalidTenant,
                      ErrorClass::kInvalidCursor, ErrorClass::kBadJob);
  FractionRandom random(0.5);
  JobWalk walk;
  Error e = wechatError(cls, 48001, "api unauthorized");
  auto n = walk.error(e, kNow, random);
  CHECK(n == Kind::kFail);
  CHECK(n.error.error_class == cls);
  CHECK(n.error.errcode == 48001L);
  CHECK(walk.failures() == 0);
}

TEST_CASE("a walk keeps nothing of its delivered pages, however long", "[worker][walk][unit]") {
  JobWalk walk;
  int64_t produced = 0;
  for (int i = 0; i < 100000; ++i) {
    auto d = walk.answer(page({"o" + std::to_string(i)}, "o" + std::to_string(i)));
    REQUIRE(d.page);
    REQUIRE(walk.delivered(d.page->seq));
    ++produced;
  }
  CHECK(walk.checkpoint().seq == produced);
  CHECK(walk.checkpoint().openids == produced);
  CHECK(walk.undelivered() == 0);
}
