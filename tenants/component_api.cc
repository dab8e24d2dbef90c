#include "tenants/component_api.h"

#include <nlohmann/json.hpp>

#include "core/error_class.h"
#include "core/redactor.h"
#include "core/url.h"

namespace fanpull {
namespace {

using nlohmann::json;

// Sends a JSON POST and returns the parsed object, or the classified Error.
Result<json> postJson(HttpTransport& transport, std::string target, const json& body) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.body = body.dump();
  request.content_type = "application/json";
  Result<HttpResponse> response = transport.send(request);
  if (!response.ok()) {
    Error e = response.error();
    e.cause = Redactor::global().redact(e.cause);
    return e;
  }
  if (response->status != 200) {
    return httpStatusError(response->status, "HTTP " + std::to_string(response->status));
  }
  json answer = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return malformedAnswerError("token endpoint answered something that is not a JSON object");
  }
  if (auto code = answer.find("errcode"); code != answer.end() && code->is_number_integer() &&
                                          code->get<long>() != 0) {
    std::string errmsg;
    if (auto m = answer.find("errmsg"); m != answer.end() && m->is_string()) errmsg = *m;
    return errcodeError(code->get<long>(), Redactor::global().redact(errmsg));
  }
  return answer;
}

bool readString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return false;
  *out = it->get<std::string>();
  return true;
}

bool readSeconds(const json& j, const char* key, Duration* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) return false;
  *out = std::chrono::seconds(it->get<int64_t>());
  return true;
}

}  // namespace

Result<ComponentToken> requestComponentToken(HttpTransport& transport, const std::string& appid,
                                             const std::string& appsecret,
                                             const std::string& verify_ticket) {
  Redactor::global().addSecret(appsecret);
  Redactor::global().addSecret(verify_ticket);
  Result<json> answer = postJson(transport, "/cgi-bin/component/api_component_token",
                                 {{"component_appid", appid},
                                  {"component_appsecret", appsecret},
                                  {"component_verify_ticket", verify_ticket}});
  if (!answer.ok()) return answer.error();
  ComponentToken t;
  if (!readString(*answer, "component_access_token", &t.token) ||
      !readSeconds(*answer, "expires_in", &t.expires_in)) {
    return malformedAnswerError("api_component_token answer lacks component_access_token or "
                                "expires_in");
  }
  Redactor::global().addSecret(t.token);
  return t;
}

Result<AuthorizerTokens> requestAuthorizerToken(HttpTransport& transport,
                                                const std::string& component_token,
                                                const std::string& component_appid,
                                                const std::string& authorizer_appid,
                                                const std::string& refresh_token) {
  Redactor::global().addSecret(component_token);
  Redactor::global().addSecret(refresh_token);
  Result<json> answer = postJson(
      transport,
      buildTarget("/cgi-bin/component/api_authorizer_token",
                  {{"component_access_token", component_token}}),
      {{"component_appid", component_appid},
       {"authorizer_appid", authorizer_appid},
       {"authorizer_refresh_token", refresh_token}});
  if (!answer.ok()) return answer.error();
  AuthorizerTokens t;
  if (!readString(*answer, "authorizer_access_token", &t.access_token) ||
      !readSeconds(*answer, "expires_in", &t.expires_in)) {
    return malformedAnswerError("api_authorizer_token answer lacks authorizer_access_token or "
                                "expires_in");
  }
  // WeChat may answer without a new refresh token: the old one then stays valid.
  if (!readString(*answer, "authorizer_refresh_token", &t.refresh_token)) {
    t.refresh_token = refresh_token;
  }
  Redactor::global().addSecret(t.access_token);
  Redactor::global().addSecret(t.refresh_token);
  return t;
}

}  // namespace fanpull
