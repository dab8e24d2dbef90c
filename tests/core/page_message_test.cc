#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/page_message.h"
#include "core/user_list_parser.h"

using namespace fanpull;
using nlohmann::json;

namespace {

FollowerPage makePage(int n, int64_t total, std::string next) {
  FollowerPage p;
  for (int i = 0; i < n; ++i) {
    std::string id = "oLVPpjqs9BhvzwPj5A-vT" + std::to_string(1000000 + i);
    p.add(id);
  }
  p.count = n;
  p.total = total;
  p.next_openid = std::move(next);
  p.has_data = n > 0;
  return p;
}

}  // namespace

TEST_CASE("a page message has every field of docs/CONTRACTS.md", "[core][unit]") {
  FollowerPage page = makePage(3, 23000, "oLVPpjqs9BhvzwPj5A-vT1000002");
  std::string msg = encodePageMessage({"j-2026-11-27-0001", "wx1234567890abcdef", 2, false}, page);
  json j = json::parse(msg);
  CHECK(j["job_id"] == "j-2026-11-27-0001");
  CHECK(j["appid"] == "wx1234567890abcdef");
  CHECK(j["seq"] == 2);
  CHECK(j["total"] == 23000);
  CHECK(j["count"] == 3);
  CHECK(j["openids"] == json::array({"oLVPpjqs9BhvzwPj5A-vT1000000", "oLVPpjqs9BhvzwPj5A-vT1000001",
                                     "oLVPpjqs9BhvzwPj5A-vT1000002"}));
  CHECK(j["next_openid"] == "oLVPpjqs9BhvzwPj5A-vT1000002");
  CHECK(j["last"] == false);
  CHECK_FALSE(j.contains("part"));
}

TEST_CASE("the final page of a job with no followers has count 0 and last true", "[core][unit]") {
  FollowerPage page = makePage(0, 0, "");
  json j = json::parse(encodePageMessage({"j1", "wxA", 0, true}, page));
  CHECK(j["count"] == 0);
  CHECK(j["openids"].empty());
  CHECK(j["last"] == true);
}

TEST_CASE("the same page encodes to the same bytes", "[core][unit]") {
  FollowerPage page = makePage(100, 100, "");
  CHECK(encodePageMessage({"j", "wx", 0, true}, page) ==
        encodePageMessage({"j", "wx", 0, true}, page));
}

TEST_CASE("strings in a page message are escaped as JSON", "[core][unit]") {
  std::string out;
  appendJsonString(out, "a\"b\\c\n\x01");
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\"");
  CHECK(json::parse(out) == "a\"b\\c\n\x01");
}

TEST_CASE("a page over message.max.bytes is split into ordered parts that each fit",
          "[core][unit]") {
  FollowerPage page = makePage(10000, 23000, "oLVPpjqs9BhvzwPj5A-vT1009999");
  auto parts = encodePageMessages({"j1", "wxA", 4, false}, page, 100000);
  REQUIRE(parts.ok());
  REQUIRE(parts->size() == 4);
  std::vector<std::string> joined;
  for (size_t i = 0; i < parts->size(); ++i) {
    const std::string& m = (*parts)[i];
    CHECK(m.size() <= 100000);
    json j = json::parse(m);
    CHECK(j["part"] == i);
    CHECK(j["parts"] == 4);
    CHECK(j["seq"] == 4);
    CHECK(j["count"] == j["openids"].size());
    for (const auto& id : j["openids"]) joined.push_back(id.get<std::string>());
  }
  REQUIRE(joined.size() == 10000);
  for (size_t i = 0; i < joined.size(); ++i) REQUIRE(joined[i] == page.openid(i));
}

TEST_CASE("a page that fits stays one message without part fields", "[core][unit]") {
  FollowerPage page = makePage(10000, 10000, "");
  auto parts = encodePageMessages({"j1", "wxA", 0, true}, page, 1000000);
  REQUIRE(parts.ok());
  REQUIRE(parts->size() == 1);
  CHECK((*parts)[0] == encodePageMessage({"j1", "wxA", 0, true}, page));
}

TEST_CASE("a message limit too small for one OpenID is an error", "[core][unit]") {
  FollowerPage page = makePage(10, 10, "");
  auto parts = encodePageMessages({"j1", "wxA", 0, true}, page, 150);
  REQUIRE_FALSE(parts.ok());
  CHECK(parts.error().error_class == ErrorClass::kBadJob);
}

TEST_CASE("parsing an answer and encoding its page keeps every OpenID", "[core][unit]") {
  FollowerPage page = makePage(500, 777, "oLVPpjqs9BhvzwPj5A-vT1000499");
  std::string msg = encodePageMessage({"j", "wx", 0, false}, page);
  json j = json::parse(msg);
  std::string answer = json{{"total", 777}, {"count", 500}, {"data", {{"openid", j["openids"]}}},
                            {"next_openid", j["next_openid"]}}.dump();
  auto reparsed = parseUserListAnswer(answer);
  REQUIRE(reparsed.ok());
  CHECK(encodePageMessage({"j", "wx", 0, false}, reparsed.value()) == msg);
}

TEST_CASE("a page that keeps its answer's body gives the same OpenIDs and messages as a copy",
          "[core][unit]") {
  auto ids = [](int from, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back("oLVPpjqs9BhvzwPj5A-vT" + std::to_string(1000000 + from + i));
    return out;
  };
  auto answer = [](const std::vector<std::string>& quoted, const std::string& separator) {
    std::string a = "{\"total\":900,\"count\":" + std::to_string(quoted.size()) +
                    ",\"data\":{\"openid\":[";
    for (size_t i = 0; i < quoted.size(); ++i) a += (i ? separator : "") + quoted[i];
    return a + "]},\"next_openid\":\"oLVPpjqs9BhvzwPj5A-vT1000299\"}";
  };
  std::vector<std::string> plain = ids(0, 300);
  std::vector<std::string> quoted;
  for (const auto& id : plain) quoted.push_back("\"" + id + "\"");

  // As WeChat writes it; with whitespace between OpenIDs from the 100th; with the 200th escaped.
  std::vector<std::string> escaped = quoted;
  escaped[200] = "\"\\u006f" + plain[200].substr(1) + "\"";
  const std::string compact = answer(quoted, ",");
  const std::string with_escape = answer(escaped, ",");
  std::string spaced = answer(std::vector<std::string>(quoted.begin(), quoted.begin() + 100), ",");
  {
    std::string tail;
    for (int i = 100; i < 300; ++i) tail += ", " + quoted[i];
    spaced.insert(spaced.find("]}"), tail);
    spaced.replace(spaced.find("\"count\":100"), 11, "\"count\":300");
  }

  for (const std::string& body : {compact, spaced, with_escape}) {
    INFO(body.substr(0, 120));
    auto copied = parseUserListAnswer(std::string_view(body));
    auto kept = parseUserListAnswer(std::string(body));
    REQUIRE(copied.ok());
    REQUIRE(kept.ok());
    REQUIRE(kept->size() == 300);
    for (size_t i = 0; i < 300; ++i) REQUIRE(kept->openid(i) == plain[i]);
    CHECK(kept->openidBytes() == copied->openidBytes());
    const PageIdentity id{"j", "wx", 2, false};
    CHECK(encodePageMessage(id, kept.value()) == encodePageMessage(id, copied.value()));
    // Parts are ranges of the same array.
    auto parts = encodePageMessages(id, kept.value(), 4000);
    REQUIRE(parts.ok());
    REQUIRE(parts->size() > 1);
    std::vector<std::string> rejoined;
    for (const std::string& part : parts.value()) {
      json message = json::parse(part);
      for (const auto& o : message["openids"]) rejoined.push_back(o.get<std::string>());
    }
    CHECK(rejoined == plain);

    // Taking the page: written in its own buffer, the same bytes; split pages are left alone.
    for (const auto* page : {&kept.value(), &copied.value()}) {
      const std::string whole = encodePageMessage(id, *page);
      FollowerPage taken = *page;
      auto in_place = encodePageMessages(id, std::move(taken), whole.size());
      REQUIRE(in_place.ok());
      REQUIRE(in_place->size() == 1);
      CHECK(in_place->front() == whole);
      CHECK(taken.empty());
      CHECK(taken.total == 900);
      CHECK(taken.next_openid == "oLVPpjqs9BhvzwPj5A-vT1000299");
      FollowerPage too_big = *page;
      auto split = encodePageMessages(id, std::move(too_big), 4000);
      REQUIRE(split.ok());
      CHECK(split.value() == parts.value());
      CHECK(too_big.size() == 300);
    }
  }
}
