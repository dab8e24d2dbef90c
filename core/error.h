// Error: what went wrong with a call to WeChat (or with a job), as a value.
// It carries the class that decides how the worker reacts, WeChat's errcode and errmsg when WeChat
// gave them, the HTTP status when there was one, and a short cause. It never holds a token or secret.
// Plain value type; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fanpull {

// The error classes of docs/CONTRACTS.md. The names returned by errorClassName() are binding.
enum class ErrorClass {
  kRetryable,
  kTokenInvalid,
  kRateLimited,
  kQuotaExhausted,
  kPermissionDenied,
  kInvalidTenant,
  kInvalidCursor,
  kBadJob,
  kUnknown,
};

// "retryable", "token_invalid", ... as in docs/CONTRACTS.md.
std::string_view errorClassName(ErrorClass c);
// The inverse of errorClassName(); nullopt for a name that is not a class.
std::optional<ErrorClass> errorClassFromName(std::string_view name);

struct Error {
  ErrorClass error_class = ErrorClass::kUnknown;
  std::optional<long> errcode;  // WeChat's errcode, when WeChat answered with one
  std::string errmsg;           // WeChat's errmsg, as WeChat sent it (may be empty)
  int http_status = 0;          // HTTP status when an HTTP answer was received, else 0
  std::string cause;            // short human-readable reason, never a secret

  // An error of class `cls` with only a cause (no WeChat errcode, no HTTP status): what the
  // worker, the token sources and the Kafka clients build for failures of their own.
  static Error of(ErrorClass cls, std::string cause);

  // "token_invalid: errcode 40001 (invalid credential): <cause>", for logs and messages.
  std::string describe() const;
};

}  // namespace fanpull
