// FollowerPage: one answer of getFans (cgi-bin/user/get), already validated. The OpenIDs are kept
// in one contiguous buffer (no allocation per OpenID), as a rule the answer's own body, so that a
// page message copies them in one piece. Also decides what follows a page in a walk,
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

  size_t size() const { return begins_.size(); }
  bool empty() const { return begins_.empty(); }
  std::string_view openid(size_t i) const {
    size_t end = i + 1 < begins_.size() ? begins_[i + 1] - 3 : last_end_;
    return text().substr(begins_[i], end - begins_[i]);
  }
  // OpenIDs [begin, end), begin < end <= size(), as a JSON array holds them: "a","b",...
  std::string_view quotedOpenIds(size_t begin, size_t end) const {
    size_t from = begins_[begin] - 1;
    size_t to = (end < begins_.size() ? begins_[end] - 3 : last_end_) + 1;
    return text().substr(from, to - from);
  }
  // Bytes of OpenID text held (without quotes or separators).
  size_t openidBytes() const { return bytes_; }

  // Room for `openids` OpenIDs, and for `bytes` of their text when they are copied.
  void reserve(size_t openids, size_t bytes) {
    begins_.reserve(openids);
    if (bytes) text_.reserve(bytes + 3 * openids);
  }
  // Appends a copy of `id`.
  void add(std::string_view id);

  // The parser's path without a copy: `id` lies in the answer's text, which starts at `base` and
  // is handed over with adoptText once parsed. An OpenID that does not follow the previous one as
  // ,"id" (whitespace between them, or escapes decoded elsewhere) is copied, and so are the ones
  // before it.
  void addInText(const char* base, std::string_view id) {
    const uint32_t begin = static_cast<uint32_t>(id.data() - base);
    if (borrowed_ == base && !begins_.empty() && begin == last_end_ + 3) {
      mark(begin, id.size());
      return;
    }
    addFirstOrCopy(base, id);
  }
  // Takes the answer's text that the OpenIDs added with addInText lie in.
  void adoptText(std::string&& text);
  // Gives up the buffer the OpenIDs lie in (not empty()): quotedOpenIds(0, size()) starts at
  // *from in it. The page then holds no OpenIDs (size() is 0); its other fields stay.
  std::string takeText(size_t* from);

 private:
  std::string_view text() const {
    return borrowed_ ? std::string_view(borrowed_, last_end_ + 1) : std::string_view(text_);
  }
  // OpenID of `size` bytes at `begin` in the text: the next one.
  void mark(uint32_t begin, size_t size) {
    begins_.push_back(begin);
    last_end_ = begin + static_cast<uint32_t>(size);
    bytes_ += size;
  }
  void addFirstOrCopy(const char* base, std::string_view id);
  void copyBorrowed();

  // The OpenIDs lie in text_ back to back as "a","b",...: either the answer's own body (with
  // the rest of the answer around them) or a copy. begins_[i] is where OpenID i starts; it ends
  // 3 bytes before the next one starts (at its closing quote), the last one at last_end_.
  std::string text_;
  std::vector<uint32_t> begins_;
  uint32_t last_end_ = 0;
  size_t bytes_ = 0;
  const char* borrowed_ = nullptr;  // while parsing: the answer's text, before adoptText
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
