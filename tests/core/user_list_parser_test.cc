#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/user_list_parser.h"

using namespace fanpull;

namespace {

// The OpenID of index i in these tests: 28 URL-safe characters.
std::string oid(int i) {
  std::string s = "oLVPpjqs9BhvzwPj5A-vTYA" + std::to_string(100000 + i);
  return s.substr(0, 28);
}

std::string pageBody(int64_t total, int from, int n, const std::string& next) {
  std::string ids;
  for (int i = 0; i < n; ++i) ids += (i ? ",\"" : "\"") + oid(from + i) + "\"";
  return "{\"total\":" + std::to_string(total) + ",\"count\":" + std::to_string(n) +
         ",\"data\":{\"openid\":[" + ids + "]},\"next_openid\":\"" + next + "\"}";
}

Error errorOf(const std::string& body) {
  Result<FollowerPage> r = parseUserListAnswer(body);
  REQUIRE_FALSE(r.ok());
  return r.error();
}

void requireMalformed(const std::string& body, const std::string& cause_part) {
  Error e = errorOf(body);
  INFO("body: " << body.substr(0, 200) << "\ncause: " << e.cause);
  CHECK(e.error_class == ErrorClass::kRetryable);
  CHECK_FALSE(e.errcode.has_value());
  CHECK(e.cause.rfind("malformed answer: ", 0) == 0);
  CHECK(e.cause.find(cause_part) != std::string::npos);
}

}  // namespace

TEST_CASE("a full page of 10,000 OpenIDs is parsed in order", "[core][unit]") {
  std::string body = pageBody(23000, 0, 10000, oid(9999));
  Result<FollowerPage> r = parseUserListAnswer(body);
  REQUIRE(r.ok());
  CHECK(r->total == 23000);
  CHECK(r->count == 10000);
  REQUIRE(r->size() == 10000);
  CHECK(r->openid(0) == oid(0));
  CHECK(r->openid(4321) == oid(4321));
  CHECK(r->openid(9999) == oid(9999));
  CHECK(r->next_openid == oid(9999));
  CHECK(r->has_data);
  CHECK(nextWalkStep(r.value(), "") == WalkStep::kContinue);
}

TEST_CASE("the documentation's example page is parsed", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"total":2,"count":2,"data":{"openid":["OPENID1","OPENID2"]},"next_openid":"NEXT_OPENID"})");
  REQUIRE(r.ok());
  CHECK(r->size() == 2);
  CHECK(r->openid(1) == "OPENID2");
  CHECK(r->next_openid == "NEXT_OPENID");
}

TEST_CASE("whitespace, key order and unknown keys do not matter", "[core][unit]") {
  auto r = parseUserListAnswer(
      " {\n \"next_openid\" : \"b\" ,\"rid\":{\"x\":[1,2.5e3,true,null,\"s\"]}, \"data\" : { \"extra\":1, "
      "\"openid\" : [ \"a\" , \"b\" ] } , \"count\" : 2 , \"total\" : 7 } \r\n");
  REQUIRE(r.ok());
  CHECK(r->total == 7);
  CHECK(r->size() == 2);
  CHECK(r->openid(0) == "a");
  CHECK(r->next_openid == "b");
}

TEST_CASE("count 0 without data ends the walk", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"total":23000,"count":0,"next_openid":""})");
  REQUIRE(r.ok());
  CHECK(r->empty());
  CHECK_FALSE(r->has_data);
  CHECK(nextWalkStep(r.value(), "oLast") == WalkStep::kEnd);
}

TEST_CASE("an account with no followers answers count 0 and the walk ends", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"total":0,"count":0,"next_openid":""})");
  REQUIRE(r.ok());
  CHECK(r->total == 0);
  CHECK(nextWalkStep(r.value(), "") == WalkStep::kEnd);
}

TEST_CASE("count 0 with an empty openid array also ends the walk", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"total":5,"count":0,"data":{"openid":[]},"next_openid":""})");
  REQUIRE(r.ok());
  CHECK(nextWalkStep(r.value(), "x") == WalkStep::kEnd);
}

TEST_CASE("an empty next_openid on a data page ends the walk", "[core][unit]") {
  auto r = parseUserListAnswer(pageBody(3, 0, 3, ""));
  REQUIRE(r.ok());
  CHECK(r->size() == 3);
  CHECK(nextWalkStep(r.value(), "") == WalkStep::kLastPage);
}

TEST_CASE("a last data page repeating its last OpenID continues to the count 0 answer",
          "[core][unit]") {
  auto r = parseUserListAnswer(pageBody(3, 0, 3, oid(2)));
  REQUIRE(r.ok());
  CHECK(nextWalkStep(r.value(), "") == WalkStep::kContinue);
}

TEST_CASE("a next_openid equal to the cursor sent is a stalled walk, not a loop", "[core][unit]") {
  auto r = parseUserListAnswer(pageBody(30000, 10000, 5, oid(7)));
  REQUIRE(r.ok());
  CHECK(nextWalkStep(r.value(), oid(7)) == WalkStep::kStalled);
}

TEST_CASE("an errcode body becomes a classified error with errcode and errmsg", "[core][unit]") {
  Error e = errorOf(R"({"errcode":40013,"errmsg":"invalid appid rid: 6543"})");
  CHECK(e.error_class == ErrorClass::kInvalidTenant);
  CHECK(e.errcode == 40013);
  CHECK(e.errmsg == "invalid appid rid: 6543");
  CHECK(errorOf(R"({"errcode":45009,"errmsg":"reach max api daily quota limit"})").error_class ==
        ErrorClass::kQuotaExhausted);
  CHECK(errorOf(R"({"errcode":-1,"errmsg":"system error"})").error_class ==
        ErrorClass::kRetryable);
  CHECK(errorOf(R"({"errmsg":"access_token expired","errcode":42001})").error_class ==
        ErrorClass::kTokenInvalid);
  Error unknown = errorOf(R"({"errcode":99999,"errmsg":"\u7cfb\u7edf\u7e41\u5fd9"})");
  CHECK(unknown.error_class == ErrorClass::kUnknown);
  CHECK(unknown.errcode == 99999);
  CHECK(unknown.errmsg == "\xE7\xB3\xBB\xE7\xBB\x9F\xE7\xB9\x81\xE5\xBF\x99");  // 系统繁忙
}

TEST_CASE("errcode 0 with a page is a success", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"errcode":0,"errmsg":"ok","total":1,"count":1,"data":{"openid":["o1"]},"next_openid":"o1"})");
  REQUIRE(r.ok());
  CHECK(r->openid(0) == "o1");
  requireMalformed(R"({"errcode":0,"errmsg":"ok"})", "without a follower list");
}

TEST_CASE("count that disagrees with the OpenIDs is malformed", "[core][unit]") {
  requireMalformed(R"({"total":3,"count":3,"data":{"openid":["a","b"]},"next_openid":"b"})",
                   "count 3 disagrees with 2 openids");
  requireMalformed(R"({"total":3,"count":1,"data":{"openid":["a","b"]},"next_openid":"b"})",
                   "count 1 disagrees with 2 openids");
}

TEST_CASE("count over 10000 is malformed", "[core][unit]") {
  requireMalformed(R"({"total":30000,"count":10001,"data":{"openid":[]},"next_openid":"x"})",
                   "count 10001 is over 10000");
  std::string body = pageBody(30000, 0, 10001, oid(10000));
  requireMalformed(body, "over 10000");
}

TEST_CASE("count over 0 without data or next_openid is malformed", "[core][unit]") {
  requireMalformed(R"({"total":3,"count":3,"next_openid":"x"})", "count 3 without data");
  requireMalformed(R"({"total":3,"count":2,"data":{"openid":["a","b"]}})", "no next_openid");
  requireMalformed(R"({"total":3,"count":2,"data":{},"next_openid":"b"})", "data without an openid array");
  requireMalformed(R"({"count":0,"next_openid":""})", "no total");
  requireMalformed(R"({"total":0,"next_openid":""})", "no count");
}

TEST_CASE("non-string OpenIDs are malformed", "[core][unit]") {
  requireMalformed(R"({"total":2,"count":2,"data":{"openid":["a",12]},"next_openid":"a"})",
                   "openid 1 is not a string");
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":[null]},"next_openid":""})",
                   "openid 0 is not a string");
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":[["a"]]},"next_openid":""})",
                   "openid 0 is not a string");
}

TEST_CASE("OpenIDs outside the URL-safe alphabet or of bad length are malformed", "[core][unit]") {
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":["a b"]},"next_openid":""})",
                   "openid 0 has a character outside");
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":[""]},"next_openid":""})",
                   "openid 0 has length 0");
  requireMalformed("{\"total\":1,\"count\":1,\"data\":{\"openid\":[\"" + std::string(65, 'a') +
                       "\"]},\"next_openid\":\"\"}",
                   "has length 65");
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":["a\u0026b"]},"next_openid":""})",
                   "openid 0 is malformed");
  requireMalformed(R"({"total":1,"count":1,"data":{"openid":["ab"]},"next_openid":"a&b"})",
                   "next_openid is not an OpenID");
}

TEST_CASE("an escaped but valid OpenID is decoded", "[core][unit]") {
  auto r = parseUserListAnswer(R"({"total":1,"count":1,"data":{"openid":["o\u002dA\/"]},"next_openid":""})");
  REQUIRE_FALSE(r.ok());  // '/' is outside the alphabet
  auto ok = parseUserListAnswer(R"({"total":1,"count":1,"data":{"openid":["o\u002dA_"]},"next_openid":""})");
  REQUIRE(ok.ok());
  CHECK(ok->openid(0) == "o-A_");
}

TEST_CASE("wrong types of total, count, data and next_openid are malformed", "[core][unit]") {
  requireMalformed(R"({"total":"3","count":0,"next_openid":""})", "total is not an integer");
  requireMalformed(R"({"total":3,"count":1.0,"next_openid":""})", "count is not an integer");
  requireMalformed(R"({"total":-3,"count":0,"next_openid":""})", "total is negative");
  requireMalformed(R"({"total":3,"count":0,"next_openid":5})", "expected a string");
  requireMalformed(R"({"total":3,"count":1,"data":["a"],"next_openid":"a"})", "expected '{'");
  requireMalformed(R"({"total":3,"count":1,"data":{"openid":"a"},"next_openid":"a"})", "expected '['");
  requireMalformed(R"({"errcode":"40001","errmsg":"x"})", "errcode is not an integer");
  requireMalformed(R"({"total":99999999999999999999,"count":0,"next_openid":""})", "out of range");
  requireMalformed(R"([1,2,3])", "not a JSON object");
  requireMalformed(R"({"total":1,"total":2,"count":0,"next_openid":""})", "duplicate key \"total\"");
}

TEST_CASE("truncated JSON is malformed at every cut", "[core][unit]") {
  std::string body = pageBody(23000, 0, 50, oid(49));
  for (size_t cut = 1; cut < body.size(); cut += 7) {
    INFO("cut at " << cut);
    requireMalformed(body.substr(0, cut), "");
  }
  requireMalformed(body.substr(0, body.size() / 2), "truncated JSON");
  requireMalformed(body + "}", "trailing characters");
}

TEST_CASE("an HTML page from a gateway is malformed, not a crash", "[core][unit]") {
  requireMalformed("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                   "not JSON (an HTML or XML page)");
  requireMalformed("", "empty body");
  requireMalformed("   \n", "empty body");
  requireMalformed("upstream connect error", "not a JSON object");
}

TEST_CASE("invalid UTF-8 anywhere in the body is malformed", "[core][unit]") {
  requireMalformed("{\"errcode\":-1,\"errmsg\":\"bad \xC3\x28 byte\"}", "invalid UTF-8");
  requireMalformed("{\"errcode\":-1,\"errmsg\":\"overlong \xC0\xAF\"}", "invalid UTF-8");
  requireMalformed("{\"errcode\":-1,\"errmsg\":\"surrogate \xED\xA0\x80\"}", "invalid UTF-8");
  requireMalformed("{\"errcode\":-1,\"errmsg\":\"lone \\ud800\"}", "surrogate");
  requireMalformed("{\"total\":1,\"count\":1,\"data\":{\"openid\":[\"o\xE7\xB3\xBB\"]},\"next_openid\":\"\"}",
                   "outside");
  requireMalformed("{\"errcode\":-1,\"errmsg\":\"ctl \x01\"}", "control character");
  // Valid multi-byte UTF-8 in errmsg is kept as it is.
  Error e = errorOf("{\"errcode\":-1,\"errmsg\":\"\xE7\xB3\xBB\xE7\xBB\x9F\xE7\xB9\x81\xE5\xBF\x99\"}");
  CHECK(e.errmsg == "\xE7\xB3\xBB\xE7\xBB\x9F\xE7\xB9\x81\xE5\xBF\x99");
}

TEST_CASE("deeply nested unknown values are refused without a stack overflow", "[core][unit]") {
  std::string deep = "{\"total\":1,\"count\":0,\"next_openid\":\"\",\"x\":" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  requireMalformed(deep, "nested too deeply");
}

namespace {

// Restores the OpenID scan the CPU chose when a test that set another one ends.
struct ScanGuard {
  detail::OpenIdScan was = detail::openIdScan();
  ~ScanGuard() { detail::setOpenIdScan(was); }
};

// The OpenIDs a parse took, or its error's cause.
std::string outcome(std::string body, bool in_place) {
  Result<FollowerPage> r = in_place ? parseUserListAnswer(std::move(body)) : parseUserListAnswer(std::string_view(body));
  if (!r.ok()) return "error: " + r.error().cause;
  std::string ids;
  for (size_t i = 0; i < r->size(); ++i) ids.append(r->openid(i)).push_back(' ');
  return ids;
}

std::string compactPage(const std::vector<std::string>& ids, const std::string& separator = ",") {
  std::string list;
  for (size_t i = 0; i < ids.size(); ++i) list += (i ? separator + "\"" : "\"") + ids[i] + "\"";
  return "{\"total\":" + std::to_string(ids.size()) + ",\"count\":" + std::to_string(ids.size()) +
         ",\"data\":{\"openid\":[" + list + "]},\"next_openid\":\"\"}";
}

}  // namespace

TEST_CASE("every OpenID scan (AVX2, SSE2, byte by byte) gives the same OpenIDs and the same errors",
          "[core][unit]") {
  ScanGuard guard;
  std::vector<std::string> bodies;
  // Lengths around the vector code's limits (31 bytes in one 32-byte load) and the format's (64).
  for (size_t len : {1, 2, 15, 16, 27, 28, 29, 30, 31, 32, 33, 63, 64, 65}) {
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(std::string(len - 1, 'a' + i % 26) + std::to_string(i % 10));
    bodies.push_back(compactPage(ids));
    bodies.push_back(compactPage(ids, " , "));  // whitespace between them
  }
  // Every byte value at the start, middle and end of the 20th OpenID of 28 of a compact page.
  for (int byte = 0; byte < 256; ++byte) {
    for (size_t at : {0, 13, 27}) {
      std::vector<std::string> ids;
      for (int i = 0; i < 40; ++i) ids.push_back(oid(i));
      ids[20][at] = static_cast<char>(byte);
      bodies.push_back(compactPage(ids));
    }
  }
  // OpenIDs of one length with one of another length among them, at each place.
  for (int odd = 0; odd < 40; ++odd) {
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(i == odd ? oid(i).substr(0, 27) : oid(i));
    bodies.push_back(compactPage(ids));
  }
  // Each separator byte after the 10th OpenID replaced by every other byte value ("a";"b",
  // "a",,"b", "a","b" with the quote gone, ...).
  for (int byte = 0; byte < 256; ++byte) {
    for (size_t at : {0, 1}) {
      std::vector<std::string> ids;
      for (int i = 0; i < 40; ++i) ids.push_back(oid(i));
      std::string body = compactPage(ids);
      // After the tenth's closing quote: the list starts with the first's opening quote, and
      // each OpenID takes its 28 bytes, two quotes and a comma.
      const size_t after_tenth = body.find("[\"") + 1 + 9 * 31 + 30;
      body[after_tenth + at] = static_cast<char>(byte);
      bodies.push_back(body);
    }
  }
  // A run that ends: at the end of the array, at an escaped OpenID, at a non-string, cut short.
  bodies.push_back(pageBody(23000, 0, 10000, oid(9999)));
  bodies.push_back(compactPage({oid(0), oid(1), "o\\u002dA_", oid(2)}));
  bodies.push_back(R"({"total":3,"count":3,"data":{"openid":["abc","def",7]},"next_openid":""})");
  bodies.push_back(pageBody(23000, 0, 40, "").substr(0, 600));
  {
    std::vector<std::string> ids;
    for (int i = 0; i < 10001; ++i) ids.push_back(oid(i));
    bodies.push_back(compactPage(ids));  // more than 10,000
  }

  using detail::OpenIdScan;
  const std::vector<OpenIdScan> scans = {OpenIdScan::kScalar, OpenIdScan::kSse2, OpenIdScan::kAvx2};
  REQUIRE(detail::setOpenIdScan(OpenIdScan::kScalar));
  std::vector<std::string> expected;
  size_t accepted = 0;
  for (const auto& body : bodies) {
    expected.push_back(outcome(body, false));
    if (expected.back().rfind("error: ", 0) != 0) ++accepted;
    CHECK(outcome(body, true) == expected.back());
  }
  // The byte-by-byte reading is the reference: it accepts exactly the URL-safe bytes.
  // Lengths of 65 refused; 64 URL-safe bytes; every page with one shorter OpenID; of the
  // separators only the byte that was there (whitespace instead drops the comma or the quote).
  CHECK(accepted == 14 * 2 - 2 + 64 * 3 + 40 + 1 + 1 + 1 + 1);
  for (OpenIdScan scan : scans) {
    if (!detail::setOpenIdScan(scan)) {
      WARN("this CPU lacks the scan numbered " << static_cast<int>(scan));
      continue;
    }
    for (size_t i = 0; i < bodies.size(); ++i) {
      INFO("scan " << static_cast<int>(scan) << ", body " << i << ": " << bodies[i].substr(0, 160));
      CHECK(outcome(bodies[i], false) == expected[i]);
      CHECK(outcome(bodies[i], true) == expected[i]);
    }
  }
}
