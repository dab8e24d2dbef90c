// Job records: what one job writes to Kafka (docs/CONTRACTS.md: Page, Job events, Progress and
// the state topic), built from where its walk stands. Pure: the caller gives the time and the
// merchant's calls left today, and sends the records through its outbox. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/worker_config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/follower_page.h"
#include "worker/job.h"
#include "worker/job_intake.h"
#include "worker/job_walk.h"
#include "worker/messages.h"
#include "worker/outbox.h"

namespace fanpull {

// Where a job's first event was delivered (-1: none yet); its end event is later in that
// partition, which is where a restart looks for it.
struct EventsPosition {
  int32_t partition = -1;
  int64_t offset = -1;
};

class JobRecords {
 public:
  // `page_max_bytes`: the largest page message (the producer's message.max.bytes less room for
  // headers); a page above it is written in parts.
  JobRecords(KafkaTopics topics, size_t page_max_bytes);

  // The page's records to the pages topic, headers fanpull-job-id and fanpull-seq. A page that
  // fits in one message gives it its buffer (no copy of the OpenIDs; the page then holds none);
  // a larger one is written in parts, in order, each with fanpull-part.
  std::vector<OutboxRecord> page(const Job& job, FollowerPage& page, int64_t seq, bool last) const;

  // A job event to the events topic, with the pages and OpenIDs the walk has delivered.
  // `affordable_today`: the calls the merchant may still make this Beijing day (started and
  // deferred events name it when the day is bounded).
  OutboxRecord event(const Job& job, const WalkCheckpoint& at, const std::string& status,
                     TimePoint now, const std::optional<Error>& error = std::nullopt,
                     std::optional<TimePoint> retry_at = std::nullopt,
                     std::optional<int64_t> affordable_today = std::nullopt) const;

  // The checkpoint of `state` (running, deferred, ending, completed, failed) where the walk
  // stands; `retry_at` a deferral's resume time ({}: none), `end_event` the event an "ending"
  // checkpoint is about to write.
  static ProgressRecord progress(const Job& job, const JobSource& source, const WalkCheckpoint& at,
                                 const std::string& state, TimePoint now, EventsPosition events,
                                 TimePoint retry_at = {}, const std::string& end_event = "");

  // A checkpoint's two records: `state_value` (the state topic's value for the record, as the
  // StateStore encodes it) under the job's key in the job's state partition, which is its jobs
  // partition; then the progress record for observers.
  std::vector<OutboxRecord> checkpoint(const ProgressRecord& record,
                                       std::string state_value) const;

 private:
  const KafkaTopics topics_;
  const size_t page_max_bytes_;
};

}  // namespace fanpull
