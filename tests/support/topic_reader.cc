#include "support/topic_reader.h"

#include <algorithm>
#include <map>

namespace fanpull::testing {

std::string TopicMessage::header(const std::string& name) const {
  for (const auto& h : headers) {
    if (h.key == name) return h.value;
  }
  return "";
}

Result<std::vector<TopicMessage>> readTopic(const std::string& bootstrap_servers,
                                            const std::string& topic,
                                            std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto remaining = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  kafka::ConsumerOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.properties = {{"log_level", "3"}};
  options.report_partition_end = true;  // also ends a partition whose last offsets hold no data
  auto consumer = kafka::Consumer::create(options);
  if (!consumer.ok()) return consumer.error();
  kafka::Consumer& c = **consumer;

  auto count = c.partitionCount(topic, remaining());
  if (!count.ok()) return count.error();

  // The end of each partition as it is now; a partition is done once its end is reached.
  std::map<int32_t, int64_t> end;
  std::vector<kafka::PartitionOffset> assignment;
  for (int32_t p = 0; p < *count; ++p) {
    auto marks = c.watermarks({topic, p}, remaining());
    if (!marks.ok()) return marks.error();
    if (marks->second > marks->first) {
      end[p] = marks->second;
      assignment.push_back({{topic, p}, marks->first});
    }
  }
  std::vector<TopicMessage> out;
  if (assignment.empty()) return out;
  if (auto a = c.assign(assignment); !a.ok()) return a.error();

  std::map<int32_t, int64_t> next;  // next offset expected per partition
  auto done = [&] {
    for (const auto& [p, e] : end) {
      auto it = next.find(p);
      if (it == next.end() || it->second < e) return false;
    }
    return true;
  };
  while (!done()) {
    if (Clock::now() >= deadline) {
      std::string progress;
      for (const auto& [p, e] : end) {
        progress += " [" + std::to_string(p) + "] " + std::to_string(next.count(p) ? next[p] : 0) +
                    "/" + std::to_string(e);
      }
      Error err;
      err.error_class = ErrorClass::kRetryable;
      err.cause = "readTopic " + topic + ": timed out; read up to" + progress;
      return err;
    }
    auto m = c.poll(std::min(remaining(), std::chrono::milliseconds(200)));
    if (!m.ok() || !m->has_value()) continue;  // transient errors: keep reading until deadline
    kafka::ConsumedMessage& msg = **m;
    if (msg.end_of_partition) {
      next[msg.partition] = std::max(next[msg.partition], msg.offset);
      continue;
    }
    next[msg.partition] = msg.offset + 1;
    if (msg.offset >= end[msg.partition]) continue;  // written after we started
    out.push_back({msg.partition, msg.offset, std::move(msg.key), std::move(msg.value),
                   std::move(msg.headers)});
  }
  std::stable_sort(out.begin(), out.end(), [](const TopicMessage& a, const TopicMessage& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  (void)c.close();
  return out;
}

}  // namespace fanpull::testing
