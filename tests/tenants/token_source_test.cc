// The token sources against the sandbox over real sockets.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "sandbox/openids.h"
#include "sandbox/sandbox_server.h"
#include "support/follower_walk.h"
#include "support/temp_dir.h"
#include "tenants/component_token_source.h"
#include "tenants/static_token_source.h"

using namespace fanpull;

namespace {

sandbox::Account account(const std::string& appid, int64_t followers) {
  sandbox::Account a;
  a.appid = appid;
  a.followers = followers;
  a.func_info = {2};
  a.refresh_token = "RT0-" + appid;
  return a;
}

// A sandbox, a tenants file, a token state file, a ticket file and a capturing logger.
struct Platform {
  explicit Platform(std::vector<sandbox::Account> accounts, const std::string& tenants_json) {
    sandbox::SandboxOptions so;
    so.accounts = std::move(accounts);
    so.component = {"wxcomponent", "component-secret-0001", "ticket@@@one"};
    server = std::make_unique<sandbox::SandboxServer>(std::move(so));
    server->start();
    HttpTransportOptions to;
    to.base_url = server->baseUrl();
    transport = std::move(PocoHttpTransport::create(to)).value();
    client = std::make_unique<UserListClient>(*transport);
    dir.write("ticket.txt", "ticket@@@one\n");
    registry = std::make_unique<TenantRegistry>(dir.write("tenants.json", tenants_json),
                                                TenantsOptions{true});
    REQUIRE(registry->load().empty());
    store = std::make_unique<TokenStateStore>(dir.file("tokens.json"));
    log = std::make_unique<Logger>(LogLevel::kDebug, true, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(lines_mutex);
      lines.push_back(line);
    });
  }

  std::unique_ptr<ComponentTokenSource> source() {
    auto s = std::make_unique<ComponentTokenSource>(
        ComponentSettings{"wxcomponent", "component-secret-0001", dir.file("ticket.txt")},
        *transport, *store, SystemClock::instance(), *log);
    REQUIRE(s->start().ok());
    return s;
  }

  std::shared_ptr<const Tenant> tenant(const std::string& appid) {
    return registry->current()->find(appid);
  }

  int64_t refreshes(const std::string& appid) {
    return server->calls(appid, sandbox::kEndpointAuthorizerToken);
  }

  testing::TempDir dir;
  std::unique_ptr<sandbox::SandboxServer> server;
  std::unique_ptr<PocoHttpTransport> transport;
  std::unique_ptr<UserListClient> client;
  std::unique_ptr<TenantRegistry> registry;
  std::unique_ptr<TokenStateStore> store;
  std::unique_ptr<Logger> log;
  std::mutex lines_mutex;
  std::vector<std::string> lines;
};

std::string tenantsJson(const std::vector<std::string>& appids, const std::string& extra = "") {
  std::string out = "{\"tenants\": [";
  for (size_t i = 0; i < appids.size(); ++i) {
    out += (i ? "," : "") + std::string("{\"appid\": \"") + appids[i] +
           "\", \"authorizer_refresh_token\": \"RT0-" + appids[i] + "\", \"func_info\": [2]}";
  }
  return out + extra + "]}";
}

void requireFullList(const testing::WalkOutcome& w, const std::string& appid, int64_t followers) {
  if (w.error) FAIL(w.error->describe());
  REQUIRE(static_cast<int64_t>(w.openids.size()) == followers);
  for (int64_t i = 0; i < followers; ++i) {
    REQUIRE(w.openids[static_cast<size_t>(i)] == sandbox::sandboxOpenId(appid, i));
  }
}

}  // namespace

TEST_CASE("a token that expires in the middle of a walk is renewed and no page is lost",
          "[tenants][integration]") {
  auto a = account("wxexpire", 60000);
  a.token_expires_after_calls = 2;
  Platform p({a}, tenantsJson({"wxexpire"}));
  auto source = p.source();
  auto w = testing::walkFollowers(*p.registry, *source, *p.client, "wxexpire");
  requireFullList(w, "wxexpire", 60000);
  // 7 successful calls (6 pages and the count-0 answer), 2 per token: 4 tokens, 4 refreshes.
  CHECK(p.refreshes("wxexpire") == 4);
  CHECK(w.renewals == 3);
  CHECK(source->metrics().renewals_ok == 4);
  CHECK(p.server->calls("wxexpire", sandbox::kEndpointUserGet) == 7 + 3);
}

TEST_CASE("50 lanes asking at once cause exactly one refresh", "[tenants][integration]") {
  Platform p({account("wxstorm", 10)}, tenantsJson({"wxstorm"}));
  auto source = p.source();
  auto tenant = p.tenant("wxstorm");
  constexpr int kLanes = 50;
  std::atomic<int> ready{0};
  std::vector<std::string> got(kLanes);
  std::vector<std::thread> lanes;
  for (int i = 0; i < kLanes; ++i) {
    lanes.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kLanes) std::this_thread::yield();
      auto t = source->current(*tenant);
      if (t.ok()) got[static_cast<size_t>(i)] = t->value;
    });
  }
  for (auto& t : lanes) t.join();
  CHECK(p.refreshes("wxstorm") == 1);
  for (const auto& token : got) CHECK(token == got[0]);
  REQUIRE_FALSE(got[0].empty());

  // The same storm after WeChat refused that token: one renewal, and a lane reporting the old
  // token afterwards gets the new one without a call.
  std::string failed = got[0];
  ready = 0;
  lanes.clear();
  for (int i = 0; i < kLanes; ++i) {
    lanes.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kLanes) std::this_thread::yield();
      auto t = source->renew(*tenant, failed);
      if (t.ok()) got[static_cast<size_t>(i)] = t->value;
    });
  }
  for (auto& t : lanes) t.join();
  CHECK(p.refreshes("wxstorm") == 2);
  for (const auto& token : got) CHECK(token == got[0]);
  CHECK(got[0] != failed);
  auto late = source->renew(*tenant, failed);
  REQUIRE(late.ok());
  CHECK(late->value == got[0]);
  CHECK(p.refreshes("wxstorm") == 2);
}

TEST_CASE("a rotated refresh token survives a restart of the token source",
          "[tenants][integration]") {
  Platform p({account("wxrotate", 5)}, tenantsJson({"wxrotate"}));
  std::string first_token;
  {
    auto source = p.source();
    auto t = source->current(*p.tenant("wxrotate"));
    REQUIRE(t.ok());
    first_token = t->value;
  }
  // WeChat rotated RT0 away: only the persisted refresh token still works.
  std::string rotated = p.server->currentRefreshToken("wxrotate");
  CHECK(rotated != "RT0-wxrotate");
  auto state = p.store->load();
  REQUIRE(state.ok());
  CHECK(state->at("wxrotate").refresh_token == rotated);

  auto restarted = p.source();
  auto renewed = restarted->renew(*p.tenant("wxrotate"), first_token);
  if (!renewed.ok()) FAIL(renewed.error().describe());
  CHECK(renewed->value != first_token);
  CHECK(p.refreshes("wxrotate") == 2);
  auto w = testing::walkFollowers(*p.registry, *restarted, *p.client, "wxrotate");
  requireFullList(w, "wxrotate", 5);
}

TEST_CASE("a rotated verify ticket is picked up from its file", "[tenants][integration]") {
  Platform p({account("wxticket", 5)}, tenantsJson({"wxticket"}));
  p.server->setVerifyTicket("ticket@@@two");  // WeChat pushed a new ticket...
  auto source = p.source();
  auto stale = source->current(*p.tenant("wxticket"));  // ...the file still has the old one
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().error_class == ErrorClass::kRetryable);
  CHECK(stale.error().errcode == 61006);
  CHECK(source->metrics().ticket_failures == 1);

  p.dir.write("ticket.txt", "ticket@@@two\n");  // the callback receiver rewrites the file
  auto fresh = source->current(*p.tenant("wxticket"));
  if (!fresh.ok()) FAIL(fresh.error().describe());
  CHECK(p.server->componentTokenCalls() == 2);
}

TEST_CASE("an invalid refresh token is invalid_tenant and counted", "[tenants][integration]") {
  Platform p({account("wxrevoked", 5)},
             R"({"tenants": [{"appid": "wxrevoked", "authorizer_refresh_token": "RT-wrong"}]})");
  auto source = p.source();
  auto t = source->current(*p.tenant("wxrevoked"));
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().error_class == ErrorClass::kInvalidTenant);
  CHECK(t.error().errcode == 61023);
  auto m = source->metrics();
  CHECK(m.renewals_failed == 1);
  CHECK(m.failures_by_class["invalid_tenant"] == 1);

  // The merchant authorized the platform again: the operator puts the new refresh token in the
  // tenants file and the running source uses it.
  std::string fresh = p.server->currentRefreshToken("wxrevoked");
  p.dir.write("tenants.json", R"({"tenants": [{"appid": "wxrevoked", "authorizer_refresh_token": ")" +
                                  fresh + R"(", "func_info": [2]}]})");
  std::vector<TenantProblem> problems;
  REQUIRE(p.registry->reloadIfChanged(&problems) == TenantRegistry::Reload::kReloaded);
  auto again = source->current(*p.tenant("wxrevoked"));
  if (!again.ok()) FAIL(again.error().describe());
  CHECK(p.refreshes("wxrevoked") == 2);

  // After a restart the rotated token in the state file wins again (the file did not change).
  auto restarted = p.source();
  auto renewed = restarted->renew(*p.tenant("wxrevoked"), again->value);
  if (!renewed.ok()) FAIL(renewed.error().describe());
  CHECK(p.refreshes("wxrevoked") == 3);
}

TEST_CASE("a refresh that fails on the network is retryable and leaks nothing", "[tenants][integration]") {
  Platform p({account("wxoffline", 5)}, tenantsJson({"wxoffline"}));
  // WeChat unreachable: nothing listens on the component API's address.
  HttpTransportOptions dead;
  dead.base_url = "http://127.0.0.1:1";
  dead.timeout = std::chrono::milliseconds(500);
  auto unreachable = std::move(PocoHttpTransport::create(dead)).value();
  ComponentTokenSource offline(
      ComponentSettings{"wxcomponent", "component-secret-0001", p.dir.file("ticket.txt")},
      *unreachable, *p.store, SystemClock::instance(), *p.log);
  REQUIRE(offline.start().ok());
  auto t = offline.current(*p.tenant("wxoffline"));
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().error_class == ErrorClass::kRetryable);
  CHECK_FALSE(t.error().errcode);
  const std::string described = t.error().describe();
  INFO(described);
  CHECK(described.find("connect") != std::string::npos);
  auto m = offline.metrics();
  CHECK(m.renewals_failed == 1);
  CHECK(m.failures_by_class["retryable"] == 1);
  // Nothing secret in the error or the log: the app secret, the ticket, the refresh token.
  const std::string refresh = p.server->currentRefreshToken("wxoffline");
  for (const std::string& secret : {std::string("component-secret-0001"),
                                    std::string("ticket@@@one"), refresh}) {
    CHECK(described.find(secret) == std::string::npos);
    std::lock_guard<std::mutex> lock(p.lines_mutex);
    for (const auto& line : p.lines) CHECK(line.find(secret) == std::string::npos);
  }
  // WeChat back: the refresh token was not spent, the next source gets a token.
  CHECK(p.refreshes("wxoffline") == 0);
  auto online = p.source();
  auto again = online->current(*p.tenant("wxoffline"));
  if (!again.ok()) FAIL(again.error().describe());
  CHECK(p.refreshes("wxoffline") == 1);
}

TEST_CASE("a refresh token replaced in the tenants file while the worker was stopped wins",
          "[tenants][integration]") {
  Platform p({account("wxreauth", 5)}, tenantsJson({"wxreauth"}));
  {
    auto source = p.source();
    REQUIRE(source->current(*p.tenant("wxreauth")).ok());  // rotates RT0 away, persists RT1
  }
  // The merchant re-authorized (simulated: the sandbox's current token is handed out anew) and
  // the operator wrote it into the tenants file before restarting.
  std::string fresh = p.server->currentRefreshToken("wxreauth");
  p.dir.write("tenants.json", R"({"tenants": [{"appid": "wxreauth", "authorizer_refresh_token": ")" +
                                  fresh + R"(x", "func_info": [2]}]})");
  std::vector<TenantProblem> problems;
  REQUIRE(p.registry->reloadIfChanged(&problems) == TenantRegistry::Reload::kReloaded);
  auto restarted = p.source();
  auto t = restarted->renew(*p.tenant("wxreauth"), "whatever");
  // The file's (deliberately wrong) token was used, not the persisted one: WeChat says 61023.
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().errcode == 61023);
}

namespace {

// Passes requests on, running `before_refresh` once before the first api_authorizer_token one.
class InterceptingTransport final : public HttpTransport {
 public:
  InterceptingTransport(HttpTransport& inner, std::function<void()> before_refresh)
      : inner_(inner), before_refresh_(std::move(before_refresh)) {}
  Result<HttpResponse> send(const HttpRequest& request) override {
    if (request.target.find("api_authorizer_token") != std::string::npos && before_refresh_) {
      auto hook = std::move(before_refresh_);
      before_refresh_ = nullptr;
      hook();
    }
    return inner_.send(request);
  }

 private:
  HttpTransport& inner_;
  std::function<void()> before_refresh_;
};

}  // namespace

TEST_CASE("two workers sharing the token state file pass rotated refresh tokens to each other",
          "[tenants][integration]") {
  Platform p({account("wxshared", 5)}, tenantsJson({"wxshared"}));
  // Two workers, each with its own handle on the one file, both started before any refresh:
  // each holds RT0 from the tenants file.
  TokenStateStore store_b(p.dir.file("tokens.json"));
  auto a = p.source();
  ComponentTokenSource b(ComponentSettings{"wxcomponent", "component-secret-0001",
                                           p.dir.file("ticket.txt")},
                         *p.transport, store_b, SystemClock::instance(), *p.log);
  REQUIRE(b.start().ok());
  const auto tenant = p.tenant("wxshared");

  auto t1 = a->current(*tenant);  // A refreshes: RT0 rotated away, RT1 and T1 in the file
  REQUIRE(t1.ok());
  REQUIRE(p.refreshes("wxshared") == 1);

  // B needs a token: it finds A's fresh one in the file instead of refreshing with RT0 (61023).
  auto b1 = b.current(*tenant);
  if (!b1.ok()) FAIL(b1.error().describe());
  CHECK(b1->value == t1->value);
  CHECK(p.refreshes("wxshared") == 1);
  CHECK(b.metrics().taken_from_file == 1);

  // WeChat refuses T1: A renews with RT1 (T2), then B, refused the same T1, takes T2.
  auto t2 = a->renew(*tenant, t1->value);
  REQUIRE(t2.ok());
  CHECK(t2->value != t1->value);
  auto b2 = b.renew(*tenant, t1->value);
  if (!b2.ok()) FAIL(b2.error().describe());
  CHECK(b2->value == t2->value);
  CHECK(p.refreshes("wxshared") == 2);
  CHECK(b.metrics().renewals_failed == 0);
  auto walk = testing::walkFollowers(*p.registry, b, *p.client, "wxshared");
  requireFullList(walk, "wxshared", 5);
}

TEST_CASE("a worker whose refresh token another worker rotated a moment before recovers from "
          "61023 through the file",
          "[tenants][integration]") {
  Platform p({account("wxrace", 5)}, tenantsJson({"wxrace"}));
  auto a = p.source();
  // B's refresh request leaves only after A has refreshed (and written RT1 and T1): B's read of
  // the file came before, so it sends RT0, which WeChat no longer knows.
  InterceptingTransport late(*p.transport, [&] { REQUIRE(a->current(*p.tenant("wxrace")).ok()); });
  TokenStateStore store_b(p.dir.file("tokens.json"));
  ComponentTokenSource b(ComponentSettings{"wxcomponent", "component-secret-0001",
                                           p.dir.file("ticket.txt")},
                         late, store_b, SystemClock::instance(), *p.log);
  REQUIRE(b.start().ok());
  auto token = b.current(*p.tenant("wxrace"));
  if (!token.ok()) FAIL(token.error().describe());
  auto state = p.store->load();
  REQUIRE(state.ok());
  CHECK(token->value == state->at("wxrace").access_token);  // A's token, taken from the file
  CHECK(p.refreshes("wxrace") == 2);  // A's, and B's refused one: no third
  auto m = b.metrics();
  CHECK(m.taken_from_file == 1);
  CHECK(m.renewals_failed == 1);  // the 61023, counted
  auto walk = testing::walkFollowers(*p.registry, b, *p.client, "wxrace");
  requireFullList(walk, "wxrace", 5);
}

TEST_CASE("a merchant without set 2 or 100 costs zero calls", "[tenants][integration]") {
  auto a = account("wxnoperm", 50);
  a.func_info = {1, 3};
  Platform p({a}, R"({"tenants": [{"appid": "wxnoperm", "authorizer_refresh_token": "RT0-wxnoperm",
                                   "func_info": [1, 3]}]})");
  auto source = p.source();
  auto w = testing::walkFollowers(*p.registry, *source, *p.client, "wxnoperm");
  REQUIRE(w.error.has_value());
  CHECK(w.error->error_class == ErrorClass::kPermissionDenied);
  CHECK(w.calls == 0);
  CHECK(p.server->calls("wxnoperm", sandbox::kEndpointUserGet) == 0);
  CHECK(p.refreshes("wxnoperm") == 0);
}

TEST_CASE("static tokens: a refused token fails the job unless the file has a fresh one",
          "[tenants][integration]") {
  auto a = account("wxstatic", 30000);
  a.access_tokens = {"AT-static-1", "AT-static-2"};
  a.token_expires_after_calls = 2;
  Platform p({a}, R"({"tenants": [{"appid": "wxstatic", "authorizer_access_token": "AT-static-1",
                                   "func_info": [2]}]})");
  StaticTokenSource source(*p.registry);
  auto w = testing::walkFollowers(*p.registry, source, *p.client, "wxstatic");
  REQUIRE(w.error.has_value());
  CHECK(w.error->error_class == ErrorClass::kTokenInvalid);
  CHECK(w.openids.size() == 20000);

  p.dir.write("tenants.json", R"({"tenants": [{"appid": "wxstatic", "authorizer_access_token": "AT-static-2",
                                   "func_info": [2]}]})");
  auto renewed = source.renew(*p.tenant("wxstatic"), "AT-static-1");
  REQUIRE(renewed.ok());
  CHECK(renewed->value == "AT-static-2");
}

TEST_CASE("no secret the sandbox issued appears in any log line or error", "[tenants][integration]") {
  auto expiring = account("wxleak1", 45000);
  expiring.token_expires_after_calls = 1;
  auto flaky = account("wxleak2", 25000);
  flaky.faults.script = {sandbox::FaultKind::kBusy, sandbox::FaultKind::kHttp502,
                         sandbox::FaultKind::kTruncated};
  auto revoked = account("wxleak3", 5);
  Platform p({expiring, flaky, revoked},
             tenantsJson({"wxleak1", "wxleak2"},
                         R"(,{"appid": "wxleak3", "authorizer_refresh_token": "RT-not-valid"})"));
  std::vector<std::string> outputs;
  {
    auto source = p.source();
    for (const char* appid : {"wxleak1", "wxleak2", "wxleak3", "wxmissing"}) {
      auto w = testing::walkFollowers(*p.registry, *source, *p.client, appid);
      if (w.error) outputs.push_back(w.error->describe());
    }
    p.server->setVerifyTicket("ticket@@@rotated");
    auto restarted = p.source();
    auto failed = restarted->current(*p.tenant("wxleak2"));
    if (!failed.ok()) outputs.push_back(failed.error().describe());
    p.log->info("end of traffic", {{"stats", p.server->statsJson()}});
  }
  REQUIRE(p.lines.size() >= 5);
  outputs.insert(outputs.end(), p.lines.begin(), p.lines.end());
  auto secrets = p.server->secrets();
  REQUIRE(secrets.size() >= 8);
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (const auto& out : outputs) {
      INFO("secret found in: " << out);
      CHECK(out.find(secret) == std::string::npos);
    }
  }
}

namespace {

// The token state file, with saves that fail while `failing` is set.
class FailingStore final : public TokenStore {
 public:
  explicit FailingStore(TokenStateStore& file) : file_(file) {}
  Result<std::map<std::string, TokenState>> load() const override { return file_.load(); }
  Result<bool> save(const std::string& appid, const TokenState& state) override {
    if (failing) return Error::of(ErrorClass::kRetryable, "disk full");
    return file_.save(appid, state);
  }
  std::string where() const override { return "a failing store"; }
  bool failing = false;

 private:
  TokenStateStore& file_;
};

}  // namespace

TEST_CASE("a rotation whose save failed is not undone by the older stored state at the next "
          "refresh",
          "[tenants][integration]") {
  Platform p({account("wxsave", 100)},
             R"({"tenants": [{"appid": "wxsave", "authorizer_refresh_token": "RT0-wxsave"}]})");
  FailingStore store(*p.store);
  ComponentTokenSource source(
      ComponentSettings{"wxcomponent", "component-secret-0001", p.dir.file("ticket.txt")},
      *p.transport, store, SystemClock::instance(), *p.log);
  REQUIRE(source.start().ok());
  auto tenant = p.tenant("wxsave");
  auto first = source.current(*tenant);  // RT0 -> RT1, stored
  REQUIRE(first.ok());
  store.failing = true;
  auto second = source.renew(*tenant, first->value);  // RT1 -> RT2, not stored
  REQUIRE(second.ok());
  CHECK(source.metrics().persist_failures == 1);
  store.failing = false;
  // The store still says RT1, which WeChat refuses since: the worker refreshes with RT2.
  auto third = source.renew(*tenant, second->value);
  REQUIRE(third.ok());
  CHECK(source.metrics().renewals_failed == 0);
  CHECK(p.refreshes("wxsave") == 3);
  auto stored = p.store->load();
  REQUIRE(stored.ok());
  CHECK(stored->at("wxsave").refresh_token == p.server->currentRefreshToken("wxsave"));
}
