// StateTokenStore: the tokens fanpull keeps in the state topic. Merchants' authorizer tokens (the rotated refresh token above all) kept in the
// state topic when a state key is configured, so that whichever worker owns a merchant's jobs
// partition, on whatever machine, refreshes with the newest refresh token. Each merchant's record
// ("token/<appid>", in its jobs partition) is sealed with the state key (AES-256-GCM, a fresh
// nonce per record, the appid as associated data): nothing in the topic is readable without the
// key. The worker hands it every restored partition's token records and the partition of each
// merchant it runs; save() returns once the broker acknowledged the record. And the platform's
// component access token, which every worker needs and no partition owns: one record
// ("component/<component_appid>", sealed the same way) in state partition 0, which every worker
// reads (from where it last stopped) before it fetches a token of its own. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret_box.h"
#include "tenants/component_token_source.h"
#include "tenants/token_state_store.h"

namespace fanpull {

// A merchant's token record as the state topic holds it: {"key_id", "sealed"} (base64 of
// nonce | ciphertext | tag of the TokenState's JSON).
std::string sealTokenState(const SecretBox& box, const std::string& appid,
                           const TokenState& state);

// What restore() found in one partition.
struct TokenRestore {
  int64_t merchants = 0;  // token records opened
  // Records opened with the previous key: sealed again with the current one, to be written
  // back (key, value) so that the previous key can be retired.
  std::vector<std::pair<std::string, std::string>> resealed;
  // Merchants whose record was sealed with this worker's key (or the previous one) but does not
  // open or is not a token record (changed or damaged): dropped, with why. Their tokens are
  // renewed from the tenants file's refresh token.
  std::vector<std::pair<std::string, std::string>> unreadable;
};

class StateTokenStore final : public TokenStore, public ComponentTokenShare {
 public:
  // The state partition that holds the shared component token.
  static constexpr int32_t kComponentPartition = 0;
  // Reads `partition` from offset `from` to the end the broker reports, passing each record's
  // offset, key and value; returns how many it read. Errors: not read in time.
  using Visit = std::function<void(int64_t offset, std::string_view key, std::string_view value)>;
  using Read = std::function<Result<int64_t>(int32_t partition, int64_t from, const Visit& visit)>;

  // Writes one state record to `partition` and returns once it is acknowledged. Errors: it
  // was not (given up, or not acknowledged in time).
  using Write = std::function<Result<bool>(int32_t partition, const std::string& key,
                                           const std::string& value)>;

  // `previous`: the key being retired (records it sealed are still opened, then sealed again).
  StateTokenStore(SecretBox key, std::optional<SecretBox> previous = std::nullopt);

  // Where save() and share() write, and where latest() reads; set by the worker when its
  // clients exist.
  void attach(Write write, Read read = {});

  // Before any record is written: the key the fleet seals with ("key/check" in state partition
  // 0) must be this worker's (or its previous key, which this worker then replaces as the
  // fleet's). Returns "" when it is (or no worker has written one yet: this worker's becomes
  // it), else the problem, naming both key ids. Errors: the partition could not be read or the
  // check written.
  Result<std::string> checkKey();

  // Opens the token records restored from `partition` (by appid, as written), replacing what
  // was known of it. Errors (nothing is kept then): a record sealed with a key of another id
  // than this worker's keys, naming both ids: the state key is wrong, and refreshing without
  // the rotated refresh tokens would fail every merchant with 61023.
  Result<TokenRestore> restore(int32_t partition,
                               const std::map<std::string, std::string>& records);
  // Drops what is known of `partition` (revoked).
  void forget(int32_t partition);
  // The jobs partition of `appid` (where its records go); the worker says so when a job starts.
  void place(const std::string& appid, int32_t partition);

  Result<std::map<std::string, TokenState>> load() const override;
  Result<std::optional<TokenState>> find(const std::string& appid) const override;
  // Errors: no partition known for `appid`, no writer attached, the record not acknowledged.
  Result<bool> save(const std::string& appid, const TokenState& state) override;
  // Reads the merchant's partition again for its newest token record.
  Result<bool> readAgain(const std::string& appid) override;
  std::string where() const override { return "the state topic"; }

  // ComponentTokenShare. Errors of latest(): the partition not read, or a record that does not
  // open (a wrong key: a fetch of its own is then the fallback).
  Result<std::optional<SharedComponentToken>> latest(const std::string& component_appid) override;
  Result<bool> share(const std::string& component_appid,
                     const SharedComponentToken& token) override;

  const std::string& keyId() const { return key_.keyId(); }

 private:
  SecretBox key_;
  std::optional<SecretBox> previous_;

  // Scans partition kComponentPartition from component_next_offset_, keeping the component
  // records and the key check met. Called with component_mutex_ held.
  Result<int64_t> scanComponentPartitionLocked(const Read& read);
  // How a record was sealed: the key id it names, whether that is one of this worker's keys
  // (else: another key's record, not a damaged one), and whether it is the previous key.
  struct Sealing {
    std::string key_id;
    bool known_key = false;
    bool by_previous = false;
  };
  // The plaintext of a {"key_id","sealed"} record sealed for `associated` with one of this
  // worker's keys; nullopt when it does not open (`sealing` says why).
  std::optional<std::string> openSealed(const std::string& value, const std::string& associated,
                                        Sealing* sealing) const;
  // A merchant's token record opened and parsed.
  std::optional<TokenState> openRecord(const std::string& appid, const std::string& value,
                                       Sealing* sealing) const;
  // "this worker's state key has id X (its previous key Y)", for errors.
  std::string keysDescription() const;

  std::mutex component_mutex_;  // guards the three that follow (held while reading)
  std::string key_check_;       // the newest "key/check" record met, as written
  int64_t component_next_offset_ = 0;     // where the next latest() reads from
  std::map<std::string, std::string> component_records_;  // by component appid, as written

  mutable std::mutex mutex_;  // guards what follows
  Write write_;
  Read read_;
  std::map<std::string, int32_t> partition_of_;               // by appid
  std::map<int32_t, std::map<std::string, TokenState>> held_;  // partition -> appid -> state
};

}  // namespace fanpull
