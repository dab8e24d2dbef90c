// StaticTokenSource: the authorizer_access_token of each tenant, as the tenants file gives it.
// Renewal means re-reading the file: an operator who puts a fresh token in the file is picked up
// by the next renew(); otherwise a refused token fails the job (token_invalid). Thread-safe.
#pragma once

#include "tenants/tenant_registry.h"
#include "tenants/token_source.h"

namespace fanpull {

class StaticTokenSource final : public TokenSource {
 public:
  explicit StaticTokenSource(TenantRegistry& registry) : registry_(registry) {}

  Result<AccessToken> current(const Tenant& tenant) override;
  Result<AccessToken> renew(const Tenant& tenant, const std::string& failed) override;

 private:
  TenantRegistry& registry_;
};

}  // namespace fanpull
