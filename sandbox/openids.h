// Deterministic, WeChat-shaped OpenIDs for the sandbox: follower `index` of account `appid` always
// has the same 28-character id, so tests can compute the exact list a walk must return.
// Pure functions of their arguments: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fanpull::sandbox {

// Length of every sandbox OpenID (as WeChat's).
inline constexpr std::size_t kOpenIdLength = 28;
// Indexes are encoded on 7 base64url characters: 0 <= index < kMaxOpenIdIndex.
inline constexpr int64_t kMaxOpenIdIndex = int64_t{1} << 42;

// The OpenID of follower `index` (0-based) of `appid`: 28 chars of [A-Za-z0-9_-] starting with 'o',
// distinct for distinct indexes of one appid. Requires 0 <= index < kMaxOpenIdIndex.
std::string sandboxOpenId(std::string_view appid, int64_t index);

// Appends sandboxOpenId(appid, index) to `out` (no allocation when `out` has capacity).
void appendSandboxOpenId(std::string& out, std::string_view appid, int64_t index);

// Appends the OpenIDs of followers [begin, end) of `appid` as a JSON array's inside:
// "id","id",... (nothing when begin >= end). The appid is hashed once for the whole list.
void appendSandboxOpenIdList(std::string& out, std::string_view appid, int64_t begin,
                             int64_t end);

// The index whose OpenID for `appid` is exactly `openid`; nullopt for anything else (an id of
// another appid, a tweaked id, a wrong length or alphabet).
std::optional<int64_t> sandboxOpenIdIndex(std::string_view appid, std::string_view openid);

}  // namespace fanpull::sandbox
