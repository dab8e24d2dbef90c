#include "core/error_class.h"

#include <utility>

namespace fanpull {

ErrorClass classifyErrcode(long errcode) {
  switch (errcode) {
    case -1:     // system busy
    case 61005:  // component_verify_ticket expired: the platform must fetch a new one
    case 61006:  // component_verify_ticket invalid
      return ErrorClass::kRetryable;
    case 40001:  // invalid credential / access_token not latest
    case 40014:  // invalid access_token
    case 42001:  // access_token expired
    case 41001:  // access_token missing
      return ErrorClass::kTokenInvalid;
    case 45011:  // minute quota
      return ErrorClass::kRateLimited;
    case 45009:  // daily quota
      return ErrorClass::kQuotaExhausted;
    case 48001:  // api unauthorized
    case 48004:  // api forbidden for irregularities
    case 50001:  // user unauthorized
    case 50002:  // user limited
    case 61007:  // api is unauthorized to component
    case 61004:  // client ip not whitelisted: an operator must fix it
      return ErrorClass::kPermissionDenied;
    case 40013:  // invalid appid
    case 61003:  // component not authorized by this account
    case 61023:  // refresh_token invalid: the merchant must re-authorize
      return ErrorClass::kInvalidTenant;
    case 40003:  // invalid openid: the next_openid cursor
      return ErrorClass::kInvalidCursor;
    default:
      return ErrorClass::kUnknown;
  }
}

Error errcodeError(long errcode, std::string errmsg) {
  Error e;
  e.error_class = classifyErrcode(errcode);
  e.errcode = errcode;
  e.errmsg = std::move(errmsg);
  e.http_status = 200;
  return e;
}

Error httpStatusError(int status, std::string cause) {
  Error e;
  e.error_class = (status >= 500 || status == 408 || status == 429) ? ErrorClass::kRetryable
                                                                     : ErrorClass::kUnknown;
  e.http_status = status;
  e.cause = std::move(cause);
  return e;
}

Error transportError(TransportFailure kind, std::string cause) {
  static constexpr const char* kWhat[] = {"connect failed", "timeout", "connection reset",
                                          "TLS failure", "response too large",
                                          "HTTP protocol error"};
  Error e;
  e.error_class = ErrorClass::kRetryable;
  e.cause = std::string(kWhat[static_cast<int>(kind)]);
  if (!cause.empty()) e.cause += ": " + cause;
  return e;
}

Error malformedAnswerError(std::string cause) {
  Error e;
  e.error_class = ErrorClass::kRetryable;
  e.http_status = 200;
  e.cause = "malformed answer: " + std::move(cause);
  return e;
}

}  // namespace fanpull
