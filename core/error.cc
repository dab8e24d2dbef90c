#include "core/error.h"

#include <array>
#include <utility>

namespace fanpull {
namespace {

constexpr std::array<std::pair<ErrorClass, std::string_view>, 9> kNames = {{
    {ErrorClass::kRetryable, "retryable"},
    {ErrorClass::kTokenInvalid, "token_invalid"},
    {ErrorClass::kRateLimited, "rate_limited"},
    {ErrorClass::kQuotaExhausted, "quota_exhausted"},
    {ErrorClass::kPermissionDenied, "permission_denied"},
    {ErrorClass::kInvalidTenant, "invalid_tenant"},
    {ErrorClass::kInvalidCursor, "invalid_cursor"},
    {ErrorClass::kBadJob, "bad_job"},
    {ErrorClass::kUnknown, "unknown"},
}};

}  // namespace

std::string_view errorClassName(ErrorClass c) {
  for (const auto& [cls, name] : kNames) {
    if (cls == c) return name;
  }
  return "unknown";
}

std::optional<ErrorClass> errorClassFromName(std::string_view name) {
  for (const auto& [cls, n] : kNames) {
    if (n == name) return cls;
  }
  return std::nullopt;
}

Error Error::of(ErrorClass cls, std::string cause) {
  Error e;
  e.error_class = cls;
  e.cause = std::move(cause);
  return e;
}

std::string Error::describe() const {
  std::string out(errorClassName(error_class));
  if (errcode) {
    out += ": errcode " + std::to_string(*errcode);
    if (!errmsg.empty()) out += " (" + errmsg + ")";
  } else if (http_status != 0) {
    out += ": HTTP " + std::to_string(http_status);
  }
  if (!cause.empty()) out += ": " + cause;
  return out;
}

}  // namespace fanpull
