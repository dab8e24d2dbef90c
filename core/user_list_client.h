// UserListClient: the getFans call (GET /cgi-bin/user/get) for one merchant's access token and
// cursor. It builds the request with every value percent-encoded, sends it through an
// HttpTransport and turns the answer into a FollowerPage or a classified Error. The token is never
// part of an Error. Thread-safe if the transport is.
#pragma once

#include <string_view>

#include "core/follower_page.h"
#include "core/http_transport.h"
#include "core/result.h"

namespace fanpull {

class UserListClient {
 public:
  explicit UserListClient(HttpTransport& transport) : transport_(transport) {}

  // One call. Success: the validated page (which may hold 0 OpenIDs: the end of the list).
  // Errors: WeChat's errcode classes (token_invalid, quota_exhausted, ...), HTTP statuses
  // (5xx retryable), transport failures and malformed answers (retryable).
  Result<FollowerPage> getFans(std::string_view access_token, std::string_view next_openid);

  // The request target for a call: "/cgi-bin/user/get?access_token=...&next_openid=...".
  static std::string target(std::string_view access_token, std::string_view next_openid);

 private:
  HttpTransport& transport_;
};

// Replaces every whole occurrence of `secret` in `text` (not inside a longer run of
// [A-Za-z0-9_-]) with "[redacted]"; no-op for an empty secret.
void redactInPlace(std::string& text, std::string_view secret);

}  // namespace fanpull
