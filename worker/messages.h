// The messages the worker writes besides pages (docs/CONTRACTS.md, "Messages"): job events, progress
// checkpoints and dead-letter headers. Encoders are pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "kafka/kafka_types.h"

namespace fanpull {

// Header names of pages and dead letters (binding).
inline constexpr char kHeaderJobId[] = "fanpull-job-id";
inline constexpr char kHeaderSeq[] = "fanpull-seq";
inline constexpr char kHeaderPart[] = "fanpull-part";
inline constexpr char kHeaderErrorClass[] = "fanpull-error-class";
inline constexpr char kHeaderErrorMessage[] = "fanpull-error-message";
inline constexpr char kHeaderErrorErrcode[] = "fanpull-error-errcode";
inline constexpr char kHeaderOriginalTopic[] = "fanpull-original-topic";
inline constexpr char kHeaderOriginalPartition[] = "fanpull-original-partition";
inline constexpr char kHeaderOriginalOffset[] = "fanpull-original-offset";
// On a dead letter cut to fit the producer's message.max.bytes: the original value's length.
inline constexpr char kHeaderOriginalSize[] = "fanpull-original-size";

struct JobEvent {
  std::string job_id;
  std::string appid;
  std::string status;  // started, completed, failed, deferred, duplicate, rejected
  int64_t pages = 0;
  int64_t openids = 0;
  std::optional<Error> error;        // failed, deferred, rejected
  std::optional<TimePoint> retry_at;  // deferred
  // started, deferred: the calls (one page each) the merchant may still make this Beijing day,
  // when its day is bounded (daily_calls, or the remain of openapi/quota/get).
  std::optional<int64_t> pages_affordable_today;
};

// {"job_id","appid","status","pages","openids","error":{"class","errcode","errmsg","message"},
//  "retry_at","pages_affordable_today","ts"}: every string passes through the Redactor.
std::string encodeEvent(const JobEvent& event, TimePoint now);

// Progress states. A job ends in two steps so that its end event is written exactly once even
// when the worker dies in between: "ending" (with the end event it is about to write) is
// checkpointed first, then the event, then "completed" or "failed". A job found "ending" after a
// restart is in doubt: its end event is looked for in the events topic from `events_offset`
// and written only when it is not there.
inline constexpr char kProgressRunning[] = "running";
inline constexpr char kProgressDeferred[] = "deferred";
inline constexpr char kProgressEnding[] = "ending";
inline constexpr char kProgressCompleted[] = "completed";
inline constexpr char kProgressFailed[] = "failed";

// Where a job's walk stands, written to the progress topic after each delivered page.
struct ProgressRecord {
  std::string job_id;
  std::string appid;
  std::string state;   // running, deferred, ending, completed, failed
  int64_t seq = 0;     // pages delivered (the next page's seq)
  std::string cursor;  // the next_openid to call with next
  int64_t openids = 0;
  std::string source_topic;  // where the job came from
  int32_t source_partition = -1;
  int64_t source_offset = -1;
  int64_t retry_at_ms = 0;  // deferred: unix ms when the walk resumes
  int64_t updated_ms = 0;
  // Where the job's events are: the partition and offset of its first event (-1: not known).
  // Its end event, if written, is in that partition after that offset.
  int32_t events_partition = -1;
  int64_t events_offset = -1;
  std::string end_event;  // ending: the event message (completed or failed) about to be written
};

std::string encodeProgress(const ProgressRecord& record);
// nullopt for a value that is not a progress record.
std::optional<ProgressRecord> parseProgress(std::string_view value);

// The headers of a dead letter for a job rejected with `error`.
kafka::Headers deadLetterHeaders(const Error& error, const std::string& topic, int32_t partition,
                                 int64_t offset);

// Cuts a dead letter's value to what a producer with `max_message_bytes` (message.max.bytes) can
// write beside its key and headers; a value that was cut gets the header fanpull-original-size
// with its original length. A value that fits is left as it is.
void fitDeadLetter(std::string* value, kafka::Headers* headers, size_t key_bytes,
                   size_t max_message_bytes);

}  // namespace fanpull
