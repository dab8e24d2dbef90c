#include "sandbox/accounts.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "sandbox/sandbox_server.h"

namespace fs = std::filesystem;
using fanpull::sandbox::Account;
using fanpull::sandbox::demoAccounts;
using fanpull::sandbox::demoComponent;
using fanpull::sandbox::FaultKind;
using fanpull::sandbox::LastPageVariant;
using fanpull::sandbox::loadSandboxFile;
using fanpull::sandbox::SandboxFile;
using fanpull::sandbox::SandboxFileError;

namespace {

// A file in a fresh temporary directory, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("fanpull-accounts-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter++) + ".json");
    std::ofstream(path_) << content;
  }
  ~TempFile() { fs::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

// The error loadSandboxFile throws for `content`; fails the test if it loads.
SandboxFileError loadError(const TempFile& file) {
  try {
    loadSandboxFile(file.path());
  } catch (const SandboxFileError& e) {
    return e;
  }
  FAIL("the file loaded without error");
  return SandboxFileError("", "", "");
}

}  // namespace

TEST_CASE("a complete accounts file loads every key", "[sandbox][unit]") {
  TempFile file(R"({
    "component": {"appid": "wxcomp", "appsecret": "sec", "verify_ticket": "tick"},
    "accounts": [
      {"appid": "wxa", "followers": 23000, "func_info": [1, 100], "access_tokens": ["t1", "t2"],
       "refresh_token": "r1", "daily_quota": 500, "minute_limit": 60, "last_page_variant": "empty",
       "errcode": 61003, "token_expires_after_calls": 3, "latency_ms": 5, "jitter_ms": 7,
       "faults": {"busy": 0.1, "http502": 0.2, "truncated": 0.05, "reset": 0.05, "delay": 0.1,
                  "delay_ms": 250, "script": ["ok", "busy", "http502", "truncated", "reset", "delay"]}},
      {"appid": "wxb"}
    ]})");
  const SandboxFile f = loadSandboxFile(file.path());
  CHECK(f.component.appid == "wxcomp");
  CHECK(f.component.appsecret == "sec");
  CHECK(f.component.verify_ticket == "tick");
  REQUIRE(f.accounts.size() == 2);
  const Account& a = f.accounts[0];
  CHECK(a.appid == "wxa");
  CHECK(a.followers == 23000);
  CHECK(a.func_info == std::vector<int>{1, 100});
  CHECK(a.access_tokens == std::vector<std::string>{"t1", "t2"});
  CHECK(a.refresh_token == "r1");
  CHECK(a.daily_quota == 500);
  CHECK(a.minute_limit == 60);
  CHECK(a.last_page_variant == LastPageVariant::kEmpty);
  CHECK(a.errcode == 61003);
  CHECK(a.token_expires_after_calls == 3);
  CHECK(a.latency_ms == 5);
  CHECK(a.jitter_ms == 7);
  CHECK(a.faults.busy == Approx(0.1));
  CHECK(a.faults.http502 == Approx(0.2));
  CHECK(a.faults.delay_ms == 250);
  CHECK(a.faults.script == std::vector<FaultKind>{FaultKind::kOk, FaultKind::kBusy,
                                                  FaultKind::kHttp502, FaultKind::kTruncated,
                                                  FaultKind::kReset, FaultKind::kDelay});
  const Account& b = f.accounts[1];
  CHECK(b.followers == 0);
  CHECK(b.func_info == std::vector<int>{2});
  CHECK(b.last_page_variant == LastPageVariant::kRepeat);
  CHECK(b.errcode == 0);
  CHECK_FALSE(b.latency_ms.has_value());
}

TEST_CASE("an accounts file without a component gets the demo component", "[sandbox][unit]") {
  TempFile file(R"({"accounts": []})");
  const SandboxFile f = loadSandboxFile(file.path());
  CHECK(f.component.appid == demoComponent().appid);
  CHECK(f.accounts.empty());
}

TEST_CASE("an unknown key in an account is an error naming the file and the key",
          "[sandbox][unit]") {
  TempFile file(R"({"accounts": [{"appid": "wxa", "folowers": 3}]})");
  const SandboxFileError e = loadError(file);
  CHECK(e.file() == file.path());
  CHECK(e.key() == "accounts[0].folowers");
  CHECK(e.reason() == "unknown key");
  CHECK(std::string(e.what()) == file.path() + ": accounts[0].folowers: unknown key");
}

TEST_CASE("an unknown top-level or fault key is an error", "[sandbox][unit]") {
  TempFile top(R"({"accounts": [], "acounts": []})");
  CHECK(loadError(top).key() == "acounts");
  TempFile fault(R"({"accounts": [{"appid": "wxa", "faults": {"bussy": 0.5}}]})");
  CHECK(loadError(fault).key() == "accounts[0].faults.bussy");
}

TEST_CASE("a duplicate appid is an error naming the second account", "[sandbox][unit]") {
  TempFile file(R"({"accounts": [{"appid": "wxa"}, {"appid": "wxb"}, {"appid": "wxa"}]})");
  const SandboxFileError e = loadError(file);
  CHECK(e.file() == file.path());
  CHECK(e.key() == "accounts[2].appid");
  CHECK_THAT(e.reason(), Catch::Contains("duplicate appid") && Catch::Contains("accounts[0]"));
}

TEST_CASE("a value of the wrong type is an error saying what was expected", "[sandbox][unit]") {
  TempFile file(R"({"accounts": [{"appid": "wxa", "followers": "23000"}]})");
  const SandboxFileError e = loadError(file);
  CHECK(e.key() == "accounts[0].followers");
  CHECK_THAT(e.reason(), Catch::Contains("expected an integer") && Catch::Contains("a string"));
  CHECK_THAT(std::string(e.what()), Catch::StartsWith(file.path() + ": accounts[0].followers: "));
}

TEST_CASE("out-of-range and malformed values are errors", "[sandbox][unit]") {
  TempFile negative(R"({"accounts": [{"appid": "wxa", "followers": -1}]})");
  CHECK(loadError(negative).key() == "accounts[0].followers");
  TempFile variant(R"({"accounts": [{"appid": "wxa", "last_page_variant": "none"}]})");
  CHECK(loadError(variant).key() == "accounts[0].last_page_variant");
  TempFile prob(R"({"accounts": [{"appid": "wxa", "faults": {"busy": 1.5}}]})");
  CHECK(loadError(prob).key() == "accounts[0].faults.busy");
  TempFile script(R"({"accounts": [{"appid": "wxa", "faults": {"script": ["ok", "boom"]}}]})");
  CHECK(loadError(script).key() == "accounts[0].faults.script[1]");
  TempFile noAppid(R"({"accounts": [{"followers": 3}]})");
  CHECK(loadError(noAppid).key() == "accounts[0].appid");
  TempFile noAccounts(R"({"component": {"appid": "a", "appsecret": "b", "verify_ticket": "c"}})");
  CHECK(loadError(noAccounts).key() == "accounts");
  TempFile component(R"({"component": {"appid": "a", "appsecret": "b"}, "accounts": []})");
  CHECK(loadError(component).key() == "component.verify_ticket");
}

TEST_CASE("a token shared by two accounts is an error that does not print the token",
          "[sandbox][unit]") {
  TempFile file(R"({"accounts": [{"appid": "wxa", "access_tokens": ["s3cr3t-tok"]},
                                  {"appid": "wxb", "access_tokens": ["s3cr3t-tok"]}]})");
  const SandboxFileError e = loadError(file);
  CHECK(e.key() == "accounts[1].access_tokens[0]");
  CHECK_THAT(std::string(e.what()), !Catch::Contains("s3cr3t-tok"));
}

TEST_CASE("a file that is missing or not JSON is an error naming the file", "[sandbox][unit]") {
  const std::string missing =
      (fs::temp_directory_path() / "fanpull-no-such-accounts.json").string();
  try {
    loadSandboxFile(missing);
    FAIL("loaded a missing file");
  } catch (const SandboxFileError& e) {
    CHECK(e.file() == missing);
    CHECK_THAT(e.reason(), Catch::Contains("cannot open"));
  }
  TempFile garbage("{\"accounts\": [");
  const SandboxFileError e = loadError(garbage);
  CHECK(e.file() == garbage.path());
  CHECK_THAT(e.reason(), Catch::Contains("invalid JSON"));
}

TEST_CASE("a sandbox server refuses accounts built in code with a duplicate appid",
          "[sandbox][unit]") {
  fanpull::sandbox::SandboxOptions options;
  options.accounts.resize(2);
  options.accounts[0].appid = "wxa";
  options.accounts[1].appid = "wxa";
  CHECK_THROWS_AS(fanpull::sandbox::SandboxServer(options), SandboxFileError);
}

TEST_CASE("the demo accounts cover the sizes and misbehaviours the demo needs", "[sandbox][unit]") {
  const std::vector<Account> accounts = demoAccounts();
  CHECK(accounts.size() >= 18);
  CHECK(accounts.size() <= 24);
  REQUIRE_NOTHROW(fanpull::sandbox::validateAccounts(accounts, "<demo>"));
  std::set<int64_t> sizes;
  bool invalidAppid = false, noPermission = false, quota = false, expiring = false, flaky = false,
       emptyVariant = false;
  for (const Account& a : accounts) {
    INFO(a.appid);
    CHECK(a.appid.size() == 18);
    CHECK(a.appid.rfind("wx", 0) == 0);
    CHECK(a.followers >= 0);
    CHECK(a.followers <= 250000);
    CHECK(a.access_tokens.size() == 1);
    CHECK_FALSE(a.refresh_token.empty());
    sizes.insert(a.followers);
    invalidAppid |= a.errcode == 40013;
    noPermission |= a.errcode == 0 && std::none_of(a.func_info.begin(), a.func_info.end(),
                                                   [](int id) { return id == 2 || id == 100; });
    quota |= a.daily_quota > 0 && a.daily_quota * 10000 < a.followers;
    expiring |=
        a.token_expires_after_calls > 0 && a.token_expires_after_calls * 10000 < a.followers;
    flaky |= a.faults.busy > 0 && a.faults.http502 > 0;
    emptyVariant |= a.last_page_variant == LastPageVariant::kEmpty;
  }
  CHECK(sizes.count(0) == 1);
  CHECK(sizes.count(250000) == 1);
  CHECK(invalidAppid);
  CHECK(noPermission);
  CHECK(quota);
  CHECK(expiring);
  CHECK(flaky);
  CHECK(emptyVariant);
}
