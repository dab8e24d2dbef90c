#include "worker/state_token_store.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/worker_config.h"
#include "core/redactor.h"
#include "kafka/kafka_types.h"
#include "worker/state_store.h"

namespace fanpull {
namespace {

Error tokenError(const std::string& what) { return Error::of(ErrorClass::kRetryable, what); }

constexpr std::string_view kComponentKeyPrefix = "component/";
constexpr std::string_view kKeyCheckKey = "key/check";

// {"key_id", "sealed"} of `plain` sealed with `box` for `associated`; "" when it cannot be sealed.
std::string sealedRecord(const SecretBox& box, const std::string& plain,
                         const std::string& associated) {
  const std::string sealed = box.seal(plain, associated);
  if (sealed.empty()) return {};
  return nlohmann::json{{"key_id", box.keyId()}, {"sealed", encodeBase64(sealed)}}.dump();
}

}  // namespace

std::string sealTokenState(const SecretBox& box, const std::string& appid,
                           const TokenState& state) {
  return sealedRecord(box, encodeTokenState(state), appid);
}

StateTokenStore::StateTokenStore(SecretBox key, std::optional<SecretBox> previous)
    : key_(std::move(key)), previous_(std::move(previous)) {}

void StateTokenStore::attach(Write write, Read read) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_ = std::move(write);
  read_ = std::move(read);
}

std::optional<std::string> StateTokenStore::openSealed(const std::string& value,
                                                      const std::string& associated,
                                                      Sealing* sealing) const {
  *sealing = Sealing{};
  nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("key_id") || !j["key_id"].is_string() ||
      !j.contains("sealed") || !j["sealed"].is_string()) {
    sealing->known_key = true;  // not a sealed record at all: damaged, not another key's
    return std::nullopt;
  }
  sealing->key_id = j["key_id"].get<std::string>();
  const SecretBox* box = sealing->key_id == key_.keyId() ? &key_
                         : previous_ && sealing->key_id == previous_->keyId() ? &*previous_
                                                                              : nullptr;
  if (!box) return std::nullopt;
  sealing->known_key = true;
  sealing->by_previous = box != &key_;
  std::optional<std::string> sealed = decodeBase64(j["sealed"].get<std::string>());
  if (!sealed) return std::nullopt;
  return box->open(*sealed, associated);
}

std::optional<TokenState> StateTokenStore::openRecord(const std::string& appid,
                                                     const std::string& value,
                                                     Sealing* sealing) const {
  std::optional<std::string> plain = openSealed(value, appid, sealing);
  if (!plain) return std::nullopt;
  Result<TokenState> state = parseTokenState(*plain, "the token record of " + appid);
  if (!state.ok()) return std::nullopt;
  return std::move(state).value();
}

std::string StateTokenStore::keysDescription() const {
  std::string keys = "this worker's state key has id " + key_.keyId();
  if (previous_) keys += " (its previous key " + previous_->keyId() + ")";
  return keys;
}

Result<TokenRestore> StateTokenStore::restore(int32_t partition,
                                              const std::map<std::string, std::string>& records) {
  TokenRestore out;
  std::map<std::string, TokenState> opened;
  for (const auto& [appid, value] : records) {
    const std::string where = "token record of " + appid + " in state partition " +
                              std::to_string(partition);
    Sealing sealing;
    std::optional<TokenState> state = openRecord(appid, value, &sealing);
    if (!state && !sealing.known_key) {
      return tokenError("the " + where + " was sealed with the key of id " + sealing.key_id +
                        "; " + keysDescription());
    }
    if (!state) {
      out.unreadable.emplace_back(appid, "the " + where + " does not open: changed or damaged "
                                                          "since it was sealed");
      continue;
    }
    if (sealing.by_previous) {
      std::string resealed = sealTokenState(key_, appid, *state);
      if (!resealed.empty()) out.resealed.emplace_back(tokenStateKey(appid), std::move(resealed));
    }
    opened[appid] = std::move(*state);
  }
  out.merchants = static_cast<int64_t>(opened.size());
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [appid, state] : opened) partition_of_[appid] = partition;
  held_[partition] = std::move(opened);
  return out;
}

Result<bool> StateTokenStore::readAgain(const std::string& appid) {
  Read read;
  int32_t partition = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto placed = partition_of_.find(appid);
    if (placed == partition_of_.end() || !read_) return true;  // nothing to read it from
    partition = placed->second;
    read = read_;
  }
  const std::string key = tokenStateKey(appid);
  std::optional<std::string> newest;
  Result<int64_t> scanned =
      read(partition, kafka::kOffsetBeginning,
           [&](int64_t, std::string_view k, std::string_view value) {
             if (k == key) newest = std::string(value);
           });
  if (!scanned.ok()) return scanned.error();
  if (!newest || newest->empty()) return true;
  Sealing sealing;
  std::optional<TokenState> state = openRecord(appid, *newest, &sealing);
  if (!state) return tokenError("the token record of " + appid + " does not open");
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = held_.find(partition);
  if (held != held_.end()) held->second[appid] = std::move(*state);
  return true;
}

void StateTokenStore::forget(int32_t partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  held_.erase(partition);
  for (auto it = partition_of_.begin(); it != partition_of_.end();) {
    it = it->second == partition ? partition_of_.erase(it) : std::next(it);
  }
}

void StateTokenStore::place(const std::string& appid, int32_t partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  partition_of_[appid] = partition;
}

Result<std::map<std::string, TokenState>> StateTokenStore::load() const {
  std::map<std::string, TokenState> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [partition, states] : held_) out.insert(states.begin(), states.end());
  return out;
}

Result<std::optional<TokenState>> StateTokenStore::find(const std::string& appid) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto placed = partition_of_.find(appid);
  if (placed == partition_of_.end()) return std::optional<TokenState>();
  auto held = held_.find(placed->second);
  if (held == held_.end()) return std::optional<TokenState>();
  auto it = held->second.find(appid);
  if (it == held->second.end()) return std::optional<TokenState>();
  return std::optional<TokenState>(it->second);
}

Result<bool> StateTokenStore::save(const std::string& appid, const TokenState& state) {
  Write write;
  int32_t partition = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto placed = partition_of_.find(appid);
    if (placed == partition_of_.end()) {
      return tokenError("no jobs partition is known for " + appid + "; its tokens were not kept");
    }
    partition = placed->second;
    write = write_;
  }
  if (!write) return tokenError("the state topic is not open yet; the tokens of " + appid +
                                " were not kept");
  const std::string value = sealTokenState(key_, appid, state);
  if (value.empty()) return tokenError("the tokens of " + appid + " could not be sealed");
  Result<bool> written = write(partition, tokenStateKey(appid), value);
  if (!written.ok()) return written.error();
  std::lock_guard<std::mutex> lock(mutex_);
  auto held = held_.find(partition);
  if (held != held_.end()) {
    TokenState& kept = held->second[appid];
    if (kept.updated_at_ms <= state.updated_at_ms) kept = state;
  }
  return true;
}

Result<int64_t> StateTokenStore::scanComponentPartitionLocked(const Read& read) {
  return read(kComponentPartition, component_next_offset_,
              [this](int64_t offset, std::string_view key, std::string_view value) {
                component_next_offset_ = std::max(component_next_offset_, offset + 1);
                if (key == kKeyCheckKey) {
                  key_check_ = std::string(value);
                  return;
                }
                if (key.substr(0, kComponentKeyPrefix.size()) != kComponentKeyPrefix) return;
                std::string appid(key.substr(kComponentKeyPrefix.size()));
                if (value.empty()) {
                  component_records_.erase(appid);
                } else {
                  component_records_[appid] = std::string(value);
                }
              });
}

Result<std::string> StateTokenStore::checkKey() {
  Read read;
  Write write;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    read = read_;
    write = write_;
  }
  if (!read || !write) return tokenError("the state topic is not open yet");
  std::string fleet_key_id;
  {
    std::lock_guard<std::mutex> lock(component_mutex_);
    Result<int64_t> scanned = scanComponentPartitionLocked(read);
    if (!scanned.ok()) return scanned.error();
    nlohmann::json j = nlohmann::json::parse(key_check_, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("key_id") && j["key_id"].is_string()) {
      fleet_key_id = j["key_id"].get<std::string>();
    }
  }
  if (fleet_key_id == key_.keyId()) return std::string();
  if (!fleet_key_id.empty() && !(previous_ && fleet_key_id == previous_->keyId())) {
    return "the workers of this state topic seal with the key of id " + fleet_key_id + "; " +
           keysDescription();
  }
  // No key yet, or the previous one: this worker's key becomes the fleet's.
  const std::string value =
      sealedRecord(key_, "fanpull state key check", std::string(kKeyCheckKey));
  if (value.empty()) return tokenError("the key check could not be sealed");
  Result<bool> written = write(kComponentPartition, std::string(kKeyCheckKey), value);
  if (!written.ok()) return written.error();
  return std::string();
}

Result<std::optional<SharedComponentToken>> StateTokenStore::latest(
    const std::string& component_appid) {
  Read read;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    read = read_;
  }
  if (!read) return tokenError("the state topic is not open yet");
  std::lock_guard<std::mutex> lock(component_mutex_);
  Result<int64_t> scanned = scanComponentPartitionLocked(read);
  if (!scanned.ok()) return scanned.error();
  auto it = component_records_.find(component_appid);
  if (it == component_records_.end()) return std::optional<SharedComponentToken>();
  Sealing sealing;
  std::optional<std::string> plain =
      openSealed(it->second, std::string(kComponentKeyPrefix) + component_appid, &sealing);
  if (!plain) return tokenError("the shared component token does not open with the state key");
  nlohmann::json t = nlohmann::json::parse(*plain, nullptr, /*allow_exceptions=*/false);
  if (!t.is_object() || !t.contains("token") || !t["token"].is_string() ||
      !t.contains("expires_at_ms") || !t["expires_at_ms"].is_number_integer()) {
    return tokenError("the shared component token record is not one");
  }
  return std::optional<SharedComponentToken>(
      SharedComponentToken{t["token"].get<std::string>(), t["expires_at_ms"].get<int64_t>()});
}

Result<bool> StateTokenStore::share(const std::string& component_appid,
                                    const SharedComponentToken& token) {
  Write write;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    write = write_;
  }
  if (!write) return tokenError("the state topic is not open yet");
  const std::string key = std::string(kComponentKeyPrefix) + component_appid;
  const std::string value = sealedRecord(
      key_, nlohmann::json{{"token", token.token}, {"expires_at_ms", token.expires_at_ms}}.dump(),
      key);
  if (value.empty()) return tokenError("the component token could not be sealed");
  return write(kComponentPartition, key, value);
}

}  // namespace fanpull
