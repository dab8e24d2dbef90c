#include "worker/job_records.h"

#include <utility>

#include "core/page_message.h"
#include "worker/state_store.h"

namespace fanpull {

JobRecords::JobRecords(KafkaTopics topics, size_t page_max_bytes)
    : topics_(std::move(topics)), page_max_bytes_(page_max_bytes) {}

std::vector<OutboxRecord> JobRecords::page(const Job& job, FollowerPage& page, int64_t seq,
                                           bool last) const {
  const PageIdentity id{job.job_id, job.appid, seq, last};
  auto parts = encodePageMessages(id, std::move(page), page_max_bytes_);
  if (!parts.ok()) {
    // Only when page_max_bytes cannot hold one OpenID (an absurd message.max.bytes): one
    // message is still better than none, and the producer says why it is refused.
    parts = std::vector<std::string>{encodePageMessage(id, page)};
  }
  std::vector<OutboxRecord> out;
  out.reserve(parts->size());
  for (size_t i = 0; i < parts->size(); ++i) {
    kafka::Headers headers = {{kHeaderJobId, job.job_id}, {kHeaderSeq, std::to_string(seq)}};
    if (parts->size() > 1) headers.push_back({kHeaderPart, std::to_string(i)});
    out.emplace_back(topics_.pages, std::move((*parts)[i]), std::move(headers));
  }
  return out;
}

OutboxRecord JobRecords::event(const Job& job, const WalkCheckpoint& at, const std::string& status,
                               TimePoint now, const std::optional<Error>& error,
                               std::optional<TimePoint> retry_at,
                               std::optional<int64_t> affordable_today) const {
  JobEvent event;
  event.job_id = job.job_id;
  event.appid = job.appid;
  event.status = status;
  event.pages = at.seq;
  event.openids = at.openids;
  event.error = error;
  event.retry_at = retry_at;
  event.pages_affordable_today = affordable_today;
  return {topics_.events, encodeEvent(event, now)};
}

ProgressRecord JobRecords::progress(const Job& job, const JobSource& source,
                                    const WalkCheckpoint& at, const std::string& state,
                                    TimePoint now, EventsPosition events, TimePoint retry_at,
                                    const std::string& end_event) {
  ProgressRecord p;
  p.job_id = job.job_id;
  p.appid = job.appid;
  p.state = state;
  p.seq = at.seq;
  p.cursor = at.cursor;
  p.openids = at.openids;
  p.source_topic = source.topic;
  p.source_partition = source.partition;
  p.source_offset = source.offset;
  p.retry_at_ms = retry_at == TimePoint{} ? 0 : toUnixMs(retry_at);
  p.updated_ms = toUnixMs(now);
  p.events_partition = events.partition;
  p.events_offset = events.offset;
  p.end_event = end_event;
  return p;
}

std::vector<OutboxRecord> JobRecords::checkpoint(const ProgressRecord& record,
                                                 std::string state_value) const {
  std::vector<OutboxRecord> out;
  out.reserve(2);
  out.emplace_back(topics_.state, std::move(state_value), kafka::Headers{},
                   jobStateKey(record.job_id), record.source_partition);
  out.emplace_back(topics_.progress, encodeProgress(record));
  return out;
}

}  // namespace fanpull
