// An in-process emulator of the WeChat API a third-party platform uses (user/get, component and
// authorizer tokens) with scriptable faults, quotas and latency, served over HTTP(S) by Poco.
// Thread-safe: every public method may be called from any thread while the server runs; one mutex
// guards account, token and stats state, and page bodies are rendered outside it.
//
// HTTP endpoints (API errors answer HTTP 200 with {"errcode","errmsg"}, as WeChat does):
//   GET  /cgi-bin/user/get?access_token=T&next_openid=C
//   POST /cgi-bin/component/api_component_token
//   POST /cgi-bin/component/api_authorizer_token?component_access_token=X
//   GET  /sandbox/stats[?appid=A]        calls, component_token_calls, call log (never a token)
//   POST /sandbox/reset                  clears the stats
//   POST /sandbox/expire_tokens?appid=A  A's current access tokens answer 42001 from now on
//   POST /sandbox/verify_ticket          body {"verify_ticket": "..."}: the ticket now accepted
// Anything else answers 404 with a JSON body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/accounts.h"

namespace fanpull::sandbox {

// Endpoint names used in stats and logs.
inline constexpr char kEndpointUserGet[] = "user/get";
inline constexpr char kEndpointAuthorizerToken[] = "api_authorizer_token";
inline constexpr char kEndpointComponentToken[] = "api_component_token";
inline constexpr char kEndpointQuotaGet[] = "quota/get";

struct SandboxOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = any free port; see SandboxServer::port()
  std::vector<Account> accounts;
  ComponentCredentials component;
  int latency_ms = 0;  // every API answer waits latency_ms + uniform[0, jitter_ms]
  int jitter_ms = 0;
  uint64_t seed = 1;                        // drives issued tokens, faults and jitter
  std::string tls_cert_file, tls_key_file;  // both set => HTTPS
  int max_threads = 256;
  int grace_seconds = 300;       // a replaced access token stays valid this long
  int token_ttl_seconds = 7200;  // lifetime of issued access tokens
  int component_token_ttl_seconds = 0;  // lifetime of component tokens; 0: token_ttl_seconds
  std::size_t page_cache_bytes = std::size_t{64} << 20;
  std::size_t log_capacity = 200000;  // newest entries kept in the call log
  // openapi/quota/get calls an account may make per Beijing day (its own small limit, as on
  // WeChat); past it 45009. 0 = unlimited.
  int64_t quota_get_daily_limit = 10;
  std::function<int64_t()> clock_ms;  // unix time in ms; empty = the system clock
};

// One API call as recorded by the sandbox. Never holds a token, secret or ticket.
struct CallLogEntry {
  int64_t t_ms = 0;
  std::string appid;        // "" when the token named no account
  std::string endpoint;     // kEndpoint*
  std::string next_openid;  // user/get: the decoded cursor exactly as received
  int errcode = 0;          // 0, -1 or the WeChat errcode answered
  std::string fault;        // "", "http502", "reset" or "truncated" (then errcode is meaningless)
  int64_t count = 0;        // user/get: OpenIDs in the page
};

struct SandboxStats {
  std::map<std::string, std::map<std::string, int64_t>> calls;  // appid -> endpoint -> calls
  int64_t component_token_calls = 0;
  std::vector<CallLogEntry> log;  // oldest first
};

class SandboxServer {
 public:
  // Throws SandboxFileError (file "<options>") when the accounts are invalid.
  explicit SandboxServer(SandboxOptions options);
  ~SandboxServer();
  SandboxServer(const SandboxServer&) = delete;
  SandboxServer& operator=(const SandboxServer&) = delete;

  // Binds and starts serving. Throws Poco::Exception when the address cannot be bound or the TLS
  // files cannot be loaded. Calling it twice is a no-op.
  void start();
  // Stops accepting, aborts open connections and joins the request threads. Idempotent.
  void stop();

  // "http://127.0.0.1:PORT" (or https://); valid after start().
  std::string baseUrl() const;
  uint16_t port() const;

  // Calls of `endpoint` (kEndpoint*) attributed to `appid` since the last reset.
  int64_t calls(const std::string& appid, const std::string& endpoint) const;
  int64_t componentTokenCalls() const;
  // Logged calls, oldest first; `appid` "" = all of them.
  std::vector<CallLogEntry> callLog(const std::string& appid = "") const;
  SandboxStats stats(const std::string& appid = "") const;
  // The stats as served by GET /sandbox/stats.
  std::string statsJson(const std::string& appid = "") const;
  // Clears calls and the log (not quotas nor tokens).
  void resetStats();

  // Makes every current access token of `appid` answer 42001 from now on; false if no such account.
  bool expireTokens(const std::string& appid);
  // Counts `calls` user/get calls of `appid` as spent today, as if made by someone else (the
  // merchant's own systems, another platform); false if no such account.
  bool spendQuota(const std::string& appid, int64_t calls);
  // While true, api_authorizer_token answers -1 (system busy) and rotates nothing: a test holds
  // rotations back to stop a worker between them.
  void setRefreshRefused(bool refused);
  // Replaces the component_verify_ticket that api_component_token accepts.
  void setVerifyTicket(const std::string& ticket);
  // The authorizer refresh token `appid` currently accepts ("" if none or unknown appid).
  std::string currentRefreshToken(const std::string& appid) const;
  // Every secret the sandbox knows or has issued: static and issued access tokens, initial and
  // rotated refresh tokens, component tokens, the component secret and verify tickets. For tests
  // that search output for leaked secrets.
  std::vector<std::string> secrets() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanpull::sandbox
