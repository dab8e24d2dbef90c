// Whether a merchant may be served at all: getFans belongs to permission sets ("func_info" ids) 2
// and 100. A merchant that granted neither is refused before any call spends its quota.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "core/error.h"

namespace fanpull {

inline constexpr int kUserManagementPermission = 2;
inline constexpr int kUserListPermission = 100;

// True when func_info holds permission set 2 or 100.
bool grantsUserList(const std::vector<int>& func_info);

// nullopt when the merchant may be served; otherwise a permission_denied Error saying which sets
// are missing.
std::optional<Error> checkUserListPermission(const std::vector<int>& func_info);

}  // namespace fanpull
