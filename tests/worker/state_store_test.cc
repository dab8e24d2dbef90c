// The state store: which record of a job wins (the log's order, never a clock), what a done
// record keeps and for how long, and what a partition's restore and revocation leave in memory.
// A partition's log is a vector here; the real topic is read in the worker's tests.
#include <catch2/catch.hpp>

#include "worker/messages.h"
#include "worker/state_store.h"

using fanpull::encodeProgress;
using fanpull::fromUnixSeconds;
using fanpull::jobStateKey;
using fanpull::ProgressRecord;
using fanpull::StateStore;
using fanpull::TimePoint;

namespace {

const TimePoint kNow = fromUnixSeconds(1795795200);  // 2026-11-27 00:00 Beijing time
constexpr int64_t kNowMs = 1795795200000;
constexpr int64_t kDayMs = 24 * 3600 * 1000;

ProgressRecord record(const std::string& job_id, const std::string& state, int64_t updated_ms,
                      int64_t seq = 2) {
  ProgressRecord p;
  p.job_id = job_id;
  p.appid = "wxstate";
  p.state = state;
  p.seq = seq;
  p.cursor = "oCURSOR" + std::to_string(seq);
  p.openids = seq * 10000;
  p.source_topic = "fanpull.jobs";
  p.source_partition = 1;
  p.source_offset = 7;
  p.updated_ms = updated_ms;
  if (state == "ending") p.end_event = R"({"status":"completed"})";
  return p;
}

struct Entry {
  std::string key;
  std::string value;  // empty: a tombstone
};

Entry logged(const ProgressRecord& p) { return {jobStateKey(p.job_id), encodeProgress(p)}; }

StateStore::PartitionReader readerOf(const std::vector<Entry>& log) {
  return [&log](const StateStore::Visit& visit) -> fanpull::Result<int64_t> {
    for (const auto& e : log) visit(e.key, e.value);
    return static_cast<int64_t>(log.size());
  };
}

}  // namespace

TEST_CASE("within a state partition the later record wins, whatever the clocks of its writers",
          "[worker][unit]") {
  // The old owner's clock ran 10 minutes ahead of the new owner's.
  std::vector<Entry> log = {logged(record("j-1", "running", kNowMs + 600000, 2)),
                            logged(record("j-1", "running", kNowMs, 3))};
  StateStore store;
  auto restored = store.restore(1, kNow, readerOf(log));
  REQUIRE(restored.ok());
  CHECK(restored->records == 2);
  CHECK(restored->jobs == 1);
  REQUIRE(store.find(1, "j-1"));
  CHECK(store.find(1, "j-1")->seq == 3);
  CHECK(store.find(1, "j-1")->cursor == "oCURSOR3");

  // The same for this worker's own checkpoints, in the order it writes them.
  store.apply(1, record("j-1", "running", kNowMs - 60000, 4));
  CHECK(store.find(1, "j-1")->seq == 4);
}

TEST_CASE("a finished or finishing job is never reopened by a late checkpoint",
          "[worker][unit]") {
  StateStore store;
  REQUIRE(store.restore(1, kNow, readerOf({})).ok());
  store.apply(1, record("j-1", "running", kNowMs));
  store.apply(1, record("j-1", "ending", kNowMs));
  store.apply(1, record("j-1", "running", kNowMs));  // a late checkpoint of the walk
  CHECK(store.find(1, "j-1")->state == "ending");
  store.apply(1, record("j-1", "deferred", kNowMs));
  CHECK(store.find(1, "j-1")->state == "ending");
  store.apply(1, record("j-1", "completed", kNowMs));
  CHECK(store.find(1, "j-1")->state == "completed");
  store.apply(1, record("j-1", "running", kNowMs));
  store.apply(1, record("j-1", "ending", kNowMs));
  CHECK(store.find(1, "j-1")->state == "completed");
  CHECK(store.size() == 1);
}

TEST_CASE("a done record keeps the job's identity and totals, not its cursor or end event",
          "[worker][unit]") {
  ProgressRecord ending = record("j-1", "ending", kNowMs, 5);
  ProgressRecord done = fanpull::stateRecordOf(record("j-1", "completed", kNowMs, 5));
  CHECK(done.cursor.empty());
  CHECK(done.end_event.empty());
  CHECK(done.seq == 5);
  CHECK(done.openids == 50000);
  CHECK(done.source_offset == 7);
  CHECK(fanpull::stateRecordOf(ending).end_event == ending.end_event);
  CHECK(encodeProgress(done).size() < encodeProgress(record("j-1", "completed", kNowMs, 5)).size());
}

TEST_CASE("a tombstone removes a job, and done records older than 7 days expire at a restore",
          "[worker][unit]") {
  std::vector<Entry> log = {
      logged(record("j-old", "completed", kNowMs - 8 * kDayMs)),
      logged(record("j-week", "failed", kNowMs - 6 * kDayMs)),
      logged(record("j-gone", "running", kNowMs)),
      {jobStateKey("j-gone"), ""},
      logged(record("j-live", "running", kNowMs - 30 * kDayMs)),  // under way: never expires
      {"calls/wxstate", "{}"},  // not a job's record: ignored here
  };
  StateStore store;
  auto restored = store.restore(3, kNow, readerOf(log));
  REQUIRE(restored.ok());
  CHECK(restored->records == 6);
  CHECK(restored->jobs == 2);
  CHECK(restored->expired == std::vector<std::string>{jobStateKey("j-old")});
  CHECK_FALSE(store.find(3, "j-old"));
  CHECK_FALSE(store.find(3, "j-gone"));
  REQUIRE(store.find(3, "j-week"));
  CHECK(store.find(3, "j-week")->state == "failed");
  CHECK(store.find(3, "j-live"));
  // A partition is its own: the same job id elsewhere is not known.
  CHECK_FALSE(store.find(0, "j-week"));
}

TEST_CASE("a revoked partition is forgotten, and nothing is kept for a partition not held",
          "[worker][unit]") {
  std::vector<Entry> log = {logged(record("j-1", "running", kNowMs))};
  StateStore store;
  REQUIRE(store.restore(1, kNow, readerOf(log)).ok());
  REQUIRE(store.restore(2, kNow, readerOf(log)).ok());
  CHECK(store.size() == 2);
  store.forget(1);
  CHECK_FALSE(store.holds(1));
  CHECK_FALSE(store.find(1, "j-1"));
  // A late checkpoint of a job of the revoked partition does not bring it back.
  store.apply(1, record("j-2", "running", kNowMs));
  store.applyLogged(1, jobStateKey("j-3"), encodeProgress(record("j-3", "running", kNowMs)));
  CHECK(store.size() == 1);
  CHECK_FALSE(store.find(1, "j-2"));
}

TEST_CASE("a restore that cannot read its partition holds nothing of it", "[worker][unit]") {
  StateStore store;
  auto failed = store.restore(4, kNow, [](const StateStore::Visit& visit) -> fanpull::Result<int64_t> {
    visit(jobStateKey("j-1"), encodeProgress(record("j-1", "running", kNowMs)));
    return fanpull::Error::of(fanpull::ErrorClass::kRetryable, "state not read to its end");
  });
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().cause == "state not read to its end");
  CHECK_FALSE(store.holds(4));
  CHECK_FALSE(store.find(4, "j-1"));
}

TEST_CASE("a restore gives the newest calls reservation of each merchant of the partition",
          "[worker][unit]") {
  fanpull::CallsReserved day1{"wxstate", kNowMs + kDayMs, 4};
  fanpull::CallsReserved day1_more{"wxstate", kNowMs + kDayMs, 6};
  fanpull::CallsReserved other{"wxother", kNowMs + kDayMs, 2};
  std::vector<Entry> log = {
      {fanpull::callsStateKey("wxstate"), fanpull::encodeCalls(day1)},
      {fanpull::callsStateKey("wxother"), fanpull::encodeCalls(other)},
      logged(record("j-1", "running", kNowMs)),
      {fanpull::callsStateKey("wxstate"), fanpull::encodeCalls(day1_more)},
      {fanpull::callsStateKey("wxother"), ""},
      {fanpull::callsStateKey("wxbroken"), "{\"appid\": 3}"},
  };
  StateStore store;
  auto restored = store.restore(0, kNow, readerOf(log));
  REQUIRE(restored.ok());
  REQUIRE(restored->calls.size() == 1);
  const fanpull::CallsReserved& calls = restored->calls.at("wxstate");
  CHECK(calls.reserved == 6);
  CHECK(calls.day_end_ms == kNowMs + kDayMs);
  CHECK(restored->jobs == 1);  // a calls record is not a job
  auto back = fanpull::parseCalls(fanpull::encodeCalls(other));
  REQUIRE(back);
  CHECK(back->appid == "wxother");
  CHECK(back->reserved == 2);
}
