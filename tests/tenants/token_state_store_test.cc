#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "support/temp_dir.h"
#include "tenants/token_state_store.h"

using namespace fanpull;

TEST_CASE("the token state file round-trips and is mode 0600", "[tenants][unit]") {
  testing::TempDir dir;
  TokenStateStore store(dir.file("tokens.json"));
  auto empty = store.load();
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  REQUIRE(store.save("wxa", {"RT-a", "AT-a", 1000, 10, ""}).ok());
  REQUIRE(store.save("wxb", {"RT-b", "AT-b", 2000, 20, ""}).ok());
  auto loaded = TokenStateStore(dir.file("tokens.json")).load();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 2);
  CHECK(loaded->at("wxa").refresh_token == "RT-a");
  CHECK(loaded->at("wxb").access_token == "AT-b");
  CHECK(loaded->at("wxb").expires_at_ms == 2000);
  struct stat st {};
  REQUIRE(::stat(dir.file("tokens.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("an older state never overwrites a newer one", "[tenants][unit]") {
  testing::TempDir dir;
  TokenStateStore store(dir.file("tokens.json"));
  REQUIRE(store.save("wxa", {"RT-new", "AT-new", 0, 200, ""}).ok());
  REQUIRE(store.save("wxa", {"RT-old", "AT-old", 0, 100, ""}).ok());
  CHECK(store.load()->at("wxa").refresh_token == "RT-new");
}

TEST_CASE("concurrent writers, threads and processes, never lose an update", "[tenants][unit]") {
  testing::TempDir dir;
  const std::string path = dir.file("tokens.json");
  constexpr int kPerWriter = 25;
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      TokenStateStore store(path);
      for (int i = 0; i < kPerWriter; ++i) {
        if (!store.save("wxp" + std::to_string(p) + "-" + std::to_string(i), {"R", "A", 0, 1, ""}).ok()) _exit(1);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      TokenStateStore store(path);
      for (int i = 0; i < kPerWriter; ++i) {
        (void)store.save("wxt" + std::to_string(t) + "-" + std::to_string(i), {"R", "A", 0, 1, ""});
      }
    });
  }
  for (auto& t : threads) t.join();
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto all = TokenStateStore(path).load();
  REQUIRE(all.ok());
  CHECK(all->size() == 5 * kPerWriter);
}

TEST_CASE("a corrupt token state file is reported, then kept aside on the next write",
          "[tenants][unit]") {
  testing::TempDir dir;
  std::string path = dir.write("tokens.json", "{not json");
  TokenStateStore store(path);
  auto loaded = store.load();
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().cause.find(path) != std::string::npos);
  REQUIRE(store.save("wxa", {"R", "A", 0, 1, ""}).ok());
  CHECK(store.load().ok());
}

TEST_CASE("a token state file with a field of the wrong type is a clear error, not an abort",
          "[tenants][unit]") {
  testing::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"version": 1, "authorizers": {"wxa": {"refresh_token": 42}}})",
       "entry wxa: refresh_token is not a string"},
      {R"({"version": 1, "authorizers": {"wxa": {"access_token": ["SECRET-A"]}}})",
       "entry wxa: access_token is not a string"},
      {R"({"version": 1, "authorizers": {"wxa": {"expires_at_ms": "soon"}}})",
       "entry wxa: expires_at_ms is not an integer"},
      {R"({"version": 1, "authorizers": {"wxa": {"updated_at_ms": 1.5}}})",
       "entry wxa: updated_at_ms is not an integer"},
      {R"({"version": 1, "authorizers": {"wxa": {"file_refresh_token": null}}})",
       "entry wxa: file_refresh_token is not a string"},
  };
  for (const auto& [text, says] : cases) {
    INFO(text);
    std::string path = dir.write("tokens.json", text);
    auto loaded = TokenStateStore(path).load();
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().cause == path + ": " + says);
    CHECK(loaded.error().cause.find("SECRET-A") == std::string::npos);
  }
}

TEST_CASE("a store that kept the file it read or wrote still sees every change made since",
          "[tenants][unit]") {
  testing::TempDir dir;
  TokenStateStore a(dir.file("tokens.json"));
  TokenStateStore b(dir.file("tokens.json"));
  REQUIRE(a.save("wxa", {"RT-1", "AT-1", 1000, 1, ""}).ok());
  REQUIRE(b.load().ok());
  CHECK(b.load()->at("wxa").refresh_token == "RT-1");  // kept from its last read
  REQUIRE(a.save("wxa", {"RT-2", "AT-2", 2000, 2, ""}).ok());
  CHECK(b.load()->at("wxa").refresh_token == "RT-2");  // another writer's version
  REQUIRE(b.save("wxb", {"RT-b", "AT-b", 3000, 3, ""}).ok());
  auto seen_by_a = a.load();
  REQUIRE(seen_by_a.ok());
  CHECK(seen_by_a->at("wxa").refresh_token == "RT-2");
  CHECK(seen_by_a->at("wxb").refresh_token == "RT-b");
  // Rewritten in place by hand (same file, other content): seen too.
  dir.write("tokens.json",
            R"({"version": 1, "authorizers": {"wxa": {"refresh_token": "RT-hand", "access_token": "",
                "expires_at_ms": 0, "updated_at_ms": 9, "file_refresh_token": ""}}})");
  auto by_hand = a.load();
  REQUIRE(by_hand.ok());
  CHECK(by_hand->at("wxa").refresh_token == "RT-hand");
  CHECK(by_hand->count("wxb") == 0);
}
