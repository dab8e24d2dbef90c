#include "worker/job_ending.h"

#include "worker/messages.h"

namespace fanpull {

EndingPlan planEnding(bool exactly_once) {
  if (exactly_once) return {{EndingWrite::kEvent, EndingWrite::kFinalCheckpoint}};
  return {{EndingWrite::kEndingCheckpoint}, {EndingWrite::kEvent}, {EndingWrite::kFinalCheckpoint}};
}

EndingPlan planSettling(bool event_found) {
  if (event_found) return {{EndingWrite::kFinalCheckpoint}};
  return {{EndingWrite::kEvent}, {EndingWrite::kFinalCheckpoint}};
}

const char* finalProgressState(std::string_view status) {
  return status == "failed" ? kProgressFailed : kProgressCompleted;
}

}  // namespace fanpull
