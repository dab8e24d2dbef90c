// ScriptedTransport: an HttpTransport that answers from a script and records every request.
// Thread-safe.
#pragma once

#include <deque>
#include <mutex>
#include <vector>

#include "core/http_transport.h"

namespace fanpull::testing {

class ScriptedTransport final : public HttpTransport {
 public:
  void answer(int status, std::string body, std::string content_type = "application/json") {
    std::lock_guard<std::mutex> lock(mutex_);
    script_.push_back(HttpResponse{status, std::move(content_type), std::move(body)});
  }
  void fail(Error e) {
    std::lock_guard<std::mutex> lock(mutex_);
    script_.push_back(std::move(e));
  }
  Result<HttpResponse> send(const HttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(request);
    if (script_.empty()) {
      Error e;
      e.error_class = ErrorClass::kRetryable;
      e.cause = "ScriptedTransport: script exhausted";
      return e;
    }
    Result<HttpResponse> r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  mutable std::mutex mutex_;  // guards script_ and requests_
  std::deque<Result<HttpResponse>> script_;
  std::vector<HttpRequest> requests_;
};

}  // namespace fanpull::testing
