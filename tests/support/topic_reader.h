// readTopic(): every message of a topic, for tests that check what a user would find in it
// (pages, events, dead letters). A reader (no consumer group) from the beginning of each
// partition up to its end as it was when reading started. Thread-safe. A test that reads while
// it injects broker faults reads through one long-lived kafka::TopicScanner (see why there).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/result.h"
#include "kafka/consumer.h"
#include "kafka/topic_scan.h"

namespace fanpull::testing {

struct TopicMessage {
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;
  std::string value;
  kafka::Headers headers;
  int64_t timestamp_ms = -1;  // the record's timestamp, -1 when it has none

  // The value of the first header named `name`, or "" when there is none.
  std::string header(const std::string& name) const;
};

// Every message of `topic`, ordered by partition then offset; none when the topic does not exist.
// Errors: `timeout` passed before every partition was read to its end (the cause says how far).
Result<std::vector<TopicMessage>> readTopic(
    const std::string& bootstrap_servers, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));
// The same through `scanner`, whose consumer outlives the call.
Result<std::vector<TopicMessage>> readTopic(
    kafka::TopicScanner& scanner, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace fanpull::testing
