#include "core/follower_page.h"

namespace fanpull {

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
