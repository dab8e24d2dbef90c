// PocoHttpTransport: HttpTransport over Poco's HTTP(S) client. HTTPS verifies the certificate chain
// against the system's CAs (plus an optional ca_file) and the host name; it is never silently
// unverified. Idle keep-alive connections are pooled and reused; connect and read timeouts apply;
// a response body over max_response_bytes is an error, never an allocation. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/http_transport.h"

namespace Poco::Net {
class HTTPClientSession;
}  // namespace Poco::Net

namespace fanpull {

struct HttpTransportOptions {
  std::string base_url = "https://api.weixin.qq.com";  // scheme, host, optional port and path prefix
  Duration connect_timeout = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(10);  // send and receive, per socket operation
  size_t max_response_bytes = 4 << 20;
  std::string ca_file;         // extra trusted CA certificates (PEM); system CAs are always trusted
  size_t max_idle_connections = 64;
};

class PocoHttpTransport final : public HttpTransport {
 public:
  // Fails (with cause) for a base_url that is not http(s)://host[:port][/path], or a ca_file that
  // cannot be loaded.
  static Result<std::unique_ptr<PocoHttpTransport>> create(const HttpTransportOptions& options);
  ~PocoHttpTransport() override;

  Result<HttpResponse> send(const HttpRequest& request) override;

  // Connections opened so far (to observe keep-alive reuse).
  int64_t connectionsOpened() const;

 private:
  struct Endpoint {
    bool https = false;
    std::string host;
    uint16_t port = 0;
    std::string path_prefix;
  };
  struct ContextHolder;
  PocoHttpTransport(HttpTransportOptions options, Endpoint endpoint,
                    std::unique_ptr<ContextHolder> context);

  std::unique_ptr<Poco::Net::HTTPClientSession> takeSession(bool allow_idle, bool* reused);
  void giveBack(std::unique_ptr<Poco::Net::HTTPClientSession> session);
  Result<HttpResponse> sendOnce(Poco::Net::HTTPClientSession& session, const HttpRequest& request,
                                bool* nothing_received);

  const HttpTransportOptions options_;
  const Endpoint endpoint_;
  std::unique_ptr<ContextHolder> context_;  // TLS settings; null for plain HTTP

  mutable std::mutex mutex_;  // guards idle_ and opened_
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> idle_;
  int64_t opened_ = 0;
};

}  // namespace fanpull
