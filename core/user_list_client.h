// UserListClient: the getFans call (GET /cgi-bin/user/get) for one merchant's access token and
// cursor. It builds the request with every value percent-encoded, sends it through an
// HttpTransport and turns the answer into a FollowerPage or a classified Error. The token is never
// part of an Error. Thread-safe if the transport is.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/follower_page.h"
#include "core/http_transport.h"
#include "core/result.h"

namespace fanpull {

// What openapi/quota/get says of user/get for one account, on the Beijing day of the call.
struct ApiQuota {
  int64_t daily_limit = 0;
  int64_t used = 0;
  int64_t remain = 0;
};

class UserListClient {
 public:
  explicit UserListClient(HttpTransport& transport) : transport_(transport) {}

  // One call. Success: the validated page (which may hold 0 OpenIDs: the end of the list).
  // Errors: WeChat's errcode classes (token_invalid, quota_exhausted, ...), HTTP statuses
  // (5xx retryable), transport failures and malformed answers (retryable).
  Result<FollowerPage> getFans(std::string_view access_token, std::string_view next_openid);

  // POST /cgi-bin/openapi/quota/get for "/cgi-bin/user/get": the calls the token's account may
  // still make today (wechat-api.md: call it about once per merchant per Beijing day, it has a
  // small limit of its own). Errors: WeChat's errcode classes (76021, 76022 unknown), HTTP
  // statuses, transport failures and malformed answers, as for getFans.
  Result<ApiQuota> getQuota(std::string_view access_token);

  // The request target for a call: "/cgi-bin/user/get?access_token=...&next_openid=...".
  static std::string target(std::string_view access_token, std::string_view next_openid);

 private:
  // Sends `request`: a transport failure (the token redacted from its cause) or a status other
  // than 200 is an Error, anything else the answer to parse.
  Result<HttpResponse> exchange(const HttpRequest& request, std::string_view access_token);

  HttpTransport& transport_;
};

// Replaces every whole occurrence of `secret` in `text` (not inside a longer run of
// [A-Za-z0-9_-]) with "[redacted]"; no-op for an empty secret.
void redactInPlace(std::string& text, std::string_view secret);

}  // namespace fanpull
