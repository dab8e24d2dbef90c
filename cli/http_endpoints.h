// HttpEndpoints: the worker's operator endpoints over HTTP (Poco HTTPServer): `GET /metrics`
// (Prometheus text format 0.0.4), `GET /healthz` (200 while the poll loop is alive, else 503) and
// `GET /readyz` (200 when ready, else 503 with a JSON body naming what is missing). Other paths
// answer 404, other methods 405. What the answers say comes from injected callbacks, called on
// the server's threads: they must be thread-safe. start() and stop() are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace fanpull {

struct HttpEndpointsOptions {
  std::string listen = "127.0.0.1:9464";  // HOST:PORT; port 0 takes a free port
  // The exposition text for /metrics.
  std::function<std::string()> metrics;
  // True while the worker is alive (its poll loop turns). Unset: always alive.
  std::function<bool()> alive;
  // What keeps the worker from being ready, one short reason each; empty when ready.
  // Unset: always ready.
  std::function<std::vector<std::string>()> not_ready;
};

class HttpEndpoints {
 public:
  // Listens and serves on threads of its own. Errors (class unknown): a malformed listen
  // address, or the address cannot be bound (in use, not local, no permission).
  static Result<std::unique_ptr<HttpEndpoints>> start(HttpEndpointsOptions options);
  ~HttpEndpoints();  // stop()
  HttpEndpoints(const HttpEndpoints&) = delete;
  HttpEndpoints& operator=(const HttpEndpoints&) = delete;

  // The address bound, "HOST:PORT" with the real port ("[::1]:PORT" for IPv6).
  std::string address() const;
  uint16_t port() const;

  // Stops accepting and closes open connections. Idempotent.
  void stop();

 private:
  class Impl;
  explicit HttpEndpoints(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanpull
