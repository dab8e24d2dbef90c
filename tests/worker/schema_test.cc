// The published JSON Schemas (docs/schemas) against what fanpull really writes: the validator
// itself, the encoders, every message a worker writes to the pages, events, dead-letter and
// progress topics, and the example configurations of config/examples.
#include <catch2/catch.hpp>

#include <unistd.h>  // getpid() for support/worker_fixture.h

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/worker_config.h"
#include "core/page_message.h"
#include "sandbox/accounts.h"
#include "support/json_schema.h"
#include "support/worker_fixture.h"
#include "tenants/tenants_file.h"
#include "worker/messages.h"

using namespace fanpull;
using nlohmann::json;
using testing::JsonSchema;
using testing::merchant;
using testing::TopicMessage;
using testing::WorkerFixture;

namespace {

std::string schemaPath(const std::string& name) { return std::string(FANPULL_SCHEMAS) + "/" + name; }

JsonSchema loadSchema(const std::string& name) { return JsonSchema::fromFile(schemaPath(name)); }

// config/examples, found from docs/schemas (both are in the source tree).
std::string examplePath(const std::string& name) {
  std::filesystem::path root = std::filesystem::path(FANPULL_SCHEMAS).parent_path().parent_path();
  return (root / "config" / "examples" / name).string();
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// Printable text for failure messages (bytes that are not UTF-8 are escaped by the dump).
std::string printable(const std::string& bytes) {
  return json(bytes).dump(-1, ' ', true, json::error_handler_t::replace);
}

// A message's headers as one JSON object of name -> value; a repeated header is a problem.
json headerObject(const TopicMessage& m, std::string* problem) {
  json out = json::object();
  for (const auto& h : m.headers) {
    if (out.contains(h.key)) *problem += "header " + h.key + " appears more than once; ";
    out[h.key] = h.value;
  }
  return out;
}

FollowerPage makePage(int n, int64_t total, const std::string& next) {
  FollowerPage p;
  for (int i = 0; i < n; ++i) p.add(sandbox::sandboxOpenId("wxschemaunit", i));
  p.count = n;
  p.total = total;
  p.next_openid = next;
  p.has_data = n > 0;
  return p;
}

Error errorOf(ErrorClass cls, std::optional<long> errcode, std::string errmsg, std::string cause) {
  Error e;
  e.error_class = cls;
  e.errcode = errcode;
  e.errmsg = std::move(errmsg);
  e.cause = std::move(cause);
  return e;
}

}  // namespace

TEST_CASE("the schema validator accepts and rejects small examples of each keyword it supports",
          "[worker][unit]") {
  JsonSchema s(json::parse(R"({
    "type": "object",
    "required": ["id", "n"],
    "properties": {
      "id": {"type": "string", "pattern": "^[a-z]{1,3}$"},
      "n": {"type": "integer", "minimum": 0, "maximum": 10},
      "name": {"type": "string", "minLength": 2, "maxLength": 4},
      "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"$ref": "#/$defs/tag"}},
      "kind": {"enum": ["a", "b"]},
      "fixed": {"const": 7},
      "opt": {"type": ["string", "null"]},
      "part": {"type": "integer"},
      "parts": {"type": "integer"}
    },
    "dependentRequired": {"part": ["parts"], "parts": ["part"]},
    "additionalProperties": false,
    "allOf": [
      {"if": {"required": ["kind"], "properties": {"kind": {"const": "b"}}},
       "then": {"required": ["name"]},
       "else": {"properties": {"n": {"maximum": 5}}}}
    ],
    "$defs": {"tag": {"type": "string", "pattern": "^#"}}
  })"));
  auto ok = [&](const char* text) {
    auto errors = s.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    CHECK(errors.empty());
  };
  auto bad = [&](const char* text, const std::string& expected) {
    auto errors = s.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    REQUIRE_FALSE(errors.empty());
    CHECK(joined(errors).find(expected) != std::string::npos);
  };
  ok(R"({"id": "ab", "n": 0})");
  ok(R"({"id": "abc", "n": 5, "name": "xy", "tags": ["#a", "#b"], "fixed": 7, "opt": null})");
  ok(R"({"id": "a", "n": 9.0, "kind": "b", "name": "abcd", "part": 0, "parts": 2})");
  ok(R"({"id": "a", "n": 1, "opt": "text"})");
  bad(R"([1])", "expected type");
  bad(R"({"n": 0})", "required property \"id\"");
  bad(R"({"id": 1, "n": 0})", "/id: expected type");
  bad(R"({"id": "abcd", "n": 0})", "does not match");
  bad(R"({"id": "A", "n": 0})", "does not match");
  bad(R"({"id": "a", "n": -1})", "below the minimum");
  bad(R"({"id": "a", "n": 1.5})", "expected type");
  bad(R"({"id": "a", "n": 11, "kind": "b", "name": "xx"})", "above the maximum");
  bad(R"({"id": "a", "n": 6})", "above the maximum 5");  // the else branch
  bad(R"({"id": "a", "n": 6, "kind": "b"})", "required property \"name\"");  // the then branch
  bad(R"({"id": "a", "n": 0, "name": "x"})", "at least 2");
  bad(R"({"id": "a", "n": 0, "name": "xxxxx"})", "at most 4");
  bad(R"({"id": "a", "n": 0, "tags": []})", "at least 1");
  bad(R"({"id": "a", "n": 0, "tags": ["#a", "#b", "#c"]})", "at most 2");
  bad(R"({"id": "a", "n": 0, "tags": ["#a", "b"]})", "/tags/1");
  bad(R"({"id": "a", "n": 0, "kind": "c"})", "is not one of");
  bad(R"({"id": "a", "n": 0, "fixed": 8})", "expected 7");
  bad(R"({"id": "a", "n": 0, "opt": 3})", "/opt: expected type");
  bad(R"({"id": "a", "n": 0, "part": 1})", "requires \"parts\"");
  bad(R"({"id": "a", "n": 0, "parts": 1})", "requires \"part\"");
  bad(R"({"id": "a", "n": 0, "extra": true})", "\"extra\" is not allowed");
  // Code points, not bytes: two Chinese characters are two characters.
  ok("{\"id\": \"a\", \"n\": 0, \"name\": \"\xe5\xbe\xae\xe4\xbf\xa1\"}");

  // additionalProperties as a schema; patterns are unanchored unless the schema anchors them.
  JsonSchema map(json::parse(
      R"({"type": "object", "additionalProperties": {"type": "string", "pattern": "[0-9]"}})"));
  CHECK(map.accepts(json::parse(R"({"a": "x1y", "b": "2"})")));
  CHECK_FALSE(map.accepts(json::parse(R"({"a": "xy"})")));
  CHECK_FALSE(map.accepts(json::parse(R"({"a": 1})")));
}

TEST_CASE("the schema validator refuses schemas it cannot check faithfully", "[worker][unit]") {
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"type": "string", "format": "date-time"})")),
                    Catch::Contains("\"format\" is not supported"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"properties": {"a": {"oneOf": [true]}}})")),
                    Catch::Contains("#/properties/a/oneOf"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"$ref": "#/$defs/missing"})")),
                    Catch::Contains("does not resolve"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"$ref": "other.json#/x"})")),
                    Catch::Contains("only references"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"pattern": "(unclosed"})")),
                    Catch::Contains("regular expression"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"type": "text"})")),
                    Catch::Contains("unknown type"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"items": [{"type": "string"}]})")),
                    Catch::Contains("array form of items"));
  CHECK_THROWS_WITH(JsonSchema(json::parse(R"({"required": "a"})")),
                    Catch::Contains("array of strings"));
  CHECK_THROWS_WITH(JsonSchema::fromFile(schemaPath("no-such.schema.json")),
                    Catch::Contains("cannot read"));
}

TEST_CASE("the published schemas accept the contract examples and reject broken messages",
          "[worker][unit]") {
  JsonSchema job = loadSchema("job.schema.json");
  JsonSchema page = loadSchema("page.schema.json");
  JsonSchema event = loadSchema("event.schema.json");
  JsonSchema dead = loadSchema("dead-letter.schema.json");
  JsonSchema progress = loadSchema("progress.schema.json");

  auto accepts = [](const JsonSchema& s, const std::string& text) {
    auto errors = s.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    CHECK(errors.empty());
  };
  auto rejects = [](const JsonSchema& s, const std::string& text) {
    INFO(text);
    CHECK_FALSE(s.accepts(json::parse(text)));
  };

  // Jobs (docs/CONTRACTS.md example first).
  accepts(job, R"({"job_id": "j-2026-11-27-0001", "appid": "wx1234567890abcdef", "next_openid": ""})");
  accepts(job, R"({"job_id": "a.b:c_d-e", "appid": "wx1", "next_openid": null, "owner": "ops"})");
  accepts(job, R"({"job_id": ")" + std::string(128, 'j') + R"(", "appid": "wx1"})");
  rejects(job, R"({"job_id": ")" + std::string(129, 'j') + R"(", "appid": "wx1"})");
  rejects(job, R"({"job_id": "", "appid": "wx1"})");
  rejects(job, R"({"job_id": "has space", "appid": "wx1"})");
  rejects(job, R"({"job_id": "j/1", "appid": "wx1"})");
  rejects(job, R"({"job_id": "j1", "appid": "wx.1"})");
  rejects(job, R"({"job_id": "j1", "appid": 7})");
  rejects(job, R"({"job_id": "j1"})");
  rejects(job, R"({"job_id": "j1", "appid": "wx1", "next_openid": "o&x"})");
  rejects(job, R"(["j1", "wx1"])");

  // Pages: the contract example, a split part, a count-0 last page.
  accepts(page, R"({"job_id": "j1", "appid": "wx1", "seq": 0, "total": 23000, "count": 2,
                    "openids": ["oLVPpjqs9BhvzwPj5A-vTYAX3GLc", "o2"], "next_openid": "o2",
                    "last": false})");
  accepts(page, R"({"job_id": "j1", "appid": "wx1", "seq": 3, "part": 1, "parts": 2,
                    "total": 5, "count": 1, "openids": ["o5"], "next_openid": "", "last": true,
                    "added_later": {"x": 1}})");
  accepts(page, R"({"job_id": "j1", "appid": "wx1", "seq": 0, "total": 0, "count": 0,
                    "openids": [], "next_openid": "", "last": true})");
  const std::string good_page =
      R"("job_id": "j1", "appid": "wx1", "total": 1, "openids": ["o1"], "next_openid": "o1", "last": false)";
  rejects(page, "{" + good_page + R"(, "seq": -1, "count": 1})");
  rejects(page, "{" + good_page + R"(, "seq": 0, "count": -1})");
  rejects(page, "{" + good_page + R"(, "seq": 0, "count": 10001})");
  rejects(page, "{" + good_page + R"(, "seq": 0})");
  rejects(page, "{" + good_page + R"(, "seq": 0, "count": 1, "part": 0})");
  rejects(page, "{" + good_page + R"(, "seq": 0, "count": 1, "parts": 2})");
  rejects(page, "{" + good_page + R"(, "seq": "0", "count": 1})");
  rejects(page, R"({"job_id": "j1", "appid": "wx1", "seq": 0, "total": 1, "count": 1,
                    "openids": ["o 1"], "next_openid": "", "last": false})");
  rejects(page, R"({"job_id": "j1", "appid": "wx1", "seq": 0, "total": 1, "count": 1,
                    "openids": ["o1"], "next_openid": "", "last": "no"})");

  // Events: the contract example and each rule.
  accepts(event, R"({"job_id": "j1", "appid": "wx1", "status": "completed", "pages": 3,
                     "openids": 23000,
                     "error": {"class": "quota_exhausted", "errcode": 45009, "errmsg": "..."},
                     "retry_at": "2026-11-28T00:00:00+08:00"})");
  accepts(event, R"({"job_id": "j1", "appid": "wx1", "status": "started", "pages": 0,
                     "openids": 0, "ts": "2026-11-28T01:00:20.123+08:00"})");
  accepts(event, R"({"job_id": "", "appid": "", "status": "rejected", "pages": 0, "openids": 0,
                     "error": {"class": "bad_job", "errmsg": "", "message": "bad_job: not JSON"}})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "done", "pages": 0, "openids": 0})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "failed", "pages": 0, "openids": 0})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "failed", "pages": 0,
                     "openids": 0, "error": {"class": "fatal", "errmsg": ""}})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "failed", "pages": 0,
                     "openids": 0, "error": {"errcode": 40013, "errmsg": ""}})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "deferred", "pages": 0,
                     "openids": 0, "error": {"class": "quota_exhausted", "errmsg": ""}})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "deferred", "pages": 0,
                     "openids": 0, "error": {"class": "quota_exhausted", "errmsg": ""},
                     "retry_at": "tomorrow"})");
  rejects(event, R"({"job_id": "", "appid": "wx1", "status": "failed", "pages": 0, "openids": 0,
                     "error": {"class": "unknown", "errmsg": ""}})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "completed", "pages": -1,
                     "openids": 0})");
  rejects(event, R"({"job_id": "j1", "appid": "wx1", "status": "completed", "pages": 1})");

  // Dead-letter headers.
  accepts(dead, R"({"fanpull-error-class": "invalid_tenant", "fanpull-error-message": "x",
                    "fanpull-error-errcode": "40013", "fanpull-original-topic": "fanpull.jobs",
                    "fanpull-original-partition": "3", "fanpull-original-offset": "1207",
                    "fanpull-added-later": "y"})");
  rejects(dead, R"({"fanpull-error-class": "broken", "fanpull-error-message": "x",
                    "fanpull-original-topic": "fanpull.jobs", "fanpull-original-partition": "3",
                    "fanpull-original-offset": "1207"})");
  rejects(dead, R"({"fanpull-error-class": "bad_job", "fanpull-error-message": "x",
                    "fanpull-original-topic": "fanpull.jobs", "fanpull-original-partition": "3"})");
  rejects(dead, R"({"fanpull-error-class": "bad_job", "fanpull-error-message": "x",
                    "fanpull-error-errcode": "none", "fanpull-original-topic": "fanpull.jobs",
                    "fanpull-original-partition": "3", "fanpull-original-offset": "1"})");
  rejects(dead, R"({"fanpull-error-class": "bad_job", "fanpull-error-message": "",
                    "fanpull-original-topic": "fanpull.jobs",
                    "fanpull-original-partition": "-1", "fanpull-original-offset": "1"})");

  // Progress.
  const std::string source = R"("source": {"topic": "fanpull.jobs", "partition": 0, "offset": 5})";
  accepts(progress, R"({"job_id": "j1", "appid": "wx1", "state": "running", "seq": 2,
                        "cursor": "o2", "openids": 20000, )" + source + "}");
  accepts(progress, R"({"job_id": "j1", "appid": "wx1", "state": "deferred", "seq": 2,
                        "cursor": "o2", "openids": 20000, "retry_at_ms": 1795881600000, )" +
                        source + "}");
  rejects(progress, R"({"job_id": "j1", "appid": "wx1", "state": "deferred", "seq": 2,
                        "cursor": "o2", "openids": 20000, "retry_at_ms": 0, )" + source + "}");
  rejects(progress, R"({"job_id": "j1", "appid": "wx1", "state": "paused", "seq": 2,
                        "cursor": "o2", "openids": 0, )" + source + "}");
  rejects(progress, R"({"job_id": "j1", "appid": "wx1", "state": "running", "seq": -1,
                        "cursor": "", "openids": 0, )" + source + "}");
  rejects(progress, R"({"job_id": "j1", "appid": "wx1", "state": "running", "seq": 0,
                        "cursor": "", "openids": 0})");
}

TEST_CASE("the message encoders write what the published schemas describe", "[worker][unit]") {
  JsonSchema page = loadSchema("page.schema.json");
  JsonSchema event = loadSchema("event.schema.json");
  JsonSchema dead = loadSchema("dead-letter.schema.json");
  JsonSchema progress = loadSchema("progress.schema.json");
  const TimePoint now = fromUnixSeconds(1795795200 + 3600);

  // Events of every status.
  Error quota = errorOf(ErrorClass::kQuotaExhausted, 45009, "reach max api daily quota limit", "");
  Error bad = errorOf(ErrorClass::kBadJob, std::nullopt, "", "not JSON");
  for (const char* status : {"started", "completed", "failed", "deferred", "duplicate", "rejected"}) {
    JobEvent e;
    e.job_id = std::string(status) == "rejected" ? "" : "j-unit";
    e.appid = "wxschemaunit";
    e.status = status;
    e.pages = 2;
    e.openids = 12000;
    if (std::string(status) == "failed" || std::string(status) == "deferred") e.error = quota;
    if (std::string(status) == "rejected") e.error = bad;
    if (std::string(status) == "deferred") e.retry_at = fromUnixSeconds(1795881600);
    std::string text = encodeEvent(e, now);
    auto errors = event.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    CHECK(errors.empty());
  }

  // Progress records of every state.
  for (const char* state : {"running", "deferred", "ending", "completed", "failed"}) {
    ProgressRecord p;
    p.job_id = "j-unit";
    p.appid = "wxschemaunit";
    p.state = state;
    p.seq = 1;
    p.cursor = sandbox::sandboxOpenId("wxschemaunit", 9999);
    p.openids = 10000;
    p.source_topic = "fanpull.jobs";
    p.source_partition = 1;
    p.source_offset = 42;
    p.retry_at_ms = std::string(state) == "deferred" ? 1795881600000 : 0;
    p.updated_ms = 1795798800000;
    p.events_partition = 3;
    p.events_offset = 17;
    if (std::string(state) == "ending") {
      JobEvent end{"j-unit", "wxschemaunit", "completed", 1, 10000, std::nullopt, std::nullopt,
                   std::nullopt};
      p.end_event = encodeEvent(end, now);
    }
    std::string text = encodeProgress(p);
    auto errors = progress.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    CHECK(errors.empty());
  }

  // A page, whole and split into parts.
  FollowerPage fp = makePage(500, 777, sandbox::sandboxOpenId("wxschemaunit", 499));
  PageIdentity id{"j-unit", "wxschemaunit", 4, false};
  CHECK(page.accepts(json::parse(encodePageMessage(id, fp))));
  auto parts = encodePageMessages(id, fp, 2000);
  REQUIRE(parts.ok());
  REQUIRE(parts->size() > 1);
  for (const auto& text : *parts) {
    CHECK(text.size() <= 2000);
    auto errors = page.validate(json::parse(text));
    INFO(text << "\n" << joined(errors));
    CHECK(errors.empty());
  }
  FollowerPage empty = makePage(0, 0, "");
  CHECK(page.accepts(json::parse(encodePageMessage({"j-unit", "wxschemaunit", 0, true}, empty))));

  // Dead-letter headers, with and without an errcode.
  for (const Error& e : {bad, errorOf(ErrorClass::kInvalidTenant, 40013, "invalid appid", "")}) {
    kafka::Headers headers = deadLetterHeaders(e, "fanpull.jobs", 2, 99);
    TopicMessage m;
    m.headers = headers;
    std::string problem;
    json object = headerObject(m, &problem);
    CHECK(problem.empty());
    auto errors = dead.validate(object);
    INFO(object.dump() << "\n" << joined(errors));
    CHECK(errors.empty());
    CHECK(object.contains("fanpull-error-errcode") == e.errcode.has_value());
  }

  // A dead letter cut to fit the producer: its value's first bytes and the original size.
  kafka::Headers headers = deadLetterHeaders(bad, "fanpull.jobs", 2, 99);
  std::string value(300000, 'j');
  fitDeadLetter(&value, &headers, 18, 100000);
  CHECK(value.size() < 100000 - 1024);
  CHECK(value.size() > 90000);
  TopicMessage cut;
  cut.headers = headers;
  std::string problem;
  json object = headerObject(cut, &problem);
  CHECK(problem.empty());
  CHECK(object["fanpull-original-size"] == "300000");
  auto errors = dead.validate(object);
  INFO(joined(errors));
  CHECK(errors.empty());
  // One that fits is left as it is, without the header.
  kafka::Headers small_headers = deadLetterHeaders(bad, "fanpull.jobs", 2, 99);
  std::string small(5000, 'j');
  fitDeadLetter(&small, &small_headers, 18, 100000);
  CHECK(small.size() == 5000);
  CHECK(small_headers.size() == deadLetterHeaders(bad, "fanpull.jobs", 2, 99).size());
}

TEST_CASE("the example configurations load without problems", "[worker][unit]") {
  auto noEnv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto withSecret = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FANPULL_COMPONENT_APPSECRET") return std::string("secret-from-the-environment");
    return std::nullopt;
  };
  auto problemsOf = [](const std::variant<WorkerConfig, std::vector<ConfigProblem>>& loaded) {
    std::string out;
    if (auto* p = std::get_if<std::vector<ConfigProblem>>(&loaded)) {
      for (const auto& problem : *p) out += problem.describe() + "\n";
    }
    return out;
  };

  SECTION("worker.embedded.json: static tokens against the embedded broker and the sandbox") {
    auto loaded = loadWorkerConfig(examplePath("worker.embedded.json"), noEnv);
    INFO(problemsOf(loaded));
    REQUIRE(std::holds_alternative<WorkerConfig>(loaded));
    const auto& c = std::get<WorkerConfig>(loaded);
    CHECK_FALSE(c.component.has_value());
    CHECK(c.wechat.base_url.rfind("http://127.0.0.1:", 0) == 0);
    CHECK(c.tenants_file == examplePath("tenants.example.json"));
    CHECK(std::filesystem::exists(c.tenants_file));
  }
  SECTION("worker.production.json: SASL_SSL and the component flow with the secret from the "
          "environment") {
    auto loaded = loadWorkerConfig(examplePath("worker.production.json"), withSecret);
    INFO(problemsOf(loaded));
    REQUIRE(std::holds_alternative<WorkerConfig>(loaded));
    const auto& c = std::get<WorkerConfig>(loaded);
    REQUIRE(c.component.has_value());
    CHECK(c.component->appsecret == "secret-from-the-environment");
    CHECK(c.kafka.properties.at("security.protocol") == "SASL_SSL");
    CHECK(c.wechat.base_url == "https://api.weixin.qq.com");
    CHECK(c.wechat.ca_file.empty());
    CHECK(c.rate_limit.daily_calls > 0);
    // Without the environment variable the missing secret is named.
    auto missing = loadWorkerConfig(examplePath("worker.production.json"), noEnv);
    REQUIRE(std::holds_alternative<std::vector<ConfigProblem>>(missing));
    CHECK(problemsOf(missing).find("component.appsecret") != std::string::npos);
  }
  SECTION("tenants.example.json: valid with static tokens and with the component") {
    std::ifstream in(examplePath("tenants.example.json"));
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    for (bool component : {false, true}) {
      auto loaded = parseTenants(text.str(), examplePath("tenants.example.json"), {component});
      std::string problems;
      if (auto* p = std::get_if<std::vector<TenantProblem>>(&loaded)) {
        for (const auto& problem : *p) problems += problem.describe() + "\n";
      }
      INFO("component " << component << "\n" << problems);
      REQUIRE(std::holds_alternative<std::shared_ptr<const TenantSet>>(loaded));
      CHECK(std::get<std::shared_ptr<const TenantSet>>(loaded)->size() >= 5);
    }
  }
  SECTION("sandbox-accounts.example.json: serves the merchants of tenants.example.json") {
    sandbox::SandboxFile file;
    try {
      file = sandbox::loadSandboxFile(examplePath("sandbox-accounts.example.json"));
    } catch (const sandbox::SandboxFileError& e) {
      FAIL(e.what());
    }
    CHECK(file.accounts.size() >= 5);
    auto tenants = loadTenants(examplePath("tenants.example.json"), {false});
    REQUIRE(std::holds_alternative<std::shared_ptr<const TenantSet>>(tenants));
    const auto& set = *std::get<std::shared_ptr<const TenantSet>>(tenants);
    for (const auto& [appid, tenant] : set.all()) {
      bool served = false;
      for (const auto& a : file.accounts) {
        if (a.appid != appid) continue;
        for (const auto& t : a.access_tokens) served |= t == tenant->authorizer_access_token;
      }
      INFO(appid);
      CHECK(served);
    }
  }
}

TEST_CASE("every message a worker writes matches its published schema", "[worker][integration][kafka]") {
  JsonSchema job_schema = loadSchema("job.schema.json");
  JsonSchema page_schema = loadSchema("page.schema.json");
  JsonSchema event_schema = loadSchema("event.schema.json");
  JsonSchema dead_schema = loadSchema("dead-letter.schema.json");
  JsonSchema progress_schema = loadSchema("progress.schema.json");

  auto ok = merchant("wxschemaok", 12000);
  auto zero = merchant("wxschemazero", 0);
  auto split = merchant("wxschemasplit", 25000);
  auto invalid = merchant("wxschemainvalid", 3000);
  invalid.errcode = 40013;
  auto quota = merchant("wxschemaquota", 30000);
  quota.daily_quota = 3;
  auto noperm = merchant("wxschemanoperm", 100);
  noperm.func_info = {1, 3};
  WorkerFixture f({ok, zero, split, invalid, quota, noperm});
  auto options = f.options();
  options.properties["message.max.bytes"] = "200000";  // a 10000-OpenID page needs two parts
  f.startWorker(options);

  // Accepted jobs.
  f.enqueueJob("j-ok", "wxschemaok");
  f.enqueueJob("j-from", "wxschemaok", sandbox::sandboxOpenId("wxschemaok", 4999));
  f.enqueueJob("j-zero", "wxschemazero");
  f.enqueueJob("j-split", "wxschemasplit");
  f.enqueueJob("j-invalid", "wxschemainvalid");
  f.enqueueJob("j-quota", "wxschemaquota");
  f.enqueueJob("j-noperm", "wxschemanoperm");
  // Rejected jobs: each is dead-lettered with its bytes unchanged.
  const std::string stranger = R"({"job_id":"j-stranger","appid":"wxschemanotatenant"})";
  const std::string not_json = "not json at all";
  const std::string wrong_type = R"({"job_id": "j-broken", "appid": 7})";
  const std::string not_utf8 = "{\"job_id\": \"j-\xff\xfe\", \"appid\": \"wxschemaok\"}";
  const std::string oversize =
      R"({"job_id": "j-big", "appid": "wxschemaok", "pad": ")" + std::string(70000, 'x') + "\"}";
  f.enqueue("wxschemanotatenant", stranger);
  f.enqueue("wxschemaok", not_json);
  f.enqueue("wxschemaok", wrong_type);
  f.enqueue("wxschemaok", not_utf8);
  f.enqueue("wxschemaok", oversize);
  const std::set<std::string> rejected_bytes = {stranger, not_json, wrong_type, not_utf8, oversize};

  f.waitForStatus({"j-ok", "j-from", "j-zero", "j-split"}, {"completed"});
  f.waitForStatus({"j-invalid", "j-noperm"}, {"failed"});
  f.waitForStatus({"j-quota"}, {"deferred"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (f.deadLetters().size() < rejected_bytes.size() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A second job with a job_id already done: a duplicate event, no second pull.
  f.enqueueJob("j-ok", "wxschemaok");
  f.waitForStatus({"j-ok"}, {"duplicate"});
  // Past 00:00 Beijing time the deferred job resumes and completes.
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-quota"}, {"completed"});
  f.stopWorker();

  const std::string servers = f.bootstrapServers();
  auto read = [&](const std::string& topic) {
    auto messages = testing::readTopic(servers, topic);
    REQUIRE(messages.ok());
    return *messages;
  };
  std::vector<TopicMessage> jobs = read(f.topics().jobs);
  std::vector<TopicMessage> pages = read(f.topics().pages);
  std::vector<TopicMessage> events = read(f.topics().events);
  std::vector<TopicMessage> dead = read(f.topics().dlq);
  std::vector<TopicMessage> progress = read(f.topics().progress);

  // No token ever appears in a page, event, dead letter, progress record or header.
  for (const auto* topic : {&pages, &events, &dead, &progress}) {
    for (const auto& m : *topic) {
      std::string text = m.value;
      for (const auto& h : m.headers) text += "\n" + h.key + "=" + h.value;
      for (const auto& a : {ok, zero, split, invalid, quota, noperm}) {
        INFO("message at partition " << m.partition << " offset " << m.offset);
        CHECK(text.find(a.access_tokens[0]) == std::string::npos);
      }
    }
  }

  // Jobs: the schema accepts the well-formed ones and refuses the malformed ones (the size limit
  // and invalid UTF-8 are beyond a schema: the oversize job is schema-valid, the other is not JSON).
  for (const auto& m : jobs) {
    json value = json::parse(m.value, nullptr, /*allow_exceptions=*/false);
    bool valid = !value.is_discarded() && job_schema.accepts(value);
    bool malformed = m.value == not_json || m.value == wrong_type || m.value == not_utf8;
    INFO("job " << printable(m.value.substr(0, 100)));
    CHECK(valid == !malformed);
  }

  // Pages.
  std::map<std::string, int64_t> max_parts;
  for (const auto& m : pages) {
    json value = json::parse(m.value, nullptr, /*allow_exceptions=*/false);
    INFO("page at partition " << m.partition << " offset " << m.offset << ": "
                              << printable(m.value.substr(0, 200)));
    REQUIRE_FALSE(value.is_discarded());
    auto errors = page_schema.validate(value);
    INFO(joined(errors));
    CHECK(errors.empty());
    if (!errors.empty()) continue;
    CHECK(m.value.size() <= 200000);
    CHECK(m.key.value_or("") == value["appid"].get<std::string>());
    CHECK(m.header(kHeaderJobId) == value["job_id"].get<std::string>());
    CHECK(m.header(kHeaderSeq) == std::to_string(value["seq"].get<int64_t>()));
    CHECK(value["count"].get<size_t>() == value["openids"].size());
    if (value.contains("part")) {
      CHECK(value["part"].get<int64_t>() < value["parts"].get<int64_t>());
      CHECK(m.header(kHeaderPart) == std::to_string(value["part"].get<int64_t>()));
      auto& most = max_parts[value["job_id"].get<std::string>()];
      most = std::max(most, value["parts"].get<int64_t>());
    }
  }
  CHECK(max_parts["j-split"] >= 2);  // the 25000-follower walk was split into parts
  f.requireFollowers("j-ok", "wxschemaok", 12000);
  f.requireFollowers("j-from", "wxschemaok", 12000, 5000);
  f.requireFollowers("j-zero", "wxschemazero", 0);
  f.requireFollowers("j-split", "wxschemasplit", 25000);
  f.requireFollowers("j-quota", "wxschemaquota", 30000);

  // Events.
  std::map<std::string, int64_t> statuses;
  std::map<std::string, int64_t> endings;  // completed + failed per job
  for (const auto& m : events) {
    json value = json::parse(m.value, nullptr, /*allow_exceptions=*/false);
    INFO("event " << printable(m.value));
    REQUIRE_FALSE(value.is_discarded());
    auto errors = event_schema.validate(value);
    INFO(joined(errors));
    CHECK(errors.empty());
    if (!errors.empty()) continue;
    CHECK(m.key.value_or("") == value["appid"].get<std::string>());
    const std::string status = value["status"];
    ++statuses[status];
    if (status == "completed" || status == "failed") ++endings[value["job_id"].get<std::string>()];
  }
  for (const char* status : {"started", "completed", "failed", "deferred", "duplicate", "rejected"}) {
    INFO(status);
    CHECK(statuses[status] > 0);
  }
  CHECK(statuses["rejected"] == static_cast<int64_t>(rejected_bytes.size()));
  for (const char* job : {"j-ok", "j-from", "j-zero", "j-split", "j-invalid", "j-quota",
                          "j-noperm"}) {
    INFO(job);
    CHECK(endings[job] == 1);
  }

  // Dead letters: valid headers, and the value is byte for byte the job message it points at.
  std::map<std::pair<int32_t, int64_t>, std::string> job_at;
  for (const auto& m : jobs) job_at[{m.partition, m.offset}] = m.value;
  std::set<std::string> dead_values;
  for (const auto& m : dead) {
    std::string problem;
    json headers = headerObject(m, &problem);
    INFO("dead letter " << printable(m.value.substr(0, 100)) << "\nheaders "
                        << headers.dump(-1, ' ', false, json::error_handler_t::replace));
    CHECK(problem.empty());
    auto errors = dead_schema.validate(headers);
    INFO(joined(errors));
    CHECK(errors.empty());
    if (!errors.empty()) continue;
    CHECK(rejected_bytes.count(m.value) == 1);
    dead_values.insert(m.value);
    CHECK(headers["fanpull-original-topic"] == f.topics().jobs);
    std::pair<int32_t, int64_t> origin{
        std::stoi(headers["fanpull-original-partition"].get<std::string>()),
        std::stoll(headers["fanpull-original-offset"].get<std::string>())};
    REQUIRE(job_at.count(origin) == 1);
    CHECK(job_at[origin] == m.value);
    CHECK(headers["fanpull-error-class"] == (m.value == stranger ? "invalid_tenant" : "bad_job"));
  }
  CHECK(dead.size() == rejected_bytes.size());
  CHECK(dead_values == rejected_bytes);

  // Progress.
  std::set<std::string> states;
  for (const auto& m : progress) {
    json value = json::parse(m.value, nullptr, /*allow_exceptions=*/false);
    INFO("progress " << printable(m.value));
    REQUIRE_FALSE(value.is_discarded());
    auto errors = progress_schema.validate(value);
    INFO(joined(errors));
    CHECK(errors.empty());
    if (!errors.empty()) continue;
    CHECK(m.key.value_or("") == value["appid"].get<std::string>());
    CHECK(value["source"]["topic"] == f.topics().jobs);
    states.insert(value["state"].get<std::string>());
  }
  CHECK(states == std::set<std::string>{"running", "deferred", "ending", "completed", "failed"});
}

TEST_CASE("a rejected job whose key is not UTF-8 still gets a UTF-8 JSON event",
          "[worker][integration][kafka]") {
  // docs/CONTRACTS.md: all values are UTF-8 JSON objects. A job producer's key is outside fanpull's
  // control; the rejected event must not copy bytes into JSON that make it invalid.
  JsonSchema event_schema = loadSchema("event.schema.json");
  WorkerFixture f({merchant("wxschemakey", 10)});
  f.startWorker();
  const std::string key = "wx\xff\xfe-not-utf8";
  f.enqueue(key, "not json at all");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (f.deadLetters().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  f.stopWorker();
  REQUIRE(f.deadLetters().size() == 1);
  CHECK(f.deadLetters()[0].value == "not json at all");
  auto events = testing::readTopic(f.bootstrapServers(), f.topics().events);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  const TopicMessage& m = events->front();
  INFO("event " << printable(m.value));
  bool utf8 = true;
  try {
    (void)json(m.value).dump();  // the strict handler throws on bytes that are not UTF-8
  } catch (const json::type_error&) {
    utf8 = false;
  }
  INFO("the job message's key was \"wx\\xff\\xfe-not-utf8\"");
  CHECK(utf8);
  json value = json::parse(m.value, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(value.is_discarded());
  auto errors = event_schema.validate(value);
  INFO(joined(errors));
  CHECK(errors.empty());
  CHECK(value["status"] == "rejected");
}
