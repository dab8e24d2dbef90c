#include <catch2/catch.hpp>

#include <algorithm>

#include "support/temp_dir.h"
#include "tenants/tenant_registry.h"
#include "tenants/tenants_file.h"

using namespace fanpull;

namespace {

std::vector<TenantProblem> problemsOf(const std::string& text, bool component = true) {
  auto r = parseTenants(text, "/etc/fanpull/tenants.json", {component});
  REQUIRE(std::holds_alternative<std::vector<TenantProblem>>(r));
  return std::get<std::vector<TenantProblem>>(r);
}

bool has(const std::vector<TenantProblem>& ps, const std::string& tenant, const std::string& key,
         const std::string& reason_part) {
  return std::any_of(ps.begin(), ps.end(), [&](const TenantProblem& p) {
    return p.file == "/etc/fanpull/tenants.json" && p.tenant == tenant && p.key == key &&
           p.reason.find(reason_part) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("a tenants file is read with tokens, permission sets and limits", "[tenants][unit]") {
  auto r = parseTenants(R"({"tenants": [
      {"appid": "wx1234567890abcdef", "authorizer_access_token": "AT-1",
       "authorizer_refresh_token": "RT-1", "func_info": [1, 2, 15],
       "rate_limit": {"requests_per_second": 2, "burst": 3}},
      {"appid": "wxb", "authorizer_refresh_token": "RT-2",
       "func_info": [{"funcscope_category": {"id": 100}}]}
    ]})",
                        "tenants.json", {true});
  REQUIRE(std::holds_alternative<std::shared_ptr<const TenantSet>>(r));
  auto set = std::get<std::shared_ptr<const TenantSet>>(r);
  REQUIRE(set->size() == 2);
  auto a = set->find("wx1234567890abcdef");
  REQUIRE(a);
  CHECK(a->authorizer_access_token == "AT-1");
  CHECK(a->authorizer_refresh_token == "RT-1");
  CHECK(*a->func_info == std::vector<int>{1, 2, 15});
  RateLimit limit = a->rateLimit(RateLimit{5, 5, 500});
  CHECK(limit.requests_per_second == 2);
  CHECK(limit.burst == 3);
  CHECK(limit.daily_calls == 500);  // not given: the config's default
  auto b = set->find("wxb");
  REQUIRE(b);
  CHECK(*b->func_info == std::vector<int>{100});
  CHECK_FALSE(set->find("wxnope"));
}

TEST_CASE("every problem of a tenants file names the file, tenant, key and reason",
          "[tenants][unit]") {
  auto ps = problemsOf(R"({"tenants": [
      {"appid": "wxa", "authorizer_access_token": "x"},
      {"appid": "wxa", "authorizer_access_token": "y"},
      {"appid": "wxc"},
      {"appid": "wxd", "authorizer_access_token": "z", "func_info": [2, "x"]},
      {"appid": "wxe", "authorizer_access_token": "z", "func_info": 2},
      {"appid": "wxf", "authorizer_access_token": "z", "rate_limit": {"requests_per_second": -1, "burst": 0, "daily_calls": -5, "rps": 1}},
      {"authorizer_access_token": "z"},
      {"appid": "bad appid!", "authorizer_access_token": "z"},
      {"appid": "wxg", "authorizer_access_token": "z", "fun_info": [2]},
      {"appid": "wxh", "authorizer_access_token": ""},
      {"appid": "wxi", "authorizer_access_token": "z", "rate_limit": {"requests_per_second": 1e-12}}
    ], "extra": 1})");
  CHECK(has(ps, "wxi", "rate_limit.requests_per_second", "expected a number from 0.001 to 1000000"));
  CHECK(has(ps, "wxa", "appid", "duplicate appid"));
  CHECK(has(ps, "wxc", "authorizer_access_token", "missing"));
  CHECK(has(ps, "wxd", "func_info", "element 1 is not a permission set id"));
  CHECK(has(ps, "wxe", "func_info", "expected an array"));
  CHECK(has(ps, "wxf", "rate_limit.requests_per_second", "expected a number from 0.001 to 1000000"));
  CHECK(has(ps, "wxf", "rate_limit.burst", "from 1"));
  CHECK(has(ps, "wxf", "rate_limit.daily_calls", ">= 0"));
  CHECK(has(ps, "wxf", "rate_limit.rps", "unknown key"));
  CHECK(has(ps, "tenants[6]", "appid", "required"));
  CHECK(has(ps, "tenants[7]", "appid", "[A-Za-z0-9_-]"));
  CHECK(has(ps, "wxg", "fun_info", "unknown key"));
  CHECK(has(ps, "wxh", "authorizer_access_token", "non-empty string"));
  CHECK(has(ps, "", "extra", "unknown key"));
  CHECK(ps.size() == 14);
  CHECK(ps[0].describe().rfind("/etc/fanpull/tenants.json: ", 0) == 0);
}

TEST_CASE("the tenants list is read element by element, whatever each element is",
          "[tenants][unit]") {
  // Each tenant is read as the parser finishes it: elements that are not objects, and objects
  // nested deeper, are problems of their own element and do not shift the others' names.
  auto ps = problemsOf(R"({"tenants": [
      7, {"appid": "wxa", "authorizer_access_token": "x", "rate_limit": {"burst": {"a": 1}}},
      [{"appid": "wxb"}], "wxc", {"appid": "wxd"}], "other": {"tenants": [1]}})");
  CHECK(has(ps, "tenants[0]", "", "expected an object"));
  CHECK(has(ps, "wxa", "rate_limit.burst", "from 1"));
  CHECK(has(ps, "tenants[2]", "", "expected an object"));
  CHECK(has(ps, "tenants[3]", "", "expected an object"));
  CHECK(has(ps, "wxd", "authorizer_access_token", "missing"));
  CHECK(has(ps, "", "other", "unknown key"));
  CHECK(ps.size() == 6);

  CHECK(has(problemsOf(R"({"tenants": {"wxa": {"appid": "wxa"}}})"), "", "tenants",
            "required: an array"));
  CHECK(has(problemsOf(R"([{"tenants": []}])"), "", "", "expected a JSON object"));
  auto empty = parseTenants(R"({"tenants": []})", "t.json", {false});
  REQUIRE(std::holds_alternative<std::shared_ptr<const TenantSet>>(empty));
  CHECK(std::get<std::shared_ptr<const TenantSet>>(empty)->size() == 0);
}

TEST_CASE("a refresh token without the component configured is a problem", "[tenants][unit]") {
  auto ps = problemsOf(R"({"tenants": [{"appid": "wxa", "authorizer_refresh_token": "r"}]})",
                       /*component=*/false);
  CHECK(has(ps, "wxa", "authorizer_refresh_token", "component"));
}

TEST_CASE("a tenants file that is not JSON is one problem naming the file", "[tenants][unit]") {
  auto ps = problemsOf("{\"tenants\": [");
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason.rfind("not valid JSON", 0) == 0);
}

TEST_CASE("the registry reloads a changed file and keeps the last good one on a broken edit",
          "[tenants][unit]") {
  testing::TempDir dir;
  std::string path = dir.write("tenants.json", R"({"tenants": [
      {"appid": "wxa", "authorizer_access_token": "A1", "func_info": [2]},
      {"appid": "wxb", "authorizer_access_token": "B1", "func_info": [2]}]})");
  TenantRegistry registry(path, {false});
  REQUIRE(registry.load().empty());
  auto in_flight = registry.admit("wxa");
  REQUIRE(in_flight.ok());

  std::vector<TenantProblem> problems;
  CHECK(registry.reloadIfChanged(&problems) == TenantRegistry::Reload::kUnchanged);

  // A new token for wxa, wxb removed, wxc added.
  dir.write("tenants.json", R"({"tenants": [
      {"appid": "wxa", "authorizer_access_token": "A2-new", "func_info": [2]},
      {"appid": "wxc", "authorizer_access_token": "C1", "func_info": [100]}]})");
  CHECK(registry.reloadIfChanged(&problems) == TenantRegistry::Reload::kReloaded);
  CHECK(problems.empty());
  CHECK((*in_flight)->authorizer_access_token == "A1");  // work in flight keeps what it started with
  CHECK((*registry.admit("wxa"))->authorizer_access_token == "A2-new");
  REQUIRE(registry.admit("wxc").ok());
  auto removed = registry.admit("wxb");
  REQUIRE_FALSE(removed.ok());
  CHECK(removed.error().error_class == ErrorClass::kInvalidTenant);

  // A broken edit: reported once, the last good file stays in force.
  dir.write("tenants.json", R"({"tenants": [{"appid": "wxa", "func_info": "all"}]})");
  CHECK(registry.reloadIfChanged(&problems) == TenantRegistry::Reload::kRejected);
  CHECK_FALSE(problems.empty());
  CHECK((*registry.admit("wxa"))->authorizer_access_token == "A2-new");
  REQUIRE(registry.admit("wxc").ok());
}

TEST_CASE("a merchant without set 2 or 100 is refused at admission, before any call",
          "[tenants][unit]") {
  testing::TempDir dir;
  std::string path = dir.write("tenants.json", R"({"tenants": [
      {"appid": "wxnoperm", "authorizer_access_token": "T", "func_info": [1, 3]},
      {"appid": "wxundeclared", "authorizer_access_token": "T"}]})");
  TenantRegistry registry(path, {false});
  REQUIRE(registry.load().empty());
  auto denied = registry.admit("wxnoperm");
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().error_class == ErrorClass::kPermissionDenied);
  CHECK(registry.admit("wxundeclared").ok());  // not declared: WeChat decides
}

TEST_CASE("a tenants file with an overflowing number is a problem and not a crash",
          "[tenants][unit]") {
  auto ps = problemsOf(R"({"tenants": [{"appid": "wxa", "authorizer_access_token": "t",
                                        "func_info": [1e999999]}]})");
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].reason.rfind("not valid JSON", 0) == 0);
}
