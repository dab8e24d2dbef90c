#include "tenants/permission.h"

#include <algorithm>
#include <string>

namespace fanpull {

bool grantsUserList(const std::vector<int>& func_info) {
  return std::any_of(func_info.begin(), func_info.end(), [](int id) {
    return id == kUserManagementPermission || id == kUserListPermission;
  });
}

std::optional<Error> checkUserListPermission(const std::vector<int>& func_info) {
  if (grantsUserList(func_info)) return std::nullopt;
  Error e;
  e.error_class = ErrorClass::kPermissionDenied;
  std::string granted;
  for (int id : func_info) granted += (granted.empty() ? "" : ",") + std::to_string(id);
  e.cause = "func_info [" + granted + "] grants neither permission set 2 nor 100 (user list)";
  return e;
}

}  // namespace fanpull
