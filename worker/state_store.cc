#include "worker/state_store.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace fanpull {

namespace {

constexpr std::string_view kJobKeyPrefix = "job/";
constexpr std::string_view kCallsKeyPrefix = "calls/";

// How far along a job's end a state is: a record never moves a job back to an earlier rank.
int endRank(const std::string& state) {
  if (state == kProgressCompleted || state == kProgressFailed) return 2;
  if (state == kProgressEnding) return 1;
  return 0;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

using Jobs = std::map<std::string, ProgressRecord>;

void keep(Jobs& jobs, const ProgressRecord& record) {
  auto it = jobs.find(record.job_id);
  // A finished (or finishing) job stays so: a late "running" checkpoint does not reopen it.
  if (it != jobs.end() && endRank(record.state) < endRank(it->second.state)) return;
  jobs[record.job_id] = stateRecordOf(record);
}

void keepLogged(Jobs& jobs, std::string_view key, std::string_view value) {
  if (!startsWith(key, kJobKeyPrefix)) return;  // not a job's record
  if (value.empty()) {
    jobs.erase(std::string(key.substr(kJobKeyPrefix.size())));
    return;
  }
  if (auto record = parseProgress(value)) keep(jobs, *record);
}

}  // namespace

std::string callsStateKey(const std::string& appid) {
  return std::string(kCallsKeyPrefix) + appid;
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

bool isDone(const ProgressRecord& record) { return endRank(record.state) == 2; }

ProgressRecord stateRecordOf(const ProgressRecord& record) {
  if (!isDone(record)) return record;
  ProgressRecord done = record;
  done.cursor.clear();
  done.end_event.clear();
  done.retry_at_ms = 0;
  return done;
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
    keepLogged(jobs, key, value);
  });
  if (!read.ok()) return read.error();
  out.records = *read;
  const int64_t oldest_kept =
      std::chrono::duration_cast<std::chrono::milliseconds>((now - kDoneKept).time_since_epoch())
          .count();
  for (auto it = jobs.begin(); it != jobs.end();) {
    if (isDone(it->second) && it->second.updated_ms < oldest_kept) {
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

void StateStore::apply(int32_t partition, const ProgressRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = partitions_.find(partition);
  if (held == partitions_.end()) return;
  keep(held->second, record);
}

std::optional<ProgressRecord> StateStore::find(int32_t partition,
                                               const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = partitions_.find(partition);
  if (held == partitions_.end()) return std::nullopt;
  auto it = held->second.find(job_id);
  if (it == held->second.end()) return std::nullopt;
  return it->second;
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
