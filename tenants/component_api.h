// The third-party platform's token endpoints (docs/WECHAT.md): component_access_token from
// api_component_token, and authorizer tokens from api_authorizer_token. Every secret sent or
// received is registered with the Redactor, and no Error carries one. Thread-safe if the
// transport is.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/http_transport.h"
#include "core/result.h"

namespace fanpull {

struct ComponentToken {
  std::string token;
  Duration expires_in{};
};

struct AuthorizerTokens {
  std::string access_token;
  Duration expires_in{};
  std::string refresh_token;  // WeChat's rotated refresh token (the old one may stop working)
};

// POST /cgi-bin/component/api_component_token. Errors: errcode classes (61005 / 61006 ticket:
// retryable; 40013 and the like), HTTP and transport failures, malformed answers.
Result<ComponentToken> requestComponentToken(HttpTransport& transport, const std::string& appid,
                                             const std::string& appsecret,
                                             const std::string& verify_ticket);

// POST /cgi-bin/component/api_authorizer_token. Errors: 61023 invalid_tenant (refresh token
// invalid: the merchant must re-authorize), 40001 / 42001 token_invalid (the component token is
// stale), 40013 invalid_tenant, HTTP and transport failures, malformed answers.
Result<AuthorizerTokens> requestAuthorizerToken(HttpTransport& transport,
                                                const std::string& component_token,
                                                const std::string& component_appid,
                                                const std::string& authorizer_appid,
                                                const std::string& refresh_token);

}  // namespace fanpull
