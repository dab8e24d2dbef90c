// PageCollector: reassembles one job's followers from the messages of the pages topic
// (docs/CONTRACTS.md, "Page"), as a downstream consumer must: deduplicated by (job_id, seq[, part]),
// ordered by seq then part, checked for gaps and contradictions. `fanpull collect` and the tests
// of the worker use it. Thread-compatible: feed and query one instance from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kafka/kafka_types.h"

namespace fanpull {

class PageCollector {
 public:
  // What add() did with a message.
  enum class Added {
    kOtherJob,   // not a page of this job (by its fanpull-job-id header, or its job_id field)
    kNew,        // a page (or part) not seen before, kept
    kDuplicate,  // byte-for-byte the same as one already kept: dropped and counted
    kRejected,   // a page of this job that contradicts the rules or another page: see problems()
  };

  enum class Status {
    kComplete,      // the last page and every seq and part below it, no contradiction
    kIncomplete,    // no contradiction, but the last page or some seq or part is missing
    kInconsistent,  // some page is malformed or contradicts another one
  };

  explicit PageCollector(std::string job_id);

  // Feeds one message of the pages topic (value and headers). `origin` (e.g. "partition 2
  // offset 17") only names the message in problems. Never throws on any input.
  Added add(std::string_view value, const kafka::Headers& headers = {},
            std::string_view origin = {});

  Status status() const;
  // status() == kComplete.
  bool complete() const { return status() == Status::kComplete; }

  // Every OpenID of the pages kept, in seq then part order. The job's followers when complete();
  // otherwise only what has arrived so far (gaps skipped).
  std::vector<std::string> openids() const;
  // Contradictions (malformed pages, differing duplicates, mixed appids, pages after the last...)
  // followed by what is missing (seqs, parts, the last page). Empty when complete().
  std::vector<std::string> problems() const;
  // The contradictions only (empty unless kInconsistent).
  const std::vector<std::string>& inconsistencies() const { return inconsistencies_; }
  // The seqs below the last page (or below the highest seq seen, without a last page) of which no
  // message arrived, ascending; at most kMaxListed of them.
  std::vector<int64_t> missingSeqs() const;

  const std::string& jobId() const { return job_id_; }
  // The appid of the first page kept; empty before any.
  const std::string& appid() const { return appid_; }
  // Distinct seqs of which at least one message was kept.
  size_t pages() const;
  // Distinct messages (pages and parts) kept.
  size_t messages() const { return kept_.size(); }
  size_t openidCount() const { return openid_count_; }
  // Messages dropped as exact repeats of one already kept.
  size_t duplicates() const { return duplicates_; }
  // The seq of the page marked last, once it arrived.
  std::optional<int64_t> lastSeq() const { return last_seq_; }
  // The total of the page marked last (WeChat's follower count at that call), once it arrived.
  std::optional<int64_t> total() const { return last_total_; }

  static constexpr size_t kMaxListed = 1000;

 private:
  struct Kept {
    std::string value;  // the message as received, to compare repeats byte for byte
    int64_t parts = 0;  // 0: an unsplit page
    int64_t total = 0;
    bool last = false;
    std::vector<std::string> openids;
  };
  // (seq, part); part -1 for an unsplit page.
  using Identity = std::pair<int64_t, int64_t>;

  void inconsistent(std::string problem);
  std::vector<std::string> missing() const;

  std::string job_id_;
  std::string appid_;
  std::map<Identity, Kept> kept_;
  std::optional<int64_t> last_seq_;
  std::optional<int64_t> last_total_;
  std::vector<std::string> inconsistencies_;  // at most kMaxListed, then one "... more" line
  size_t inconsistencies_dropped_ = 0;
  size_t duplicates_ = 0;
  size_t openid_count_ = 0;
};

// "complete", "incomplete", "inconsistent".
std::string_view pageStatusName(PageCollector::Status status);

}  // namespace fanpull
