#include "worker/state_store.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace fanpull {

namespace {

constexpr std::string_view kJobKeyPrefix = "job/";
constexpr std::string_view kCallsKeyPrefix = "calls/";
constexpr std::string_view kTokenKeyPrefix = "token/";

constexpr int kRankDone = 2;

// How far along a job's end a state is: a record never moves a job back to an earlier rank.
int endRank(std::string_view state) {
  if (state == kProgressCompleted || state == kProgressFailed) return kRankDone;
  if (state == kProgressEnding) return 1;
  return 0;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A restore reads every record of its partition, mostly done records of finished jobs, and parses
// none of them: a job's record is kept as written and parsed when its job arrives (find()). Two
// fields are read without parsing, as encodeProgress writes them (compact JSON; an escaped quote
// inside a string can never end a field name): "state", and "updated_ms" of a done record.
std::optional<std::string_view> stateField(std::string_view value) {
  constexpr std::string_view kName = "\"state\":\"";
  const size_t at = value.find(kName);
  if (at == std::string_view::npos) return std::nullopt;
  const size_t begin = at + kName.size();
  const size_t end = value.find('"', begin);
  if (end == std::string_view::npos) return std::nullopt;
  return value.substr(begin, end - begin);
}

int64_t updatedMsField(std::string_view value) {
  constexpr std::string_view kName = "\"updated_ms\":";
  const size_t at = value.find(kName);
  if (at == std::string_view::npos) return 0;
  int64_t ms = 0;
  for (size_t i = at + kName.size(); i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
    ms = ms * 10 + (value[i] - '0');
  }
  return ms;
}

}  // namespace

void StateStore::keep(Jobs& jobs, const std::string& job_id, int rank, std::string value) {
  auto it = jobs.find(job_id);
  // A finished (or finishing) job stays so: a late "running" checkpoint does not reopen it.
  if (it != jobs.end() && rank < it->second.rank) return;
  jobs[job_id] = Kept{rank, std::move(value)};
}

void StateStore::keepLogged(Jobs& jobs, std::string_view key, std::string_view value) {
  if (!startsWith(key, kJobKeyPrefix)) return;  // not a job's record
  std::string job_id(key.substr(kJobKeyPrefix.size()));
  if (value.empty()) {
    jobs.erase(job_id);
    return;
  }
  auto state = stateField(value);
  if (!state) return;  // not a checkpoint
  keep(jobs, job_id, endRank(*state), std::string(value));
}

std::string callsStateKey(const std::string& appid) {
  return std::string(kCallsKeyPrefix) + appid;
}

std::string tokenStateKey(const std::string& appid) {
  return std::string(kTokenKeyPrefix) + appid;
}

std::string encodeCalls(const CallsReserved& calls) {
  return nlohmann::json{{"appid", calls.appid},
                        {"day_end_ms", calls.day_end_ms},
                        {"reserved", calls.reserved}}
      .dump();
}

std::optional<CallsReserved> parseCalls(std::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    CallsReserved c;
    c.appid = j.at("appid").get<std::string>();
    c.day_end_ms = j.at("day_end_ms").get<int64_t>();
    c.reserved = j.at("reserved").get<int64_t>();
    return c;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string jobStateKey(const std::string& job_id) {
  return std::string(kJobKeyPrefix) + job_id;
}

bool isDone(const ProgressRecord& record) { return endRank(record.state) == kRankDone; }

ProgressRecord stateRecordOf(const ProgressRecord& record) {
  if (!isDone(record)) return record;
  ProgressRecord done = record;
  done.cursor.clear();
  done.end_event.clear();
  done.retry_at_ms = 0;
  return done;
}

bool isDurableStateKey(std::string_view key) {
  return startsWith(key, kCallsKeyPrefix) || startsWith(key, kTokenKeyPrefix);
}

std::function<Result<int64_t>(
    const std::function<void(std::string_view key, std::string_view value)>&)>
transactionalPartitionReader(kafka::TopicScanner& committed, kafka::TopicScanner& uncommitted,
                             std::string topic, int32_t partition,
                             std::chrono::milliseconds timeout) {
  return [&committed, &uncommitted, topic = std::move(topic), partition, timeout](
             const std::function<void(std::string_view, std::string_view)>& visit)
             -> Result<int64_t> {
    auto keyOf = [](const kafka::ConsumedMessage& m) {
      return m.key ? std::string_view(*m.key) : std::string_view();
    };
    // Uncommitted first: its end is the high watermark then, and the committed read that
    // follows reaches at least as far unless a transaction is open.
    std::map<int32_t, int64_t> high;
    kafka::ScanOptions all;
    all.from[partition] = kafka::kOffsetBeginning;
    all.timeout = timeout;
    all.ends = &high;
    int64_t read = 0;
    auto durable = uncommitted.scan(topic, all, [&](const kafka::ConsumedMessage& m) {
      if (!isDurableStateKey(keyOf(m))) return;
      visit(keyOf(m), m.value);
      ++read;
    });
    if (!durable.ok()) return durable.error();
    std::map<int32_t, int64_t> stable;
    kafka::ScanOptions settled = all;
    settled.ends = &stable;
    auto rest = committed.scan(topic, settled, [&](const kafka::ConsumedMessage& m) {
      if (isDurableStateKey(keyOf(m))) return;
      visit(keyOf(m), m.value);
      ++read;
    });
    if (!rest.ok()) return rest.error();
    if (stable[partition] < high[partition]) {
      return Error::of(ErrorClass::kRetryable,
                       std::string(kTransactionStillOpen) + " in state partition " +
                           std::to_string(partition) + " (readable to offset " +
                           std::to_string(stable[partition]) + " of " +
                           std::to_string(high[partition]) +
                           "): its previous owner's, until the cluster ends it");
    }
    return read;
  };
}

std::function<Result<int64_t>(
    const std::function<void(std::string_view key, std::string_view value)>&)>
partitionReader(kafka::TopicScanner& scanner, std::string topic, int32_t partition,
                std::chrono::milliseconds timeout) {
  return [&scanner, topic = std::move(topic), partition, timeout](
             const std::function<void(std::string_view, std::string_view)>& visit) {
    kafka::ScanOptions options;
    options.from[partition] = kafka::kOffsetBeginning;
    options.timeout = timeout;
    return scanner.scan(topic, options, [&](const kafka::ConsumedMessage& m) {
      visit(m.key ? std::string_view(*m.key) : std::string_view(), m.value);
    });
  };
}

Result<StateRestore> StateStore::restore(int32_t partition, TimePoint now,
                                         const PartitionReader& read_partition) {
  const auto started = std::chrono::steady_clock::now();
  StateRestore out;
  Jobs jobs;
  auto read = read_partition([&](std::string_view key, std::string_view value) {
    if (startsWith(key, kCallsKeyPrefix)) {
      const std::string appid(key.substr(kCallsKeyPrefix.size()));
      if (value.empty()) {
        out.calls.erase(appid);
      } else if (auto calls = parseCalls(value)) {
        out.calls[appid] = *calls;
      }
      return;
    }
    if (startsWith(key, kTokenKeyPrefix)) {
      const std::string appid(key.substr(kTokenKeyPrefix.size()));
      if (value.empty()) {
        out.tokens.erase(appid);
      } else {
        out.tokens[appid] = std::string(value);
      }
      return;
    }
    keepLogged(jobs, key, value);
  });
  if (!read.ok()) return read.error();
  out.records = *read;
  const int64_t oldest_kept = toUnixMs(now - kDoneKept);
  for (auto it = jobs.begin(); it != jobs.end();) {
    if (it->second.rank == kRankDone && updatedMsField(it->second.value) < oldest_kept) {
      out.expired.push_back(jobStateKey(it->first));
      it = jobs.erase(it);
    } else {
      ++it;
    }
  }
  out.jobs = static_cast<int64_t>(jobs.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    partitions_[partition] = std::move(jobs);
  }
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  return out;
}

void StateStore::applyLogged(int32_t partition, std::string_view key, std::string_view value) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = partitions_.find(partition);
  if (held == partitions_.end()) return;
  keepLogged(held->second, key, value);
}

std::string StateStore::apply(int32_t partition, const ProgressRecord& record) {
  std::string value = encodeProgress(stateRecordOf(record));
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = partitions_.find(partition);
  if (held != partitions_.end()) keep(held->second, record.job_id, endRank(record.state), value);
  return value;
}

std::optional<ProgressRecord> StateStore::find(int32_t partition,
                                               const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = partitions_.find(partition);
  if (held == partitions_.end()) return std::nullopt;
  auto it = held->second.find(job_id);
  if (it == held->second.end()) return std::nullopt;
  return parseProgress(it->second.value);
}

void StateStore::forget(int32_t partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  partitions_.erase(partition);
}

bool StateStore::holds(int32_t partition) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return partitions_.count(partition) != 0;
}

size_t StateStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [p, jobs] : partitions_) n += jobs.size();
  return n;
}

}  // namespace fanpull
