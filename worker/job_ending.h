// The end-of-job protocol: the records that end a job and their order, chosen so that a crash
// between any two of them leaves a job whose end event is written once, never lost and never
// twice, and whose walk is never made again. Pure: the Worker builds each record when its turn
// comes (the final checkpoint names where the end event was delivered) and produces each group
// once every record of the group before it is delivered. Thread-compatible values.
#pragma once

#include <string_view>
#include <vector>

namespace fanpull {

enum class EndingWrite {
  kEndingCheckpoint,  // state "ending" carrying the end event: a restart settles the end from it
  kEvent,             // the end event ("completed" or "failed") on the events topic
  kFinalCheckpoint,   // state "completed" or "failed": the job is over
};

// Groups of writes, in order; a group is produced once the group before it is delivered.
using EndingPlan = std::vector<std::vector<EndingWrite>>;

// A walk that completed or failed now.
// - At least once: "ending" first, then the event, then the final state. A crash before
//   "ending" is delivered resumes the walk from its last page checkpoint; a crash after it
//   finds "ending" and settles (planSettling), so the walk is not made again.
// - Exactly once: the event and the final state in one group of the transaction, so a commit
//   has both or neither (a completed walk's last page already wrote "ending" with its group).
EndingPlan planEnding(bool exactly_once);

// A job found "ending" when its state was read: the worker before it stopped between "ending"
// and the final state. The event is written only when the events topic does not have it yet
// (`event_found`), then the final state.
EndingPlan planSettling(bool event_found);

// The final state for an end event whose status is `status`: "failed" for a failed job, else
// "completed".
const char* finalProgressState(std::string_view status);

}  // namespace fanpull
