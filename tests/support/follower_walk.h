// walkFollowers: a synchronous walk of one merchant's list with a TokenSource, the way a lane
// does it (admission, token, getFans, one renewal per refused token, bounded retries). For tests
// of the client, the tenants and the token source against the sandbox.
#pragma once

#include <string>
#include <vector>

#include "core/user_list_client.h"
#include "tenants/tenant_registry.h"
#include "tenants/token_source.h"

namespace fanpull::testing {

struct WalkOutcome {
  std::vector<std::string> openids;
  int calls = 0;
  int renewals = 0;
  std::optional<Error> error;  // set when the walk failed
};

inline WalkOutcome walkFollowers(TenantRegistry& registry, TokenSource& tokens,
                                 UserListClient& client, const std::string& appid,
                                 int max_retries = 5) {
  WalkOutcome out;
  auto tenant = registry.admit(appid);
  if (!tenant.ok()) {
    out.error = tenant.error();
    return out;
  }
  auto token = tokens.current(**tenant);
  if (!token.ok()) {
    out.error = token.error();
    return out;
  }
  std::string cursor;
  bool renewed_since_success = false;
  int retries = 0;
  while (true) {
    ++out.calls;
    auto page = client.getFans(token->value, cursor);
    if (!page.ok()) {
      const Error& e = page.error();
      if (e.error_class == ErrorClass::kTokenInvalid && !renewed_since_success) {
        renewed_since_success = true;
        ++out.renewals;
        token = tokens.renew(**tenant, token->value);
        if (!token.ok()) {
          out.error = token.error();
          return out;
        }
        continue;
      }
      if (e.error_class == ErrorClass::kRetryable && retries++ < max_retries) continue;
      out.error = e;
      return out;
    }
    renewed_since_success = false;
    retries = 0;
    for (size_t i = 0; i < page->size(); ++i) out.openids.emplace_back(page->openid(i));
    WalkStep step = nextWalkStep(page.value(), cursor);
    if (step == WalkStep::kContinue) {
      cursor = page->next_openid;
      continue;
    }
    if (step == WalkStep::kStalled) {
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "stalled";
      out.error = e;
    }
    return out;
  }
}

}  // namespace fanpull::testing
