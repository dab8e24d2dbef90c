// The page message of docs/CONTRACTS.md (the value written to the pages topic), encoded straight from a
// FollowerPage without a JSON DOM. A page larger than the producer's message limit is split into
// parts that keep the order. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/follower_page.h"
#include "core/result.h"

namespace fanpull {

struct PageIdentity {
  std::string_view job_id;
  std::string_view appid;
  int64_t seq = 0;
  bool last = false;
};

// {"job_id":..,"appid":..,"seq":..,"total":..,"count":..,"openids":[..],"next_openid":..,"last":..}
std::string encodePageMessage(const PageIdentity& id, const FollowerPage& page);

// The page as one message, or as parts of at most max_bytes each: every part carries the same
// identity, "part" (from 0) and "parts", and its own slice of the OpenIDs in order ("count" is the
// part's OpenIDs). Fails (bad_job) only when max_bytes cannot hold even one OpenID.
Result<std::vector<std::string>> encodePageMessages(const PageIdentity& id, const FollowerPage& page,
                                                   size_t max_bytes);
// The same, taking the page: a page that fits in one message is written in the page's own buffer
// (as a rule the answer's body: the OpenIDs move a few bytes within it, nothing is allocated or
// copied to a new buffer). The page then holds no OpenIDs; its other fields stay. A page that is
// split, and one refused, are left as they were.
Result<std::vector<std::string>> encodePageMessages(const PageIdentity& id, FollowerPage&& page,
                                                   size_t max_bytes);

// Appends s as a JSON string literal (quotes included), escaping as RFC 8259 requires, with the
// escapes nlohmann::json dump() writes (\b \f \n \r \t, \u00xx for other control characters).
void appendJsonString(std::string& out, std::string_view s);

}  // namespace fanpull
