#include "sandbox/sandbox_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/openids.h"
#include "sandbox/page_cache.h"

using fanpull::sandbox::Account;
using fanpull::sandbox::CallLogEntry;
using fanpull::sandbox::FaultKind;
using fanpull::sandbox::LastPageVariant;
using fanpull::sandbox::PageCache;
using fanpull::sandbox::sandboxOpenId;
using fanpull::sandbox::SandboxOptions;
using fanpull::sandbox::SandboxServer;
using nlohmann::json;

namespace {

// A clock the test moves by hand; starts at 2024-05-01 12:00:00 Beijing time (04:00 UTC).
struct ManualClock {
  std::shared_ptr<std::atomic<int64_t>> ms = std::make_shared<std::atomic<int64_t>>(1714536000000);
  std::function<int64_t()> fn() const {
    auto p = ms;
    return [p] { return p->load(); };
  }
  void advance(int64_t deltaMs) const { *ms += deltaMs; }
  void set(int64_t v) const { *ms = v; }
};

struct Reply {
  int status = 0;
  std::string contentType;
  std::string body;
  json doc() const { return json::parse(body); }
  int errcode() const {
    const json d = doc();
    return d.contains("errcode") ? d["errcode"].get<int>() : 0;
  }
};

std::string enc(const std::string& s) {
  std::string out;
  Poco::URI::encode(s, "!#$&'()*+,/:;=?@[]% ", out);
  return out;
}

std::string userGet(const std::string& token, const std::string& cursor) {
  return "/cgi-bin/user/get?access_token=" + enc(token) + "&next_openid=" + enc(cursor);
}

Reply exchange(Poco::Net::HTTPClientSession& session, const std::string& method,
               const std::string& target, const std::string& body = std::string()) {
  Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
  request.setKeepAlive(true);
  if (method == Poco::Net::HTTPRequest::HTTP_POST) {
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
  } else {
    session.sendRequest(request);
  }
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  Reply r;
  r.status = response.getStatus();
  r.contentType = response.getContentType();
  Poco::StreamCopier::copyToString(in, r.body);
  return r;
}

Reply call(const SandboxServer& server, const std::string& method, const std::string& target,
           const std::string& body = std::string()) {
  Poco::Net::HTTPClientSession session("127.0.0.1", server.port());
  session.setTimeout(Poco::Timespan(20, 0));
  return exchange(session, method, target, body);
}

Reply get(const SandboxServer& server, const std::string& target) {
  return call(server, "GET", target);
}
Reply post(const SandboxServer& server, const std::string& target, const json& body) {
  return call(server, "POST", target, body.dump());
}

Account account(const std::string& appid, int64_t followers) {
  Account a;
  a.appid = appid;
  a.followers = followers;
  a.access_tokens = {"tok-" + appid};
  a.refresh_token = "refresh-" + appid;
  return a;
}

// A started server on a free loopback port.
std::unique_ptr<SandboxServer> startServer(std::vector<Account> accounts,
                                           SandboxOptions options = {}) {
  options.accounts = std::move(accounts);
  options.component = {"wxcomp", "comp-secret", "ticket-1"};
  auto server = std::make_unique<SandboxServer>(std::move(options));
  server->start();
  return server;
}

struct Walk {
  std::vector<std::string> openids;
  std::vector<json> pages;  // every answer, including the final count-0 one
};

// Follows next_openid over one keep-alive session until count 0, no data or an empty next_openid.
Walk walk(const SandboxServer& server, const std::string& token) {
  Poco::Net::HTTPClientSession session("127.0.0.1", server.port());
  session.setTimeout(Poco::Timespan(20, 0));
  Walk w;
  std::string cursor;
  for (int guard = 0; guard < 1000; ++guard) {
    const Reply r = exchange(session, "GET", userGet(token, cursor));
    REQUIRE(r.status == 200);
    const json page = r.doc();
    w.pages.push_back(page);
    REQUIRE_FALSE(page.contains("errcode"));
    if (page["count"].get<int>() == 0 || !page.contains("data")) break;
    for (const auto& id : page["data"]["openid"]) w.openids.push_back(id.get<std::string>());
    cursor = page["next_openid"].get<std::string>();
    if (cursor.empty()) break;
  }
  return w;
}

std::string testData(const std::string& name) {
  return std::string(FANPULL_TEST_DATA) + "/" + name;
}

}  // namespace

TEST_CASE("the page cache evicts the least recently used bodies beyond its byte capacity",
          "[sandbox][unit]") {
  PageCache cache(100);
  auto body = [](char c) { return std::make_shared<const std::string>(40, c); };
  cache.put("a", body('a'));
  cache.put("b", body('b'));
  REQUIRE(cache.get("a"));    // a is now the most recent
  cache.put("c", body('c'));  // 123 bytes > 100: evicts b
  CHECK(cache.get("b") == nullptr);
  REQUIRE(cache.get("a"));
  CHECK(*cache.get("a") == std::string(40, 'a'));
  REQUIRE(cache.get("c"));
  CHECK(cache.bytes() <= 100);
  cache.put("huge", std::make_shared<const std::string>(200, 'h'));
  CHECK(cache.get("huge") == nullptr);
  CHECK(cache.entries() == 2);
}

TEST_CASE(
    "a full walk returns every follower once, in order, and ends with a count-0 answer without "
    "data",
    "[sandbox][integration]") {
  const std::vector<int64_t> sizes = {0, 1, 9999, 10000, 10001, 23000};
  std::vector<Account> accounts;
  for (int64_t n : sizes) accounts.push_back(account("wxrepeat" + std::to_string(n), n));
  auto server = startServer(accounts);
  for (int64_t n : sizes) {
    const std::string appid = "wxrepeat" + std::to_string(n);
    INFO(appid);
    const Walk w = walk(*server, "tok-" + appid);
    REQUIRE(static_cast<int64_t>(w.openids.size()) == n);
    for (int64_t i = 0; i < n; ++i) {
      if (w.openids[i] != sandboxOpenId(appid, i)) FAIL("openid " << i << " differs");
    }
    const int64_t dataPages = (n + 9999) / 10000;
    REQUIRE(static_cast<int64_t>(w.pages.size()) == dataPages + 1);
    for (const json& page : w.pages) CHECK(page["total"] == n);
    if (n > 0) {
      const json& last = w.pages[dataPages - 1];
      CHECK(last["count"] == n - (dataPages - 1) * 10000);
      CHECK(last["next_openid"] == sandboxOpenId(appid, n - 1));  // repeats the last openid
    }
    CHECK(w.pages.back() == json{{"total", n}, {"count", 0}, {"next_openid", ""}});
    CHECK(server->calls(appid, "user/get") == dataPages + 1);
  }
}

TEST_CASE("with the empty variant the last data page carries an empty next_openid",
          "[sandbox][integration]") {
  const std::vector<int64_t> sizes = {0, 1, 9999, 10000, 10001, 23000};
  std::vector<Account> accounts;
  for (int64_t n : sizes) {
    accounts.push_back(account("wxempty" + std::to_string(n), n));
    accounts.back().last_page_variant = LastPageVariant::kEmpty;
  }
  auto server = startServer(accounts);
  for (int64_t n : sizes) {
    const std::string appid = "wxempty" + std::to_string(n);
    INFO(appid);
    const Walk w = walk(*server, "tok-" + appid);
    REQUIRE(static_cast<int64_t>(w.openids.size()) == n);
    for (int64_t i = 0; i < n; ++i) {
      if (w.openids[i] != sandboxOpenId(appid, i)) FAIL("openid " << i << " differs");
    }
    const int64_t dataPages = (n + 9999) / 10000;
    if (n == 0) {
      REQUIRE(w.pages.size() == 1);
      CHECK(w.pages[0] == json{{"total", 0}, {"count", 0}, {"next_openid", ""}});
    } else {
      REQUIRE(static_cast<int64_t>(w.pages.size()) == dataPages);
      CHECK(w.pages.back()["next_openid"] == "");
      CHECK(w.pages.back().contains("data"));
      for (std::size_t i = 0; i + 1 < w.pages.size(); ++i) {
        CHECK(w.pages[i]["next_openid"] ==
              sandboxOpenId(appid, static_cast<int64_t>(i + 1) * 10000 - 1));
      }
    }
  }
}

TEST_CASE("the cursor after the last openid answers count 0 with no data key",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 5)});
  const Reply r = get(*server, userGet("tok-wxa", sandboxOpenId("wxa", 4)));
  CHECK(r.status == 200);
  CHECK(r.contentType.rfind("application/json", 0) == 0);
  CHECK(r.doc() == json{{"total", 5}, {"count", 0}, {"next_openid", ""}});
  const json mid = get(*server, userGet("tok-wxa", sandboxOpenId("wxa", 1))).doc();
  CHECK(mid["count"] == 3);
  CHECK(mid["data"]["openid"][0] == sandboxOpenId("wxa", 2));
}

TEST_CASE("token problems answer 41001, 40001 and 42001", "[sandbox][integration]") {
  ManualClock clock;
  SandboxOptions options;
  options.clock_ms = clock.fn();
  auto server = startServer({account("wxa", 10)}, options);
  CHECK(get(*server, "/cgi-bin/user/get").errcode() == 41001);
  CHECK(get(*server, "/cgi-bin/user/get?access_token=").errcode() == 41001);
  const Reply unknown = get(*server, userGet("not-a-token", ""));
  CHECK(unknown.status == 200);
  CHECK(unknown.doc() ==
        json{{"errcode", 40001},
             {"errmsg", "invalid credential, access_token is invalid or not latest"}});
  CHECK(get(*server, userGet("tok-wxa", "")).errcode() == 0);
  REQUIRE(server->expireTokens("wxa"));
  const Reply expired = get(*server, userGet("tok-wxa", ""));
  CHECK(expired.doc() == json{{"errcode", 42001}, {"errmsg", "access_token expired"}});
  CHECK_FALSE(server->expireTokens("wxnobody"));
}

TEST_CASE("an account configured with an errcode answers it on every user/get",
          "[sandbox][integration]") {
  Account a = account("wxbad", 100);
  a.errcode = 40013;
  Account revoked = account("wxrevoked", 100);
  revoked.errcode = 61003;
  auto server = startServer({a, revoked});
  for (const std::string& cursor : {std::string(), sandboxOpenId("wxbad", 3)}) {
    CHECK(get(*server, userGet("tok-wxbad", cursor)).doc() ==
          json{{"errcode", 40013}, {"errmsg", "invalid appid"}});
  }
  CHECK(get(*server, userGet("tok-wxrevoked", "")).errcode() == 61003);
}

TEST_CASE("a cursor that is not an openid of this account answers 40003",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 100), account("wxb", 100)});
  CHECK(get(*server, userGet("tok-wxa", sandboxOpenId("wxb", 3))).doc() ==
        json{{"errcode", 40003}, {"errmsg", "invalid openid"}});
  CHECK(get(*server, userGet("tok-wxa", sandboxOpenId("wxa", 100))).errcode() ==
        40003);  // past total
  CHECK(get(*server, userGet("tok-wxa", "OPENID23000")).errcode() == 40003);
  CHECK(get(*server, userGet("tok-wxa", sandboxOpenId("wxa", 99))).doc()["count"] == 0);
}

TEST_CASE("an account without permission set 2 or 100 answers 48001; set 100 alone suffices",
          "[sandbox][integration]") {
  Account none = account("wxnone", 10);
  none.func_info = {1, 3, 7};
  Account only100 = account("wx100", 10);
  only100.func_info = {100};
  auto server = startServer({none, only100});
  CHECK(get(*server, userGet("tok-wxnone", "")).doc() ==
        json{{"errcode", 48001}, {"errmsg", "api unauthorized"}});
  CHECK(get(*server, userGet("tok-wx100", "")).doc()["count"] == 10);
}

TEST_CASE("the daily quota answers 45009 until Beijing midnight and refused calls do not count",
          "[sandbox][integration]") {
  ManualClock clock;
  // 2024-05-01 15:00:00 UTC = 23:00 Beijing.
  clock.set(1714575600000);
  SandboxOptions options;
  options.clock_ms = clock.fn();
  Account a = account("wxquota", 50000);
  a.daily_quota = 2;
  auto server = startServer({a}, options);
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 0);
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 0);
  CHECK(get(*server, userGet("tok-wxquota", "")).doc() ==
        json{{"errcode", 45009}, {"errmsg", "reach max api daily quota limit"}});
  clock.advance(3600000 - 1);  // 23:59:59.999 Beijing
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 45009);
  clock.advance(1);  // 00:00 Beijing (16:00 UTC): a new day
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 0);
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 0);  // the two refusals did not count
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 45009);
  clock.advance(9 * 3600000);  // 01:00 UTC the next UTC day is still the same Beijing day
  CHECK(get(*server, userGet("tok-wxquota", "")).errcode() == 45009);
  CHECK(server->calls("wxquota", "user/get") == 8);
}

TEST_CASE("the minute limit answers 45011 until the next wall-clock minute",
          "[sandbox][integration]") {
  ManualClock clock;
  clock.set(1714536000000 + 30000);  // hh:mm:30
  SandboxOptions options;
  options.clock_ms = clock.fn();
  Account a = account("wxminute", 50000);
  a.minute_limit = 2;
  auto server = startServer({a}, options);
  CHECK(get(*server, userGet("tok-wxminute", "")).errcode() == 0);
  CHECK(get(*server, userGet("tok-wxminute", "")).errcode() == 0);
  CHECK(get(*server, userGet("tok-wxminute", "")).doc()["errcode"] == 45011);
  clock.advance(29999);  // hh:mm:59.999
  CHECK(get(*server, userGet("tok-wxminute", "")).errcode() == 45011);
  clock.advance(1);
  CHECK(get(*server, userGet("tok-wxminute", "")).errcode() == 0);
}

TEST_CASE("a token expires with 42001 after token_expires_after_calls successful calls",
          "[sandbox][integration]") {
  Account a = account("wxshort", 50000);
  a.token_expires_after_calls = 2;
  auto server = startServer({a});
  const Reply first = get(*server, userGet("tok-wxshort", ""));
  CHECK(first.doc()["count"] == 10000);
  const std::string cursor = first.doc()["next_openid"];
  CHECK(get(*server, userGet("tok-wxshort", "nonsense")).errcode() == 40003);  // not successful
  CHECK(get(*server, userGet("tok-wxshort", cursor)).doc()["count"] == 10000);
  CHECK(get(*server, userGet("tok-wxshort", cursor)).errcode() == 42001);

  // A refreshed token gets its own budget.
  const json component = post(*server, "/cgi-bin/component/api_component_token",
                              {{"component_appid", "wxcomp"},
                               {"component_appsecret", "comp-secret"},
                               {"component_verify_ticket", "ticket-1"}})
                             .doc();
  const json auth = post(*server,
                         "/cgi-bin/component/api_authorizer_token?component_access_token=" +
                             enc(component["component_access_token"]),
                         {{"component_appid", "wxcomp"},
                          {"authorizer_appid", "wxshort"},
                          {"authorizer_refresh_token", "refresh-wxshort"}})
                        .doc();
  const std::string fresh = auth["authorizer_access_token"];
  CHECK(get(*server, userGet(fresh, cursor)).doc()["count"] == 10000);
}

TEST_CASE("POST /sandbox/expire_tokens makes the account's tokens answer 42001",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 10), account("wxb", 10)});
  CHECK(get(*server, userGet("tok-wxa", "")).errcode() == 0);
  const Reply r = call(*server, "POST", "/sandbox/expire_tokens?appid=wxa");
  CHECK(r.status == 200);
  CHECK(r.doc()["expired"] == 1);
  CHECK(get(*server, userGet("tok-wxa", "")).errcode() == 42001);
  CHECK(get(*server, userGet("tok-wxb", "")).errcode() == 0);
  CHECK(call(*server, "POST", "/sandbox/expire_tokens?appid=wxnobody").status == 404);
}

TEST_CASE("the component token needs the right appid, secret and current verify ticket",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 10)});
  const std::string path = "/cgi-bin/component/api_component_token";
  auto body = [](const std::string& appid, const std::string& secret, const std::string& ticket) {
    return json{{"component_appid", appid},
                {"component_appsecret", secret},
                {"component_verify_ticket", ticket}};
  };
  const json ok = post(*server, path, body("wxcomp", "comp-secret", "ticket-1")).doc();
  CHECK(ok["expires_in"] == 7200);
  CHECK(ok["component_access_token"].get<std::string>().size() >= 32);
  CHECK(post(*server, path, body("wxother", "comp-secret", "ticket-1")).errcode() == 40013);
  CHECK(post(*server, path, body("wxcomp", "wrong", "ticket-1")).errcode() == 40125);
  CHECK(post(*server, path, body("wxcomp", "comp-secret", "ticket-0")).doc() ==
        json{{"errcode", 61006}, {"errmsg", "component_verify_ticket is invalid"}});
  server->setVerifyTicket("ticket-2");
  CHECK(post(*server, path, body("wxcomp", "comp-secret", "ticket-1")).errcode() == 61006);
  CHECK(post(*server, path, body("wxcomp", "comp-secret", "ticket-2")).errcode() == 0);
  CHECK(call(*server, "POST", path, "not json").errcode() == 47001);
  CHECK(server->componentTokenCalls() == 7);
}

TEST_CASE(
    "refreshing an authorizer token rotates the refresh token and keeps the old access token for "
    "the grace period",
    "[sandbox][integration]") {
  ManualClock clock;
  SandboxOptions options;
  options.clock_ms = clock.fn();
  options.grace_seconds = 300;
  options.token_ttl_seconds = 7200;
  auto server = startServer({account("wxa", 20000)}, options);
  const json component = post(*server, "/cgi-bin/component/api_component_token",
                              {{"component_appid", "wxcomp"},
                               {"component_appsecret", "comp-secret"},
                               {"component_verify_ticket", "ticket-1"}})
                             .doc();
  const std::string authPath = "/cgi-bin/component/api_authorizer_token?component_access_token=" +
                               enc(component["component_access_token"]);
  auto refresh = [&](const std::string& refreshToken, const std::string& appid = "wxa") {
    return post(*server, authPath,
                {{"component_appid", "wxcomp"},
                 {"authorizer_appid", appid},
                 {"authorizer_refresh_token", refreshToken}});
  };

  const json first = refresh("refresh-wxa").doc();
  REQUIRE(first.contains("authorizer_access_token"));
  CHECK(first["expires_in"] == 7200);
  const std::string access1 = first["authorizer_access_token"];
  const std::string refresh1 = first["authorizer_refresh_token"];
  CHECK(refresh1 != "refresh-wxa");
  CHECK(server->currentRefreshToken("wxa") == refresh1);
  CHECK(refresh("refresh-wxa").doc() ==
        json{{"errcode", 61023}, {"errmsg", "refresh_token is invalid"}});
  CHECK(get(*server, userGet(access1, "")).doc()["count"] == 10000);

  const json second = refresh(refresh1).doc();
  const std::string access2 = second["authorizer_access_token"];
  CHECK(access2 != access1);
  CHECK(refresh(refresh1).errcode() == 61023);
  CHECK(refresh(second["authorizer_refresh_token"], "wxnobody").errcode() == 40013);
  CHECK(post(*server, "/cgi-bin/component/api_authorizer_token?component_access_token=forged",
             {{"component_appid", "wxcomp"},
              {"authorizer_appid", "wxa"},
              {"authorizer_refresh_token", second["authorizer_refresh_token"]}})
            .errcode() == 40001);
  clock.advance(299 * 1000);
  CHECK(get(*server, userGet(access1, "")).errcode() == 0);  // still within grace
  clock.advance(1000);
  CHECK(get(*server, userGet(access1, "")).errcode() == 42001);
  CHECK(get(*server, userGet(access2, "")).errcode() == 0);
  clock.advance(7200 * 1000);
  CHECK(get(*server, userGet(access2, "")).errcode() == 42001);  // past its ttl
  CHECK(get(*server, userGet("tok-wxa", "")).errcode() == 0);    // static tokens do not expire

  CHECK(refresh(second["authorizer_refresh_token"]).errcode() ==
        42001);                                              // the component token expired
  CHECK(server->calls("wxa", "api_authorizer_token") == 6);  // wxnobody's call is not wxa's
}

TEST_CASE("a fault script is played in order, one entry per user/get call",
          "[sandbox][integration]") {
  Account a = account("wxflaky", 25000);
  a.faults.script = {FaultKind::kBusy,  FaultKind::kHttp502, FaultKind::kTruncated,
                     FaultKind::kReset, FaultKind::kDelay,   FaultKind::kOk};
  a.faults.delay_ms = 120;
  auto server = startServer({a});
  const std::string target = userGet("tok-wxflaky", "");

  CHECK(get(*server, target).doc() == json{{"errcode", -1}, {"errmsg", "system error"}});

  const Reply bad = get(*server, target);
  CHECK(bad.status == 502);
  CHECK(bad.contentType.rfind("text/html", 0) == 0);
  CHECK_THAT(bad.body, Catch::StartsWith("<html>") && Catch::Contains("502 Bad Gateway"));

  const Reply cut = get(*server, target);
  CHECK(cut.status == 200);
  CHECK(cut.body.size() > 1000);
  CHECK(cut.body.size() < 10000 * 31);
  CHECK_FALSE(json::accept(cut.body));

  CHECK_THROWS_AS(get(*server, target), Poco::Exception);

  const auto before = std::chrono::steady_clock::now();
  const Reply delayed = get(*server, target);
  CHECK(std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(120));
  CHECK(delayed.doc()["count"] == 10000);

  CHECK(get(*server, target).doc()["count"] == 10000);

  std::vector<json> results;
  for (const CallLogEntry& e : server->callLog("wxflaky")) {
    results.push_back(e.fault.empty() ? json(e.errcode) : json(e.fault));
  }
  CHECK(results == std::vector<json>{-1, "http502", "truncated", "reset", 0, 0});
  const json stats = json::parse(server->statsJson("wxflaky"));
  CHECK(stats["log"][1]["result"] == "http502");
  CHECK(stats["log"][3]["result"] == "reset");
}

TEST_CASE("fault probabilities produce each configured fault and nothing else",
          "[sandbox][integration]") {
  Account a = account("wxrandom", 50);
  a.faults.busy = 0.5;
  a.faults.http502 = 0.5;
  SandboxOptions options;
  options.seed = 7;
  auto server = startServer({a}, options);
  int busy = 0, bad = 0;
  Poco::Net::HTTPClientSession session("127.0.0.1", server->port());
  for (int i = 0; i < 100; ++i) {
    const Reply r = exchange(session, "GET", userGet("tok-wxrandom", ""));
    if (r.status == 502) {
      ++bad;
    } else if (r.errcode() == -1) {
      ++busy;
    }
  }
  CHECK(busy + bad == 100);
  CHECK(busy >= 25);
  CHECK(bad >= 25);
}

TEST_CASE("a cursor with &, #, %, space and CR/LF is logged exactly as sent and answered 40003",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 10)});
  const std::string cursor = "o&a=b#c%41 d+e\r\nf";
  const Reply r = get(*server, userGet("tok-wxa", cursor));
  CHECK(r.errcode() == 40003);
  const std::vector<CallLogEntry> log = server->callLog("wxa");
  REQUIRE(log.size() == 1);
  CHECK(log[0].next_openid == cursor);
  CHECK(log[0].errcode == 40003);
  const json stats = get(*server, "/sandbox/stats?appid=wxa").doc();
  CHECK(stats["log"][0]["next_openid"] == cursor);
  CHECK(stats["log"][0]["result"] == 40003);
}

TEST_CASE("stats count calls per appid and endpoint and never contain a token, secret or ticket",
          "[sandbox][integration]") {
  auto server = startServer({account("wxa", 15000), account("wxb", 3)});
  const json component = post(*server, "/cgi-bin/component/api_component_token",
                              {{"component_appid", "wxcomp"},
                               {"component_appsecret", "comp-secret"},
                               {"component_verify_ticket", "ticket-1"}})
                             .doc();
  const std::string componentToken = component["component_access_token"];
  const json auth =
      post(*server,
           "/cgi-bin/component/api_authorizer_token?component_access_token=" + enc(componentToken),
           {{"component_appid", "wxcomp"},
            {"authorizer_appid", "wxa"},
            {"authorizer_refresh_token", "refresh-wxa"}})
          .doc();
  const std::string access = auth["authorizer_access_token"];
  const std::string refreshed = auth["authorizer_refresh_token"];
  walk(*server, access);
  walk(*server, "tok-wxb");
  get(*server, userGet("tok-unknown", ""));

  const Reply r = get(*server, "/sandbox/stats");
  REQUIRE(r.status == 200);
  const json stats = r.doc();
  CHECK(stats["calls"]["wxa"]["user/get"] == 3);
  CHECK(stats["calls"]["wxa"]["api_authorizer_token"] == 1);
  CHECK(stats["calls"]["wxb"]["user/get"] == 2);
  CHECK(stats["component_token_calls"] == 1);
  CHECK(stats["log"].size() == 1 + 1 + 3 + 2 + 1);
  CHECK(stats["log"][2]["endpoint"] == "user/get");
  CHECK(stats["log"][2]["appid"] == "wxa");
  CHECK(stats["log"][2]["result"] == 0);
  CHECK(stats["log"][2]["count"] == 10000);
  for (const std::string& secret :
       {componentToken, access, refreshed, std::string("refresh-wxa"), std::string("tok-wxb"),
        std::string("tok-unknown"), std::string("comp-secret"), std::string("ticket-1")}) {
    CHECK(r.body.find(secret) == std::string::npos);
    CHECK(server->statsJson().find(secret) == std::string::npos);
  }
  const json onlyB = get(*server, "/sandbox/stats?appid=wxb").doc();
  CHECK(onlyB["calls"].size() == 1);
  CHECK(onlyB["log"].size() == 2);

  CHECK(call(*server, "POST", "/sandbox/reset").status == 200);
  const json cleared = get(*server, "/sandbox/stats").doc();
  CHECK(cleared["calls"].empty());
  CHECK(cleared["log"].empty());
  CHECK(cleared["component_token_calls"] == 0);
  CHECK(server->calls("wxa", "user/get") == 0);
}

TEST_CASE("an unknown path answers 404 with a JSON body", "[sandbox][integration]") {
  auto server = startServer({account("wxa", 1)});
  const Reply r = get(*server, "/cgi-bin/nothing?access_token=tok-wxa");
  CHECK(r.status == 404);
  CHECK(r.doc()["errcode"] == 404);
  CHECK(get(*server, "/cgi-bin/component/api_component_token").status == 405);
}

TEST_CASE("every answer of a slow account waits its configured latency", "[sandbox][integration]") {
  Account slow = account("wxslow", 1);
  slow.latency_ms = 80;
  auto server = startServer({slow, account("wxfast", 1)});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(get(*server, userGet("tok-wxslow", "")).doc()["count"] == 1);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(80));
  CHECK(get(*server, userGet("tok-wxfast", "")).doc()["count"] == 1);
}

TEST_CASE("the sandbox serves HTTPS with the given certificate", "[sandbox][integration]") {
  SandboxOptions options;
  options.tls_cert_file = testData("sandbox-cert.pem");
  options.tls_key_file = testData("sandbox-key.pem");
  auto server = startServer({account("wxa", 12)}, options);
  CHECK(server->baseUrl() == "https://127.0.0.1:" + std::to_string(server->port()));
  Poco::Net::Context::Ptr context =
      new Poco::Net::Context(Poco::Net::Context::CLIENT_USE, "", "", testData("sandbox-cert.pem"),
                             Poco::Net::Context::VERIFY_STRICT);
  Poco::Net::HTTPSClientSession session("localhost", server->port(), context);
  session.setTimeout(Poco::Timespan(20, 0));
  const Reply r = exchange(session, "GET", userGet("tok-wxa", ""));
  CHECK(r.status == 200);
  const json page = r.doc();
  CHECK(page["count"] == 12);
  CHECK(page["data"]["openid"][11] == sandboxOpenId("wxa", 11));
}

TEST_CASE("a plain HTTP server reports an http base URL on its bound port",
          "[sandbox][integration]") {
  auto server = startServer({});
  CHECK(server->port() != 0);
  CHECK(server->baseUrl() == "http://127.0.0.1:" + std::to_string(server->port()));
  server->stop();
  server->stop();  // idempotent
  CHECK_THROWS_AS(get(*server, "/sandbox/stats"), Poco::Exception);
}

TEST_CASE("concurrent walks of one account each receive every follower", "[sandbox][integration]") {
  auto server = startServer({account("wxshared", 23000)});
  constexpr int kThreads = 8;
  std::vector<std::size_t> sizes(kThreads);
  std::vector<int> mismatches(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Poco::Net::HTTPClientSession session("127.0.0.1", server->port());
      std::string cursor;
      std::size_t n = 0;
      for (int guard = 0; guard < 10; ++guard) {
        const json page =
            json::parse(exchange(session, "GET", userGet("tok-wxshared", cursor)).body);
        if (page.value("count", 0) == 0) break;
        for (const auto& id : page["data"]["openid"]) {
          if (id != sandboxOpenId("wxshared", static_cast<int64_t>(n))) ++mismatches[t];
          ++n;
        }
        cursor = page["next_openid"];
      }
      sizes[t] = n;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    CHECK(sizes[t] == 23000);
    CHECK(mismatches[t] == 0);
  }
  CHECK(server->calls("wxshared", "user/get") == kThreads * 4);
}

TEST_CASE("64 slow requests are served in parallel, not one after another",
          "[sandbox][integration]") {
  Account slow = account("wxslow", 3);
  slow.latency_ms = 300;
  auto server = startServer({slow});
  constexpr int kClients = 64;
  std::vector<int> counts(kClients, -1);
  std::vector<std::thread> threads;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { counts[i] = get(*server, userGet("tok-wxslow", "")).doc()["count"]; });
  }
  for (auto& th : threads) th.join();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  for (int c : counts) CHECK(c == 3);
  CHECK(elapsed < std::chrono::milliseconds(kClients * 300 / 4));  // serial would take 19.2 s
}

namespace {

// The local addresses (as /proc/net/tcp and tcp6 spell them: hex, host byte order for IPv4) of
// the sockets listening on `port`.
std::vector<std::string> listeningAddresses(uint16_t port) {
  std::vector<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      auto colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
      out.push_back(local.substr(0, colon));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the sandbox listens on loopback only unless told otherwise", "[sandbox][integration]") {
  SandboxOptions options;
  options.accounts = {Account{}};
  options.accounts[0].appid = "wxbind";
  options.accounts[0].followers = 1;
  options.accounts[0].access_tokens = {"token-wxbind"};
  SandboxServer server(options);
  server.start();
  auto addresses = listeningAddresses(server.port());
  server.stop();
  REQUIRE(addresses.size() == 1);
  CHECK(addresses[0] == "0100007F");  // 127.0.0.1
}
