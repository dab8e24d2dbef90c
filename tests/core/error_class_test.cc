#include <catch2/catch.hpp>

#include "core/error_class.h"

using namespace fanpull;

TEST_CASE("every errcode of docs/CONTRACTS.md maps to its class", "[core][unit]") {
  struct Row {
    long errcode;
    const char* cls;
  };
  const Row rows[] = {
      {-1, "retryable"},          {40001, "token_invalid"},     {40014, "token_invalid"},
      {42001, "token_invalid"},   {41001, "token_invalid"},     {45011, "rate_limited"},
      {45009, "quota_exhausted"}, {48001, "permission_denied"}, {48004, "permission_denied"},
      {50001, "permission_denied"}, {50002, "permission_denied"}, {61007, "permission_denied"},
      {61004, "permission_denied"}, {40013, "invalid_tenant"},  {61003, "invalid_tenant"},
      {61023, "invalid_tenant"},  {40003, "invalid_cursor"},    {61005, "retryable"},
      {61006, "retryable"},       {12345, "unknown"},           {40002, "unknown"},
  };
  for (const auto& row : rows) {
    INFO("errcode " << row.errcode);
    CHECK(errorClassName(classifyErrcode(row.errcode)) == row.cls);
  }
}

TEST_CASE("class names round-trip and are the binding names", "[core][unit]") {
  for (const char* name : {"retryable", "token_invalid", "rate_limited", "quota_exhausted",
                           "permission_denied", "invalid_tenant", "invalid_cursor", "bad_job",
                           "unknown"}) {
    auto c = errorClassFromName(name);
    REQUIRE(c.has_value());
    CHECK(errorClassName(*c) == name);
  }
  CHECK_FALSE(errorClassFromName("quota").has_value());
}

TEST_CASE("HTTP 5xx, 408 and 429 are retryable; other statuses unknown", "[core][unit]") {
  CHECK(httpStatusError(502, "").error_class == ErrorClass::kRetryable);
  CHECK(httpStatusError(500, "").error_class == ErrorClass::kRetryable);
  CHECK(httpStatusError(503, "").error_class == ErrorClass::kRetryable);
  CHECK(httpStatusError(408, "").error_class == ErrorClass::kRetryable);
  CHECK(httpStatusError(429, "").error_class == ErrorClass::kRetryable);
  Error e = httpStatusError(404, "HTTP 404");
  CHECK(e.error_class == ErrorClass::kUnknown);
  CHECK(e.http_status == 404);
}

TEST_CASE("every transport failure is retryable and says what happened", "[core][unit]") {
  for (auto kind : {TransportFailure::kConnect, TransportFailure::kTimeout, TransportFailure::kReset,
                    TransportFailure::kTls, TransportFailure::kTooLarge,
                    TransportFailure::kProtocol}) {
    Error e = transportError(kind, "detail");
    CHECK(e.error_class == ErrorClass::kRetryable);
    CHECK(e.cause.find("detail") != std::string::npos);
  }
  CHECK(transportError(TransportFailure::kTimeout, "").cause == "timeout");
}

TEST_CASE("an error describes its class, errcode, errmsg and cause", "[core][unit]") {
  Error e = errcodeError(45009, "reach max api daily quota limit");
  CHECK(e.describe() == "quota_exhausted: errcode 45009 (reach max api daily quota limit)");
  CHECK(transportError(TransportFailure::kReset, "").describe() == "retryable: connection reset");
  CHECK(httpStatusError(502, "HTTP 502 (text/html)").describe() ==
        "retryable: HTTP 502: HTTP 502 (text/html)");
}
