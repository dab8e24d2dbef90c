#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "worker/job_intake.h"

using namespace fanpull;

namespace {

const JobSource kHere{"fanpull.jobs", 2, 41};

ProgressRecord recordOf(const std::string& state, JobSource source = kHere) {
  ProgressRecord r;
  r.job_id = "job-1";
  r.appid = "wxA";
  r.state = state;
  r.seq = 3;
  r.cursor = "oCursor3";
  r.openids = 30000;
  r.source_topic = source.topic;
  r.source_partition = source.partition;
  r.source_offset = source.offset;
  r.retry_at_ms = 1796400000000;
  r.events_partition = 1;
  r.events_offset = 77;
  return r;
}

const Job kJob{"job-1", "wxA", "oStart"};

}  // namespace

TEST_CASE("a job nobody has seen starts its walk at its start cursor", "[worker][unit][intake]") {
  IntakeDecision d = decideIntake(kJob, kHere, std::nullopt, std::nullopt);
  CHECK(d.kind == IntakeDecision::Kind::kStart);
  CHECK(d.from == WalkCheckpoint{0, "oStart", 0});
  CHECK(d.events_partition == -1);
}

TEST_CASE("a job already queued here is the same message again or a duplicate",
          "[worker][unit][intake]") {
  // Redelivered while queued (a rebalance that gave the partition back): nothing to do.
  CHECK(decideIntake(kJob, kHere, kHere, std::nullopt).kind ==
        IntakeDecision::Kind::kQueuedAlready);
  // Another message with the same job_id: a duplicate, whatever the state topic says.
  const JobSource other{"fanpull.jobs", 2, 42};
  CHECK(decideIntake(kJob, other, kHere, std::nullopt).kind == IntakeDecision::Kind::kDuplicate);
  CHECK(decideIntake(kJob, other, kHere, recordOf(kProgressRunning, other)).kind ==
        IntakeDecision::Kind::kDuplicate);
}

TEST_CASE("a job_id the state topic knows from another message is a duplicate",
          "[worker][unit][intake]") {
  for (const char* state : {kProgressRunning, kProgressDeferred, kProgressEnding,
                            kProgressCompleted, kProgressFailed}) {
    INFO(state);
    for (const JobSource& other : {JobSource{"fanpull.jobs", 2, 40}, JobSource{"fanpull.jobs", 3, 41},
                                   JobSource{"other.jobs", 2, 41}}) {
      CHECK(decideIntake(kJob, kHere, std::nullopt, recordOf(state, other)).kind ==
            IntakeDecision::Kind::kDuplicate);
    }
  }
}

TEST_CASE("the same message after a restart resumes, settles or is over by its state",
          "[worker][unit][intake]") {
  SECTION("completed or failed: its outcome is written, only the offset is left") {
    CHECK(decideIntake(kJob, kHere, std::nullopt, recordOf(kProgressCompleted)).kind ==
          IntakeDecision::Kind::kEndedAlready);
    CHECK(decideIntake(kJob, kHere, std::nullopt, recordOf(kProgressFailed)).kind ==
          IntakeDecision::Kind::kEndedAlready);
  }
  SECTION("ending: the end is settled, knowing where the job's events are") {
    IntakeDecision d = decideIntake(kJob, kHere, std::nullopt, recordOf(kProgressEnding));
    CHECK(d.kind == IntakeDecision::Kind::kSettleEnding);
    CHECK(d.events_partition == 1);
    CHECK(d.events_offset == 77);
  }
  SECTION("running or deferred: the walk goes on from its checkpoint, not the start cursor") {
    // Running: at once; deferred: at its retry time.
    for (const auto& [state, at] :
         {std::pair<const char*, TimePoint>{kProgressRunning, TimePoint{}},
          std::pair<const char*, TimePoint>{kProgressDeferred,
                                            TimePoint(std::chrono::milliseconds(1796400000000))}}) {
      INFO(state);
      IntakeDecision d = decideIntake(kJob, kHere, std::nullopt, recordOf(state));
      CHECK(d.kind == IntakeDecision::Kind::kResume);
      CHECK(d.from == WalkCheckpoint{3, "oCursor3", 30000});
      CHECK(d.resume_at == at);
      CHECK(d.events_partition == 1);
      CHECK(d.events_offset == 77);
    }
  }
}

TEST_CASE("a rejected job's event names what the message holds in a usable form",
          "[worker][unit][intake]") {
  const std::optional<std::string> no_key;
  SECTION("valid fields are named even when another field fails the rules") {
    Job j = nameRejectedJob(R"({"job_id":"job-7","appid":"wx bad"})", no_key);
    CHECK(j.job_id == "job-7");
    CHECK(j.appid.empty());
    j = nameRejectedJob(R"({"job_id":"job 7","appid":"wxA","next_openid":5})", no_key);
    CHECK(j.job_id.empty());
    CHECK(j.appid == "wxA");
  }
  SECTION("the key stands for the appid when the value has none usable") {
    Job j = nameRejectedJob("not json", std::string("wxKey"));
    CHECK(j.job_id.empty());
    CHECK(j.appid == "wxKey");
    j = nameRejectedJob(R"({"job_id":"job-7","appid":17})", std::string("wxKey"));
    CHECK(j.job_id == "job-7");
    CHECK(j.appid == "wxKey");
    // The value's own appid wins over the key.
    CHECK(nameRejectedJob(R"({"appid":"wxA"})", std::string("wxKey")).appid == "wxA");
  }
  SECTION("nothing that is not valid UTF-8 or not in the field's characters is named") {
    Job j = nameRejectedJob("{\"job_id\":\"job-\xff\",\"appid\":\"wx\xc3\xa9\"}", std::string("\xff"));
    CHECK(j.job_id.empty());
    CHECK(j.appid.empty());
    CHECK(nameRejectedJob("[\"job-7\",\"wxA\"]", no_key) == Job{});
  }
  SECTION("a value over the job size limit is not parsed, only the key is read") {
    std::string big = R"({"job_id":"job-7","appid":"wxA","pad":")" + std::string(kMaxJobBytes, 'x') +
                      "\"}";
    Job j = nameRejectedJob(big, std::string("wxKey"));
    CHECK(j.job_id.empty());
    CHECK(j.appid == "wxKey");
  }
}
