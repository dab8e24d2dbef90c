// Job intake: what the worker does with a job message it has just consumed, given what the
// state topic says of its job_id and whether a job of that id is already queued here. Pure (no
// I/O, no clock, no locks); thread-safe. The Worker looks the two facts up and carries out the
// decision (docs/CONTRACTS.md: jobs, duplicates, the state topic).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "worker/job.h"
#include "worker/job_walk.h"
#include "worker/messages.h"

namespace fanpull {

// Where a job message was read: a job is the same job only when it is the same message.
struct JobSource {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  bool operator==(const JobSource& o) const {
    return topic == o.topic && partition == o.partition && offset == o.offset;
  }
};

// What a rejected job's event can name: its job_id and appid when the message has them in a
// usable form (the key stands for the appid when it is a valid one), else empty. Events are
// UTF-8 JSON whatever the message held, so nothing that fails the job rules is taken.
Job nameRejectedJob(std::string_view value, const std::optional<std::string>& key);

struct IntakeDecision {
  enum class Kind {
    kQueuedAlready,  // the same message again while its job is queued here: nothing to do
    kDuplicate,      // another message with a job_id that is queued here or in the state topic
    kEndedAlready,   // completed or failed before (a redelivery after a restart): offset done
    kSettleEnding,   // stopped between "ending" and the final state: finish the end (job_ending.h)
    kResume,         // running or deferred before: the walk goes on from its checkpoint
    kStart,          // a new job: the walk starts at its start cursor
  };
  Kind kind = Kind::kStart;
  WalkCheckpoint from;      // kResume, kStart: where the walk starts
  TimePoint resume_at{};    // kResume of a deferred job: not before this time
  int32_t events_partition = -1;  // kResume, kSettleEnding: where its events are (-1: unknown)
  int64_t events_offset = -1;
};

// The decision for valid `job` read at `source`. `queued`: the source of the job of that id
// queued in this worker, if any. `record`: the job's latest state record, if any.
IntakeDecision decideIntake(const Job& job, const JobSource& source,
                            const std::optional<JobSource>& queued,
                            const std::optional<ProgressRecord>& record);

}  // namespace fanpull
