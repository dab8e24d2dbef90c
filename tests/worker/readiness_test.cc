// What /readyz answers from a worker's stats, and which Kafka errors say a topic cannot be
// written. No broker: the stats and the errors are built here.
#include <catch2/catch.hpp>

#include "kafka/producer.h"
#include "worker/worker.h"

using fanpull::Error;
using fanpull::ErrorClass;
using fanpull::readinessProblems;
using fanpull::WorkerStats;

TEST_CASE("a worker with partitions, a live producer and writable topics has no readiness problem",
          "[worker][unit]") {
  WorkerStats stats;
  stats.assigned_partitions = 3;
  CHECK(readinessProblems(stats).empty());
}

TEST_CASE("each readiness problem is one line naming what is wrong", "[worker][unit]") {
  WorkerStats stats;
  stats.producer_fatal = true;
  stats.unwritable_topics["fanpull.pages"] =
      "topic fanpull.pages: Broker: Unknown topic or partition (UNKNOWN_TOPIC_OR_PART)";
  stats.unwritable_topics["fanpull.events"] =
      "topic fanpull.events: Broker: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED)";
  auto problems = readinessProblems(stats);
  REQUIRE(problems.size() == 4);
  CHECK(problems[0] == "no jobs partition assigned yet");
  CHECK(problems[1] == "the Kafka producer hit a fatal error");
  CHECK(problems[2].rfind("topic fanpull.events cannot be written: ", 0) == 0);
  CHECK(problems[2].find("TOPIC_AUTHORIZATION_FAILED") != std::string::npos);
  CHECK(problems[3].rfind("topic fanpull.pages cannot be written: ", 0) == 0);
}

TEST_CASE("a missing or forbidden topic is told apart from other produce errors",
          "[worker][unit]") {
  auto error = [](std::string cause) {
    Error e;
    e.error_class = ErrorClass::kRetryable;
    e.cause = std::move(cause);
    return e;
  };
  using fanpull::kafka::isTopicUnavailable;
  CHECK(isTopicUnavailable(
      error("topic p: Broker: Unknown topic or partition (UNKNOWN_TOPIC_OR_PART)")));
  CHECK(isTopicUnavailable(error("delivery to p: Local: Unknown topic (_UNKNOWN_TOPIC)")));
  CHECK(isTopicUnavailable(
      error("delivery to p: Broker: Topic authorization failed (TOPIC_AUTHORIZATION_FAILED)")));
  CHECK_FALSE(isTopicUnavailable(
      error("delivery to p: Broker: Message size too large (MSG_SIZE_TOO_LARGE)")));
  CHECK_FALSE(isTopicUnavailable(error("delivery to p: Local: Message timed out (_MSG_TIMED_OUT)")));
  CHECK_FALSE(isTopicUnavailable(error("a cause that merely mentions UNKNOWN_TOPIC in passing")));
}
