// Progress checkpoints: what a record keeps across a restart, and reading a topic to its end (a
// state partition, and the events topic when a job's end is in doubt).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "kafka/embedded_broker.h"
#include "kafka/producer.h"
#include "kafka/topic_scan.h"
#include "support/test_kafka.h"
#include "worker/messages.h"

using namespace std::chrono_literals;
using fanpull::encodeProgress;
using fanpull::parseProgress;
using fanpull::ProgressRecord;
namespace kafka = fanpull::kafka;

namespace {

ProgressRecord record(const std::string& state, int64_t updated_ms) {
  ProgressRecord p;
  p.job_id = "j-1";
  p.appid = "wxprogress";
  p.state = state;
  p.seq = 2;
  p.cursor = "oCURSOR";
  p.openids = 20000;
  p.source_topic = "fanpull.jobs";
  p.source_partition = 1;
  p.source_offset = 7;
  p.updated_ms = updated_ms;
  return p;
}

}  // namespace

TEST_CASE("a progress record keeps where its events are and the end event it is writing",
          "[worker][unit]") {
  ProgressRecord p = record("ending", 1000);
  p.events_partition = 2;
  p.events_offset = 41;
  p.end_event = R"({"job_id":"j-1","status":"completed"})";
  auto back = parseProgress(encodeProgress(p));
  REQUIRE(back);
  CHECK(back->state == "ending");
  CHECK(back->events_partition == 2);
  CHECK(back->events_offset == 41);
  CHECK(back->end_event == p.end_event);
  CHECK(back->cursor == "oCURSOR");

  // Written before any event was delivered: no position, read back as unknown.
  ProgressRecord early = record("running", 1000);
  auto early_back = parseProgress(encodeProgress(early));
  REQUIRE(early_back);
  CHECK(early_back->events_partition == -1);
  CHECK(early_back->events_offset == -1);
  CHECK(encodeProgress(early).find("\"events\"") == std::string::npos);

  // "ending" without the event it is writing cannot be settled: not a progress record.
  ProgressRecord broken = record("ending", 1000);
  CHECK_FALSE(parseProgress(encodeProgress(broken)));
}

TEST_CASE("a topic scan reads each partition from its offset to the end it had when it began",
          "[worker][integration][kafka]") {
  auto broker = fanpull::testing::TestKafka::start(fanpull::testing::brokerKindFromEnvironment(), 1);
  INFO((broker.ok() ? std::string() : broker.error().describe()));
  REQUIRE(broker.ok());
  const std::string topic = "scan." + std::to_string(::getpid());
  REQUIRE((*broker)->createTopic(topic, 2).ok());
  kafka::ProducerOptions options;
  options.bootstrap_servers = (*broker)->bootstrapServers();
  options.log = [](int, const std::string&, const std::string&) {};
  auto producer = kafka::Producer::create(options);
  REQUIRE(producer.ok());
  // Twenty keys spread over both partitions.
  for (int i = 0; i < 20; ++i) {
    REQUIRE((*producer)->produce(topic, "k" + std::to_string(i), "v" + std::to_string(i)).ok());
  }
  REQUIRE((*producer)->flush(10s).ok());
  // One scanner for every scan below: each starts clean whatever the one before it read.
  kafka::TopicScanner scanner((*broker)->bootstrapServers(), {{"log_level", "3"}});
  kafka::ScanOptions everything;
  everything.timeout = 20s;
  std::map<int32_t, std::vector<std::pair<int64_t, std::string>>> seen;
  auto all = scanner.scan(topic, everything, [&](const kafka::ConsumedMessage& m) {
    seen[m.partition].push_back({m.offset, m.value});
  });
  REQUIRE(all.ok());
  CHECK(*all == 20);
  CHECK(seen[0].size() + seen[1].size() == 20);
  REQUIRE(seen[0].size() >= 2);
  for (const auto& [p, messages] : seen) {
    for (size_t i = 0; i < messages.size(); ++i) CHECK(messages[i].first == static_cast<int64_t>(i));
  }

  // From offset 1 of partition 0 only.
  kafka::ScanOptions tail_only = everything;
  tail_only.from = {{0, 1}};
  std::vector<std::string> tail;
  auto some = scanner.scan(topic, tail_only, [&](const kafka::ConsumedMessage& m) {
    CHECK(m.partition == 0);
    tail.push_back(m.value);
  });
  REQUIRE(some.ok());
  REQUIRE(tail.size() == seen[0].size() - 1);
  for (size_t i = 0; i < tail.size(); ++i) CHECK(tail[i] == seen[0][i + 1].second);

  // Written since: a new scan reads up to the new end, from the start again.
  REQUIRE((*producer)->produce(topic, "k20", "v20").ok());
  REQUIRE((*producer)->flush(10s).ok());
  std::vector<std::string> again;
  auto more = scanner.scan(topic, everything,
                           [&](const kafka::ConsumedMessage& m) { again.push_back(m.value); });
  REQUIRE(more.ok());
  CHECK(*more == 21);
  CHECK(std::count(again.begin(), again.end(), "v20") == 1);
  CHECK(std::count(again.begin(), again.end(), "v0") == 1);

  // A topic that does not exist has nothing to read. (The embedded broker creates a topic
  // whose metadata is asked for, so there this reads a new empty topic; Kafka has none.)
  int visited = 0;
  auto none = scanner.scan(topic + ".missing", everything,
                           [&](const kafka::ConsumedMessage&) { ++visited; });
  REQUIRE(none.ok());
  CHECK(*none == 0);
  CHECK(visited == 0);
}

TEST_CASE("a progress record is written byte for byte as a JSON library's dump writes it",
          "[worker][unit]") {
  // The reference: the record as a JSON object, dumped (keys sorted, compact). Records written
  // before the encoder was written by hand read the same, and StateStore finds "state" and
  // "updated_ms" in both without parsing.
  auto reference = [](const ProgressRecord& p) {
    nlohmann::json j = {{"job_id", p.job_id},
                        {"appid", p.appid},
                        {"state", p.state},
                        {"seq", p.seq},
                        {"cursor", p.cursor},
                        {"openids", p.openids},
                        {"source", {{"topic", p.source_topic},
                                    {"partition", p.source_partition},
                                    {"offset", p.source_offset}}},
                        {"retry_at_ms", p.retry_at_ms},
                        {"updated_ms", p.updated_ms}};
    if (p.events_partition >= 0 && p.events_offset >= 0) {
      j["events"] = {{"partition", p.events_partition}, {"offset", p.events_offset}};
    }
    if (!p.end_event.empty()) j["end_event"] = p.end_event;
    return j.dump();
  };
  std::vector<ProgressRecord> records;
  records.push_back(record("running", 1000));
  ProgressRecord ending = record("ending", 1764000000000);
  ending.events_partition = 0;
  ending.events_offset = 0;
  ending.end_event = R"({"job_id":"j-1","status":"failed","error":{"errmsg":"a \"quoted\" \\ path"}})";
  records.push_back(ending);
  ProgressRecord deferred = record("deferred", INT64_MAX);
  deferred.retry_at_ms = 1764043200000;
  deferred.seq = 0;
  deferred.cursor = "";
  deferred.source_offset = -1;
  deferred.events_partition = 3;  // no offset: not written
  records.push_back(deferred);
  ProgressRecord odd = record("completed", 1);
  std::string control;
  for (int c = 0; c < 0x20; ++c) control.push_back(static_cast<char>(c));
  odd.job_id = "job " + control + "\x7f \xE7\xB3\xBB\xE7\xBB\x9F / \\ \"";
  odd.end_event = "\t\n";
  odd.openids = INT64_MIN;
  records.push_back(odd);
  for (const ProgressRecord& p : records) {
    INFO(reference(p));
    CHECK(encodeProgress(p) == reference(p));
    auto back = parseProgress(encodeProgress(p));
    if (p.state != "ending" || !p.end_event.empty()) {
      REQUIRE(back);
      CHECK(back->job_id == p.job_id);
      CHECK(back->updated_ms == p.updated_ms);
    }
  }
}
