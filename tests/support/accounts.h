// merchant(): a sandbox account as most tests and benchmarks want it: `followers` followers,
// permission set 2 granted, one access token "token-<appid>" (the tenants files these tests write
// use the same token).
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/accounts.h"

namespace fanpull::testing {

inline sandbox::Account merchant(const std::string& appid, int64_t followers) {
  sandbox::Account a;
  a.appid = appid;
  a.followers = followers;
  a.func_info = {2};
  a.access_tokens = {"token-" + appid};
  return a;
}

}  // namespace fanpull::testing
