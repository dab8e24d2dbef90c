#include "worker/state_token_store.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "config/worker_config.h"
#include "core/redactor.h"
#include "worker/state_store.h"

namespace fanpull {
namespace {

Error tokenError(const std::string& what) { return Error::of(ErrorClass::kRetryable, what); }

}  // namespace

std::string sealTokenState(const SecretBox& box, const std::string& appid,
                           const TokenState& state) {
  const std::string sealed = box.seal(encodeTokenState(state), appid);
  if (sealed.empty()) return {};
  return nlohmann::json{{"key_id", box.keyId()}, {"sealed", encodeBase64(sealed)}}.dump();
}

StateTokenStore::StateTokenStore(SecretBox key, std::optional<SecretBox> previous)
    : key_(std::move(key)), previous_(std::move(previous)) {}

void StateTokenStore::attach(Write write) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_ = std::move(write);
}

Result<TokenRestore> StateTokenStore::restore(int32_t partition,
                                              const std::map<std::string, std::string>& records) {
  TokenRestore out;
  std::map<std::string, TokenState> opened;
  for (const auto& [appid, value] : records) {
    const std::string where = "token record of " + appid + " in state partition " +
                              std::to_string(partition);
    nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("key_id") || !j["key_id"].is_string() ||
        !j.contains("sealed") || !j["sealed"].is_string()) {
      return tokenError("the " + where + " is not a sealed token record");
    }
    const std::string key_id = j["key_id"].get<std::string>();
    const SecretBox* box = key_id == key_.keyId() ? &key_
                           : previous_ && key_id == previous_->keyId() ? &*previous_
                                                                       : nullptr;
    std::optional<std::string> sealed = decodeBase64(j["sealed"].get<std::string>());
    std::optional<std::string> plain;
    if (box && sealed) plain = box->open(*sealed, appid);
    if (!plain) {
      std::string keys = "this worker's state key has id " + key_.keyId();
      if (previous_) keys += " (its previous key " + previous_->keyId() + ")";
      return tokenError(box ? "the " + where + " was changed since it was sealed (key id " +
                                  key_id + ")"
                            : "the " + where + " was sealed with the key of id " + key_id +
                                  "; " + keys);
    }
    Result<TokenState> state = parseTokenState(*plain, "the " + where);
    if (!state.ok()) return state.error();
    if (box != &key_) {
      std::string resealed = sealTokenState(key_, appid, *state);
      if (!resealed.empty()) out.resealed.emplace_back(tokenStateKey(appid), std::move(resealed));
    }
    opened[appid] = std::move(state).value();
  }
  out.merchants = static_cast<int64_t>(opened.size());
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [appid, state] : opened) partition_of_[appid] = partition;
  held_[partition] = std::move(opened);
  return out;
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

}  // namespace fanpull
