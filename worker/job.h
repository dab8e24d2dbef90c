// Jobs of the jobs topic (docs/CONTRACTS.md): one merchant's follower pull. parseJob() is the gate
// every consumed job passes (strict about the fields, bounded on hostile input: size, UTF-8,
// nesting); encodeJob() writes one for `fanpull enqueue`. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.h"

namespace fanpull {

struct Job {
  std::string job_id;       // 1-128 characters of [A-Za-z0-9._:-]
  std::string appid;        // 1-64 characters of [A-Za-z0-9_-]
  std::string next_openid;  // start cursor: empty (the beginning) or an OpenID, 1-64 [A-Za-z0-9_-]
  bool operator==(const Job& o) const {
    return job_id == o.job_id && appid == o.appid && next_openid == o.next_openid;
  }
};

constexpr size_t kMaxJobBytes = 64 * 1024;
constexpr int kMaxJobNesting = 32;

// The job in `bytes`: a UTF-8 JSON object with job_id, appid and an optional next_openid
// (a string, or null for "from the beginning"); other keys are ignored. Errors, all of class
// bad_job with a cause naming the field and the reason: over kMaxJobBytes, invalid UTF-8, not
// JSON, not an object, nested deeper than kMaxJobNesting, a field missing, repeated, of the
// wrong type, too long or holding a character outside its set.
Result<Job> parseJob(std::string_view bytes);

// `job` unchanged when its fields satisfy the rules of parseJob(); else the bad_job Error
// parseJob() would give for it.
Result<Job> validateJob(Job job);

// The job as the JSON object of docs/CONTRACTS.md: {"job_id":...,"appid":...,"next_openid":...}.
// Expects a valid job (validateJob); invalid UTF-8 in a field is replaced, never thrown.
std::string encodeJob(const Job& job);

}  // namespace fanpull
