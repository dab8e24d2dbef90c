// walkFollowers: a synchronous walk of one merchant's list with a TokenSource, driven by the
// worker's JobWalk (admission, token, getFans, one renewal per refused token, bounded retries,
// no waiting). For tests of the client, the tenants and the token source against the sandbox.
#pragma once

#include <string>
#include <vector>

#include "core/user_list_client.h"
#include "tenants/tenant_registry.h"
#include "support/fraction_random.h"
#include "tenants/token_source.h"
#include "worker/job_walk.h"

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
  // The walk's decisions are the worker's own (worker/job_walk.h); waits are not taken here.
  BackoffPolicy policy;
  policy.base = Duration::zero();
  policy.cap = Duration::zero();
  policy.max_attempts = max_retries + 1;
  JobWalk walk(policy);
  FractionRandom no_jitter(0.0);
  while (true) {
    ++out.calls;
    auto page = client.getFans(token->value, walk.cursor());
    WalkNext next;
    if (page.ok()) {
      WalkDecision d = walk.answer(*page);
      if (d.page) {
        for (size_t i = 0; i < page->size(); ++i) out.openids.emplace_back(page->openid(i));
        walk.delivered(d.page->seq);
      }
      next = d.next;
    } else {
      next = walk.error(page.error(), TimePoint{}, no_jitter);
    }
    while (next == WalkNext::Kind::kRenewToken) {
      ++out.renewals;
      Result<AccessToken> renewed = tokens.renew(**tenant, token->value);
      if (renewed.ok()) {
        token = std::move(renewed);
        next = walk.renewed();
      } else {
        next = walk.renewFailed(next.error, renewed.error(), TimePoint{}, no_jitter);
      }
    }
    if (next == WalkNext::Kind::kCall) continue;
    if (next != WalkNext::Kind::kComplete) out.error = next.error;
    return out;
  }
}

}  // namespace fanpull::testing
