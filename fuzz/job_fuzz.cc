// libFuzzer target: the job gate. Any bytes: a Job or a bad_job Error, never a crash; a Job that
// passes re-encodes to a job that parses to the same Job.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "worker/job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto job = fanpull::parseJob(input);
  if (!job.ok()) {
    if (job.error().error_class != fanpull::ErrorClass::kBadJob) std::abort();
    return 0;
  }
  auto again = fanpull::parseJob(fanpull::encodeJob(job.value()));
  if (!again.ok() || !(again.value() == job.value())) std::abort();
  return 0;
}
