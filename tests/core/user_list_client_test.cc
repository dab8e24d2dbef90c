#include <catch2/catch.hpp>

#include "core/error_class.h"
#include "core/user_list_client.h"
#include "support/scripted_transport.h"

using namespace fanpull;

TEST_CASE("getFans sends one GET with the token and the encoded cursor", "[core][unit]") {
  testing::ScriptedTransport transport;
  transport.answer(200, R"({"total":1,"count":1,"data":{"openid":["oA"]},"next_openid":"oA"})");
  UserListClient client(transport);
  auto page = client.getFans("TOK", "o&x");
  REQUIRE(page.ok());
  CHECK(page->openid(0) == "oA");
  auto reqs = transport.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "GET");
  CHECK(reqs[0].target == "/cgi-bin/user/get?access_token=TOK&next_openid=o%26x");
}

TEST_CASE("an HTTP 502 with an HTML body is a retryable error with the status", "[core][unit]") {
  testing::ScriptedTransport transport;
  transport.answer(502, "<html><body>502 Bad Gateway</body></html>", "text/html");
  UserListClient client(transport);
  auto page = client.getFans("TOK", "");
  REQUIRE_FALSE(page.ok());
  CHECK(page.error().error_class == ErrorClass::kRetryable);
  CHECK(page.error().http_status == 502);
  CHECK(page.error().cause == "HTTP 502 (text/html)");
}

TEST_CASE("a transport failure passes through with its class", "[core][unit]") {
  testing::ScriptedTransport transport;
  transport.fail(transportError(TransportFailure::kTimeout, "read timed out"));
  UserListClient client(transport);
  auto page = client.getFans("TOK", "");
  REQUIRE_FALSE(page.ok());
  CHECK(page.error().error_class == ErrorClass::kRetryable);
  CHECK(page.error().cause == "timeout: read timed out");
}

TEST_CASE("the access token never appears in an error", "[core][unit]") {
  const std::string token = "SECRET-TOKEN-0123456789";
  testing::ScriptedTransport transport;
  transport.answer(200, R"({"errcode":40001,"errmsg":"invalid credential, access_token is SECRET-TOKEN-0123456789"})");
  transport.fail(transportError(TransportFailure::kProtocol, "bad request line GET /x?access_token=SECRET-TOKEN-0123456789"));
  UserListClient client(transport);
  auto first = client.getFans(token, "");
  REQUIRE_FALSE(first.ok());
  CHECK(first.error().error_class == ErrorClass::kTokenInvalid);
  CHECK(first.error().errcode == 40001);
  CHECK(first.error().describe().find(token) == std::string::npos);
  CHECK(first.error().errmsg.find("[redacted]") != std::string::npos);
  auto second = client.getFans(token, "");
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().describe().find(token) == std::string::npos);
}

TEST_CASE("redaction replaces whole tokens only", "[core][unit]") {
  std::string text = "GET /x?access_token=abc&t=abc; connect abcd abc";
  redactInPlace(text, "abc");
  CHECK(text == "GET /x?access_token=[redacted]&t=[redacted]; connect abcd [redacted]");
  std::string short_secret = "connect failed";
  redactInPlace(short_secret, "t");
  CHECK(short_secret == "connect failed");
}
