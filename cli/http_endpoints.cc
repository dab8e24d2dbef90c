#include "cli/http_endpoints.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "config/worker_config.h"

namespace fanpull {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

namespace {

Error endpointError(std::string cause) {
  return Error::of(ErrorClass::kUnknown, std::move(cause));
}

void send(HTTPServerRequest& request, HTTPServerResponse& response, HTTPResponse::HTTPStatus status,
          const std::string& content_type, const std::string& body) {
  response.setStatusAndReason(status);
  response.setContentType(content_type);
  response.set("Cache-Control", "no-store");
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  if (request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD) {
    response.send();
    return;
  }
  response.send() << body;
}

}  // namespace

class HttpEndpoints::Impl {
 public:
  explicit Impl(HttpEndpointsOptions options) : options_(std::move(options)) {}
  ~Impl() { stop(); }

  Result<bool> start() {
    std::string host;
    uint16_t port = 0;
    if (!splitHostPort(options_.listen, &host, &port)) {
      return endpointError("http.listen: expected HOST:PORT, got \"" + options_.listen + "\"");
    }
    try {
      // SO_REUSEADDR (a restarted worker rebinds at once) but not SO_REUSEPORT: a second worker
      // on the same address must fail, not share its scrapes.
      Poco::Net::ServerSocket socket;
      socket.bind(Poco::Net::SocketAddress(host, port), /*reuseAddress=*/true, /*reusePort=*/false);
      socket.listen(64);
      host_ = host;
      port_ = socket.address().port();
      auto* params = new Poco::Net::HTTPServerParams;
      params->setKeepAlive(true);
      params->setKeepAliveTimeout(Poco::Timespan(10, 0));
      params->setMaxThreads(4);
      params->setMaxQueued(64);
      params->setServerName("fanpull");
      pool_ = std::make_unique<Poco::ThreadPool>(1, 4, 60);
      server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), *pool_, socket, params);
      server_->start();
    } catch (const Poco::Exception& e) {
      server_.reset();
      pool_.reset();
      return endpointError("http.listen " + options_.listen + ": " + e.displayText());
    }
    return true;
  }

  void stop() {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (!server_) return;
    server_->stopAll(true);
    server_.reset();
    pool_->joinAll();
    pool_.reset();
  }

  std::string address() const {
    if (host_.find(':') != std::string::npos) return "[" + host_ + "]:" + std::to_string(port_);
    return host_ + ":" + std::to_string(port_);
  }
  uint16_t port() const { return port_; }

  void handle(HTTPServerRequest& request, HTTPServerResponse& response) {
    std::string path = request.getURI();
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
    const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz";
    if (!known) {
      return send(request, response, HTTPResponse::HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                  "not found: try /metrics, /healthz or /readyz\n");
    }
    const std::string& method = request.getMethod();
    if (method != Poco::Net::HTTPRequest::HTTP_GET && method != Poco::Net::HTTPRequest::HTTP_HEAD) {
      response.set("Allow", "GET, HEAD");
      return send(request, response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED,
                  "text/plain; charset=utf-8", "method not allowed\n");
    }
    if (path == "/metrics") {
      std::string text = options_.metrics ? options_.metrics() : std::string();
      return send(request, response, HTTPResponse::HTTP_OK,
                  "text/plain; version=0.0.4; charset=utf-8", text);
    }
    if (path == "/healthz") {
      bool alive = !options_.alive || options_.alive();
      return send(request, response,
                  alive ? HTTPResponse::HTTP_OK : HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                  "text/plain; charset=utf-8", alive ? "ok\n" : "poll loop not alive\n");
    }
    std::vector<std::string> missing;
    if (options_.not_ready) missing = options_.not_ready();
    nlohmann::json body = {{"ready", missing.empty()}, {"missing", missing}};
    return send(request, response,
                missing.empty() ? HTTPResponse::HTTP_OK : HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                "application/json", body.dump() + "\n");
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(Impl& impl) : impl_(impl) {}
    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
      try {
        impl_.handle(request, response);
      } catch (const std::exception&) {
        // The client went away mid-answer: nothing to tell anyone.
      }
    }

   private:
    Impl& impl_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(Impl& impl) : impl_(impl) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
      return new Handler(impl_);
    }

   private:
    Impl& impl_;
  };

  const HttpEndpointsOptions options_;
  std::string host_;
  uint16_t port_ = 0;
  std::mutex stop_mutex_;  // serializes stop()
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

Result<std::unique_ptr<HttpEndpoints>> HttpEndpoints::start(HttpEndpointsOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  auto started = impl->start();
  if (!started.ok()) return started.error();
  return std::unique_ptr<HttpEndpoints>(new HttpEndpoints(std::move(impl)));
}

HttpEndpoints::HttpEndpoints(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpEndpoints::~HttpEndpoints() { stop(); }

std::string HttpEndpoints::address() const { return impl_->address(); }

uint16_t HttpEndpoints::port() const { return impl_->port(); }

void HttpEndpoints::stop() { impl_->stop(); }

}  // namespace fanpull
