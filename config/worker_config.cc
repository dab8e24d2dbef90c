#include "config/worker_config.h"

#include <cstdlib>
#include <limits>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/rate_limiter.h"

namespace fanpull {
namespace {

using nlohmann::json;

std::string folderOf(const std::string& file) {
  auto slash = file.rfind('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash + 1);
}

std::string resolve(const std::string& base_file, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return folderOf(base_file) + path;
}

bool validTopic(const std::string& t) {
  if (t.empty() || t.size() > 249 || t == "." || t == "..") return false;
  for (char c : t) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Walks one JSON object, reading known keys and reporting everything else.
class Reader {
 public:
  Reader(std::string file, std::vector<ConfigProblem>& problems)
      : file_(std::move(file)), problems_(problems) {}

  void problem(const std::string& key, const std::string& reason) {
    problems_.push_back({file_, key, reason});
  }

  // Checks `obj` is an object with only `allowed` keys.
  bool object(const json& obj, const std::string& where, const std::set<std::string>& allowed) {
    if (!obj.is_object()) {
      problem(where, "expected a JSON object");
      return false;
    }
    for (const auto& item : obj.items()) {
      if (!allowed.count(item.key())) {
        problem(join(where, item.key()), "unknown key (allowed: " + list(allowed) + ")");
      }
    }
    return true;
  }

  void str(const json& obj, const std::string& where, const char* key, std::string* out,
           bool required = false, bool allow_empty = false) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) problem(join(where, key), "required: expected a string");
      return;
    }
    if (!it->is_string()) {
      problem(join(where, key), "expected a string, got " + std::string(it->type_name()));
      return;
    }
    std::string v = it->get<std::string>();
    if (v.empty() && !allow_empty) {
      problem(join(where, key), "must not be empty");
      return;
    }
    *out = v;
  }

  void integer(const json& obj, const std::string& where, const char* key, int64_t* out,
               int64_t min, int64_t max) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_number_integer()) {
      problem(join(where, key), "expected an integer, got " + std::string(it->type_name()));
      return;
    }
    int64_t v = it->get<int64_t>();
    if (v < min || v > max) {
      problem(join(where, key),
              "expected " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                  std::to_string(v));
      return;
    }
    *out = v;
  }

  void number(const json& obj, const std::string& where, const char* key, double* out,
              double min_exclusive) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_number()) {
      problem(join(where, key), "expected a number, got " + std::string(it->type_name()));
      return;
    }
    double v = it->get<double>();
    if (!(v > min_exclusive)) {
      problem(join(where, key), "expected a number above " + std::to_string(min_exclusive));
      return;
    }
    *out = v;
  }

  static std::string join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }

 private:
  static std::string list(const std::set<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
    return out;
  }

  std::string file_;
  std::vector<ConfigProblem>& problems_;
};

}  // namespace

std::string ConfigProblem::describe() const {
  std::string out = file + ": ";
  if (!key.empty()) out += key + ": ";
  return out + reason;
}

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::string> decodeBase64(std::string_view text) {
  auto space = [](char ch) { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int held = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '+') {
      v = 62;
    } else if (ch == '/') {
      v = 63;
    } else {
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out.push_back(static_cast<char>((bits >> held) & 0xFF));
    }
  }
  return out;
}

bool splitHostPort(const std::string& listen, std::string* host, uint16_t* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
  std::string h = listen.substr(0, colon);
  std::string p = listen.substr(colon + 1);
  if (h.front() == '[') {
    if (h.back() != ']' || h.size() < 3) return false;
    h = h.substr(1, h.size() - 2);
  }
  if (p.size() > 5) return false;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
  }
  long v = std::strtol(p.c_str(), nullptr, 10);
  if (v > 65535) return false;
  *host = h;
  *port = static_cast<uint16_t>(v);
  return true;
}

std::variant<WorkerConfig, std::vector<ConfigProblem>> parseWorkerConfig(const std::string& text,
                                                                          const std::string& file,
                                                                          const EnvLookup& env) {
  std::vector<ConfigProblem> problems;
  Reader r(file, problems);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& ex) {
    problems.push_back({file, "", std::string("not valid JSON: ") + ex.what()});
    return problems;
  }
  WorkerConfig c;
  c.file = file;
  if (!r.object(root, "", {"kafka", "wechat", "component", "tenants_file", "token_state_file",
                           "state", "rate_limit", "http", "log", "shutdown_timeout_ms"})) {
    return problems;
  }

  auto kafka = root.find("kafka");
  if (kafka == root.end()) {
    r.problem("kafka", "required: an object with bootstrap_servers");
  } else if (r.object(*kafka, "kafka",
                      {"bootstrap_servers", "group_id", "topics", "properties",
                       "max_undelivered_bytes", "max_queued_jobs", "exactly_once",
                       "transaction_interval_ms"})) {
    r.str(*kafka, "kafka", "bootstrap_servers", &c.kafka.bootstrap_servers, true);
    r.str(*kafka, "kafka", "group_id", &c.kafka.group_id);
    r.integer(*kafka, "kafka", "max_undelivered_bytes", &c.kafka.max_undelivered_bytes,
              1024 * 1024, int64_t{1} << 40);
    r.integer(*kafka, "kafka", "max_queued_jobs", &c.kafka.max_queued_jobs, 1, 10'000'000);
    if (auto eos = kafka->find("exactly_once"); eos != kafka->end()) {
      if (!eos->is_boolean()) {
        r.problem("kafka.exactly_once", "expected true or false, got " +
                                            std::string(eos->type_name()));
      } else {
        c.kafka.exactly_once = eos->get<bool>();
      }
    }
    r.integer(*kafka, "kafka", "transaction_interval_ms", &c.kafka.transaction_interval_ms, 10,
              60000);
    auto topics = kafka->find("topics");
    if (topics != kafka->end() &&
        r.object(*topics, "kafka.topics", {"jobs", "pages", "events", "dlq", "progress", "state"})) {
      std::pair<const char*, std::string*> names[] = {{"jobs", &c.kafka.topics.jobs},
                                                      {"pages", &c.kafka.topics.pages},
                                                      {"events", &c.kafka.topics.events},
                                                      {"dlq", &c.kafka.topics.dlq},
                                                      {"progress", &c.kafka.topics.progress},
                                                      {"state", &c.kafka.topics.state}};
      std::set<std::string> used;
      for (auto& [key, out] : names) {
        r.str(*topics, "kafka.topics", key, out);
        if (!validTopic(*out)) {
          r.problem(std::string("kafka.topics.") + key,
                    "not a valid topic name (1-249 of [A-Za-z0-9._-])");
        } else if (!used.insert(*out).second) {
          r.problem(std::string("kafka.topics.") + key, "topic \"" + *out + "\" is used twice");
        }
      }
    }
    auto props = kafka->find("properties");
    if (props != kafka->end()) {
      if (!props->is_object()) {
        r.problem("kafka.properties", "expected an object of string values");
      } else {
        for (const auto& item : props->items()) {
          if (!item.value().is_string()) {
            r.problem("kafka.properties." + item.key(),
                      "expected a string (librdkafka properties are strings)");
          } else {
            c.kafka.properties[item.key()] = item.value().get<std::string>();
          }
        }
      }
    }
  }

  auto wechat = root.find("wechat");
  if (wechat != root.end() &&
      r.object(*wechat, "wechat", {"base_url", "timeout_ms", "max_in_flight", "ca_file"})) {
    r.str(*wechat, "wechat", "base_url", &c.wechat.base_url);
    if (c.wechat.base_url.rfind("http://", 0) != 0 && c.wechat.base_url.rfind("https://", 0) != 0) {
      r.problem("wechat.base_url", "expected an http:// or https:// URL");
    }
    r.integer(*wechat, "wechat", "timeout_ms", &c.wechat.timeout_ms, 1, 600000);
    r.integer(*wechat, "wechat", "max_in_flight", &c.wechat.max_in_flight, 1, 10000);
    std::string ca;
    r.str(*wechat, "wechat", "ca_file", &ca);
    if (!ca.empty()) {
      c.wechat.ca_file = resolve(file, ca);
      if (!std::ifstream(c.wechat.ca_file)) {
        r.problem("wechat.ca_file", "cannot read " + c.wechat.ca_file);
      }
    }
  }

  auto component = root.find("component");
  if (component != root.end() &&
      r.object(*component, "component", {"appid", "appsecret", "verify_ticket_file"})) {
    ComponentConfig cc;
    r.str(*component, "component", "appid", &cc.appid, true);
    if (auto secret = env("FANPULL_COMPONENT_APPSECRET"); secret && !secret->empty()) {
      cc.appsecret = *secret;
    } else {
      r.str(*component, "component", "appsecret", &cc.appsecret);
      if (cc.appsecret.empty() && !component->contains("appsecret")) {
        r.problem("component.appsecret",
                  "required: set it here or in FANPULL_COMPONENT_APPSECRET");
      }
    }
    std::string ticket;
    r.str(*component, "component", "verify_ticket_file", &ticket, true);
    cc.verify_ticket_file = resolve(file, ticket);
    c.component = cc;
  }

  // The state key: FANPULL_STATE_KEY wins over state.key_file; the previous key (being
  // retired) likewise from FANPULL_STATE_PREVIOUS_KEY or state.previous_key_file.
  std::string key_file, previous_key_file;
  auto state = root.find("state");
  if (state != root.end() && r.object(*state, "state", {"key_file", "previous_key_file"})) {
    r.str(*state, "state", "key_file", &key_file, true);
    r.str(*state, "state", "previous_key_file", &previous_key_file);
  }
  const std::string kKeyExpected =
      "expected the base64 of 32 random bytes (make one with: head -c 32 /dev/urandom | base64)";
  // Reads one key into `key` (and where it came from into `from`); a problem names the source,
  // never the key.
  auto readKey = [&](const char* env_name, const std::string& file_key, const char* file_name,
                     std::string* key, std::string* from) {
    auto keyOf = [&](const std::string& encoded, const std::string& where,
                     const std::string& what) {
      auto raw = decodeBase64(encoded);
      if (!raw) {
        r.problem(where, what + "not base64; " + kKeyExpected);
      } else if (raw->size() != 32) {
        r.problem(where, what + std::to_string(raw->size()) + " bytes; " + kKeyExpected);
      } else {
        *key = std::move(*raw);
      }
    };
    if (auto env_key = env(env_name); env_key && !env_key->empty()) {
      keyOf(*env_key, env_name, "");
      *from = env_name;
    } else if (!file_key.empty()) {
      const std::string path = resolve(file, file_key);
      if (std::optional<std::string> contents = readFile(path); !contents) {
        r.problem(file_name, path + ": cannot be read");
      } else {
        keyOf(*contents, file_name, path + ": ");
        *from = path;
      }
    }
    if (key->empty()) from->clear();
  };
  readKey("FANPULL_STATE_KEY", key_file, "state.key_file", &c.state_key, &c.state_key_from);
  std::string previous_from;
  readKey("FANPULL_STATE_PREVIOUS_KEY", previous_key_file, "state.previous_key_file",
          &c.state_previous_key, &previous_from);
  if (!c.state_previous_key.empty() && c.state_key.empty()) {
    r.problem("state.previous_key_file",
              "a previous state key needs a current one (state.key_file or FANPULL_STATE_KEY)");
  }

  std::string tenants;
  r.str(root, "", "tenants_file", &tenants, true);
  c.tenants_file = resolve(file, tenants);
  std::string tokens = "tokens.json";
  r.str(root, "", "token_state_file", &tokens);
  c.token_state_file = resolve(file, tokens);

  auto rate = root.find("rate_limit");
  if (rate != root.end() &&
      r.object(*rate, "rate_limit", {"requests_per_second", "burst", "daily_calls"})) {
    r.number(*rate, "rate_limit", "requests_per_second", &c.rate_limit.requests_per_second,
             -std::numeric_limits<double>::infinity());
    if (!RateLimit::validRequestsPerSecond(c.rate_limit.requests_per_second)) {
      r.problem("rate_limit.requests_per_second", RateLimit::kRequestsPerSecondRange);
    }
    r.integer(*rate, "rate_limit", "burst", &c.rate_limit.burst, 1, 1000000);
    r.integer(*rate, "rate_limit", "daily_calls", &c.rate_limit.daily_calls, 0, 1000000000);
  }

  r.integer(root, "", "shutdown_timeout_ms", &c.shutdown_timeout_ms, 100, 3600000);

  auto http = root.find("http");
  if (http != root.end() && r.object(*http, "http", {"listen"})) {
    r.str(*http, "http", "listen", &c.http_listen);
    std::string host;
    uint16_t port;
    if (!splitHostPort(c.http_listen, &host, &port)) {
      r.problem("http.listen", "expected HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free port)");
    }
  }

  auto log = root.find("log");
  if (log != root.end() && r.object(*log, "log", {"level", "format"})) {
    r.str(*log, "log", "level", &c.log_level);
    r.str(*log, "log", "format", &c.log_format);
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
    if (!kLevels.count(c.log_level)) {
      r.problem("log.level", "expected one of trace, debug, info, warn, error");
    }
    if (c.log_format != "json" && c.log_format != "text") {
      r.problem("log.format", "expected json or text");
    }
  }

  if (!problems.empty()) return problems;
  if (c.kafka.max_queued_jobs == 0) {
    c.kafka.max_queued_jobs = kQueuedJobsPerCallInFlight * c.wechat.max_in_flight;
  }
  return c;
}

std::variant<WorkerConfig, std::vector<ConfigProblem>> loadWorkerConfig(const std::string& path,
                                                                         const EnvLookup& env) {
  std::optional<std::string> text = readFile(path);
  if (!text) return std::vector<ConfigProblem>{{path, "", "cannot read the file"}};
  return parseWorkerConfig(*text, path, env);
}

}  // namespace fanpull
