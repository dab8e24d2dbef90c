// TokenStateStore: the token state file, where refreshed authorizer tokens (above all the rotated
// refresh tokens: losing one means 61023 until the merchant re-authorizes) are kept across
// restarts. Writes are atomic (temporary file, fsync, rename, fsync of the folder), mode 0600, and
// locked read-merge-write (flock on FILE.lock), so several workers sharing one file never lose an
// update. Thread-safe (each call takes the file lock).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"

struct stat;

namespace fanpull {

struct TokenState {
  std::string refresh_token;
  std::string access_token;
  int64_t expires_at_ms = 0;  // unix ms; 0 unknown
  int64_t updated_at_ms = 0;  // unix ms of the refresh that produced this state
  // The tenants file's refresh token this chain of rotations started from: when the file holds
  // another one, an operator replaced it (the merchant authorized again) and the file wins.
  std::string file_refresh_token;
};

// One merchant's state as JSON (the token state file's entry), and back. Errors of the parse:
// not JSON, or a field of the wrong type (named with `where`, never with a value).
std::string encodeTokenState(const TokenState& state);
Result<TokenState> parseTokenState(std::string_view text, const std::string& where);

// Where a merchant's rotated tokens are kept: the token state file (TokenStateStore) or, with a
// state key, the state topic (the worker's StateTokenStore). Implementations are thread-safe.
class TokenStore {
 public:
  virtual ~TokenStore() = default;

  // Every merchant's state this store knows now. Errors: the store cannot be read (the cause
  // names where, never a token).
  virtual Result<std::map<std::string, TokenState>> load() const = 0;

  // One merchant's state (nullopt: none known). Errors: as load().
  virtual Result<std::optional<TokenState>> find(const std::string& appid) const;

  // Keeps one merchant's state durably before returning. Errors: it could not be kept.
  virtual Result<bool> save(const std::string& appid, const TokenState& state) = 0;

  // Reads what the store holds for `appid` again from where it keeps it, for a store that
  // answers find() from memory (after a 61023: another worker may have rotated the refresh
  // token since). Errors: it could not be read (what was known stays).
  virtual Result<bool> readAgain(const std::string& /*appid*/) { return true; }

  // Where the tokens are, for log lines: "the token state file tokens.json", "the state topic".
  virtual std::string where() const = 0;
};

class TokenStateStore final : public TokenStore {
 public:
  explicit TokenStateStore(std::string path) : path_(std::move(path)) {}

  // Every merchant's state (an absent file is an empty map). Errors: the file is unreadable or
  // not a token state file (the cause names the file, never a token). The file is parsed again
  // only when it changed (another file in its place, or another size or time) since this store
  // last read or wrote it: workers read it before every refresh.
  Result<std::map<std::string, TokenState>> load() const override;

  // Writes one merchant's state, keeping every other merchant's as it is in the file now. A state
  // older (updated_at_ms) than the one in the file is not written (true is still returned).
  // Errors: the file cannot be locked, written or renamed.
  Result<bool> save(const std::string& appid, const TokenState& state) override;

  std::string where() const override { return "the token state file " + path_; }

  const std::string& path() const { return path_; }

 private:
  // Which file version the cache holds: replaced by rename, a new version is a new inode.
  struct Stamp {
    uint64_t dev = 0, ino = 0;
    int64_t size = -1, mtime_ns = 0;
    bool operator==(const Stamp& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
    }
    static Stamp of(const struct ::stat& st);
  };
  static std::optional<Stamp> stampOf(const std::string& path);
  // The cached states when the file is still the version they came from.
  std::optional<std::map<std::string, TokenState>> cached(const std::optional<Stamp>& now) const;
  void remember(const Stamp& stamp, std::map<std::string, TokenState> states) const;

  const std::string path_;
  mutable std::mutex cache_mutex_;  // guards cache_
  mutable std::optional<std::pair<Stamp, std::map<std::string, TokenState>>> cache_;
};

}  // namespace fanpull
