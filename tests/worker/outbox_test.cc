// The outbox alone, with a fake sink and retries run by hand: what is produced again, what is
// given up, what the budget and /readyz are told. No broker, no threads, no sleeping.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "tests/support/fake_record_sink.h"
#include "tests/support/simulated_clock.h"
#include "worker/outbox.h"

namespace {

using namespace fanpull;
using fanpull::testing::FakeRecordSink;
using fanpull::testing::SimulatedClock;

Error kafkaFailure(ErrorClass cls, const std::string& cause) {
  Error e;
  e.error_class = cls;
  e.cause = cause;
  return e;
}

// An outbox over a fake sink whose retries wait in `scheduled` until the test runs them.
struct Bench {
  FakeRecordSink sink;
  SimulatedClock clock;
  std::vector<std::string> lines;
  Logger log{LogLevel::kInfo, true, [this](const std::string& line) { lines.push_back(line); },
             clock};
  std::vector<std::pair<TimePoint, std::function<void()>>> scheduled;
  int64_t released = 0;
  Outbox outbox{sink, clock, log,
                [this](TimePoint when, std::function<void()> task) {
                  scheduled.emplace_back(when, std::move(task));
                },
                [this](int64_t bytes) { released += bytes; }};
  std::vector<Result<kafka::Delivery>> outcomes;

  void send(const std::string& topic, const std::string& value) {
    outbox.send("wxmerchant", std::make_shared<const OutboxRecord>(OutboxRecord{topic, value, {}}),
                [this](const Result<kafka::Delivery>& d) { outcomes.push_back(d); });
  }
  // Runs the retries scheduled so far, in order.
  void runScheduled() {
    auto due = std::move(scheduled);
    scheduled.clear();
    for (auto& [when, task] : due) task();
  }
  int linesWith(const std::string& text) const {
    int n = 0;
    for (const auto& l : lines) n += l.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("a delivered record is settled once, uncopied, and frees its bytes", "[worker][unit]") {
  Bench b;
  b.send("pages", std::string(1000, 'x'));
  CHECK(b.outbox.undeliveredBytes() == 1000);
  REQUIRE(b.sink.pending() == 1);
  const std::string* held = b.sink.oldestValue();
  b.sink.deliverOldest();
  REQUIRE(b.outcomes.size() == 1);
  CHECK(b.outcomes[0].ok());
  CHECK(held != nullptr);
  CHECK(b.sink.delivered() == std::vector<std::string>{std::string(1000, 'x')});
  CHECK(b.outbox.undeliveredBytes() == 0);
  CHECK(b.released == 1000);
  CHECK(b.outbox.stats().produce_errors == 0);
  CHECK(b.lines.empty());
}

TEST_CASE("a retryable delivery failure is produced again a second later until it lands",
          "[worker][unit]") {
  Bench b;
  b.send("pages", "page-0");
  b.sink.failOldest(kafkaFailure(ErrorClass::kRetryable, "Local: Message timed out"));
  CHECK(b.outcomes.empty());  // not settled: it will be produced again
  REQUIRE(b.scheduled.size() == 1);
  CHECK(b.scheduled[0].first == b.clock.now() + std::chrono::seconds(1));
  CHECK(b.outbox.undeliveredBytes() == 6);  // still counted while it waits
  b.runScheduled();
  CHECK(b.sink.attempts() == 2);
  b.sink.failOldest(kafkaFailure(ErrorClass::kRetryable, "Broker: Not leader for partition"));
  b.runScheduled();
  b.sink.deliverOldest();
  REQUIRE(b.outcomes.size() == 1);
  CHECK(b.outcomes[0].ok());
  CHECK(b.sink.attempts() == 3);
  CHECK(b.sink.delivered() == std::vector<std::string>{"page-0"});
  CHECK(b.outbox.stats().produce_errors == 2);
  CHECK(b.outbox.stats().produce_failures == 0);
  CHECK(b.linesWith("delivery failed, producing again") == 2);
  CHECK(b.released == 6);
}

TEST_CASE("a permanent failure is given up once, settled with its error, logged and counted",
          "[worker][unit]") {
  Bench b;
  b.send("dlq", std::string(300, 'd'));
  b.sink.failOldest(kafkaFailure(ErrorClass::kUnknown, "Broker: Message size too large"));
  REQUIRE(b.outcomes.size() == 1);
  REQUIRE_FALSE(b.outcomes[0].ok());
  CHECK(b.outcomes[0].error().cause == "Broker: Message size too large");
  CHECK(b.scheduled.empty());  // never produced again
  CHECK(b.sink.attempts() == 1);
  CHECK(b.outbox.stats().produce_failures == 1);
  CHECK(b.outbox.undeliveredBytes() == 0);
  CHECK(b.released == 300);
  CHECK(b.linesWith("message not written: permanent error") == 1);
}

TEST_CASE("a refusal to queue is tried again after 200 ms; a permanent refusal is given up",
          "[worker][unit]") {
  Bench b;
  b.sink.refuseNext(kafkaFailure(ErrorClass::kRetryable, "Local: Queue full"));
  b.send("pages", "p");
  CHECK(b.sink.pending() == 0);
  REQUIRE(b.scheduled.size() == 1);
  CHECK(b.scheduled[0].first == b.clock.now() + std::chrono::milliseconds(200));
  CHECK(b.linesWith("delivery failed") == 0);  // a full queue is not a failed delivery
  b.runScheduled();
  b.sink.deliverOldest();
  REQUIRE(b.outcomes.size() == 1);
  CHECK(b.outcomes[0].ok());

  b.sink.refuseNext(kafkaFailure(ErrorClass::kUnknown, "Local: Invalid argument"));
  b.send("pages", "q");
  REQUIRE(b.outcomes.size() == 2);
  CHECK_FALSE(b.outcomes[1].ok());
  CHECK(b.scheduled.empty());
  CHECK(b.outbox.stats().produce_failures == 1);
}

TEST_CASE("a missing topic is reported unwritable once and writable again at its next delivery",
          "[worker][unit]") {
  Bench b;
  const Error missing = kafkaFailure(
      ErrorClass::kRetryable, "deliver to pages: Broker: Unknown topic or partition (UNKNOWN_TOPIC_OR_PART)");
  b.send("pages", "p");
  b.sink.failOldest(missing);
  b.runScheduled();
  b.sink.failOldest(missing);
  auto stats = b.outbox.stats();
  REQUIRE(stats.unwritable_topics.count("pages") == 1);
  CHECK(stats.unwritable_topics["pages"] == missing.describe());
  CHECK(b.linesWith("topic cannot be written") == 1);  // once, not per failure
  b.runScheduled();
  b.sink.deliverOldest();
  CHECK(b.outbox.stats().unwritable_topics.empty());
  CHECK(b.linesWith("topic writable again") == 1);
  REQUIRE(b.outcomes.size() == 1);
  CHECK(b.outcomes[0].ok());
}

TEST_CASE("after stop a record that needs another attempt is dropped, not retried",
          "[worker][unit]") {
  Bench b;
  b.send("pages", "p");
  b.outbox.stop();
  b.sink.failOldest(kafkaFailure(ErrorClass::kRetryable, "Local: Purged in queue"));
  CHECK(b.scheduled.empty());
  CHECK(b.outcomes.empty());
  CHECK(b.sink.attempts() == 1);
}
