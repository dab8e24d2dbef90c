// Lanes and UndeliveredBudget: the two parts of the worker that decide which job makes the next
// call. Pure bookkeeping (no threads, no clock, no I/O); thread-compatible: the worker guards both
// with its mutex and schedules the jobs they hand back. `Job` is any copyable handle (the worker
// uses a shared pointer to its run).
//
// Lanes: one per AppID. A merchant's jobs run one at a time, in the order they arrived; a queued
// job is only its handle, whatever its size, so memory grows with jobs queued by a few hundred
// bytes each, never by a page; and the worker bounds the jobs ready to run (ready()) by pausing
// its jobs partitions, so a backlog beyond waits in Kafka, not in memory.
//
// UndeliveredBudget: what is fetched but not yet delivered stays under a byte budget
// (kafka.max_undelivered_bytes). A call reserves the bytes its page will likely take before it is
// made; over the budget, the job is parked instead. Room made by deliveries wakes walks already
// under way before walks not begun; a walk not begun still begins whenever there is room, so with
// a thousand jobs queued most of them are walks under way at once (their records, not their
// pages: docs/BENCHMARKS.md, "Memory by fleet size"). The pages held in memory stay within the
// budget whatever the number of merchants.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace fanpull {

template <typename Job>
class Lanes {
 public:
  // Queues `job` behind the jobs of `appid`. True when it is the lane's only job: start it now.
  bool add(const std::string& appid, Job job) {
    Lane& lane = lanes_[appid];
    lane.jobs.push_back(std::move(job));
    ++queued_;
    if (lane.held) ++held_;
    return lane.jobs.size() == 1;
  }

  // `job` is over. When it was its lane's front, the lane's next job (to start now), if any; a
  // job that is not its lane's front (dropped from it, or settled twice) hands nothing on.
  std::optional<Job> finish(const std::string& appid, const Job& job) {
    auto it = lanes_.find(appid);
    if (it == lanes_.end() || it->second.jobs.empty() || !(it->second.jobs.front() == job)) {
      return std::nullopt;
    }
    Lane& lane = it->second;
    unhold(lane);  // the hold was its front's
    lane.jobs.pop_front();
    --queued_;
    if (lane.jobs.empty()) {
      lanes_.erase(it);
      return std::nullopt;
    }
    return lane.jobs.front();
  }

  // The front of `appid`'s lane waits for a time far off (a deferral to the next Beijing day):
  // while `held`, the lane's jobs do not count as ready(). finish() or hold(appid, false) ends
  // it. Nothing for an appid without a lane.
  void hold(const std::string& appid, bool held) {
    auto it = lanes_.find(appid);
    if (it == lanes_.end()) return;
    Lane& lane = it->second;
    if (held && !lane.held) {
      lane.held = true;
      held_ += lane.jobs.size();
    } else if (!held) {
      unhold(lane);
    }
  }

  // The merchants with a job queued or running.
  std::set<std::string> appids() const {
    std::set<std::string> out;
    for (const auto& entry : lanes_) out.insert(out.end(), entry.first);
    return out;
  }

  // Drops every job for which gone(job) holds (revoked partitions). Returns the new fronts of the
  // lanes whose front was dropped: they start now.
  template <typename Gone>
  std::vector<Job> drop(Gone gone) {
    std::vector<Job> restart;
    for (auto it = lanes_.begin(); it != lanes_.end();) {
      Lane& lane = it->second;
      const bool front_left = gone(lane.jobs.front());
      if (front_left) unhold(lane);
      for (auto j = lane.jobs.begin(); j != lane.jobs.end();) {
        if (gone(*j)) {
          j = lane.jobs.erase(j);
          --queued_;
          if (lane.held) --held_;
        } else {
          ++j;
        }
      }
      if (lane.jobs.empty()) {
        it = lanes_.erase(it);
        continue;
      }
      if (front_left) restart.push_back(lane.jobs.front());
      ++it;
    }
    return restart;
  }

  size_t lanes() const { return lanes_.size(); }
  // Jobs in every lane, the running ones included.
  size_t queued() const { return queued_; }
  // Jobs in the lanes not held: running, or to run as soon as a call is free. What the worker
  // bounds by pausing its jobs partitions (kafka.max_queued_jobs); a held lane's jobs wait for
  // their day whatever the worker does, so they cannot keep the partitions paused.
  size_t ready() const { return queued_ - held_; }

 private:
  // jobs.front(): the job running, waiting for its time, or parked. A list: most lanes hold one
  // job, and an empty deque already allocates more than half a kilobyte.
  struct Lane {
    std::list<Job> jobs;
    bool held = false;
  };
  void unhold(Lane& lane) {
    if (!lane.held) return;
    lane.held = false;
    held_ -= lane.jobs.size();
  }
  std::map<std::string, Lane> lanes_;
  size_t queued_ = 0;
  size_t held_ = 0;  // jobs in held lanes
};

template <typename Job>
class UndeliveredBudget {
 public:
  // What a call is assumed to fetch before any page was seen: a full page (10,000 OpenIDs of
  // 28 characters, quoted, and the message's other fields), so that the first calls of a fleet
  // of large merchants do not all go at once on a guess that is five times too small.
  static constexpr int64_t kFirstPageEstimate = 10000 * 31 + 1024;
  static constexpr int64_t kFullPage = 10000;       // OpenIDs in a full page of getFans
  static constexpr int64_t kEmptyPageBytes = 1024;  // a page of count 0 and its headers, about

  // The bytes a walk's first page will likely take, given the last estimate and a first page
  // just produced: a larger page is taken at once, a smaller one moves it by an eighth of the
  // difference, so a fleet of small merchants comes down to their size within a few dozen
  // walks, and one of mixed sizes reserves for the large ones.
  static int64_t nextEstimate(int64_t estimate, int64_t page_bytes) {
    return page_bytes >= estimate ? page_bytes : estimate - (estimate - page_bytes) / 8;
  }

  // What a walk's next page will likely take, after a page of `page_bytes` holding `count`
  // OpenIDs, when WeChat said the merchant has `total` followers (0: not said) and `fetched`
  // were fetched so far: as many more as are left, up to a full page (10,000), at this page's
  // size per OpenID; a walk with none left expects the empty last page (docs/WECHAT.md). Only a
  // guess for the budget: followers gained during the walk make the page larger than expected,
  // by at most one page per walk.
  static int64_t nextPageEstimate(int64_t page_bytes, int64_t count, int64_t total,
                                  int64_t fetched) {
    if (count <= 0 || total <= 0) return page_bytes;
    const int64_t left = std::min<int64_t>(std::max<int64_t>(total - fetched, 0), kFullPage);
    return std::max<int64_t>(kEmptyPageBytes, page_bytes / count * left);
  }

  explicit UndeliveredBudget(int64_t max_bytes) : max_bytes_(max_bytes) {}

  // Bytes reserved by calls under way.
  int64_t reserved() const { return reserved_; }
  size_t parked() const { return parked_started_.size() + parked_new_.size(); }

  // A call of `job` would fetch about `bytes`; `elsewhere` is what already waits for delivery
  // (the outbox, groups held for a transaction). Under the budget: the bytes are reserved at once
  // (so jobs woken together cannot all pass before any reserves) and the call may go. Over it:
  // `job` is parked, `started` saying whether its walk has a page out already.
  bool tryReserve(int64_t elsewhere, int64_t bytes, bool started, Job job) {
    if (elsewhere + reserved_ < max_bytes_) {
      reserved_ += bytes;
      return true;
    }
    (started ? parked_started_ : parked_new_).push_back(std::move(job));
    return false;
  }

  // A call is over: its `bytes` are given back, and what waits elsewhere is now `elsewhere`.
  // Returns the parked jobs to wake: none while over the budget; one per release (a delivery
  // makes room for about one page), started walks first; every parked job below half the budget
  // (each checks again), so a job whose call produced nothing cannot leave the others parked.
  std::vector<Job> release(int64_t elsewhere, int64_t bytes) {
    reserved_ -= bytes;
    std::vector<Job> wake;
    const int64_t held = elsewhere + reserved_;
    if (held >= max_bytes_) return wake;
    const bool all = held * 2 < max_bytes_;
    for (auto* parked : {&parked_started_, &parked_new_}) {
      while (!parked->empty() && (all || wake.empty())) {
        wake.push_back(std::move(parked->front()));
        parked->pop_front();
      }
    }
    return wake;
  }

 private:
  int64_t max_bytes_;
  int64_t reserved_ = 0;
  std::deque<Job> parked_started_;
  std::deque<Job> parked_new_;
};

}  // namespace fanpull
