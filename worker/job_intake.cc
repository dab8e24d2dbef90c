#include "worker/job_intake.h"

#include <chrono>

#include <nlohmann/json.hpp>

namespace fanpull {

Job nameRejectedJob(std::string_view value, const std::optional<std::string>& key) {
  Job named;
  if (key && validateJob({"x", *key, ""}).ok()) named.appid = *key;
  if (value.size() > kMaxJobBytes) return named;
  nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return named;
  std::string job_id;
  std::string appid;
  if (auto id = j.find("job_id"); id != j.end() && id->is_string()) job_id = *id;
  if (auto app = j.find("appid"); app != j.end() && app->is_string()) appid = *app;
  if (validateJob({job_id, "x", ""}).ok()) named.job_id = job_id;
  if (validateJob({"x", appid, ""}).ok()) named.appid = appid;
  return named;
}

IntakeDecision decideIntake(const Job& job, const JobSource& source,
                            const std::optional<JobSource>& queued,
                            const std::optional<ProgressRecord>& record) {
  IntakeDecision d;
  if (queued) {
    d.kind = *queued == source ? IntakeDecision::Kind::kQueuedAlready
                               : IntakeDecision::Kind::kDuplicate;
    return d;
  }
  if (!record) {
    d.kind = IntakeDecision::Kind::kStart;
    d.from = {0, job.next_openid, 0};
    return d;
  }
  const JobSource recorded{record->source_topic, record->source_partition, record->source_offset};
  if (!(recorded == source)) {
    d.kind = IntakeDecision::Kind::kDuplicate;
    return d;
  }
  if (record->state == kProgressCompleted || record->state == kProgressFailed) {
    d.kind = IntakeDecision::Kind::kEndedAlready;
    return d;
  }
  d.events_partition = record->events_partition;
  d.events_offset = record->events_offset;
  if (record->state == kProgressEnding) {
    d.kind = IntakeDecision::Kind::kSettleEnding;
    return d;
  }
  d.kind = IntakeDecision::Kind::kResume;
  d.from = {record->seq, record->cursor, record->openids};
  if (record->state == kProgressDeferred) {
    d.resume_at = TimePoint(std::chrono::milliseconds(record->retry_at_ms));
  }
  return d;
}

}  // namespace fanpull
