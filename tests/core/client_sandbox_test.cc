// The getFans client against the sandbox over real sockets (HTTP and HTTPS).
#include <catch2/catch.hpp>

#include <string>

#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "sandbox/openids.h"
#include "sandbox/sandbox_server.h"
#include "support/accounts.h"

using namespace fanpull;

namespace {

using fanpull::testing::merchant;

struct Harness {
  explicit Harness(std::vector<sandbox::Account> accounts, HttpTransportOptions options = {},
                   std::string cert = "", std::string key = "") {
    sandbox::SandboxOptions so;
    so.accounts = std::move(accounts);
    so.tls_cert_file = std::move(cert);
    so.tls_key_file = std::move(key);
    server = std::make_unique<sandbox::SandboxServer>(std::move(so));
    server->start();
    options.base_url = server->baseUrl();
    auto t = PocoHttpTransport::create(options);
    REQUIRE(t.ok());
    transport = std::move(t).value();
    client = std::make_unique<UserListClient>(*transport);
  }
  std::unique_ptr<sandbox::SandboxServer> server;
  std::unique_ptr<PocoHttpTransport> transport;
  std::unique_ptr<UserListClient> client;
};

struct Walk {
  std::vector<std::string> openids;
  int calls = 0;
  int data_pages = 0;
};

// Walks a merchant's whole list the way the worker does, failing the test on any error.
Walk walkAll(UserListClient& client, const std::string& token) {
  Walk w;
  std::string cursor;
  while (true) {
    ++w.calls;
    REQUIRE(w.calls < 1000);
    auto page = client.getFans(token, cursor);
    if (!page.ok()) FAIL(page.error().describe());
    for (size_t i = 0; i < page->size(); ++i) w.openids.emplace_back(page->openid(i));
    if (!page->empty()) ++w.data_pages;
    WalkStep step = nextWalkStep(page.value(), cursor);
    REQUIRE(step != WalkStep::kStalled);
    if (step != WalkStep::kContinue) break;
    cursor = page->next_openid;
  }
  return w;
}

Error errorOf(Result<FollowerPage> r) {
  REQUIRE_FALSE(r.ok());
  return r.error();
}

}  // namespace

TEST_CASE("walks of every edge size return exactly the sandbox's followers in both last-page variants",
          "[core][integration]") {
  std::vector<sandbox::Account> accounts;
  const int64_t sizes[] = {0, 1, 9999, 10000, 10001, 23000};
  for (auto variant : {sandbox::LastPageVariant::kRepeat, sandbox::LastPageVariant::kEmpty}) {
    for (int64_t n : sizes) {
      auto a = merchant("wx" + std::string(variant == sandbox::LastPageVariant::kRepeat ? "r" : "e") +
                           std::to_string(n),
                       n);
      a.last_page_variant = variant;
      accounts.push_back(a);
    }
  }
  Harness h(accounts);
  for (const auto& a : accounts) {
    INFO(a.appid);
    Walk w = walkAll(*h.client, a.access_tokens[0]);
    REQUIRE(static_cast<int64_t>(w.openids.size()) == a.followers);
    for (int64_t i = 0; i < a.followers; ++i) {
      REQUIRE(w.openids[static_cast<size_t>(i)] == sandbox::sandboxOpenId(a.appid, i));
    }
    int64_t data_pages = (a.followers + 9999) / 10000;
    CHECK(w.data_pages == data_pages);
    bool repeat = a.last_page_variant == sandbox::LastPageVariant::kRepeat;
    int64_t expected_calls = a.followers == 0 ? 1 : (repeat ? data_pages + 1 : data_pages);
    CHECK(w.calls == expected_calls);
    CHECK(h.server->calls(a.appid, sandbox::kEndpointUserGet) == expected_calls);
  }
}

TEST_CASE("one keep-alive connection carries a whole walk", "[core][integration]") {
  Harness h({merchant("wxkeep", 45000)});
  Walk w = walkAll(*h.client, "token-wxkeep");
  CHECK(w.calls == 6);
  CHECK(h.transport->connectionsOpened() == 1);
}

TEST_CASE("WeChat's token, appid, cursor, permission and quota errors arrive classified",
          "[core][integration]") {
  auto invalid_appid = merchant("wxinvalid", 10);
  invalid_appid.errcode = 40013;
  auto no_permission = merchant("wxnoperm", 10);
  no_permission.func_info = {1, 3};
  auto quota = merchant("wxquota", 50000);
  quota.daily_quota = 2;
  auto minute = merchant("wxminute", 50000);
  minute.minute_limit = 1;
  Harness h({merchant("wxok", 20000), invalid_appid, no_permission, quota, minute});

  Error bad_token = errorOf(h.client->getFans("not-a-token", ""));
  CHECK(bad_token.error_class == ErrorClass::kTokenInvalid);
  CHECK(bad_token.errcode == 40001);
  CHECK(errorOf(h.client->getFans("", "")).errcode == 41001);

  REQUIRE(h.client->getFans("token-wxok", "").ok());
  REQUIRE(h.server->expireTokens("wxok"));
  Error expired = errorOf(h.client->getFans("token-wxok", ""));
  CHECK(expired.error_class == ErrorClass::kTokenInvalid);
  CHECK(expired.errcode == 42001);

  Error appid = errorOf(h.client->getFans("token-wxinvalid", ""));
  CHECK(appid.error_class == ErrorClass::kInvalidTenant);
  CHECK(appid.errcode == 40013);

  Error perm = errorOf(h.client->getFans("token-wxnoperm", ""));
  CHECK(perm.error_class == ErrorClass::kPermissionDenied);
  CHECK(perm.errcode == 48001);

  REQUIRE(h.client->getFans("token-wxquota", "").ok());
  REQUIRE(h.client->getFans("token-wxquota", "").ok());
  Error q = errorOf(h.client->getFans("token-wxquota", ""));
  CHECK(q.error_class == ErrorClass::kQuotaExhausted);
  CHECK(q.errcode == 45009);

  REQUIRE(h.client->getFans("token-wxminute", "").ok());
  Error m = errorOf(h.client->getFans("token-wxminute", ""));
  CHECK(m.error_class == ErrorClass::kRateLimited);
  CHECK(m.errcode == 45011);
}

TEST_CASE("an unknown cursor is 40003 invalid_cursor", "[core][integration]") {
  Harness h({merchant("wxcur", 100)});
  Error e = errorOf(h.client->getFans("token-wxcur", sandbox::sandboxOpenId("wxother", 3)));
  CHECK(e.error_class == ErrorClass::kInvalidCursor);
  CHECK(e.errcode == 40003);
}

TEST_CASE("a hostile cursor reaches WeChat byte for byte and changes nothing else",
          "[core][integration]") {
  Harness h({merchant("wxhostile", 100)});
  const std::string cursor = "a&access_token=x#frag%41 b+c\r\nHost: evil";
  Error e = errorOf(h.client->getFans("token-wxhostile", cursor));
  CHECK(e.error_class == ErrorClass::kInvalidCursor);
  auto log = h.server->callLog("wxhostile");
  REQUIRE(log.size() == 1);
  CHECK(log[0].next_openid == cursor);
  CHECK(log[0].errcode == 40003);
}

TEST_CASE("busy (-1), 502 with HTML, a truncated body and a reset are retryable with their causes",
          "[core][integration]") {
  auto flaky = merchant("wxflaky", 30000);
  flaky.faults.script = {sandbox::FaultKind::kBusy, sandbox::FaultKind::kHttp502,
                         sandbox::FaultKind::kTruncated, sandbox::FaultKind::kReset,
                         sandbox::FaultKind::kReset, sandbox::FaultKind::kOk};
  Harness h({flaky});
  Error busy = errorOf(h.client->getFans("token-wxflaky", ""));
  CHECK(busy.error_class == ErrorClass::kRetryable);
  CHECK(busy.errcode == -1);
  Error bad_gateway = errorOf(h.client->getFans("token-wxflaky", ""));
  CHECK(bad_gateway.error_class == ErrorClass::kRetryable);
  CHECK(bad_gateway.http_status == 502);
  CHECK(bad_gateway.cause.find("text/html") != std::string::npos);
  Error truncated = errorOf(h.client->getFans("token-wxflaky", ""));
  CHECK(truncated.error_class == ErrorClass::kRetryable);
  CHECK(truncated.cause.find("malformed answer") != std::string::npos);
  // A reset on a pooled connection looks like a stale keep-alive: the GET is sent once more on a
  // fresh connection; a reset there too is the caller's error.
  Error reset = errorOf(h.client->getFans("token-wxflaky", ""));
  CHECK(reset.error_class == ErrorClass::kRetryable);
  CHECK_FALSE(reset.errcode.has_value());
  CHECK(reset.cause.rfind("connection reset", 0) == 0);
  auto page = h.client->getFans("token-wxflaky", "");
  REQUIRE(page.ok());
  CHECK(page->openid(0) == sandbox::sandboxOpenId("wxflaky", 0));
  auto log = h.server->callLog("wxflaky");
  REQUIRE(log.size() == 6);
  CHECK(log[3].fault == "reset");
  CHECK(log[4].fault == "reset");
  CHECK(log[5].count == 10000);
}

TEST_CASE("a slow answer past the read timeout is a retryable timeout", "[core][integration]") {
  auto slow = merchant("wxslow", 10);
  slow.faults.script = {sandbox::FaultKind::kDelay};
  slow.faults.delay_ms = 1500;
  HttpTransportOptions options;
  options.timeout = std::chrono::milliseconds(200);
  Harness h({slow}, options);
  Error e = errorOf(h.client->getFans("token-wxslow", ""));
  CHECK(e.error_class == ErrorClass::kRetryable);
  CHECK(e.cause.rfind("timeout", 0) == 0);
}

TEST_CASE("a response over the size cap is an error, not an allocation", "[core][integration]") {
  HttpTransportOptions options;
  options.max_response_bytes = 64 * 1024;
  Harness h({merchant("wxbig", 10000)}, options);
  Error e = errorOf(h.client->getFans("token-wxbig", ""));
  CHECK(e.error_class == ErrorClass::kRetryable);
  CHECK(e.cause.rfind("response too large", 0) == 0);
}

TEST_CASE("a refused connection is a retryable connect failure", "[core][integration]") {
  std::string url;
  {
    Harness h({merchant("wxgone", 1)});
    url = h.server->baseUrl();
    h.server->stop();
  }
  HttpTransportOptions options;
  options.base_url = url;
  auto transport = PocoHttpTransport::create(options);
  REQUIRE(transport.ok());
  UserListClient client(*transport.value());
  Error e = errorOf(client.getFans("t", ""));
  CHECK(e.error_class == ErrorClass::kRetryable);
  INFO(e.cause);
  CHECK(e.cause.rfind("connect failed", 0) == 0);
}

TEST_CASE("HTTPS with a self-signed certificate is refused by default", "[core][integration]") {
  Harness h({merchant("wxtls", 5)}, {}, FANPULL_TEST_DATA "/sandbox-cert.pem",
            FANPULL_TEST_DATA "/sandbox-key.pem");
  REQUIRE(h.server->baseUrl().rfind("https://", 0) == 0);
  Error e = errorOf(h.client->getFans("token-wxtls", ""));
  CHECK(e.error_class == ErrorClass::kRetryable);
  CHECK(e.cause.rfind("TLS failure", 0) == 0);
  CHECK(h.server->calls("wxtls", sandbox::kEndpointUserGet) == 0);
}

TEST_CASE("HTTPS with a self-signed certificate is accepted with ca_file", "[core][integration]") {
  HttpTransportOptions options;
  options.ca_file = FANPULL_TEST_DATA "/sandbox-cert.pem";
  Harness h({merchant("wxtls", 5)}, options, FANPULL_TEST_DATA "/sandbox-cert.pem",
            FANPULL_TEST_DATA "/sandbox-key.pem");
  Walk w = walkAll(*h.client, "token-wxtls");
  REQUIRE(w.openids.size() == 5);
  CHECK(w.openids[4] == sandbox::sandboxOpenId("wxtls", 4));
}

TEST_CASE("HTTPS with a trusted certificate for another host name is refused",
          "[core][integration]") {
  HttpTransportOptions options;
  options.ca_file = FANPULL_TEST_DATA "/wrong-host-cert.pem";
  Harness h({merchant("wxhost", 5)}, options, FANPULL_TEST_DATA "/wrong-host-cert.pem",
            FANPULL_TEST_DATA "/wrong-host-key.pem");
  Error e = errorOf(h.client->getFans("token-wxhost", ""));
  CHECK(e.error_class == ErrorClass::kRetryable);
  CHECK(e.cause.rfind("TLS failure", 0) == 0);
  CHECK(h.server->calls("wxhost", sandbox::kEndpointUserGet) == 0);
}

TEST_CASE("a bad base_url or ca_file is refused when the transport is made",
          "[core][integration]") {
  HttpTransportOptions options;
  options.base_url = "ftp://example.com";
  CHECK_FALSE(PocoHttpTransport::create(options).ok());
  options.base_url = "https://example.com";
  options.ca_file = "/nonexistent/ca.pem";
  auto t = PocoHttpTransport::create(options);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().cause.find("cannot set up TLS") != std::string::npos);
}

TEST_CASE("getQuota reports the day's user/get limit, the calls spent and what remains",
          "[core][integration]") {
  auto limited = merchant("wxlimited", 30000);
  limited.daily_quota = 5;
  auto refused = merchant("wxnoquery", 10);
  refused.quota_get_errcode = 76022;
  Harness h({limited, merchant("wxunlimited", 10), refused});

  auto q = h.client->getQuota("token-wxlimited");
  if (!q.ok()) FAIL(q.error().describe());
  CHECK(q->daily_limit == 5);
  CHECK(q->used == 0);
  CHECK(q->remain == 5);
  REQUIRE(h.client->getFans("token-wxlimited", "").ok());
  REQUIRE(h.client->getFans("token-wxlimited", "").ok());
  h.server->spendQuota("wxlimited", 1);  // someone else's call on the merchant's quota
  q = h.client->getQuota("token-wxlimited");
  REQUIRE(q.ok());
  CHECK(q->used == 3);
  CHECK(q->remain == 2);
  CHECK(h.server->calls("wxlimited", sandbox::kEndpointQuotaGet) == 2);

  auto unlimited = h.client->getQuota("token-wxunlimited");
  REQUIRE(unlimited.ok());
  CHECK(unlimited->remain > 1000000);

  auto no = h.client->getQuota("token-wxnoquery");
  REQUIRE_FALSE(no.ok());
  CHECK(no.error().errcode == 76022L);
  auto stale = h.client->getQuota("no-such-token");
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().error_class == ErrorClass::kTokenInvalid);
  CHECK(stale.error().cause.find("no-such-token") == std::string::npos);

  // quota/get has a small daily limit of its own (10 on the sandbox), then 45009.
  int refused_calls = 0;
  for (int i = 0; i < 12; ++i) {
    auto r = h.client->getQuota("token-wxunlimited");
    if (!r.ok()) {
      CHECK(r.error().errcode == 45009L);
      ++refused_calls;
    }
  }
  CHECK(refused_calls == 3);  // 1 above, 9 more answered, then 3 refused
}
