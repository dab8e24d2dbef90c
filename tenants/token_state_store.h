// TokenStateStore: the token state file, where refreshed authorizer tokens (above all the rotated
// refresh tokens: losing one means 61023 until the merchant re-authorizes) are kept across
// restarts. Writes are atomic (temporary file, fsync, rename, fsync of the folder), mode 0600, and
// locked read-merge-write (flock on FILE.lock), so several workers sharing one file never lose an
// update. Thread-safe (each call takes the file lock).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/result.h"

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

class TokenStateStore {
 public:
  explicit TokenStateStore(std::string path) : path_(std::move(path)) {}

  // Every merchant's state (an absent file is an empty map). Errors: the file is unreadable or
  // not a token state file (the cause names the file, never a token).
  Result<std::map<std::string, TokenState>> load() const;

  // Writes one merchant's state, keeping every other merchant's as it is in the file now. A state
  // older (updated_at_ms) than the one in the file is not written (true is still returned).
  // Errors: the file cannot be locked, written or renamed.
  Result<bool> save(const std::string& appid, const TokenState& state);

  const std::string& path() const { return path_; }

 private:
  const std::string path_;
};

}  // namespace fanpull
