#include "core/user_list_client.h"

#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error_class.h"
#include "core/url.h"
#include "core/user_list_parser.h"

namespace fanpull {

namespace {

bool isTokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

void redactInPlace(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  static constexpr std::string_view kMark = "[redacted]";
  size_t pos = text.find(secret);
  while (pos != std::string::npos) {
    size_t end = pos + secret.size();
    // Only a whole run: "t" must not turn "connect" into "connec[redacted]".
    bool whole = (pos == 0 || !isTokenChar(text[pos - 1]) || !isTokenChar(secret.front())) &&
                 (end == text.size() || !isTokenChar(text[end]) || !isTokenChar(secret.back()));
    if (whole) {
      text.replace(pos, secret.size(), kMark);
      pos = text.find(secret, pos + kMark.size());
    } else {
      pos = text.find(secret, pos + 1);
    }
  }
}

std::string UserListClient::target(std::string_view access_token, std::string_view next_openid) {
  return buildTarget("/cgi-bin/user/get",
                     {{"access_token", access_token}, {"next_openid", next_openid}});
}

Result<HttpResponse> UserListClient::exchange(const HttpRequest& request,
                                             std::string_view access_token) {
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
  return response;
}

Result<FollowerPage> UserListClient::getFans(std::string_view access_token,
                                             std::string_view next_openid) {
  HttpRequest request;
  request.method = "GET";
  request.target = target(access_token, next_openid);
  Result<HttpResponse> response = exchange(request, access_token);
  if (!response.ok()) return response.error();
  Result<FollowerPage> page = parseUserListAnswer(std::move(response->body));
  if (!page.ok()) {
    Error e = std::move(page).takeError();
    redactInPlace(e.errmsg, access_token);
    redactInPlace(e.cause, access_token);
    return e;
  }
  return page;
}

Result<ApiQuota> UserListClient::getQuota(std::string_view access_token) {
  HttpRequest request;
  request.method = "POST";
  request.target = buildTarget("/cgi-bin/openapi/quota/get", {{"access_token", access_token}});
  request.content_type = "application/json";
  request.body = R"({"cgi_path":"/cgi-bin/user/get"})";
  Result<HttpResponse> response = exchange(request, access_token);
  if (!response.ok()) return response.error();
  const nlohmann::json doc = nlohmann::json::parse(response->body, nullptr, false);
  if (!doc.is_object()) return malformedAnswerError("quota/get: not a JSON object");
  const long errcode = doc.contains("errcode") && doc["errcode"].is_number_integer()
                           ? doc["errcode"].get<long>()
                           : 0;
  if (errcode != 0) {
    std::string errmsg = doc.contains("errmsg") && doc["errmsg"].is_string()
                             ? doc["errmsg"].get<std::string>()
                             : std::string();
    redactInPlace(errmsg, access_token);
    return errcodeError(errcode, std::move(errmsg));
  }
  const auto quota = doc.find("quota");
  auto field = [&](const char* name) -> std::optional<int64_t> {
    if (quota == doc.end() || !quota->is_object()) return std::nullopt;
    auto it = quota->find(name);
    if (it == quota->end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  auto limit = field("daily_limit"), used = field("used"), remain = field("remain");
  if (!limit || !used || !remain || *remain < 0) {
    return malformedAnswerError("quota/get: no quota {daily_limit, used, remain}");
  }
  return ApiQuota{*limit, *used, *remain};
}

}  // namespace fanpull
