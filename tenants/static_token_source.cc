#include "tenants/static_token_source.h"

namespace fanpull {
namespace {

Error noToken(const std::string& appid, const std::string& why) {
  return Error::of(ErrorClass::kTokenInvalid, "appid " + appid + ": " + why);
}

}  // namespace

Result<AccessToken> StaticTokenSource::current(const Tenant& tenant) {
  if (tenant.authorizer_access_token.empty()) {
    return noToken(tenant.appid, "no authorizer_access_token in the tenants file");
  }
  return AccessToken{tenant.authorizer_access_token, TimePoint::max()};
}

Result<AccessToken> StaticTokenSource::renew(const Tenant& tenant, const std::string& failed) {
  std::vector<TenantProblem> ignored;
  registry_.reloadIfChanged(&ignored);
  std::shared_ptr<const Tenant> now = registry_.current()->find(tenant.appid);
  if (now && !now->authorizer_access_token.empty() && now->authorizer_access_token != failed) {
    return AccessToken{now->authorizer_access_token, TimePoint::max()};
  }
  return noToken(tenant.appid,
                 "WeChat refused the static authorizer_access_token; put a fresh one in the "
                 "tenants file or configure the component to refresh tokens");
}

}  // namespace fanpull
