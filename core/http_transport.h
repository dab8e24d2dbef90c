// HttpTransport: the narrow interface through which fanpull talks HTTP to WeChat. The real one is
// PocoHttpTransport; tests use scripted fakes. Implementations must be thread-safe: many lanes
// send through one transport at once.
#pragma once

#include <string>

#include "core/result.h"

namespace fanpull {

struct HttpRequest {
  std::string method = "GET";
  std::string target;  // path and query, already percent-encoded ("/cgi-bin/user/get?...")
  std::string body;
  std::string content_type;  // for requests with a body
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // The response for any HTTP status, or a retryable transport Error (connect, timeout, reset,
  // TLS, too large, protocol). The Error never contains the request target (it holds tokens).
  virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
};

}  // namespace fanpull
