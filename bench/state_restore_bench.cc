// A state partition's restore after many finished jobs: what a worker assigned a jobs partition
// reads before its first job runs. For each fleet history (100 and 10,000 finished jobs by
// default) it writes to one state partition what the worker writes for a job of 3 pages (3
// running checkpoints, ending with its end event, the done record) plus one daily-calls record per
// 10 jobs, waits until the broker has compacted the partition (a compacted topic with
// segment.ms 1 s; scripts/kafka-broker looks for cleanable logs every second), then times
// StateStore::restore with the reader a worker keeps, `runs` times after one warm-up. Prints records written and retained,
// the medians, and the ratio of the largest history's median to the smallest's.
// Against the embedded broker (nothing is compacted there) it prints the uncompacted figures.
//   FANPULL_TEST_BROKER=kafka build/bench/bench_state_restore [runs] [jobs...]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "kafka/producer.h"
#include "kafka/topic_scan.h"
#include "support/test_kafka.h"
#include "worker/messages.h"
#include "worker/state_store.h"

namespace {

using namespace fanpull;
using Steady = std::chrono::steady_clock;

constexpr int64_t kNowMs = 1795795200000;  // 2026-11-27 00:00 Beijing time

ProgressRecord checkpoint(const std::string& job_id, const std::string& appid,
                          const std::string& state, int64_t seq, int64_t offset) {
  ProgressRecord p;
  p.job_id = job_id;
  p.appid = appid;
  p.state = state;
  p.seq = seq;
  p.cursor = seq > 0 ? "o6_bmasdasdsad6_2sgVt7hMZOPf" + std::to_string(seq) : "";
  p.openids = seq * 10000;
  p.source_topic = "fanpull.jobs";
  p.source_partition = 0;
  p.source_offset = offset;
  p.updated_ms = kNowMs + offset;
  p.events_partition = 0;
  p.events_offset = offset * 2;
  return p;
}

// Writes `jobs` finished jobs' records (and a calls record every 10 jobs); returns how many.
int64_t writeHistory(kafka::Producer& producer, const std::string& topic, int jobs) {
  int64_t written = 0;
  auto put = [&](const std::string& key, const std::string& value) {
    auto value_ptr = std::make_shared<const std::string>(value);
    while (true) {
      auto queued = producer.produce(topic, key, value_ptr, {}, {}, 0);
      if (queued.ok()) break;
      (void)producer.flush(std::chrono::seconds(1));  // a full local queue: let it drain
    }
    ++written;
  };
  for (int i = 0; i < jobs; ++i) {
    const std::string job_id = "job-" + std::to_string(i);
    const std::string appid = "wxrestore" + std::to_string(i % 100);
    const std::string key = jobStateKey(job_id);
    for (int seq = 1; seq <= 3; ++seq) {
      put(key, encodeProgress(checkpoint(job_id, appid, kProgressRunning, seq, i)));
    }
    ProgressRecord ending = checkpoint(job_id, appid, kProgressEnding, 4, i);
    ending.end_event = R"({"job_id":")" + job_id + R"(","appid":")" + appid +
                       R"(","status":"completed","pages":4,"openids":30000})";
    put(key, encodeProgress(ending));
    put(key, encodeProgress(stateRecordOf(checkpoint(job_id, appid, kProgressCompleted, 4, i))));
    if (i % 10 == 9) {
      put(callsStateKey(appid), encodeCalls({appid, kNowMs + 86400000, (i % 500) + 1}));
    }
  }
  (void)producer.flush(std::chrono::seconds(60));
  return written;
}

int64_t countRecords(kafka::TopicScanner& scanner, const std::string& topic) {
  kafka::ScanOptions options;
  options.from[0] = kafka::kOffsetBeginning;
  options.timeout = std::chrono::seconds(60);
  auto read = scanner.scan(topic, options, [](const kafka::ConsumedMessage&) {});
  return read.ok() ? *read : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  std::vector<int> histories;
  for (int i = 2; i < argc; ++i) histories.push_back(std::atoi(argv[i]));
  if (histories.empty()) histories = {100, 10000};

  testing::TestKafka::preferSteadyState();
  auto broker = testing::TestKafka::start(testing::brokerKindFromEnvironment(), 1);
  if (!broker.ok()) {
    std::fprintf(stderr, "bench_state_restore: %s\n", broker.error().describe().c_str());
    return 1;
  }
  const bool real = (*broker)->real();
  kafka::ProducerOptions po;
  po.bootstrap_servers = (*broker)->bootstrapServers();
  po.properties = {{"linger.ms", "20"}, {"queue.buffering.max.messages", "1000000"}};
  po.log = [](int, const std::string&, const std::string&) {};
  auto producer = kafka::Producer::create(po);
  if (!producer.ok()) {
    std::fprintf(stderr, "bench_state_restore: %s\n", producer.error().describe().c_str());
    return 1;
  }
  std::printf("broker: %s; %d runs each; jobs of 3 pages (5 records each, a calls record per 10 "
              "jobs)\n",
              real ? "Apache Kafka (compacted)" : "embedded (never compacted)", runs);
  std::printf("%-10s %10s %10s %10s %12s %12s %12s %12s\n", "jobs", "written", "retained",
              "compact_s", "restore_ms", "p10_ms", "p90_ms", "read_ms");
  std::vector<double> medians;
  for (int jobs : histories) {
    const std::string topic =
        "bench.state." + std::to_string(::getpid()) + "." + std::to_string(jobs);
    auto created = (*broker)->createTopic(topic, 1,
                                          {{"cleanup.policy", "compact"},
                                           {"segment.ms", "1000"},
                                           {"min.cleanable.dirty.ratio", "0.01"},
                                           {"min.compaction.lag.ms", "0"},
                                           {"delete.retention.ms", "1000"}});
    if (!created.ok()) {
      std::fprintf(stderr, "bench_state_restore: %s\n", created.error().describe().c_str());
      return 1;
    }
    const int64_t written = writeHistory(**producer, topic, jobs);
    // The active segment is never compacted: a record written after segment.ms rolls it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    (void)(*producer)->produce(topic, "roll", "{}", {}, {});
    (void)(*producer)->flush(std::chrono::seconds(10));
    kafka::TopicScanner counter((*broker)->bootstrapServers(), {{"log_level", "3"}});
    const auto compact_start = Steady::now();
    // Compacted: at most one record per key (jobs, 100 merchants' calls, the roll) plus what
    // the new active segment holds.
    const int64_t bound = jobs + 100 + 10;
    int64_t retained = countRecords(counter, topic);
    while (real && retained > bound && Steady::now() - compact_start < std::chrono::seconds(120)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      retained = countRecords(counter, topic);
    }
    const double compact_s =
        std::chrono::duration<double>(Steady::now() - compact_start).count();

    StateRestore last;
    // One reader for every run, as a worker keeps its state reader for its life.
    kafka::TopicScanner scanner((*broker)->bootstrapServers(), {{"log_level", "3"}});
    bench::Timing t = bench::timeIt(1, runs, [&] {
      StateStore store;
      auto restored =
          store.restore(0, fromUnixSeconds(kNowMs / 1000),
                        partitionReader(scanner, topic, 0, std::chrono::seconds(60)));
      if (restored.ok()) last = *restored;
    });
    // The same read without keeping anything: what reading the partition alone costs.
    bench::Timing read_only = bench::timeIt(1, runs, [&] {
      (void)partitionReader(scanner, topic, 0, std::chrono::seconds(60))(
          [](std::string_view, std::string_view) {});
    });
    medians.push_back(t.median_us / 1000.0);
    std::printf("%-10d %10lld %10lld %10.1f %12.1f %12.1f %12.1f %12.1f\n", jobs,
                static_cast<long long>(written), static_cast<long long>(retained), compact_s,
                t.median_us / 1000.0, t.p10_us / 1000.0, t.p90_us / 1000.0,
                read_only.median_us / 1000.0);
    std::printf("           last restore: %lld records read, %lld jobs known, %zu merchants' "
                "calls\n",
                static_cast<long long>(last.records), static_cast<long long>(last.jobs),
                last.calls.size());
  }
  if (medians.size() >= 2 && medians.front() > 0) {
    std::printf("ratio of restore medians, %d jobs / %d jobs: %.2f (target <= 2.0)\n",
                histories.back(), histories.front(), medians.back() / medians.front());
  }
  return 0;
}
