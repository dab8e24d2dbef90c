#include "core/user_list_client.h"

#include "core/error_class.h"
#include "core/url.h"
#include "core/user_list_parser.h"

namespace fanpull {

void redactInPlace(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  for (size_t pos = text.find(secret); pos != std::string::npos;
       pos = text.find(secret, pos + 10)) {
    text.replace(pos, secret.size(), "[redacted]");
  }
}

std::string UserListClient::target(std::string_view access_token, std::string_view next_openid) {
  return buildTarget("/cgi-bin/user/get",
                     {{"access_token", access_token}, {"next_openid", next_openid}});
}

Result<FollowerPage> UserListClient::getFans(std::string_view access_token,
                                             std::string_view next_openid) {
  HttpRequest request;
  request.method = "GET";
  request.target = target(access_token, next_openid);
  Result<HttpResponse> response = transport_.send(request);
  if (!response.ok()) {
    Error e = std::move(response).takeError();
    redactInPlace(e.cause, access_token);
    return e;
  }
  if (response->status != 200) {
    std::string what = "HTTP " + std::to_string(response->status);
    if (!response->content_type.empty()) what += " (" + response->content_type + ")";
    return httpStatusError(response->status, what);
  }
  Result<FollowerPage> page = parseUserListAnswer(response->body);
  if (!page.ok()) {
    Error e = std::move(page).takeError();
    redactInPlace(e.errmsg, access_token);
    redactInPlace(e.cause, access_token);
    return e;
  }
  return page;
}

}  // namespace fanpull
