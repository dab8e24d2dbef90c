// The job gate: what a job producer may send to the jobs topic, and how every other input is
// rejected (class bad_job, a cause naming the field and the reason, never the whole input).
#include "worker/job.h"

#include <catch2/catch.hpp>

using fanpull::ErrorClass;
using fanpull::Job;
using fanpull::parseJob;

namespace {

// The cause of parsing `bytes`, which must be rejected as bad_job.
std::string rejection(std::string_view bytes) {
  auto r = parseJob(bytes);
  INFO(std::string(bytes.substr(0, 200)));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().error_class == ErrorClass::kBadJob);
  CHECK(r.error().cause.size() < 300);  // a short cause, never the input echoed back
  return r.error().cause;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a job of the contract parses into its fields", "[worker][unit]") {
  auto r = parseJob(
      R"({"job_id": "j-2026-11-27-0001", "appid": "wx1234567890abcdef", "next_openid": ""})");
  REQUIRE(r.ok());
  CHECK(r->job_id == "j-2026-11-27-0001");
  CHECK(r->appid == "wx1234567890abcdef");
  CHECK(r->next_openid.empty());
}

TEST_CASE("next_openid is optional, may be null, and carries a cursor", "[worker][unit]") {
  auto absent = parseJob(R"({"job_id":"a","appid":"wx1"})");
  REQUIRE(absent.ok());
  CHECK(absent->next_openid.empty());
  auto null_cursor = parseJob(R"({"job_id":"a","appid":"wx1","next_openid":null})");
  REQUIRE(null_cursor.ok());
  CHECK(null_cursor->next_openid.empty());
  auto cursor = parseJob(R"({"job_id":"a","appid":"wx1","next_openid":"oABC-def_123"})");
  REQUIRE(cursor.ok());
  CHECK(cursor->next_openid == "oABC-def_123");
}

TEST_CASE("unknown keys, nested or not, are ignored for forward compatibility", "[worker][unit]") {
  auto r = parseJob(
      R"({"priority": 5, "job_id":"j.1:2_3-4", "meta": {"job_id": 7, "x": [1, {"appid": null}]},)"
      R"( "appid":"wx_a-1", "tags": ["a", "b"], "ok": true})");
  REQUIRE(r.ok());
  CHECK(r->job_id == "j.1:2_3-4");
  CHECK(r->appid == "wx_a-1");
}

TEST_CASE("field lengths at the limits are accepted, one more is rejected", "[worker][unit]") {
  auto job = [](const std::string& id, const std::string& appid, const std::string& cursor) {
    return R"({"job_id":")" + id + R"(","appid":")" + appid + R"(","next_openid":")" + cursor +
           R"("})";
  };
  CHECK(parseJob(job(std::string(128, 'j'), std::string(64, 'a'), std::string(64, 'o'))).ok());
  CHECK(contains(rejection(job(std::string(129, 'j'), "wx1", "")), "job_id: 129 bytes"));
  CHECK(contains(rejection(job("j", std::string(65, 'a'), "")), "appid: 65 bytes"));
  CHECK(contains(rejection(job("j", "wx1", std::string(65, 'o'))), "next_openid: 65 bytes"));
}

TEST_CASE("a missing, empty or mistyped field is rejected naming the field", "[worker][unit]") {
  CHECK(rejection(R"({"appid":"wx1"})") == "job_id: missing");
  CHECK(rejection(R"({"job_id":"j"})") == "appid: missing");
  CHECK(rejection(R"({"job_id":"","appid":"wx1"})") == "job_id: empty");
  CHECK(rejection(R"({"job_id":"j","appid":""})") == "appid: empty");
  CHECK(rejection(R"({"job_id":42,"appid":"wx1"})") == "job_id: must be a string, got a number");
  CHECK(rejection(R"({"job_id":null,"appid":"wx1"})") == "job_id: must be a string, got null");
  CHECK(rejection(R"({"job_id":"j","appid":["wx1"]})") == "appid: must be a string, got an array");
  CHECK(rejection(R"({"job_id":"j","appid":{"id":"wx1"}})") ==
        "appid: must be a string, got an object");
  CHECK(rejection(R"({"job_id":"j","appid":"wx1","next_openid":0})") ==
        "next_openid: must be a string, got a number");
  CHECK(rejection(R"({"job_id":"j","appid":"wx1","next_openid":false})") ==
        "next_openid: must be a string, got a boolean");
  CHECK(rejection(R"({"job_id":"j","job_id":"k","appid":"wx1"})") ==
        "job_id: appears more than once");
}

TEST_CASE("characters outside a field's set are rejected with a sanitized excerpt",
          "[worker][unit]") {
  for (const char* bad : {"job id", "job/1", "job#1", "job&x", "j\\u00e9", "j\\n", "j%20"}) {
    std::string cause = rejection(std::string(R"({"job_id":")") + bad + R"(","appid":"wx1"})");
    INFO(cause);
    CHECK(contains(cause, "job_id: character"));
    CHECK(contains(cause, "is not allowed"));
  }
  CHECK(contains(rejection(R"({"job_id":"j","appid":"wx.1"})"), "appid: character \".\""));
  CHECK(contains(rejection(R"({"job_id":"j","appid":"wx:1"})"), "appid: character \":\""));
  std::string control = rejection(R"({"job_id":"j\u0001x","appid":"wx1"})");
  CHECK(contains(control, "\\x01"));
}

TEST_CASE("a cursor that could change the request is rejected", "[worker][unit]") {
  for (const char* cursor : {"o&access_token=x", "o#frag", "o%26", "o abc", "o\\r\\nHost: evil",
                             "o\\r", "o\\n", "o?x", "o=", "o+"}) {
    std::string cause =
        rejection(std::string(R"({"job_id":"j","appid":"wx1","next_openid":")") + cursor + R"("})");
    INFO(cause);
    CHECK(contains(cause, "next_openid: character"));
    CHECK_FALSE(contains(cause, "\r"));
    CHECK_FALSE(contains(cause, "\n"));
  }
}

TEST_CASE("input that is not a JSON object is rejected", "[worker][unit]") {
  CHECK(contains(rejection(""), "not JSON"));
  CHECK(contains(rejection("job_id=j&appid=wx1"), "not JSON"));
  CHECK(contains(rejection(R"({"job_id":"j","appid":"wx1")"), "not JSON"));
  CHECK(contains(rejection(R"({"job_id":"j","appid":"wx1"} trailing)"), "not JSON"));
  CHECK(contains(rejection(R"({"job_id":"j",})"), "not JSON"));
  CHECK(rejection(R"(["j","wx1"])") == "not a JSON object but an array");
  CHECK(rejection(R"("j")") == "not a JSON object but a string");
  CHECK(rejection("42") == "not a JSON object but a number");
  CHECK(rejection("null") == "not a JSON object but null");
}

TEST_CASE("invalid UTF-8 is rejected with its offset", "[worker][unit]") {
  CHECK(
      contains(rejection("{\"job_id\":\"j\xff\",\"appid\":\"wx1\"}"), "invalid UTF-8 at byte 12"));
  CHECK(contains(rejection("{\"job_id\":\"\xc0\xaf\",\"appid\":\"wx1\"}"),
                 "invalid UTF-8"));  // overlong
  CHECK(contains(rejection("{\"job_id\":\"\xed\xa0\x80\",\"appid\":\"wx1\"}"),
                 "invalid UTF-8"));  // surrogate
  CHECK(
      contains(rejection("{\"job_id\":\"j\",\"appid\":\"wx1\"}\xe4\xb8"), "invalid UTF-8"));  // cut
  // Valid UTF-8 outside the character set is a field error, not an encoding error.
  CHECK(contains(rejection("{\"job_id\":\"\xe4\xb8\xad\",\"appid\":\"wx1\"}"),
                 "job_id: character \"\\xe4\" at offset 0"));
}

TEST_CASE("hostile sizes and nesting are rejected without crashing", "[worker][unit]") {
  // 100,000 nested brackets: over the size limit.
  CHECK(contains(rejection(std::string(100000, '[')), "job of 100000 bytes, at most 65536"));
  // Deep nesting under the size limit: refused at level 33.
  CHECK(rejection(std::string(30000, '[') + std::string(30000, ']')) ==
        "not a JSON object but an array");
  std::string deep = R"({"job_id":"j","appid":"wx1","x":)" + std::string(40000, '[');
  CHECK(rejection(deep) == "nested deeper than 32 levels");
  std::string deep_objects = "{";
  for (int i = 0; i < 5000; ++i) deep_objects += R"("a":{)";
  CHECK(rejection(deep_objects) == "nested deeper than 32 levels");
  // 32 levels are fine.
  std::string nested32 =
      R"({"job_id":"j","appid":"wx1","x":)" + std::string(31, '[') + std::string(31, ']') + "}";
  CHECK(parseJob(nested32).ok());
  std::string nested33 =
      R"({"job_id":"j","appid":"wx1","x":)" + std::string(32, '[') + std::string(32, ']') + "}";
  CHECK(rejection(nested33) == "nested deeper than 32 levels");
  // A 1 MiB string.
  std::string huge = R"({"job_id":")" + std::string(1 << 20, 'j') + R"(","appid":"wx1"})";
  std::string cause = rejection(huge);
  CHECK(contains(cause, "at most 65536"));
  // A big string under the size limit is rejected by length, with only a prefix echoed.
  std::string big = R"({"job_id":")" + std::string(60000, 'j') + R"(","appid":"wx1"})";
  CHECK(rejection(big) == "job_id: 60000 bytes, at most 128 allowed");
  std::string bad_big =
      R"({"job_id":"j","appid":"wx1","next_openid":")" + std::string(60, 'o') + "&" + R"("})";
  CHECK(contains(rejection(bad_big), "\"oooooooooooooooooooooooo\"..."));
}

TEST_CASE("encodeJob writes the contract's object and parseJob reads it back", "[worker][unit]") {
  Job job{"j-2026-11-27-0001", "wx1234567890abcdef", ""};
  CHECK(fanpull::encodeJob(job) ==
        R"({"job_id":"j-2026-11-27-0001","appid":"wx1234567890abcdef","next_openid":""})");
  Job resumed{"j:1.2", "wx_a-b", "oAbC_123-xyz"};
  auto back = parseJob(fanpull::encodeJob(resumed));
  REQUIRE(back.ok());
  CHECK(*back == resumed);
}

TEST_CASE("validateJob applies parseJob's rules to a job built in code", "[worker][unit]") {
  CHECK(fanpull::validateJob({"j", "wx1", ""}).ok());
  auto bad = fanpull::validateJob({"j", "wx1", "o&x"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().error_class == ErrorClass::kBadJob);
  CHECK(contains(bad.error().cause, "next_openid"));
}
