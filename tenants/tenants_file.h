// The tenants file (docs/CONTRACTS.md, "Tenants file"): who the merchants are, their credentials,
// permission sets and limits. Loading validates everything and reports every problem with the
// file, the tenant, the key and the reason. Plain values; thread-compatible.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/rate_limiter.h"

namespace fanpull {

struct Tenant {
  std::string appid;
  std::string authorizer_access_token;   // may be empty when a refresh token is set
  std::string authorizer_refresh_token;  // may be empty when an access token is set
  std::optional<std::vector<int>> func_info;  // absent: not declared (WeChat decides)
  // The tenant's own rate_limit keys; each absent one falls back to the config's default.
  std::optional<double> requests_per_second;
  std::optional<int> burst;
  std::optional<int64_t> daily_calls;

  // The limits this tenant runs with, given the config's defaults.
  RateLimit rateLimit(const RateLimit& defaults) const {
    return {requests_per_second.value_or(defaults.requests_per_second),
            burst.value_or(defaults.burst), daily_calls.value_or(defaults.daily_calls)};
  }
};

struct TenantProblem {
  std::string file;
  std::string tenant;  // the appid, or "tenants[3]" when the appid is missing or bad
  std::string key;     // e.g. "func_info", "rate_limit.burst"; empty for the whole file
  std::string reason;
  // "FILE: TENANT: KEY: REASON"
  std::string describe() const;
};

// An immutable set of tenants, by appid. Shared between the registry and work in flight.
class TenantSet {
 public:
  explicit TenantSet(std::map<std::string, std::shared_ptr<const Tenant>> tenants)
      : tenants_(std::move(tenants)) {}
  // The tenant, or null when the appid is not in the set.
  std::shared_ptr<const Tenant> find(const std::string& appid) const;
  size_t size() const { return tenants_.size(); }
  const std::map<std::string, std::shared_ptr<const Tenant>>& all() const { return tenants_; }

 private:
  std::map<std::string, std::shared_ptr<const Tenant>> tenants_;
};

struct TenantsOptions {
  // A refresh token is usable only with the component configured; without it every tenant needs
  // an access token.
  bool component_configured = false;
};

using TenantsLoad = std::variant<std::shared_ptr<const TenantSet>, std::vector<TenantProblem>>;

// Parses tenants JSON; `file` names it in problems. Never an empty problem list.
TenantsLoad parseTenants(const std::string& text, const std::string& file,
                         const TenantsOptions& options);
TenantsLoad loadTenants(const std::string& path, const TenantsOptions& options);

}  // namespace fanpull
