#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "worker/job_records.h"
#include "worker/state_store.h"

using namespace fanpull;

namespace {

const Job kJob{"job-7", "wxRecords", ""};
const JobSource kSource{"fanpull.jobs", 3, 120};
// 2026-12-03 08:00:00 UTC (16:00 in Beijing).
const TimePoint kNow = fromUnixSeconds(1796284800);

std::string openidOf(int i) {
  std::string id = "oRecordsOpenId" + std::to_string(i);
  return id + std::string(28 - id.size(), 'x');
}

FollowerPage pageOf(int openids, const std::string& next) {
  FollowerPage page;
  for (int i = 0; i < openids; ++i) page.add(openidOf(i));
  page.total = 100000;
  page.count = openids;
  page.next_openid = next;
  page.has_data = openids > 0;
  return page;
}

std::string header(const OutboxRecord& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "(none)";
}

}  // namespace

TEST_CASE("a page that fits is one record to the pages topic, in the answer's own buffer",
          "[worker][unit][records]") {
  KafkaTopics topics;
  topics.pages = "t.pages";
  JobRecords records(topics, 1 << 20);
  FollowerPage page = pageOf(300, "oNext");

  std::vector<OutboxRecord> out = records.page(kJob, page, 4, false);

  REQUIRE(out.size() == 1);
  CHECK(out[0].topic == "t.pages");
  CHECK(out[0].key.empty());  // the outbox keys it by the merchant's appid
  CHECK(header(out[0], kHeaderJobId) == "job-7");
  CHECK(header(out[0], kHeaderSeq) == "4");
  CHECK(header(out[0], kHeaderPart) == "(none)");
  CHECK(page.size() == 0);  // the OpenIDs went into the message, not a copy of them
  auto v = nlohmann::json::parse(out[0].value);
  CHECK(v["job_id"] == "job-7");
  CHECK(v["appid"] == "wxRecords");
  CHECK(v["seq"] == 4);
  CHECK(v["count"] == 300);
  CHECK(v["last"] == false);
  CHECK(v["next_openid"] == "oNext");
  REQUIRE(v["openids"].size() == 300);
  CHECK(v["openids"][299] == openidOf(299));
}

TEST_CASE("a page over the message limit is written in parts that keep its OpenIDs in order",
          "[worker][unit][records]") {
  JobRecords records(KafkaTopics{}, 4096);
  FollowerPage page = pageOf(500, "");

  std::vector<OutboxRecord> out = records.page(kJob, page, 0, true);

  REQUIRE(out.size() > 1);
  std::vector<std::string> openids;
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("part " << i);
    CHECK(out[i].topic == "fanpull.pages");
    CHECK(out[i].value.size() <= 4096);
    CHECK(header(out[i], kHeaderSeq) == "0");
    CHECK(header(out[i], kHeaderPart) == std::to_string(i));
    auto v = nlohmann::json::parse(out[i].value);
    CHECK(v["part"] == i);
    CHECK(v["parts"] == out.size());
    CHECK(v["last"] == true);
    for (const auto& id : v["openids"]) openids.push_back(id);
  }
  REQUIRE(openids.size() == 500);
  for (int i = 0; i < 500; ++i) CHECK(openids[static_cast<size_t>(i)] == openidOf(i));
}

TEST_CASE("a job event says what the walk delivered, and what the merchant can still afford",
          "[worker][unit][records]") {
  KafkaTopics topics;
  topics.events = "t.events";
  JobRecords records(topics, 1 << 20);
  const WalkCheckpoint at{3, "oCursor3", 30000};

  OutboxRecord started = records.event(kJob, at, "started", kNow, std::nullopt, std::nullopt, 12);
  CHECK(started.topic == "t.events");
  auto s = nlohmann::json::parse(started.value);
  CHECK(s["job_id"] == "job-7");
  CHECK(s["status"] == "started");
  CHECK(s["pages"] == 3);
  CHECK(s["openids"] == 30000);
  CHECK(s["pages_affordable_today"] == 12);
  CHECK_FALSE(s.contains("error"));

  const TimePoint retry = fromUnixSeconds(1796313600);  // 2026-12-04 00:00 in Beijing
  OutboxRecord deferred = records.event(
      kJob, at, "deferred", kNow, Error::of(ErrorClass::kQuotaExhausted, "45009"), retry);
  auto d = nlohmann::json::parse(deferred.value);
  CHECK(d["status"] == "deferred");
  CHECK(d["error"]["class"] == "quota_exhausted");
  CHECK(d["retry_at"] == "2026-12-04T00:00:00+08:00");
  CHECK_FALSE(d.contains("pages_affordable_today"));  // the day is not bounded
}

TEST_CASE("a checkpoint is the job's state record in its jobs partition and a progress record",
          "[worker][unit][records]") {
  KafkaTopics topics;
  topics.state = "t.state";
  topics.progress = "t.progress";
  JobRecords records(topics, 1 << 20);
  const WalkCheckpoint at{2, "oCursor2", 20000};
  const TimePoint retry = fromUnixSeconds(1796313600);

  ProgressRecord p = JobRecords::progress(kJob, kSource, at, kProgressDeferred, kNow, {1, 77},
                                          retry);
  CHECK(p.job_id == "job-7");
  CHECK(p.appid == "wxRecords");
  CHECK(p.state == "deferred");
  CHECK(p.seq == 2);
  CHECK(p.cursor == "oCursor2");
  CHECK(p.openids == 20000);
  CHECK(p.source_topic == "fanpull.jobs");
  CHECK(p.source_partition == 3);
  CHECK(p.source_offset == 120);
  CHECK(p.retry_at_ms == 1796313600000);
  CHECK(p.updated_ms == 1796284800000);
  CHECK(p.events_partition == 1);
  CHECK(p.events_offset == 77);
  CHECK(p.end_event.empty());
  CHECK(JobRecords::progress(kJob, kSource, at, kProgressRunning, kNow, {}).retry_at_ms == 0);

  std::vector<OutboxRecord> out = records.checkpoint(p, "state-value");
  REQUIRE(out.size() == 2);
  CHECK(out[0].topic == "t.state");
  CHECK(out[0].key == jobStateKey("job-7"));
  CHECK(out[0].partition == 3);  // the state partition of the job's jobs partition
  CHECK(out[0].value == "state-value");
  CHECK(out[1].topic == "t.progress");
  CHECK(out[1].key.empty());
  auto back = parseProgress(out[1].value);
  REQUIRE(back);
  CHECK(back->state == "deferred");
  CHECK(back->seq == 2);
  CHECK(back->cursor == "oCursor2");
  CHECK(back->retry_at_ms == 1796313600000);
  CHECK(back->events_offset == 77);
}
