#include <catch2/catch.hpp>

#include <algorithm>

#include "config/worker_config.h"
#include "support/temp_dir.h"

using namespace fanpull;

namespace {

EnvLookup noEnv() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

std::vector<ConfigProblem> problemsOf(const std::string& text, EnvLookup env = noEnv()) {
  auto r = parseWorkerConfig(text, "/etc/fanpull/worker.json", env);
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(r));
  return std::get<std::vector<ConfigProblem>>(r);
}

bool hasProblem(const std::vector<ConfigProblem>& ps, const std::string& key,
                const std::string& reason_part) {
  return std::any_of(ps.begin(), ps.end(), [&](const ConfigProblem& p) {
    return p.key == key && p.reason.find(reason_part) != std::string::npos &&
           p.file == "/etc/fanpull/worker.json";
  });
}

}  // namespace

TEST_CASE("a minimal config gets the documented defaults and resolves relative paths",
          "[config][unit]") {
  auto r = parseWorkerConfig(
      R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092"}, "tenants_file": "tenants.json"})",
      "/etc/fanpull/worker.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  const auto& c = std::get<WorkerConfig>(r);
  CHECK(c.kafka.bootstrap_servers == "127.0.0.1:9092");
  CHECK(c.kafka.group_id == "fanpull");
  CHECK(c.kafka.topics.pages == "fanpull.pages");
  CHECK(c.kafka.topics.state == "fanpull.state");
  CHECK(c.wechat.base_url == "https://api.weixin.qq.com");
  CHECK(c.wechat.max_in_flight == 32);
  CHECK(c.tenants_file == "/etc/fanpull/tenants.json");
  CHECK(c.token_state_file == "/etc/fanpull/tokens.json");
  CHECK(c.rate_limit.daily_calls == 500);
  CHECK(c.http_listen == "127.0.0.1:9464");
  CHECK_FALSE(c.component.has_value());
}

TEST_CASE("kafka.topics.state names the state topic and may not repeat another topic",
          "[config][unit]") {
  auto r = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092",
      "topics": {"state": "my.state"}}, "tenants_file": "t.json"})",
                             "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  CHECK(std::get<WorkerConfig>(r).kafka.topics.state == "my.state");
  auto ps = problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092",
      "topics": {"state": "fanpull.jobs"}}, "tenants_file": "t.json"})");
  CHECK(hasProblem(ps, "kafka.topics.state", "used twice"));
}

TEST_CASE("a requests_per_second whose interval would overflow is a configuration error",
          "[config][unit]") {
  // 1e-12 a second is a call every 31,700 years: 1e21 ns, beyond 64 bits; a billion a second
  // rounds the interval to 0 ns.
  for (const char* rps : {"1e-12", "0.0001", "1e9", "-3"}) {
    INFO(rps);
    auto ps = problemsOf(std::string(R"({"kafka": {"bootstrap_servers": "k:9092"},
        "tenants_file": "t.json", "rate_limit": {"requests_per_second": )") + rps + "}}");
    CHECK(hasProblem(ps, "rate_limit.requests_per_second", "expected a number from 0.001 to 1000000"));
  }
  for (const char* rps : {"0.001", "0.5", "1000000"}) {
    INFO(rps);
    auto r = parseWorkerConfig(std::string(R"({"kafka": {"bootstrap_servers": "k:9092"},
        "tenants_file": "t.json", "rate_limit": {"requests_per_second": )") + rps + "}}",
                               "/etc/fanpull/worker.json", noEnv());
    REQUIRE(std::holds_alternative<WorkerConfig>(r));
    CHECK(std::get<WorkerConfig>(r).rate_limit.requests_per_second == std::stod(rps));
  }
}

TEST_CASE("every problem of a config is reported with its key and reason", "[config][unit]") {
  auto ps = problemsOf(R"({
    "kafka": {"group_id": 7, "topics": {"jobs": "bad topic!", "pagez": "x"}},
    "wechat": {"base_url": "ftp://x", "timeout_ms": -5},
    "rate_limit": {"requests_per_second": 0, "burst": 0},
    "http": {"listen": "nowhere"},
    "log": {"level": "loud"},
    "tenant_file": "t.json"
  })");
  CHECK(hasProblem(ps, "kafka.bootstrap_servers", "required"));
  CHECK(hasProblem(ps, "kafka.group_id", "expected a string"));
  CHECK(hasProblem(ps, "kafka.topics.jobs", "not a valid topic name"));
  CHECK(hasProblem(ps, "kafka.topics.pagez", "unknown key"));
  CHECK(hasProblem(ps, "wechat.base_url", "http://"));
  CHECK(hasProblem(ps, "wechat.timeout_ms", "expected 1 to 600000"));
  CHECK(hasProblem(ps, "rate_limit.requests_per_second", "expected a number from 0.001 to 1000000"));
  CHECK(hasProblem(ps, "rate_limit.burst", "expected 1"));
  CHECK(hasProblem(ps, "http.listen", "HOST:PORT"));
  CHECK(hasProblem(ps, "log.level", "one of"));
  CHECK(hasProblem(ps, "tenant_file", "unknown key"));
  CHECK(hasProblem(ps, "tenants_file", "required"));
  CHECK(ps.size() == 12);
}

TEST_CASE("a config that is not JSON names the file and the position", "[config][unit]") {
  auto ps = problemsOf("{\"kafka\": ");
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].describe().rfind("/etc/fanpull/worker.json: not valid JSON", 0) == 0);
}

TEST_CASE("the component secret may come from FANPULL_COMPONENT_APPSECRET", "[config][unit]") {
  std::string text = R"({"kafka": {"bootstrap_servers": "b:9092"}, "tenants_file": "t.json",
    "component": {"appid": "wxcomponent", "verify_ticket_file": "ticket.txt"}})";
  CHECK(hasProblem(problemsOf(text), "component.appsecret", "FANPULL_COMPONENT_APPSECRET"));
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FANPULL_COMPONENT_APPSECRET") return std::string("s3cret");
    return std::nullopt;
  };
  auto r = parseWorkerConfig(text, "/etc/fanpull/worker.json", env);
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  const auto& c = std::get<WorkerConfig>(r);
  REQUIRE(c.component.has_value());
  CHECK(c.component->appsecret == "s3cret");
  CHECK(c.component->verify_ticket_file == "/etc/fanpull/ticket.txt");
}

TEST_CASE("a listen address is split into host and port", "[config][unit]") {
  std::string host;
  uint16_t port = 1;
  CHECK(splitHostPort("127.0.0.1:0", &host, &port));
  CHECK(host == "127.0.0.1");
  CHECK(port == 0);
  CHECK(splitHostPort("[::1]:9464", &host, &port));
  CHECK(host == "::1");
  CHECK(port == 9464);
  CHECK_FALSE(splitHostPort("127.0.0.1:65536", &host, &port));
  CHECK_FALSE(splitHostPort("127.0.0.1", &host, &port));
  CHECK_FALSE(splitHostPort(":80", &host, &port));
}

TEST_CASE("a number too large for any type is a problem and not a crash", "[config][unit]") {
  auto ps = problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092"}, "tenants_file": "t.json",
                           "rate_limit": {"burst": 111111111111111111111e1111000}})");
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason.rfind("not valid JSON", 0) == 0);
}

TEST_CASE("the state key comes from FANPULL_STATE_KEY or state.key_file as 32 bytes of base64",
          "[config][unit]") {
  fanpull::testing::TempDir dir;
  // 32 bytes 0x00..0x1f.
  const std::string key_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  std::string expected;
  for (int i = 0; i < 32; ++i) expected.push_back(static_cast<char>(i));
  dir.write("state.key", key_b64 + "\n");
  const std::string config_file = dir.file("worker.json");
  const std::string text = R"({"kafka": {"bootstrap_servers": "b:9092"}, "tenants_file": "t.json",
      "state": {"key_file": "state.key"}})";
  auto r = parseWorkerConfig(text, config_file, noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  CHECK(std::get<WorkerConfig>(r).state_key == expected);
  CHECK(std::get<WorkerConfig>(r).state_key_from == dir.file("state.key"));

  // The environment wins over the file.
  std::string other = "//////////////////////////////////////////8=";  // 32 bytes of 0xff
  auto env = [&other](const std::string& name) -> std::optional<std::string> {
    if (name == "FANPULL_STATE_KEY") return other;
    return std::nullopt;
  };
  auto from_env = parseWorkerConfig(text, config_file, env);
  REQUIRE(std::holds_alternative<WorkerConfig>(from_env));
  CHECK(std::get<WorkerConfig>(from_env).state_key == std::string(32, '\xff'));
  CHECK(std::get<WorkerConfig>(from_env).state_key_from == "FANPULL_STATE_KEY");

  // No key at all: none, and no problem.
  auto none = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json"})", config_file, noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(none));
  CHECK(std::get<WorkerConfig>(none).state_key.empty());

  // A key of the wrong length, not base64, or a file that cannot be read: each named, and the
  // key itself never appears in the problem.
  dir.write("short.key", "c2hvcnQ=\n");  // "short"
  auto short_key = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json", "state": {"key_file": "short.key"}})", config_file, noEnv());
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(short_key));
  const auto& p1 = std::get<std::vector<ConfigProblem>>(short_key);
  REQUIRE(p1.size() == 1);
  CHECK(p1[0].key == "state.key_file");
  CHECK(p1[0].reason.find("5 bytes; expected the base64 of 32 random bytes") != std::string::npos);
  CHECK(p1[0].reason.find("c2hvcnQ") == std::string::npos);
  other = "not a key!";
  auto bad_env = parseWorkerConfig(text, config_file, env);
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(bad_env));
  const auto& p2 = std::get<std::vector<ConfigProblem>>(bad_env);
  REQUIRE(p2.size() == 1);
  CHECK(p2[0].key == "FANPULL_STATE_KEY");
  CHECK(p2[0].reason.find("not base64") != std::string::npos);
  auto missing = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json", "state": {"key_file": "none.key"}})", config_file, noEnv());
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(missing));
  CHECK(std::get<std::vector<ConfigProblem>>(missing)[0].reason ==
        dir.file("none.key") + ": cannot be read");
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json", "state": {"key": "x"}})"), "state.key", "unknown key"));
}

TEST_CASE("a previous state key (being retired) comes like the state key and needs one",
          "[config][unit]") {
  fanpull::testing::TempDir dir;
  dir.write("new.key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
  dir.write("old.key", "//////////////////////////////////////////8=\n");
  const std::string config_file = dir.file("worker.json");
  auto both = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json",
      "state": {"key_file": "new.key", "previous_key_file": "old.key"}})", config_file, noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(both));
  CHECK(std::get<WorkerConfig>(both).state_previous_key == std::string(32, '\xff'));
  CHECK(std::get<WorkerConfig>(both).state_key.size() == 32);

  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FANPULL_STATE_PREVIOUS_KEY") return std::string("AAAA");
    return std::nullopt;
  };
  auto bad_env = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json", "state": {"key_file": "new.key"}})", config_file, env);
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(bad_env));
  CHECK(std::get<std::vector<ConfigProblem>>(bad_env)[0].key == "FANPULL_STATE_PREVIOUS_KEY");
  CHECK(std::get<std::vector<ConfigProblem>>(bad_env)[0].reason.find("3 bytes") !=
        std::string::npos);

  auto alone = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json", "state": {"previous_key_file": "old.key"}})", config_file,
                                 noEnv());
  REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(alone));
  const auto& problems = std::get<std::vector<ConfigProblem>>(alone);
  CHECK(std::any_of(problems.begin(), problems.end(), [](const ConfigProblem& p) {
    return p.key == "state.previous_key_file" &&
           p.reason.find("needs a current one") != std::string::npos;
  }));
}

TEST_CASE("base64 decoding takes padded and unpadded text and refuses anything else",
          "[config][unit]") {
  CHECK(decodeBase64("") == std::string());
  CHECK(decodeBase64("Zg==") == std::string("f"));
  CHECK(decodeBase64("Zm8") == std::string("fo"));
  CHECK(decodeBase64("Zm9v\n") == std::string("foo"));
  CHECK(decodeBase64("  Zm9vYg== ") == std::string("foob"));
  CHECK_FALSE(decodeBase64("Zm9v!"));
  CHECK_FALSE(decodeBase64("Z"));
  CHECK_FALSE(decodeBase64("Zm 9v"));
}

TEST_CASE("kafka.exactly_once and transaction_interval_ms are read and checked",
          "[config][unit]") {
  auto r = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092", "exactly_once": true,
      "transaction_interval_ms": 250}, "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  CHECK(std::get<WorkerConfig>(r).kafka.exactly_once);
  CHECK(std::get<WorkerConfig>(r).kafka.transaction_interval_ms == 250);
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092", "exactly_once": 1},
      "tenants_file": "t.json"})"), "kafka.exactly_once", "expected true or false"));
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092",
      "transaction_interval_ms": 5}, "tenants_file": "t.json"})"),
                   "kafka.transaction_interval_ms", ""));
  auto d = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(d));
  CHECK_FALSE(std::get<WorkerConfig>(d).kafka.exactly_once);  // at-least-once by default
  CHECK(std::get<WorkerConfig>(d).kafka.transaction_interval_ms == 100);
}

TEST_CASE("kafka.max_queued_jobs is read and checked, sixteen times max_in_flight by default",
          "[config][unit]") {
  auto r = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092", "max_queued_jobs": 50},
      "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  CHECK(std::get<WorkerConfig>(r).kafka.max_queued_jobs == 50);
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092", "max_queued_jobs": 0},
      "tenants_file": "t.json"})"), "kafka.max_queued_jobs", "expected 1 to 10000000"));
  auto d = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "wechat": {"max_in_flight": 64}, "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(d));
  CHECK(std::get<WorkerConfig>(d).kafka.max_queued_jobs == 1024);
  auto e = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(e));
  CHECK(std::get<WorkerConfig>(e).kafka.max_queued_jobs == 512);  // max_in_flight 32
}

TEST_CASE("shutdown_timeout_ms is read and checked, 30 s by default", "[config][unit]") {
  auto r = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "shutdown_timeout_ms": 15000, "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(r));
  CHECK(std::get<WorkerConfig>(r).shutdown_timeout_ms == 15000);
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "shutdown_timeout_ms": 50, "tenants_file": "t.json"})"),
                   "shutdown_timeout_ms", "expected 100 to 3600000, got 50"));
  CHECK(hasProblem(problemsOf(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "shutdown_timeout_ms": "30s", "tenants_file": "t.json"})"),
                   "shutdown_timeout_ms", "expected an integer"));
  auto d = parseWorkerConfig(R"({"kafka": {"bootstrap_servers": "b:9092"},
      "tenants_file": "t.json"})", "/w.json", noEnv());
  REQUIRE(std::holds_alternative<WorkerConfig>(d));
  CHECK(std::get<WorkerConfig>(d).shutdown_timeout_ms == 30000);
}
