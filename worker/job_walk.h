// JobWalk: the decisions of one job's walk of a merchant's follower list, as a state machine with
// no I/O, no threads and no clock reads. The shell (Worker) tells it what happened (an answer, an
// error, a token renewal, a delivery, the time as an argument) and carries out what it returns:
// the page to produce now, and what to do next (call at a time, renew the token, defer, fail,
// complete). It follows docs/WECHAT.md (the two ways a list ends, the error classes) and
// docs/CONTRACTS.md (a page is produced as soon as its answer arrives; the last one says so).
// Thread-compatible value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/follower_page.h"

namespace fanpull {

// What a walk has delivered: where a restarted walk resumes (the progress record's fields).
struct WalkCheckpoint {
  int64_t seq = 0;      // pages delivered (the next page's seq)
  std::string cursor;   // next_openid of the call after the last delivered page
  int64_t openids = 0;  // OpenIDs in the delivered pages
  bool operator==(const WalkCheckpoint& o) const {
    return seq == o.seq && cursor == o.cursor && openids == o.openids;
  }
};

// A page to produce now, for the answer just given.
struct WalkPage {
  int64_t seq = 0;
  bool last = false;         // the job's final page (a data page, or a page of count 0)
  int64_t count = 0;         // OpenIDs in it
  std::string cursor_after;  // the cursor the checkpoint takes once it is delivered
};

// What the shell does next.
struct WalkNext {
  enum class Kind {
    kCall,        // call getFans with cursor() at `at` (TimePoint{}: at once)
    kRenewToken,  // renew the refused access token, then tell renewed() or renewFailed()
    kDefer,       // write the deferral (error says why) and call again at `at`
    kFail,        // the job fails with `error`
    kComplete,    // the walk is over: the job completes once every page is delivered
  };
  Kind kind = Kind::kCall;
  TimePoint at{};
  Error error;  // kDefer, kFail: the reason; kCall after an error: the error that caused the wait
  bool operator==(Kind k) const { return kind == k; }
  bool operator!=(Kind k) const { return kind != k; }
};

// The answer's decision: its page (none for a stalled cursor) and what follows.
struct WalkDecision {
  std::optional<WalkPage> page;
  WalkNext next;
};

class JobWalk {
 public:
  // A walk from `from` (a new job: its start cursor and seq 0; a resumed one: its checkpoint).
  explicit JobWalk(BackoffPolicy backoff = {}, WalkCheckpoint from = {});

  // The next_openid of the next call: the last answer's cursor, delivered or not.
  const std::string& cursor() const { return cursor_; }
  // What has been delivered, in order: pages 0..seq-1 all delivered.
  const WalkCheckpoint& checkpoint() const { return checkpoint_; }
  // Pages produced and not delivered yet.
  size_t undelivered() const { return in_flight_.size(); }
  // The seq the next page will have (pages produced so far, resumed ones included).
  int64_t emitted() const { return next_seq_; }
  // OpenIDs in the pages produced so far, delivered or not (resumed ones included).
  int64_t fetchedOpenids() const;
  // The last page was produced: the walk makes no more calls.
  bool over() const { return over_; }
  // Failed attempts since the last answer (each error of class retryable or unknown counts one).
  int failures() const { return failures_; }

  // WeChat answered the call made with cursor(). A page that advances is produced and the walk
  // calls again; a page with an empty next_openid is the last one; an answer without OpenIDs ends
  // the walk with a page of count 0 marked last; a next_openid equal to the cursor that was sent
  // fails the job (class unknown) without a page, as calling again would loop.
  WalkDecision answer(const FollowerPage& page);

  // The call (or the token it needed) failed with `error` at `now`. token_invalid: renew once
  // (a second refusal in a row fails); retryable and unknown: call again after a jittered backoff
  // drawn from `random`, failing with the error when the attempts are spent; rate_limited (45011):
  // call again at the next minute; quota_exhausted (45009): defer to the next Beijing midnight;
  // any other class fails the job.
  WalkNext error(const Error& error, TimePoint now, Random& random);

  // The renewal asked for by error() succeeded: call again at once.
  WalkNext renewed();
  // The renewal failed with `why` (the call had been refused with `refusal`). A retryable `why`
  // waits a backoff and tries again; otherwise the job fails with `why`, or with WeChat's refusal
  // (errcode, errmsg) and why's cause when `why` carries no errcode of its own.
  WalkNext renewFailed(const Error& refusal, const Error& why, TimePoint now, Random& random);

  // The day's calls are spent until `until`, by the configured daily_calls budget or, when
  // `wechat_quota`, by what openapi/quota/get said was left: defer (class quota_exhausted).
  WalkNext budgetSpent(TimePoint until, bool wechat_quota = false);

  // Page `seq` was delivered. Deliveries may come in any order; the checkpoint moves over the
  // delivered prefix only. True when the checkpoint moved (a progress record is due).
  bool delivered(int64_t seq);

 private:
  struct InFlight {
    WalkPage page;
    bool delivered = false;
  };
  WalkPage emit(bool last, int64_t count, std::string cursor_after);
  WalkNext backoffOrFail(const Error& error, TimePoint now, Random& random);

  BackoffPolicy backoff_;
  WalkCheckpoint checkpoint_;
  std::string cursor_;
  int64_t next_seq_ = 0;
  int failures_ = 0;
  bool renewed_ = false;  // a renewal happened since the last answer
  bool over_ = false;     // the last page was emitted
  // By seq, from checkpoint_.seq. A vector: a walk rarely has more than a few pages out, and
  // unlike a deque it costs nothing until the first (a queued job holds an unstarted walk).
  std::vector<InFlight> in_flight_;
};

}  // namespace fanpull
