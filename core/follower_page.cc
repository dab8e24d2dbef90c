#include "core/follower_page.h"

#include <cstring>
#include <utility>

namespace fanpull {

void FollowerPage::add(std::string_view id) {
  if (borrowed_) copyBorrowed();
  // ,"id" (no comma before the first), written in one step.
  const size_t comma = begins_.empty() ? 0 : 1;
  const size_t pos = text_.size();
  text_.resize(pos + comma + id.size() + 2);
  char* w = &text_[pos];
  if (comma) *w++ = ',';
  *w++ = '"';
  std::memcpy(w, id.data(), id.size());
  w[id.size()] = '"';
  mark(static_cast<uint32_t>(w - text_.data()), id.size());
}

void FollowerPage::addFirstOrCopy(const char* base, std::string_view id) {
  if (!begins_.empty() || borrowed_ || !text_.empty()) {
    add(id);
    return;
  }
  borrowed_ = base;
  mark(static_cast<uint32_t>(id.data() - base), id.size());
}

void FollowerPage::adoptText(std::string&& text) {
  if (!borrowed_) return;
  // Offsets stay right even if the move changes where the bytes are.
  text_ = std::move(text);
  borrowed_ = nullptr;
}

std::string FollowerPage::takeText(size_t* from) {
  if (borrowed_) copyBorrowed();
  *from = begins_.front() - 1;
  std::string text = std::move(text_);
  text_.clear();
  begins_.clear();
  last_end_ = 0;
  bytes_ = 0;
  return text;
}

void FollowerPage::copyBorrowed() {
  const char* base = borrowed_;
  borrowed_ = nullptr;
  if (begins_.empty()) return;
  uint32_t from = begins_.front() - 1;
  text_.assign(base + from, last_end_ + 1 - from);
  for (uint32_t& b : begins_) b -= from;
  last_end_ -= from;
}

bool isValidOpenId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

WalkStep nextWalkStep(const FollowerPage& page, std::string_view cursor) {
  if (page.empty()) return WalkStep::kEnd;
  if (page.next_openid.empty()) return WalkStep::kLastPage;
  if (page.next_openid == cursor) return WalkStep::kStalled;
  return WalkStep::kContinue;
}

}  // namespace fanpull
