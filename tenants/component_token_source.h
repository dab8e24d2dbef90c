// ComponentTokenSource: authorizer tokens through the third-party platform's flow. The
// component_access_token comes from api_component_token with the component_verify_ticket read
// from its file (re-read whenever a new component token is needed, so a rotated ticket is picked
// up); authorizer tokens come from api_authorizer_token with each merchant's refresh token.
// Tokens are cached and renewed ahead of expiry. One refresh per merchant at a time (single
// flight): every lane asking meanwhile gets that refresh's answer. A refused token is renewed
// only if it is still the cached one (compare-and-swap). The rotated refresh token is persisted
// to the token state file before the new access token is handed out. The file is read again
// before every refresh and after a 61023, so workers sharing it pass rotated refresh tokens to
// each other (one that refreshed a merchant first leaves a token the others take as it is).
// Thread-safe.
#pragma once

#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/http_transport.h"
#include "core/log.h"
#include "tenants/component_api.h"
#include "tenants/token_source.h"
#include "tenants/token_state_store.h"

namespace fanpull {

struct ComponentSettings {
  std::string appid;
  std::string appsecret;
  std::string verify_ticket_file;
  // A token with less than this left is renewed before use (WeChat keeps the previous one valid
  // for about 5 minutes after a refresh, so lanes still using it are not cut off).
  Duration renew_ahead = std::chrono::minutes(5);
};

// A component access token as workers share it.
struct SharedComponentToken {
  std::string token;
  int64_t expires_at_ms = 0;  // unix ms
};

// Where workers share one component access token (the state topic, with a state key) instead of
// each fetching its own: a fetch leaves the previous token 5 more minutes only (workers with a
// token each would keep cutting each other off), and fetches are limited per day.
// Implementations are thread-safe.
class ComponentTokenShare {
 public:
  virtual ~ComponentTokenShare() = default;
  // The newest token a worker shared for `component_appid` (nullopt: none). Errors: it cannot
  // be read now.
  virtual Result<std::optional<SharedComponentToken>> latest(
      const std::string& component_appid) = 0;
  // Shares a token this worker fetched; returns once it is kept. Errors: it was not.
  virtual Result<bool> share(const std::string& component_appid,
                             const SharedComponentToken& token) = 0;
};

// Counters an operator can alert on (exported as metrics by the worker).
struct TokenMetrics {
  int64_t renewals_ok = 0;
  int64_t renewals_failed = 0;
  int64_t ticket_failures = 0;    // 61005 / 61006 or an unreadable ticket file
  int64_t persist_failures = 0;   // the token state file could not be written
  int64_t component_token_fetches = 0;
  int64_t taken_from_file = 0;  // fresh tokens another worker had written to the state file
  int64_t component_tokens_shared = 0;  // component tokens taken from another worker, no fetch
  std::map<std::string, int64_t> failures_by_class;
};

class ComponentTokenSource final : public TokenSource {
 public:
  ComponentTokenSource(ComponentSettings settings, HttpTransport& transport,
                       TokenStore& store, Clock& clock, Logger& log);

  // Loads what the store knows at start, or what `seed` knows when given (the token state file
  // of a worker whose tokens now go to the state topic: the refresh tokens it rotated before are
  // taken from it once). Errors: the store or the seed cannot be read or parsed.
  Result<bool> start(const TokenStore* seed = nullptr);

  // From now on component tokens are looked for in `share` before a fetch, and a fetched one is
  // shared. Call before the first token is asked for.
  void shareComponentTokens(ComponentTokenShare* share) { share_ = share; }

  Result<AccessToken> current(const Tenant& tenant) override;
  Result<AccessToken> renew(const Tenant& tenant, const std::string& failed) override;

  TokenMetrics metrics() const;

 private:
  struct Entry {
    bool initialized = false;
    std::string access_token;
    TimePoint expires_at = TimePoint::max();
    std::string refresh_token;
    std::string file_refresh_token;  // the tenants file's refresh token this entry last saw
    // Refresh tokens this worker refreshed with (WeChat refuses them since): a stored state
    // holding one is older than what this worker knows (its save failed), never adopted.
    std::deque<std::string> spent_refresh_tokens;
    std::shared_future<Result<AccessToken>> inflight;  // valid while a refresh runs
  };
  struct CachedComponentToken {
    std::string token;
    TimePoint expires_at{};
    std::shared_future<Result<ComponentToken>> inflight;
  };

  Entry& entryLocked(const Tenant& tenant);
  Result<AccessToken> refresh(std::unique_lock<std::mutex>& lock, const Tenant& tenant,
                              Entry& entry);
  Result<AccessToken> doRefresh(const std::string& appid, const std::string& refresh_token);
  // Reads the stored state again: a fresh access token there (not `stale`) is taken and
  // returned; otherwise an error, and `refresh_token` becomes the stored one when it has one (of
  // the same chain as the tenants file's, and not one this worker already refreshed with).
  Result<AccessToken> fromStateFile(const std::string& appid, const std::string& stale,
                                    std::string* refresh_token);
  // The component token; `stale` (if not empty) is a token WeChat refused: replaced if current.
  Result<ComponentToken> componentToken(const std::string& stale);
  Result<ComponentToken> fetchComponentToken();
  // A token another worker shared that is fresh and is not `replacing` (the token being renewed
  // or refused); an error when there is none.
  Result<ComponentToken> sharedComponentToken(const std::string& replacing);
  void countFailure(const Error& e);

  const ComponentSettings settings_;
  HttpTransport& transport_;
  TokenStore& store_;
  Clock& clock_;
  Logger& log_;

  std::mutex mutex_;  // guards entries_ and persisted_
  std::map<std::string, Entry> entries_;
  std::map<std::string, TokenState> persisted_;  // from the state file at start

  ComponentTokenShare* share_ = nullptr;
  std::mutex component_mutex_;  // guards component_
  CachedComponentToken component_;

  mutable std::mutex metrics_mutex_;  // guards metrics_
  TokenMetrics metrics_;
};

}  // namespace fanpull
