#include "sandbox/openids.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using fanpull::sandbox::appendSandboxOpenId;
using fanpull::sandbox::appendSandboxOpenIdList;
using fanpull::sandbox::kMaxOpenIdIndex;
using fanpull::sandbox::sandboxOpenId;
using fanpull::sandbox::sandboxOpenIdIndex;

namespace {

bool urlSafe(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

TEST_CASE("a sandbox openid is 28 url-safe characters starting with o", "[sandbox][unit]") {
  for (const char* appid : {"wxdemo000000000001", "wx1", ""}) {
    for (int64_t index : {int64_t{0}, int64_t{1}, int64_t{9999}, int64_t{10000}, int64_t{123456789},
                          kMaxOpenIdIndex - 1}) {
      const std::string id = sandboxOpenId(appid, index);
      INFO(appid << " #" << index << " = " << id);
      REQUIRE(id.size() == 28);
      CHECK(id[0] == 'o');
      for (char c : id) CHECK(urlSafe(c));
    }
  }
}

TEST_CASE("sandbox openids of one appid are distinct for the first 300,000 indexes",
          "[sandbox][unit]") {
  std::set<std::string> seen;
  for (int64_t i = 0; i < 300000; ++i) seen.insert(sandboxOpenId("wxdemo000000000008", i));
  CHECK(seen.size() == 300000);
}

TEST_CASE("a sandbox openid depends only on appid and index", "[sandbox][unit]") {
  CHECK(sandboxOpenId("wxa", 42) == sandboxOpenId("wxa", 42));
  CHECK(sandboxOpenId("wxa", 42) != sandboxOpenId("wxb", 42));
  CHECK(sandboxOpenId("wxa", 42) != sandboxOpenId("wxa", 43));
  std::string appended = "x";
  appendSandboxOpenId(appended, "wxa", 42);
  CHECK(appended == "x" + sandboxOpenId("wxa", 42));
}

TEST_CASE("sandbox openids keep their values: stored expectations and earlier topics stay valid",
          "[sandbox][unit]") {
  CHECK(sandboxOpenId("wxdemo000000000001", 0) == "oQeyreFoyuy5RR5SSBWKVXou-ZfQ");
  CHECK(sandboxOpenId("wxdemo000000000001", 9999) == "oTjaVlFoyuwlenc4d6RRYTEtlLVI");
  CHECK(sandboxOpenId("wxdemo000000000001", 123456789) == "os0nFaFo14ONEfEfguKhi42a4xiL");
}

TEST_CASE("a sandbox openid list is the quoted ids of its range, comma-separated",
          "[sandbox][unit]") {
  std::string expected = "[";
  for (int64_t i = 5; i < 9; ++i) {
    if (i != 5) expected += ',';
    expected += '"' + sandboxOpenId("wxa", i) + '"';
  }
  std::string list = "[";
  appendSandboxOpenIdList(list, "wxa", 5, 9);
  CHECK(list == expected);
  std::string empty = "[";
  appendSandboxOpenIdList(empty, "wxa", 9, 9);
  CHECK(empty == "[");
}

TEST_CASE("the index of a sandbox openid round-trips", "[sandbox][unit]") {
  for (int64_t index : {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{64}, int64_t{9999},
                        int64_t{1000000}, kMaxOpenIdIndex - 1}) {
    const auto back =
        sandboxOpenIdIndex("wxdemo000000000006", sandboxOpenId("wxdemo000000000006", index));
    REQUIRE(back.has_value());
    CHECK(*back == index);
  }
}

TEST_CASE("an openid of another appid is not an openid of this appid", "[sandbox][unit]") {
  int accepted = 0;
  for (int64_t i = 0; i < 10000; ++i) {
    if (sandboxOpenIdIndex("wxa", sandboxOpenId("wxb", i))) ++accepted;
  }
  CHECK(accepted == 0);
}

TEST_CASE("a tweaked, shortened or foreign-looking openid is rejected", "[sandbox][unit]") {
  const std::string id = sandboxOpenId("wxa", 777);
  for (std::size_t pos = 0; pos < id.size(); ++pos) {
    std::string tweaked = id;
    tweaked[pos] = tweaked[pos] == 'A' ? 'B' : 'A';
    INFO("position " << pos);
    CHECK_FALSE(sandboxOpenIdIndex("wxa", tweaked).has_value());
  }
  CHECK_FALSE(sandboxOpenIdIndex("wxa", id.substr(0, 27)).has_value());
  CHECK_FALSE(sandboxOpenIdIndex("wxa", id + "A").has_value());
  CHECK_FALSE(sandboxOpenIdIndex("wxa", "").has_value());
  CHECK_FALSE(sandboxOpenIdIndex("wxa", "oLVPpjqs9BhvzwPj5A-vTYAX3GLc").has_value());
  std::string withSpace = id;
  withSpace[10] = ' ';
  CHECK_FALSE(sandboxOpenIdIndex("wxa", withSpace).has_value());
}
