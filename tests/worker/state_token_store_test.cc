// Merchants' tokens in the state topic: sealed records that only the state key opens, restored
// with their partition, written (and acknowledged) before save() returns, a wrong key refused
// with both key ids named, and a previous key's records sealed again with the current one.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "worker/state_store.h"
#include "worker/state_token_store.h"

using fanpull::Result;
using fanpull::SecretBox;
using fanpull::sealTokenState;
using fanpull::StateTokenStore;
using fanpull::tokenStateKey;
using fanpull::TokenState;

namespace {

std::string keyOf(char fill) { return std::string(SecretBox::kKeySize, fill); }

TokenState tokens(const std::string& n, int64_t updated_ms) {
  return TokenState{"refreshtoken@@@R" + n, "ACCESS-" + n, 1795795200000 + 7200000, updated_ms,
                    "refreshtoken@@@FILE"};
}

struct Written {
  int32_t partition;
  std::string key, value;
};

}  // namespace

TEST_CASE("a merchant's tokens are written sealed to its partition before save returns",
          "[unit][worker]") {
  StateTokenStore store{SecretBox(keyOf('k'))};
  std::vector<Written> written;
  store.attach([&](int32_t partition, const std::string& key, const std::string& value) {
    written.push_back({partition, key, value});
    return Result<bool>(true);
  });
  REQUIRE(store.restore(3, {}).ok());
  // No partition known for the merchant yet: nothing is written, and save says so.
  CHECK_FALSE(store.save("wxA", tokens("1", 10)).ok());
  CHECK(written.empty());

  store.place("wxA", 3);
  REQUIRE(store.save("wxA", tokens("1", 10)).ok());
  REQUIRE(written.size() == 1);
  CHECK(written[0].partition == 3);
  CHECK(written[0].key == tokenStateKey("wxA"));
  for (const char* secret : {"R1", "ACCESS-1", "FILE", "refreshtoken"}) {
    CHECK(written[0].value.find(secret) == std::string::npos);
  }
  CHECK(nlohmann::json::parse(written[0].value)["key_id"] == SecretBox(keyOf('k')).keyId());
  auto found = store.find("wxA");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->refresh_token == "refreshtoken@@@R1");

  // A write the broker did not acknowledge: save fails and what is known stays as it was.
  store.attach([](int32_t, const std::string&, const std::string&) {
    return Result<bool>(fanpull::Error::of(fanpull::ErrorClass::kRetryable, "timed out"));
  });
  CHECK_FALSE(store.save("wxA", tokens("2", 20)).ok());
  CHECK((*store.find("wxA"))->refresh_token == "refreshtoken@@@R1");
}

TEST_CASE("another worker restores a merchant's tokens with its partition, and forgets them "
          "when the partition goes",
          "[unit][worker]") {
  SecretBox key(keyOf('k'));
  std::map<std::string, std::string> records = {
      {"wxA", sealTokenState(key, "wxA", tokens("A", 10))},
      {"wxB", sealTokenState(key, "wxB", tokens("B", 20))}};
  StateTokenStore store{SecretBox(keyOf('k'))};
  auto restored = store.restore(5, records);
  REQUIRE(restored.ok());
  CHECK(restored->merchants == 2);
  CHECK(restored->resealed.empty());
  CHECK((*store.find("wxB"))->access_token == "ACCESS-B");
  CHECK(store.load()->size() == 2);
  store.forget(5);
  CHECK_FALSE(store.find("wxA")->has_value());
  CHECK(store.load()->empty());
}

TEST_CASE("a wrong state key is refused with both key ids, never read as tokens",
          "[unit][worker]") {
  SecretBox written_with(keyOf('k'));
  std::map<std::string, std::string> records = {
      {"wxA", sealTokenState(written_with, "wxA", tokens("A", 10))}};
  StateTokenStore store{SecretBox(keyOf('w'))};
  auto restored = store.restore(0, records);
  REQUIRE_FALSE(restored.ok());
  const std::string cause = restored.error().cause;
  CHECK(cause.find(written_with.keyId()) != std::string::npos);
  CHECK(cause.find(SecretBox(keyOf('w')).keyId()) != std::string::npos);
  CHECK(cause.find("wxA") != std::string::npos);
  CHECK_FALSE(store.find("wxA")->has_value());

  // A record moved under another merchant's key does not open either.
  StateTokenStore right{SecretBox(keyOf('k'))};
  auto moved = right.restore(0, {{"wxB", records["wxA"]}});
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.error().cause.find("changed since it was sealed") != std::string::npos);
}

TEST_CASE("records sealed with the previous state key open and are sealed again with the "
          "current one",
          "[unit][worker]") {
  SecretBox old_key(keyOf('o'));
  std::map<std::string, std::string> records = {
      {"wxA", sealTokenState(old_key, "wxA", tokens("A", 10))},
      {"wxB", sealTokenState(SecretBox(keyOf('n')), "wxB", tokens("B", 20))}};
  StateTokenStore store{SecretBox(keyOf('n')), SecretBox(keyOf('o'))};
  auto restored = store.restore(1, records);
  REQUIRE(restored.ok());
  CHECK(restored->merchants == 2);
  REQUIRE(restored->resealed.size() == 1);
  CHECK(restored->resealed[0].first == tokenStateKey("wxA"));
  // What is written back opens with the new key alone.
  StateTokenStore next{SecretBox(keyOf('n'))};
  auto reopened = next.restore(1, {{"wxA", restored->resealed[0].second}});
  REQUIRE(reopened.ok());
  CHECK((*next.find("wxA"))->refresh_token == "refreshtoken@@@RA");
}
