#include <catch2/catch.hpp>

#include <algorithm>

#include "config/worker_config.h"

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
