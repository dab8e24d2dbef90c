#include "support/topic_reader.h"

#include <algorithm>

namespace fanpull::testing {

std::string TopicMessage::header(const std::string& name) const {
  for (const auto& h : headers) {
    if (h.key == name) return h.value;
  }
  return "";
}

Result<std::vector<TopicMessage>> readTopic(kafka::TopicScanner& scanner, const std::string& topic,
                                            std::chrono::milliseconds timeout) {
  kafka::ScanOptions options;
  options.timeout = timeout;
  std::vector<TopicMessage> out;
  auto read = scanner.scan(topic, options, [&](const kafka::ConsumedMessage& m) {
    out.push_back({m.partition, m.offset, m.key, m.value, m.headers, m.timestamp_ms});
  });
  if (!read.ok()) return read.error();
  std::stable_sort(out.begin(), out.end(), [](const TopicMessage& a, const TopicMessage& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  return out;
}

Result<std::vector<TopicMessage>> readTopic(const std::string& bootstrap_servers,
                                            const std::string& topic,
                                            std::chrono::milliseconds timeout) {
  kafka::TopicScanner scanner(bootstrap_servers, {{"log_level", "3"}});
  return readTopic(scanner, topic, timeout);
}

}  // namespace fanpull::testing
