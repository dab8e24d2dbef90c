// Reading a topic to its end without a consumer group: the progress topic at start and on every
// assignment, and the events topic when a job's end is in doubt after a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/result.h"
#include "worker/kafka/consumer.h"
#include "worker/kafka/kafka_types.h"

namespace fanpull::kafka {

// Reads `topic` up to the end each partition has when the scan starts, passing every message
// to `visit` in offset order per partition. `from` maps partitions to their first offset; an
// empty map reads every partition from its first retained offset, and an offset below a
// partition's first retained one starts there. A topic that does not exist has nothing to read
// (0). Returns the number of messages visited. Errors (class retryable): the metadata, the
// watermarks or the end could not be read before `timeout`.
Result<int64_t> scanToEnd(const std::string& bootstrap_servers, const Properties& properties,
                          const std::string& topic, const std::map<int32_t, int64_t>& from,
                          const std::function<void(const ConsumedMessage&)>& visit,
                          std::chrono::milliseconds timeout);

}  // namespace fanpull::kafka
