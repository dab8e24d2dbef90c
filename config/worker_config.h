// The worker's configuration (docs/CONTRACTS.md, "Worker configuration"), read from a JSON file and
// validated as a whole: every problem is reported with the file, the key and what was expected.
// Unknown keys are errors, so a typo never passes silently. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace fanpull {

struct KafkaTopics {
  std::string jobs = "fanpull.jobs";
  std::string pages = "fanpull.pages";
  std::string events = "fanpull.events";
  std::string dlq = "fanpull.dlq";
  std::string progress = "fanpull.progress";
  // Compacted, with the jobs topic's partition count (`fanpull topics` creates it so); reserved
  // for the worker's durable state.
  std::string state = "fanpull.state";
};

// kafka.max_queued_jobs when the file does not say: jobs ready to run per call in flight
// (wechat.max_in_flight).
constexpr int64_t kQueuedJobsPerCallInFlight = 16;

struct KafkaConfig {
  std::string bootstrap_servers;  // required
  std::string group_id = "fanpull";
  KafkaTopics topics;
  std::map<std::string, std::string> properties;  // handed to librdkafka as they are
  // Bytes of messages produced and not yet delivered, at most: above it no new call to WeChat
  // starts until deliveries catch up (walks already started go first).
  int64_t max_undelivered_bytes = 16 * 1024 * 1024;
  // Jobs ready to run in the worker (running or queued, apart from those deferred to another
  // day), at most: at it the jobs partitions are paused, the rest of a backlog waiting in Kafka.
  // Sixteen times wechat.max_in_flight unless the file says (0 before parseWorkerConfig sets it).
  int64_t max_queued_jobs = 0;
  // Transactions (docs/CONTRACTS.md, docs/RELIABILITY.md): pages, events, checkpoints and input
  // offsets committed together. Needs Apache Kafka; the embedded broker cannot honour it.
  bool exactly_once = false;
  // With exactly_once: how often the open transaction is committed (ms).
  int64_t transaction_interval_ms = 100;
};

struct WechatConfig {
  std::string base_url = "https://api.weixin.qq.com";
  int64_t timeout_ms = 10000;
  int64_t max_in_flight = 32;
  std::string ca_file;  // resolved against the config file's folder; empty: system CAs only
};

struct ComponentConfig {
  std::string appid;
  std::string appsecret;           // from the file or FANPULL_COMPONENT_APPSECRET
  std::string verify_ticket_file;  // resolved against the config file's folder
};

struct RateLimitConfig {
  double requests_per_second = 5;
  int64_t burst = 5;
  int64_t daily_calls = 500;  // 0: no daily budget
};

struct WorkerConfig {
  std::string file;  // the config file as given
  KafkaConfig kafka;
  WechatConfig wechat;
  std::optional<ComponentConfig> component;
  std::string tenants_file;      // resolved against the config file's folder
  std::string token_state_file;  // resolved; default "tokens.json" beside the config file
  // The state key (32 bytes, decoded) from FANPULL_STATE_KEY or state.key_file; empty: none.
  // A secret: never logged. `state_key_from` names where it came from (for the log).
  std::string state_key;
  std::string state_key_from;
  // The key being retired (FANPULL_STATE_PREVIOUS_KEY or state.previous_key_file): records it
  // sealed are still opened, and sealed again with state_key. Empty: none. A secret.
  std::string state_previous_key;
  RateLimitConfig rate_limit;
  // On SIGTERM: how long calls under way and deliveries may take before the offsets are
  // committed and the group is left (each of those two steps then has at most 5 s more, and the
  // producers give up what is still undelivered after 1 s).
  int64_t shutdown_timeout_ms = 30000;
  std::string http_listen = "127.0.0.1:9464";
  std::string log_level = "info";
  std::string log_format = "json";
};

struct ConfigProblem {
  std::string file;
  std::string key;  // dotted path, e.g. "kafka.topics.jobs"; empty for the whole file
  std::string reason;
  // "FILE: KEY: REASON"
  std::string describe() const;
};

// Reads the environment (injected so tests control it); returns nullopt for an unset variable.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup processEnv();

// The validated config, or every problem found (never an empty list).
std::variant<WorkerConfig, std::vector<ConfigProblem>> loadWorkerConfig(const std::string& path,
                                                                         const EnvLookup& env);
// The same from JSON text; `file` names it in problems and anchors relative paths.
std::variant<WorkerConfig, std::vector<ConfigProblem>> parseWorkerConfig(const std::string& text,
                                                                          const std::string& file,
                                                                          const EnvLookup& env);

// The bytes of standard base64 `text` (padding optional; spaces and line ends around it are
// ignored); nullopt when it is not base64.
std::optional<std::string> decodeBase64(std::string_view text);

// Splits "HOST:PORT" (port 0-65535; "[::1]:80" for IPv6). False for anything else.
bool splitHostPort(const std::string& listen, std::string* host, uint16_t* port);

}  // namespace fanpull
