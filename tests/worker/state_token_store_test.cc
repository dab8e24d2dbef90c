// Merchants' tokens in the state topic: sealed records that only the state key opens, restored
// with their partition, written (and acknowledged) before save() returns, a wrong key refused
// with both key ids named, and a previous key's records sealed again with the current one.
#include <catch2/catch.hpp>

#include <algorithm>

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
  // Whole secrets, or parts of them with a character base64 never writes: a two-letter part
  // ("R1") turns up by chance in a random nonce's base64 about once in fifteen runs.
  for (const char* secret : {"refreshtoken@@@R1", "@@@R1", "ACCESS-1", "@@@FILE", "refreshtoken"}) {
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

}

TEST_CASE("a damaged token record, or one moved under another merchant's key, is dropped alone",
          "[unit][worker]") {
  SecretBox key(keyOf('k'));
  StateTokenStore store{SecretBox(keyOf('k'))};
  std::string damaged = sealTokenState(key, "wxC", tokens("C", 30));
  damaged[damaged.size() - 5] = damaged[damaged.size() - 5] == 'A' ? 'B' : 'A';
  auto restored = store.restore(0, {{"wxA", sealTokenState(key, "wxA", tokens("A", 10))},
                                    {"wxB", sealTokenState(key, "wxA", tokens("A", 10))},
                                    {"wxC", damaged},
                                    {"wxD", "not a record"}});
  REQUIRE(restored.ok());
  CHECK(restored->merchants == 1);
  REQUIRE(restored->unreadable.size() == 3);
  CHECK(restored->unreadable[0].first == "wxB");
  CHECK(restored->unreadable[0].second.find("changed or damaged") != std::string::npos);
  CHECK((*store.find("wxA"))->access_token == "ACCESS-A");
  CHECK_FALSE(store.find("wxB")->has_value());
}

namespace {

// State partitions as vectors of (key, value), read and written like the worker does.
struct Log {
  std::map<int32_t, std::vector<std::pair<std::string, std::string>>> partitions;
  void attach(StateTokenStore& store) {
    store.attach(
        [this](int32_t partition, const std::string& key, const std::string& value) {
          partitions[partition].emplace_back(key, value);
          return Result<bool>(true);
        },
        [this](int32_t partition, int64_t from, const StateTokenStore::Visit& visit) {
          auto& records = partitions[partition];
          int64_t n = 0;
          for (int64_t i = std::max<int64_t>(from, 0); i < static_cast<int64_t>(records.size());
               ++i, ++n) {
            visit(i, records[static_cast<size_t>(i)].first,
                  records[static_cast<size_t>(i)].second);
          }
          return Result<int64_t>(n);
        });
  }
};

}  // namespace

TEST_CASE("the first worker's key becomes the fleet's, and a worker with another key is told "
          "before it writes anything",
          "[unit][worker]") {
  Log log;
  StateTokenStore first{SecretBox(keyOf('k'))};
  log.attach(first);
  auto checked = first.checkKey();
  REQUIRE(checked.ok());
  CHECK(checked->empty());
  REQUIRE(log.partitions[0].size() == 1);  // the key check, sealed
  CHECK(log.partitions[0][0].first == "key/check");

  StateTokenStore same{SecretBox(keyOf('k'))};
  log.attach(same);
  CHECK(same.checkKey()->empty());
  CHECK(log.partitions[0].size() == 1);

  StateTokenStore wrong{SecretBox(keyOf('w'))};
  log.attach(wrong);
  auto refused = wrong.checkKey();
  REQUIRE(refused.ok());
  CHECK(refused->find(SecretBox(keyOf('k')).keyId()) != std::string::npos);
  CHECK(refused->find(SecretBox(keyOf('w')).keyId()) != std::string::npos);
  CHECK(log.partitions[0].size() == 1);  // nothing written

  // Rotation: a worker with the new key and the old one as previous makes the new one the
  // fleet's; a worker with only the old key is then told.
  StateTokenStore rotated{SecretBox(keyOf('n')), SecretBox(keyOf('k'))};
  log.attach(rotated);
  CHECK(rotated.checkKey()->empty());
  CHECK(log.partitions[0].size() == 2);
  StateTokenStore stale{SecretBox(keyOf('k'))};
  log.attach(stale);
  CHECK_FALSE(stale.checkKey()->empty());
}

TEST_CASE("a merchant's record is read again from its partition, a newer owner's rotation "
          "included, and the shared component token is the newest",
          "[unit][worker]") {
  Log log;
  StateTokenStore store{SecretBox(keyOf('k'))};
  log.attach(store);
  REQUIRE(store.restore(2, {}).ok());
  store.place("wxA", 2);
  REQUIRE(store.save("wxA", tokens("1", 10)).ok());
  // Another worker writes a newer rotation after this one restored the partition.
  log.partitions[2].emplace_back(tokenStateKey("wxA"),
                                 sealTokenState(SecretBox(keyOf('k')), "wxA", tokens("2", 20)));
  CHECK((*store.find("wxA"))->refresh_token == "refreshtoken@@@R1");
  REQUIRE(store.readAgain("wxA").ok());
  CHECK((*store.find("wxA"))->refresh_token == "refreshtoken@@@R2");

  CHECK_FALSE(store.latest("wxcomponent")->has_value());
  REQUIRE(store.share("wxcomponent", {"COMPONENT-1", 1000}).ok());
  REQUIRE(store.share("wxcomponent", {"COMPONENT-2", 2000}).ok());
  auto shared = store.latest("wxcomponent");
  REQUIRE(shared.ok());
  REQUIRE(shared->has_value());
  CHECK((*shared)->token == "COMPONENT-2");
  CHECK((*shared)->expires_at_ms == 2000);
  for (const auto& [key, value] : log.partitions[0]) {
    CHECK(value.find("COMPONENT") == std::string::npos);
  }
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
