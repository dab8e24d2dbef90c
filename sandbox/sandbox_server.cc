#include "sandbox/sandbox_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <istream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_map>
#include <utility>

#include "sandbox/openids.h"
#include "sandbox/page_cache.h"

namespace fanpull::sandbox {
namespace {

using nlohmann::json;
using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

constexpr int64_t kPageSize = 10000;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr std::size_t kMaxBodyBytes = 1 << 20;
constexpr char kTokenAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char k502Body[] =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad "
    "Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

const char* errmsgFor(int errcode) {
  switch (errcode) {
    case -1:
      return "system error";
    case 40001:
      return "invalid credential, access_token is invalid or not latest";
    case 40003:
      return "invalid openid";
    case 40013:
      return "invalid appid";
    case 40014:
      return "invalid access_token";
    case 40125:
      return "invalid appsecret";
    case 41001:
      return "access_token missing";
    case 42001:
      return "access_token expired";
    case 45009:
      return "reach max api daily quota limit";
    case 76021:
      return "cgi_path not found, please check";
    case 76022:
      return "could not use this cgi_path, no permission";
    case 45011:
      return "api minute-quota reach limit  mustslower  retry next minute";
    case 47001:
      return "data format error";
    case 48001:
      return "api unauthorized";
    case 48004:
      return "api forbidden for irregularities";
    case 50001:
      return "user unauthorized";
    case 50002:
      return "user limited";
    case 61003:
      return "component is not authorized by this account";
    case 61004:
      return "access clientip is not registered";
    case 61005:
      return "component_verify_ticket is expired";
    case 61006:
      return "component_verify_ticket is invalid";
    case 61007:
      return "api is unauthorized to component";
    case 61023:
      return "refresh_token is invalid";
    default:
      return "sandbox error";
  }
}

std::string errorBody(int errcode) {
  return std::string("{\"errcode\":") + std::to_string(errcode) + ",\"errmsg\":\"" +
         errmsgFor(errcode) + "\"}";
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string decodeComponent(const std::string& raw) {
  std::string out;
  try {
    Poco::URI::decode(raw, out, true);
  } catch (const Poco::Exception&) {
    return raw;  // a malformed escape: keep what was sent
  }
  return out;
}

// Splits a raw query string into decoded (name, value) pairs, in order.
std::vector<std::pair<std::string, std::string>> parseQuery(const std::string& rawQuery) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= rawQuery.size()) {
    std::size_t amp = rawQuery.find('&', pos);
    if (amp == std::string::npos) amp = rawQuery.size();
    const std::string part = rawQuery.substr(pos, amp - pos);
    if (!part.empty()) {
      const std::size_t eq = part.find('=');
      if (eq == std::string::npos) {
        out.emplace_back(decodeComponent(part), std::string());
      } else {
        out.emplace_back(decodeComponent(part.substr(0, eq)), decodeComponent(part.substr(eq + 1)));
      }
    }
    pos = amp + 1;
  }
  return out;
}

const std::string* findParam(const std::vector<std::pair<std::string, std::string>>& params,
                             const std::string& name) {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

// What a handler decided to answer, built under the mutex and sent outside it.
struct Answer {
  int status = 200;
  std::string contentType = "application/json";
  std::shared_ptr<const std::string> body;
  bool truncate = false;
  bool reset = false;
  int waitMs = 0;  // latency, jitter and delay faults

  void setBody(std::string text) { body = std::make_shared<const std::string>(std::move(text)); }
};

// The page a successful user/get returns; rendered outside the mutex.
struct PageRequest {
  std::string appid;
  int64_t total = 0;
  int64_t start = 0;
  LastPageVariant variant = LastPageVariant::kRepeat;
};

std::string renderPage(const PageRequest& p) {
  if (p.start >= p.total) {
    return "{\"total\":" + std::to_string(p.total) + ",\"count\":0,\"next_openid\":\"\"}";
  }
  const int64_t end = std::min(p.total, p.start + kPageSize);
  const int64_t count = end - p.start;
  std::string s;
  s.reserve(96 + static_cast<std::size_t>(count) * (kOpenIdLength + 3));
  s += "{\"total\":";
  s += std::to_string(p.total);
  s += ",\"count\":";
  s += std::to_string(count);
  s += ",\"data\":{\"openid\":[";
  appendSandboxOpenIdList(s, p.appid, p.start, end);
  s += "]},\"next_openid\":\"";
  if (!(end == p.total && p.variant == LastPageVariant::kEmpty))
    appendSandboxOpenId(s, p.appid, end - 1);
  s += "\"}";
  return s;
}

}  // namespace

class SandboxServer::Impl {
 public:
  explicit Impl(SandboxOptions options);
  ~Impl();

  void start();
  void stop();
  void handle(HTTPServerRequest& request, HTTPServerResponse& response);
  SandboxStats snapshot(const std::string& appid) const;  // locks mutex_
  std::string statsJson(const std::string& appid) const;  // locks mutex_

  SandboxOptions options_;
  uint16_t port_ = 0;
  bool tls_ = false;

  struct AccountState {
    Account config;
    std::string refreshToken;
    std::vector<std::string> tokens;  // every token ever valid for this account
    int64_t quotaDay = std::numeric_limits<int64_t>::min();
    int64_t quotaUsed = 0;
    int64_t minute = std::numeric_limits<int64_t>::min();
    int64_t minuteUsed = 0;
    int64_t quotaGetDay = std::numeric_limits<int64_t>::min();
    int64_t quotaGetUsed = 0;
    std::size_t scriptPos = 0;
  };
  // Starts a new Beijing day's user/get count when `nowMs` is on another day.
  static void rollQuotaDay(AccountState& acc, int64_t nowMs);
  struct TokenState {
    std::size_t account = 0;
    int64_t expiresAtMs = kNever;
    int64_t okCalls = 0;
    bool revoked = false;
    bool isStatic = false;
  };

  mutable std::mutex mutex_;  // guards everything from here to the page cache
  std::vector<AccountState> accounts_;
  std::unordered_map<std::string, std::size_t> byAppid_;
  std::unordered_map<std::string, TokenState> tokens_;
  std::unordered_map<std::string, int64_t> componentTokens_;  // token -> expiry (ms)
  std::string verifyTicket_;
  bool refreshRefused_ = false;  // api_authorizer_token answers -1 without rotating
  std::mt19937_64 rng_;
  std::map<std::string, std::map<std::string, int64_t>> calls_;
  int64_t componentTokenCalls_ = 0;
  std::vector<std::string> issued_;  // every token and refresh token issued so far
  std::deque<CallLogEntry> log_;

  PageCache cache_;

  std::mutex stopMutex_;  // guards stopping_ for the interruptible waits
  std::condition_variable stopCv_;
  bool stopping_ = false;

  std::unique_ptr<Poco::ThreadPool> threadPool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  bool sslInitialized_ = false;

 private:
  int64_t now() const { return options_.clock_ms(); }
  void waitMs(int ms);
  void send(HTTPServerResponse& response, Answer& answer, HTTPServerRequest& request);

  // All below run with mutex_ held.
  void record(CallLogEntry entry);
  std::string newSecret(const char* prefix, std::size_t length);
  int latencyFor(const AccountState* account);
  FaultKind drawFault(AccountState& account);
  bool tokenExpired(const TokenState& token, int64_t nowMs) const;
  std::string issueAccessToken(std::size_t account, int64_t nowMs);

  Answer userGet(const std::vector<std::pair<std::string, std::string>>& params);
  Answer componentToken(const std::string& body);
  Answer quotaGet(const std::vector<std::pair<std::string, std::string>>& params,
                  const std::string& body);
  // The state of the access token a call carries, or null after answering 41001 (none) or
  // 40001 (unknown) through `finish`. Under mutex_.
  TokenState* knownToken(const std::string* token, Answer& answer,
                         const std::function<void(int)>& finish);
  Answer authorizerToken(const std::vector<std::pair<std::string, std::string>>& params,
                         const std::string& body);
  Answer admin(const std::string& path, const std::string& method,
               const std::vector<std::pair<std::string, std::string>>& params,
               const std::string& body);
};

namespace {

class RequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(SandboxServer::Impl& impl) : impl_(impl) {}
  void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
    impl_.handle(request, response);
  }

 private:
  SandboxServer::Impl& impl_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(SandboxServer::Impl& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
    return new RequestHandler(impl_);
  }

 private:
  SandboxServer::Impl& impl_;
};

}  // namespace

SandboxServer::Impl::Impl(SandboxOptions options)
    : options_(std::move(options)), rng_(options_.seed), cache_(options_.page_cache_bytes) {
  validateAccounts(options_.accounts, "<options>");
  if (!options_.clock_ms) {
    options_.clock_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  verifyTicket_ = options_.component.verify_ticket;
  for (std::size_t i = 0; i < options_.accounts.size(); ++i) {
    AccountState state;
    state.config = options_.accounts[i];
    state.refreshToken = state.config.refresh_token;
    for (const std::string& token : state.config.access_tokens) {
      TokenState t;
      t.account = i;
      t.isStatic = true;
      tokens_.emplace(token, t);
      state.tokens.push_back(token);
    }
    byAppid_.emplace(state.config.appid, i);
    accounts_.push_back(std::move(state));
  }
}

SandboxServer::Impl::~Impl() {
  stop();
  if (sslInitialized_) Poco::Net::uninitializeSSL();
}

void SandboxServer::Impl::start() {
  if (server_) return;
  {
    std::lock_guard<std::mutex> lock(stopMutex_);
    stopping_ = false;
  }
  const Poco::Net::SocketAddress address(options_.host, options_.port);
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  tls_ = !options_.tls_cert_file.empty() && !options_.tls_key_file.empty();
  if (tls_) {
    if (!sslInitialized_) {
      Poco::Net::initializeSSL();
      sslInitialized_ = true;
    }
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::SERVER_USE, options_.tls_key_file,
                               options_.tls_cert_file, "", Poco::Net::Context::VERIFY_NONE);
    socket = std::make_unique<Poco::Net::SecureServerSocket>(address, 256, context);
  } else {
    socket = std::make_unique<Poco::Net::ServerSocket>(address, 256);
  }
  port_ = socket->address().port();

  const int threads = std::max(2, options_.max_threads);
  auto params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(1000000);
  params->setKeepAliveTimeout(Poco::Timespan(10, 0));  // > Poco clients' 8 s
  params->setMaxThreads(threads);
  params->setMaxQueued(4 * threads);
  params->setServerName("sandbox");
  threadPool_ = std::make_unique<Poco::ThreadPool>(2, threads, 60);
  server_ = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(*this), *threadPool_,
                                                    *socket, params);
  server_->start();
}

void SandboxServer::Impl::stop() {
  if (!server_) return;
  {
    std::lock_guard<std::mutex> lock(stopMutex_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  server_->stopAll(true);
  server_.reset();
  threadPool_->joinAll();
  threadPool_.reset();
}

void SandboxServer::Impl::waitMs(int ms) {
  if (ms <= 0) return;
  std::unique_lock<std::mutex> lock(stopMutex_);
  stopCv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void SandboxServer::Impl::record(CallLogEntry entry) {
  if (options_.log_capacity == 0) return;
  while (log_.size() >= options_.log_capacity) log_.pop_front();
  log_.push_back(std::move(entry));
}

std::string SandboxServer::Impl::newSecret(const char* prefix, std::size_t length) {
  std::string s = prefix;
  for (std::size_t i = 0; i < length; ++i) s += kTokenAlphabet[rng_() & 63];
  issued_.push_back(s);
  return s;
}

int SandboxServer::Impl::latencyFor(const AccountState* account) {
  int latency = options_.latency_ms;
  int jitter = options_.jitter_ms;
  if (account && account->config.latency_ms) latency = *account->config.latency_ms;
  if (account && account->config.jitter_ms) jitter = *account->config.jitter_ms;
  if (jitter > 0) latency += static_cast<int>(rng_() % static_cast<uint64_t>(jitter + 1));
  return latency;
}

FaultKind SandboxServer::Impl::drawFault(AccountState& account) {
  const FaultSpec& f = account.config.faults;
  if (account.scriptPos < f.script.size()) return f.script[account.scriptPos++];
  const double total = f.busy + f.http502 + f.truncated + f.reset + f.delay;
  if (total <= 0) return FaultKind::kOk;
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double edge = 0;
  for (auto [p, kind] : {std::pair{f.busy, FaultKind::kBusy},
                         {f.http502, FaultKind::kHttp502},
                         {f.truncated, FaultKind::kTruncated},
                         {f.reset, FaultKind::kReset},
                         {f.delay, FaultKind::kDelay}}) {
    edge += p;
    if (u < edge) return kind;
  }
  return FaultKind::kOk;
}

bool SandboxServer::Impl::tokenExpired(const TokenState& token, int64_t nowMs) const {
  if (token.revoked || nowMs >= token.expiresAtMs) return true;
  const int64_t limit = accounts_[token.account].config.token_expires_after_calls;
  return limit > 0 && token.okCalls >= limit;
}

std::string SandboxServer::Impl::issueAccessToken(std::size_t account, int64_t nowMs) {
  AccountState& state = accounts_[account];
  const int64_t graceEnd = nowMs + int64_t{options_.grace_seconds} * 1000;
  for (const std::string& old : state.tokens) {
    TokenState& t = tokens_.at(old);
    if (!t.isStatic) t.expiresAtMs = std::min(t.expiresAtMs, graceEnd);
  }
  std::string token;
  do {
    token = newSecret("82_", 104);
  } while (tokens_.count(token) != 0);
  TokenState t;
  t.account = account;
  t.expiresAtMs = nowMs + int64_t{options_.token_ttl_seconds} * 1000;
  tokens_.emplace(token, t);
  state.tokens.push_back(token);
  return token;
}

Answer SandboxServer::Impl::userGet(
    const std::vector<std::pair<std::string, std::string>>& params) {
  Answer answer;
  const std::string* token = findParam(params, "access_token");
  const std::string* cursorParam = findParam(params, "next_openid");
  const std::string cursor = cursorParam ? *cursorParam : std::string();
  PageRequest page;
  bool serve = false;
  FaultKind fault = FaultKind::kOk;
  int delayMs = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t nowMs = now();
    CallLogEntry entry;
    entry.t_ms = nowMs;
    entry.endpoint = kEndpointUserGet;
    entry.next_openid = cursor;
    auto finish = [&](int errcode) {
      entry.errcode = errcode;
      answer.setBody(errorBody(errcode));
    };
    if (TokenState* known = knownToken(token, answer, finish)) {
      TokenState& ts = *known;
      AccountState& acc = accounts_[ts.account];
      const Account& cfg = acc.config;
      entry.appid = cfg.appid;
      ++calls_[cfg.appid][kEndpointUserGet];
      answer.waitMs = latencyFor(&acc);
      fault = drawFault(acc);
      if (fault == FaultKind::kBusy) {
        finish(-1);
      } else if (fault == FaultKind::kHttp502) {
        entry.fault = "http502";
        answer.status = 502;
        answer.contentType = "text/html";
        answer.setBody(k502Body);
      } else if (fault == FaultKind::kReset) {
        entry.fault = "reset";
        answer.reset = true;
      } else if (tokenExpired(ts, nowMs)) {
        finish(42001);
      } else if (cfg.errcode != 0) {
        finish(cfg.errcode);
      } else if (std::none_of(cfg.func_info.begin(), cfg.func_info.end(),
                              [](int id) { return id == 2 || id == 100; })) {
        finish(48001);
      } else {
        const int64_t minute = floorDiv(nowMs, 60000);
        rollQuotaDay(acc, nowMs);
        if (acc.minute != minute) {
          acc.minute = minute;
          acc.minuteUsed = 0;
        }
        if (cfg.daily_quota > 0 && acc.quotaUsed >= cfg.daily_quota) {
          finish(45009);
        } else if (cfg.minute_limit > 0 && acc.minuteUsed >= cfg.minute_limit) {
          finish(45011);
        } else {
          ++acc.quotaUsed;
          ++acc.minuteUsed;
          std::optional<int64_t> index;
          if (!cursor.empty()) index = sandboxOpenIdIndex(cfg.appid, cursor);
          if (!cursor.empty() && (!index || *index >= cfg.followers)) {
            finish(40003);
          } else {
            ++ts.okCalls;
            serve = true;
            page.appid = cfg.appid;
            page.total = cfg.followers;
            page.start = index ? *index + 1 : 0;
            page.variant = cfg.last_page_variant;
            entry.count = std::max<int64_t>(0, std::min(kPageSize, page.total - page.start));
          }
        }
      }
      if (fault == FaultKind::kTruncated) {
        entry.fault = "truncated";
        answer.truncate = true;
      }
      if (fault == FaultKind::kDelay) delayMs = cfg.faults.delay_ms;
    }
    record(std::move(entry));
  }
  answer.waitMs += delayMs;
  if (serve) {
    if (page.start >= page.total) {
      answer.setBody(renderPage(page));
    } else {
      std::string key = page.appid;
      key += '\n';
      key += std::to_string(page.total);
      key += '\n';
      key += std::to_string(page.start);
      key += page.variant == LastPageVariant::kEmpty ? 'e' : 'r';
      answer.body = cache_.get(key);
      if (!answer.body) {
        answer.body = std::make_shared<const std::string>(renderPage(page));
        cache_.put(key, answer.body);
      }
    }
  }
  return answer;
}

Answer SandboxServer::Impl::componentToken(const std::string& body) {
  Answer answer;
  json doc = json::parse(body, nullptr, false);
  auto field = [&](const char* key) -> std::string {
    if (doc.is_object() && doc.contains(key) && doc[key].is_string())
      return doc[key].get<std::string>();
    return {};
  };
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t nowMs = now();
  ++componentTokenCalls_;
  CallLogEntry entry;
  entry.t_ms = nowMs;
  entry.endpoint = kEndpointComponentToken;
  entry.appid = field("component_appid");
  answer.waitMs = latencyFor(nullptr);
  int errcode = 0;
  if (!doc.is_object()) {
    errcode = 47001;
  } else if (entry.appid != options_.component.appid) {
    errcode = 40013;
  } else if (field("component_appsecret") != options_.component.appsecret) {
    errcode = 40125;
  } else if (field("component_verify_ticket") != verifyTicket_) {
    errcode = 61006;
  }
  entry.errcode = errcode;
  if (errcode != 0) {
    answer.setBody(errorBody(errcode));
  } else {
    const int64_t graceEnd = nowMs + int64_t{options_.grace_seconds} * 1000;
    for (auto& [old, expiry] : componentTokens_) expiry = std::min(expiry, graceEnd);
    std::string token;
    do {
      token = newSecret("82_", 112);
    } while (componentTokens_.count(token) != 0);
    const int ttl = options_.component_token_ttl_seconds > 0 ? options_.component_token_ttl_seconds
                                                             : options_.token_ttl_seconds;
    componentTokens_[token] = nowMs + int64_t{ttl} * 1000;
    answer.setBody(
        json{{"component_access_token", token}, {"expires_in", ttl}}.dump());
  }
  record(std::move(entry));
  return answer;
}

SandboxServer::Impl::TokenState* SandboxServer::Impl::knownToken(
    const std::string* token, Answer& answer, const std::function<void(int)>& finish) {
  auto it = token && !token->empty() ? tokens_.find(*token) : tokens_.end();
  if (it != tokens_.end()) return &it->second;
  answer.waitMs = latencyFor(nullptr);
  finish(!token || token->empty() ? 41001 : 40001);
  return nullptr;
}

void SandboxServer::Impl::rollQuotaDay(AccountState& acc, int64_t nowMs) {
  const int64_t day = floorDiv(floorDiv(nowMs, 1000) + 28800, 86400);
  if (acc.quotaDay != day) {
    acc.quotaDay = day;
    acc.quotaUsed = 0;
  }
}

Answer SandboxServer::Impl::quotaGet(
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& body) {
  Answer answer;
  const std::string* token = findParam(params, "access_token");
  json doc = json::parse(body, nullptr, false);
  const std::string cgiPath = doc.is_object() && doc.contains("cgi_path") && doc["cgi_path"].is_string()
                                  ? doc["cgi_path"].get<std::string>()
                                  : std::string();
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t nowMs = now();
  CallLogEntry entry;
  entry.t_ms = nowMs;
  entry.endpoint = kEndpointQuotaGet;
  auto finish = [&](int errcode) {
    entry.errcode = errcode;
    answer.setBody(errorBody(errcode));
  };
  if (TokenState* known = knownToken(token, answer, finish)) {
    AccountState& acc = accounts_[known->account];
    entry.appid = acc.config.appid;
    ++calls_[acc.config.appid][kEndpointQuotaGet];
    answer.waitMs = latencyFor(&acc);
    const int64_t day = floorDiv(floorDiv(nowMs, 1000) + 28800, 86400);
    if (acc.quotaGetDay != day) {
      acc.quotaGetDay = day;
      acc.quotaGetUsed = 0;
    }
    if (tokenExpired(*known, nowMs)) {
      finish(42001);
    } else if (acc.config.quota_get_errcode != 0) {
      finish(acc.config.quota_get_errcode);
    } else if (cgiPath != "/cgi-bin/user/get") {
      finish(cgiPath.empty() ? 47001 : 76021);
    } else if (options_.quota_get_daily_limit > 0 &&
               acc.quotaGetUsed >= options_.quota_get_daily_limit) {
      finish(45009);
    } else {
      ++acc.quotaGetUsed;
      rollQuotaDay(acc, nowMs);
      // WeChat reports a limit even for accounts it does not hold to 500 a day.
      const int64_t limit = acc.config.daily_quota > 0 ? acc.config.daily_quota : 100000000;
      const int64_t used = acc.quotaUsed;
      answer.setBody(json{{"errcode", 0},
                          {"errmsg", "ok"},
                          {"quota", {{"daily_limit", limit},
                                     {"used", used},
                                     {"remain", std::max<int64_t>(0, limit - used)}}}}
                         .dump());
    }
  }
  record(std::move(entry));
  return answer;
}

Answer SandboxServer::Impl::authorizerToken(
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& body) {
  Answer answer;
  json doc = json::parse(body, nullptr, false);
  auto field = [&](const char* key) -> std::string {
    if (doc.is_object() && doc.contains(key) && doc[key].is_string())
      return doc[key].get<std::string>();
    return {};
  };
  const std::string* componentToken = findParam(params, "component_access_token");
  const std::string appid = field("authorizer_appid");
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t nowMs = now();
  CallLogEntry entry;
  entry.t_ms = nowMs;
  entry.endpoint = kEndpointAuthorizerToken;
  auto accIt = byAppid_.find(appid);
  AccountState* acc = accIt == byAppid_.end() ? nullptr : &accounts_[accIt->second];
  if (acc) {
    entry.appid = appid;
    ++calls_[appid][kEndpointAuthorizerToken];
  }
  answer.waitMs = latencyFor(acc);
  auto componentIt =
      componentToken ? componentTokens_.find(*componentToken) : componentTokens_.end();
  int errcode = 0;
  if (!componentToken || componentToken->empty()) {
    errcode = 41001;
  } else if (componentIt == componentTokens_.end()) {
    errcode = 40001;
  } else if (nowMs >= componentIt->second) {
    errcode = 42001;
  } else if (!doc.is_object()) {
    errcode = 47001;
  } else if (field("component_appid") != options_.component.appid || !acc) {
    errcode = 40013;
  } else if (acc->config.errcode != 0) {
    errcode = acc->config.errcode;
  } else if (refreshRefused_) {
    errcode = -1;
  } else if (acc->refreshToken.empty() || field("authorizer_refresh_token") != acc->refreshToken) {
    errcode = 61023;
  }
  entry.errcode = errcode;
  if (errcode != 0) {
    answer.setBody(errorBody(errcode));
  } else {
    const std::string accessToken = issueAccessToken(accIt->second, nowMs);
    acc->refreshToken = newSecret("refreshtoken@@@", 43);
    answer.setBody(json{{"authorizer_access_token", accessToken},
                        {"expires_in", options_.token_ttl_seconds},
                        {"authorizer_refresh_token", acc->refreshToken}}
                       .dump());
  }
  record(std::move(entry));
  return answer;
}

Answer SandboxServer::Impl::admin(const std::string& path, const std::string& method,
                                  const std::vector<std::pair<std::string, std::string>>& params,
                                  const std::string& body) {
  Answer answer;
  const std::string* appidParam = findParam(params, "appid");
  const std::string appid = appidParam ? *appidParam : std::string();
  if (path == "/sandbox/stats" && method == "GET") {
    answer.setBody(statsJson(appid));
    return answer;
  }
  if (path == "/sandbox/reset" && method == "POST") {
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.clear();
    componentTokenCalls_ = 0;
    log_.clear();
    answer.setBody("{\"errcode\":0,\"errmsg\":\"ok\"}");
    return answer;
  }
  if (path == "/sandbox/expire_tokens" && method == "POST") {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = byAppid_.find(appid);
    if (it == byAppid_.end()) {
      answer.status = 404;
      answer.setBody("{\"errcode\":40013,\"errmsg\":\"invalid appid\"}");
      return answer;
    }
    int64_t n = 0;
    for (const std::string& t : accounts_[it->second].tokens) {
      TokenState& ts = tokens_.at(t);
      if (!ts.revoked) ++n;
      ts.revoked = true;
    }
    answer.setBody("{\"errcode\":0,\"errmsg\":\"ok\",\"expired\":" + std::to_string(n) + "}");
    return answer;
  }
  if (path == "/sandbox/verify_ticket" && method == "POST") {
    json doc = json::parse(body, nullptr, false);
    if (!doc.is_object() || !doc.contains("verify_ticket") || !doc["verify_ticket"].is_string()) {
      answer.status = 400;
      answer.setBody(errorBody(47001));
      return answer;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    verifyTicket_ = doc["verify_ticket"].get<std::string>();
    issued_.push_back(verifyTicket_);
    answer.setBody("{\"errcode\":0,\"errmsg\":\"ok\"}");
    return answer;
  }
  answer.status = 404;
  answer.setBody("{\"errcode\":404,\"errmsg\":\"not found\"}");
  return answer;
}

SandboxStats SandboxServer::Impl::snapshot(const std::string& appid) const {
  SandboxStats out;
  std::lock_guard<std::mutex> lock(mutex_);
  out.component_token_calls = componentTokenCalls_;
  if (appid.empty()) {
    out.calls = calls_;
    out.log.assign(log_.begin(), log_.end());
  } else {
    auto it = calls_.find(appid);
    if (it != calls_.end()) out.calls.emplace(appid, it->second);
    for (const CallLogEntry& e : log_) {
      if (e.appid == appid) out.log.push_back(e);
    }
  }
  return out;
}

std::string SandboxServer::Impl::statsJson(const std::string& appid) const {
  const SandboxStats stats = snapshot(appid);
  json calls = json::object();
  for (const auto& [id, endpoints] : stats.calls) {
    json e = json::object();
    for (const auto& [name, n] : endpoints) e[name] = n;
    calls[id] = std::move(e);
  }
  json log = json::array();
  for (const CallLogEntry& e : stats.log) {
    json item = {{"t_ms", e.t_ms}, {"appid", e.appid}, {"endpoint", e.endpoint}};
    if (e.endpoint == kEndpointUserGet) {
      item["next_openid"] = e.next_openid;
      item["count"] = e.count;
    }
    if (e.fault.empty()) {
      item["result"] = e.errcode;
    } else {
      item["result"] = e.fault;
    }
    log.push_back(std::move(item));
  }
  json doc = {{"calls", std::move(calls)},
              {"component_token_calls", stats.component_token_calls},
              {"log", std::move(log)}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SandboxServer::Impl::send(HTTPServerResponse& response, Answer& answer,
                               HTTPServerRequest& request) {
  waitMs(answer.waitMs);
  if (answer.reset) {
    // Abort the connection without answering: SO_LINGER 0 makes close() send a RST.
    Poco::Net::StreamSocket& socket =
        static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket();
    try {
      socket.setLinger(true, 0);
      socket.close();
    } catch (const Poco::Exception&) {
    }
    response.setKeepAlive(false);
    return;
  }
  const std::string& body = *answer.body;
  std::size_t length = body.size();
  if (answer.truncate) length = std::max<std::size_t>(1, body.size() / 2);
  response.setStatusAndReason(static_cast<HTTPResponse::HTTPStatus>(answer.status));
  response.setContentType(answer.contentType == "application/json"
                              ? "application/json; charset=utf-8"
                              : answer.contentType);
  response.setContentLength64(static_cast<Poco::Int64>(length));
  // The status line and headers through the response, then the body in one write on the
  // connection, as a web server writes a large answer. (Through the response's stream a body
  // goes out in 4 KB writes: 76 for a page of 10,000 OpenIDs, each of which a client on the
  // same machine then receives as a segment of its own, at a cost no network client pays.)
  response.send().flush();
  if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_HEAD && length > 0) {
    static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().sendBytes(
        body.data(), static_cast<int>(length));
  }
}

void SandboxServer::Impl::handle(HTTPServerRequest& request, HTTPServerResponse& response) {
  Answer answer;
  try {
    const std::string& uri = request.getURI();
    const std::size_t q = uri.find('?');
    std::string path = uri.substr(0, q);
    const std::string rawQuery = q == std::string::npos ? std::string() : uri.substr(q + 1);
    const auto params = parseQuery(rawQuery);
    const std::string& method = request.getMethod();
    std::string body;
    if (method == "POST" || method == "PUT") {
      std::istream& in = request.stream();
      char buffer[8192];
      while (in && body.size() < kMaxBodyBytes) {
        in.read(buffer, sizeof buffer);
        body.append(buffer, static_cast<std::size_t>(in.gcount()));
      }
    }
    if (path == "/cgi-bin/user/get") {
      answer = userGet(params);
    } else if (path == "/cgi-bin/component/api_component_token") {
      if (method == "POST") {
        answer = componentToken(body);
      } else {
        answer.status = 405;
        answer.setBody("{\"errcode\":405,\"errmsg\":\"method not allowed\"}");
      }
    } else if (path == "/cgi-bin/component/api_authorizer_token") {
      if (method == "POST") {
        answer = authorizerToken(params, body);
      } else {
        answer.status = 405;
        answer.setBody("{\"errcode\":405,\"errmsg\":\"method not allowed\"}");
      }
    } else if (path == "/cgi-bin/openapi/quota/get") {
      if (method == "POST") {
        answer = quotaGet(params, body);
      } else {
        answer.status = 405;
        answer.setBody("{\"errcode\":405,\"errmsg\":\"method not allowed\"}");
      }
    } else if (path.rfind("/sandbox/", 0) == 0) {
      answer = admin(path, method, params, body);
    } else {
      answer.status = 404;
      answer.setBody("{\"errcode\":404,\"errmsg\":\"not found\"}");
    }
  } catch (const std::exception& e) {
    answer = Answer();
    answer.status = 500;
    answer.setBody(
        json{{"errcode", 500}, {"errmsg", std::string("sandbox failure: ") + e.what()}}.dump(
            -1, ' ', false, json::error_handler_t::replace));
  }
  send(response, answer, request);
}

// ---- SandboxServer ----------------------------------------------------------------------------

SandboxServer::SandboxServer(SandboxOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SandboxServer::~SandboxServer() = default;

void SandboxServer::start() { impl_->start(); }

void SandboxServer::stop() { impl_->stop(); }

std::string SandboxServer::baseUrl() const {
  std::string host = impl_->options_.host;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->tls_ ? "https://" : "http://") + host + ":" +
         std::to_string(impl_->port_);
}

uint16_t SandboxServer::port() const { return impl_->port_; }

int64_t SandboxServer::calls(const std::string& appid, const std::string& endpoint) const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  auto it = impl_->calls_.find(appid);
  if (it == impl_->calls_.end()) return 0;
  auto e = it->second.find(endpoint);
  return e == it->second.end() ? 0 : e->second;
}

int64_t SandboxServer::componentTokenCalls() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->componentTokenCalls_;
}

std::vector<CallLogEntry> SandboxServer::callLog(const std::string& appid) const {
  return impl_->snapshot(appid).log;
}

SandboxStats SandboxServer::stats(const std::string& appid) const { return impl_->snapshot(appid); }

std::string SandboxServer::statsJson(const std::string& appid) const {
  return impl_->statsJson(appid);
}

void SandboxServer::resetStats() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->calls_.clear();
  impl_->componentTokenCalls_ = 0;
  impl_->log_.clear();
}

bool SandboxServer::expireTokens(const std::string& appid) {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  auto it = impl_->byAppid_.find(appid);
  if (it == impl_->byAppid_.end()) return false;
  for (const std::string& t : impl_->accounts_[it->second].tokens)
    impl_->tokens_.at(t).revoked = true;
  return true;
}

bool SandboxServer::spendQuota(const std::string& appid, int64_t calls) {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  auto it = impl_->byAppid_.find(appid);
  if (it == impl_->byAppid_.end()) return false;
  Impl::AccountState& acc = impl_->accounts_[it->second];
  Impl::rollQuotaDay(acc, impl_->options_.clock_ms());
  acc.quotaUsed += calls;
  return true;
}

void SandboxServer::setRefreshRefused(bool refused) {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->refreshRefused_ = refused;
}

void SandboxServer::setVerifyTicket(const std::string& ticket) {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->verifyTicket_ = ticket;
  impl_->issued_.push_back(ticket);
}

std::vector<std::string> SandboxServer::secrets() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  std::vector<std::string> out = impl_->issued_;
  for (const auto& a : impl_->accounts_) {
    for (const auto& t : a.config.access_tokens) out.push_back(t);
    if (!a.config.refresh_token.empty()) out.push_back(a.config.refresh_token);
  }
  out.push_back(impl_->options_.component.appsecret);
  out.push_back(impl_->verifyTicket_);
  out.push_back(impl_->options_.component.verify_ticket);
  return out;
}

std::string SandboxServer::currentRefreshToken(const std::string& appid) const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  auto it = impl_->byAppid_.find(appid);
  return it == impl_->byAppid_.end() ? std::string() : impl_->accounts_[it->second].refreshToken;
}

}  // namespace fanpull::sandbox
