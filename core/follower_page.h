// FollowerPage: one answer of getFans (cgi-bin/user/get), already validated. The OpenIDs are kept
// in one contiguous buffer (no allocation per OpenID). Also decides what follows a page in a walk,
// with the end-of-list rules of docs/WECHAT.md. Thread-compatible value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fanpull {

class FollowerPage {
 public:
  int64_t total = 0;        // WeChat's follower count at the time of the call (may change in a walk)
  int64_t count = 0;        // OpenIDs in this answer (== size())
  std::string next_openid;  // WeChat's cursor for the next call; may be empty
  bool has_data = false;    // the answer carried a "data" key

  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::string_view openid(size_t i) const {
    size_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(ids_).substr(begin, ends_[i] - begin);
  }
  void reserve(size_t openids, size_t bytes) {
    ends_.reserve(openids);
    ids_.reserve(bytes);
  }
  void add(std::string_view id) {
    ids_.append(id.data(), id.size());
    ends_.push_back(static_cast<uint32_t>(ids_.size()));
  }
  // Bytes of OpenID text held (without separators).
  size_t openidBytes() const { return ids_.size(); }

 private:
  std::string ids_;             // all OpenIDs, back to back
  std::vector<uint32_t> ends_;  // end offset of each OpenID in ids_
};

// What a walk does after receiving `page` for the request made with `cursor`.
enum class WalkStep {
  kContinue,  // more may follow: call again with page.next_openid
  kLastPage,  // this page holds OpenIDs and is the last one (empty next_openid)
  kEnd,       // no OpenIDs here: the walk is over (the previous page, if any, was the last)
  kStalled,   // the cursor did not advance: calling again would loop forever
};
WalkStep nextWalkStep(const FollowerPage& page, std::string_view cursor);

// True for an OpenID-like string: 1-64 characters of [A-Za-z0-9_-].
bool isValidOpenId(std::string_view s);

}  // namespace fanpull
