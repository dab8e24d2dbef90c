#include "core/poco_http_transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <istream>
#include <mutex>
#include <utility>

#include "core/buffer_pool.h"
#include "core/error_class.h"

namespace fanpull {

struct PocoHttpTransport::ContextHolder {
  Poco::Net::Context::Ptr context;
};

namespace {

Poco::Timespan toTimespan(Duration d) {
  return Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

Error setupError(std::string cause) {
  return Error::of(ErrorClass::kRetryable, std::move(cause));
}

// Maps what Poco threw to a transport failure. Poco's messages name hosts and reasons, never the
// request target, so they are safe to keep.
Error fromPocoException(const Poco::Exception& ex) {
  if (dynamic_cast<const Poco::TimeoutException*>(&ex)) {
    return transportError(TransportFailure::kTimeout, ex.displayText());
  }
  if (dynamic_cast<const Poco::Net::SSLException*>(&ex)) {
    return transportError(TransportFailure::kTls, ex.displayText());
  }
  if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&ex) ||
      dynamic_cast<const Poco::Net::DNSException*>(&ex) ||
      dynamic_cast<const Poco::Net::HostNotFoundException*>(&ex)) {
    return transportError(TransportFailure::kConnect, ex.displayText());
  }
  if (dynamic_cast<const Poco::Net::NoMessageException*>(&ex) ||
      dynamic_cast<const Poco::Net::ConnectionResetException*>(&ex) ||
      dynamic_cast<const Poco::Net::ConnectionAbortedException*>(&ex) ||
      dynamic_cast<const Poco::IOException*>(&ex)) {
    // Poco's socket errors (reset, broken pipe, closed) are IOExceptions.
    if (dynamic_cast<const Poco::Net::MessageException*>(&ex) &&
        !dynamic_cast<const Poco::Net::NoMessageException*>(&ex)) {
      return transportError(TransportFailure::kProtocol, ex.displayText());
    }
    return transportError(TransportFailure::kReset, ex.displayText());
  }
  return transportError(TransportFailure::kProtocol, ex.displayText());
}

// Reads from a session's connection as its body streams do, without their 4 KB buffer: an answer
// of 310 KB then takes a few large reads instead of about 80 small ones, each a system call and a
// copy more. HTTPSession::read is protected; a pointer to it formed through a derived class is the
// standard way to reach it (it stays virtual: HTTPS sessions read through TLS).
// Bytes of capacity reserved past a body of known length.
constexpr size_t kBodySlack = 1024;

struct SessionReader : Poco::Net::HTTPSession {
  static int readSome(Poco::Net::HTTPSession& session, char* buffer, std::streamsize length) {
    return (session.*&SessionReader::read)(buffer, length);
  }
};

void initializeSslOnce() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Net::initializeSSL(); });
}

}  // namespace

Result<std::unique_ptr<PocoHttpTransport>> PocoHttpTransport::create(
    const HttpTransportOptions& options) {
  Endpoint endpoint;
  try {
    Poco::URI uri(options.base_url);
    if (uri.getScheme() != "http" && uri.getScheme() != "https") {
      return setupError("base_url must start with http:// or https://");
    }
    if (uri.getHost().empty()) return setupError("base_url has no host");
    if (!uri.getQuery().empty() || !uri.getFragment().empty()) {
      return setupError("base_url must not have a query or fragment");
    }
    endpoint.https = uri.getScheme() == "https";
    endpoint.host = uri.getHost();
    endpoint.port = uri.getPort();
    endpoint.path_prefix = uri.getPath();
    while (!endpoint.path_prefix.empty() && endpoint.path_prefix.back() == '/') {
      endpoint.path_prefix.pop_back();
    }
  } catch (const Poco::Exception& ex) {
    return setupError("base_url is not a URL: " + ex.displayText());
  }
  auto holder = std::make_unique<ContextHolder>();
  if (endpoint.https) {
    initializeSslOnce();
    try {
      // Chain verification against the system CAs and ca_file.
      holder->context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "",
                                               options.ca_file, Poco::Net::Context::VERIFY_RELAXED,
                                               9, /*loadDefaultCAs=*/true);
      holder->context->enableExtendedCertificateVerification(true);
      // The host name (or IP address) is checked by OpenSSL during the handshake: the context
      // serves one host, so the expected name lives in its verification parameters.
      X509_VERIFY_PARAM* param = SSL_CTX_get0_param(holder->context->sslContext());
      Poco::Net::IPAddress ip;
      int set = Poco::Net::IPAddress::tryParse(endpoint.host, ip)
                    ? X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, endpoint.host.c_str(), endpoint.host.size());
      if (set != 1) return setupError("cannot set up TLS host name verification");
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    } catch (const Poco::Exception& ex) {
      return setupError("cannot set up TLS (ca_file " + options.ca_file + "): " + ex.displayText());
    }
  }
  return std::unique_ptr<PocoHttpTransport>(
      new PocoHttpTransport(options, std::move(endpoint), std::move(holder)));
}

PocoHttpTransport::PocoHttpTransport(HttpTransportOptions options, Endpoint endpoint,
                                     std::unique_ptr<ContextHolder> context)
    : options_(std::move(options)), endpoint_(std::move(endpoint)), context_(std::move(context)) {}

PocoHttpTransport::~PocoHttpTransport() = default;

int64_t PocoHttpTransport::connectionsOpened() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return opened_;
}

std::unique_ptr<Poco::Net::HTTPClientSession> PocoHttpTransport::takeSession(bool allow_idle,
                                                                            bool* reused) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (allow_idle && !idle_.empty()) {
      auto session = std::move(idle_.back());
      idle_.pop_back();
      *reused = true;
      return session;
    }
    ++opened_;
  }
  *reused = false;
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (endpoint_.https) {
    session = std::make_unique<Poco::Net::HTTPSClientSession>(endpoint_.host, endpoint_.port,
                                                              context_->context);
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(endpoint_.host, endpoint_.port);
  }
  session->setKeepAlive(true);
  session->setTimeout(toTimespan(options_.connect_timeout), toTimespan(options_.timeout),
                      toTimespan(options_.timeout));
  return session;
}

void PocoHttpTransport::giveBack(std::unique_ptr<Poco::Net::HTTPClientSession> session) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(session));
}

Result<HttpResponse> PocoHttpTransport::sendOnce(Poco::Net::HTTPClientSession& session,
                                                 const HttpRequest& request,
                                                 bool* nothing_received) {
  *nothing_received = true;
  try {
    Poco::Net::HTTPRequest req(request.method, endpoint_.path_prefix + request.target,
                               Poco::Net::HTTPMessage::HTTP_1_1);
    req.setKeepAlive(true);
    if (!request.body.empty() || request.method == "POST") {
      req.setContentLength64(static_cast<Poco::Int64>(request.body.size()));
      if (!request.content_type.empty()) req.setContentType(request.content_type);
    }
    std::ostream& os = session.sendRequest(req);
    os.write(request.body.data(), static_cast<std::streamsize>(request.body.size()));
    os.flush();

    Poco::Net::HTTPResponse resp;
    std::istream& is = session.receiveResponse(resp);
    *nothing_received = false;
    HttpResponse out;
    out.status = static_cast<int>(resp.getStatus());
    out.content_type = resp.getContentType();
    if (resp.hasContentLength()) {
      Poco::Int64 length = resp.getContentLength64();
      if (length > static_cast<Poco::Int64>(options_.max_response_bytes)) {
        return transportError(TransportFailure::kTooLarge,
                              "Content-Length " + std::to_string(length) + " over the limit of " +
                                  std::to_string(options_.max_response_bytes) + " bytes");
      }
      // Read straight into the body, from the connection (the session first hands over what it
      // read past the headers): a page of 10,000 OpenIDs is about 310 KB. The room past it lets
      // the page message be written in the same buffer (encodePageMessages), which goes back to
      // the pool once Kafka has the message.
      out.body = BufferPool::bodies().take(static_cast<size_t>(length),
                                           static_cast<size_t>(length) + kBodySlack);
      size_t got = 0;
      while (got < out.body.size()) {
        int n = SessionReader::readSome(session, out.body.data() + got,
                                        static_cast<std::streamsize>(out.body.size() - got));
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      out.body.resize(got);
      if (static_cast<Poco::Int64>(out.body.size()) != length) {
        return transportError(TransportFailure::kReset,
                              "body cut short: " + std::to_string(out.body.size()) + " of " +
                                  std::to_string(length) + " bytes");
      }
      return out;
    }
    char buf[65536];
    while (is) {
      is.read(buf, sizeof buf);
      std::streamsize n = is.gcount();
      if (n <= 0) break;
      if (out.body.size() + static_cast<size_t>(n) > options_.max_response_bytes) {
        return transportError(TransportFailure::kTooLarge,
                              "body over the limit of " +
                                  std::to_string(options_.max_response_bytes) + " bytes");
      }
      out.body.append(buf, static_cast<size_t>(n));
    }
    if (is.bad()) return transportError(TransportFailure::kReset, "body cut short");
    return out;
  } catch (const Poco::TimeoutException& ex) {
    *nothing_received = false;  // the server took the request and is slow: do not send it again
    return fromPocoException(ex);
  } catch (const Poco::Exception& ex) {
    return fromPocoException(ex);
  } catch (const std::exception& ex) {
    return transportError(TransportFailure::kProtocol, ex.what());
  }
}

Result<HttpResponse> PocoHttpTransport::send(const HttpRequest& request) {
  bool reused = false;
  auto session = takeSession(/*allow_idle=*/true, &reused);
  bool nothing_received = true;
  Result<HttpResponse> result = sendOnce(*session, request, &nothing_received);
  // A pooled connection the server has closed meanwhile fails before any answer: try once more on
  // a fresh connection, for GET only (a POST may have been processed and must not be repeated).
  // A timeout is not such a failure: sending again would only double the wait.
  if (!result.ok() && reused && nothing_received && request.method == "GET") {
    session.reset();
    session = takeSession(/*allow_idle=*/false, &reused);
    result = sendOnce(*session, request, &nothing_received);
  }
  if (result.ok()) {
    giveBack(std::move(session));
  }
  return result;
}

}  // namespace fanpull
