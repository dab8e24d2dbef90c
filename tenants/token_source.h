// TokenSource: where a lane gets a merchant's authorizer_access_token, and what it asks after
// WeChat refused one (40001 / 40014 / 42001 / 41001). Two implementations: StaticTokenSource
// (tokens from the tenants file) and ComponentTokenSource (the third-party platform's refresh
// flow). Implementations are thread-safe; calls may block while a refresh is in flight.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/result.h"
#include "tenants/tenants_file.h"

namespace fanpull {

struct AccessToken {
  std::string value;
  TimePoint expires_at = TimePoint::max();  // max: unknown (valid until refused)
};

class TokenSource {
 public:
  virtual ~TokenSource() = default;

  // The token to call with now. Errors: invalid_tenant (no token and no way to get one, or the
  // refresh token is invalid), retryable (the refresh failed for now), token_invalid.
  virtual Result<AccessToken> current(const Tenant& tenant) = 0;

  // WeChat refused `failed`. If another lane already replaced it, returns the replacement
  // without a call; otherwise renews once (single flight) and returns the new token. A job
  // retries at most once per renewal: a second refusal of the renewed token fails the job.
  // Errors: as current(); token_invalid when the token cannot be renewed.
  virtual Result<AccessToken> renew(const Tenant& tenant, const std::string& failed) = 0;
};

}  // namespace fanpull
