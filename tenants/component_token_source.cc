#include "tenants/component_token_source.h"

#include <algorithm>

#include "core/file.h"
#include "core/redactor.h"

namespace fanpull {

ComponentTokenSource::ComponentTokenSource(ComponentSettings settings, HttpTransport& transport,
                                           TokenStore& store, Clock& clock, Logger& log)
    : settings_(std::move(settings)),
      transport_(transport),
      store_(store),
      clock_(clock),
      log_(log) {
  Redactor::global().addSecret(settings_.appsecret);
}

Result<bool> ComponentTokenSource::start(const TokenStore* seed) {
  Result<std::map<std::string, TokenState>> loaded = seed ? seed->load() : store_.load();
  if (!loaded.ok()) return loaded.error();
  std::lock_guard<std::mutex> lock(mutex_);
  persisted_ = std::move(loaded).value();
  return true;
}

TokenMetrics ComponentTokenSource::metrics() const {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  return metrics_;
}

void ComponentTokenSource::countFailure(const Error& e) {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  ++metrics_.renewals_failed;
  ++metrics_.failures_by_class[std::string(errorClassName(e.error_class))];
  if (e.errcode == 61005 || e.errcode == 61006) ++metrics_.ticket_failures;
}

ComponentTokenSource::Entry& ComponentTokenSource::entryLocked(const Tenant& tenant) {
  Entry& e = entries_[tenant.appid];
  if (e.initialized) {
    // An operator put a new refresh token in the tenants file (the merchant authorized the
    // platform again): it replaces whatever was rotated before.
    if (!tenant.authorizer_refresh_token.empty() &&
        tenant.authorizer_refresh_token != e.file_refresh_token && !e.inflight.valid()) {
      e.file_refresh_token = tenant.authorizer_refresh_token;
      e.refresh_token = tenant.authorizer_refresh_token;
      log_.info("new refresh token from the tenants file", {{"appid", tenant.appid}});
    }
    return e;
  }
  e.initialized = true;
  e.file_refresh_token = tenant.authorizer_refresh_token;
  // The state file is newer than the tenants file: a refresh token rotated by an earlier run
  // (or another worker) wins over the one an operator first configured.
  auto it = persisted_.find(tenant.appid);
  bool file_replaced = it != persisted_.end() && !tenant.authorizer_refresh_token.empty() &&
                       !it->second.file_refresh_token.empty() &&
                       it->second.file_refresh_token != tenant.authorizer_refresh_token;
  if (it != persisted_.end() && !it->second.refresh_token.empty() && !file_replaced) {
    e.refresh_token = it->second.refresh_token;
    if (!it->second.access_token.empty() && it->second.expires_at_ms > 0) {
      e.access_token = it->second.access_token;
      e.expires_at = TimePoint(std::chrono::milliseconds(it->second.expires_at_ms));
    }
  } else {
    e.refresh_token = tenant.authorizer_refresh_token;
  }
  if (e.access_token.empty() && !tenant.authorizer_access_token.empty()) {
    e.access_token = tenant.authorizer_access_token;
    e.expires_at = TimePoint::max();
  }
  return e;
}

Result<AccessToken> ComponentTokenSource::current(const Tenant& tenant) {
  std::unique_lock<std::mutex> lock(mutex_);
  Entry& e = entryLocked(tenant);
  if (!e.access_token.empty() && !e.inflight.valid() &&
      (e.expires_at == TimePoint::max() || clock_.now() < e.expires_at - settings_.renew_ahead)) {
    return AccessToken{e.access_token, e.expires_at};
  }
  return refresh(lock, tenant, e);
}

Result<AccessToken> ComponentTokenSource::renew(const Tenant& tenant, const std::string& failed) {
  std::unique_lock<std::mutex> lock(mutex_);
  Entry& e = entryLocked(tenant);
  if (!e.inflight.valid() && !e.access_token.empty() && e.access_token != failed &&
      (e.expires_at == TimePoint::max() || clock_.now() < e.expires_at)) {
    return AccessToken{e.access_token, e.expires_at};  // another lane renewed it already
  }
  return refresh(lock, tenant, e);
}

Result<AccessToken> ComponentTokenSource::refresh(std::unique_lock<std::mutex>& lock,
                                                  const Tenant& tenant, Entry& entry) {
  if (entry.inflight.valid()) {
    std::shared_future<Result<AccessToken>> waiting = entry.inflight;
    lock.unlock();
    return waiting.get();
  }
  std::promise<Result<AccessToken>> promise;
  entry.inflight = promise.get_future().share();
  std::string refresh_token = entry.refresh_token;
  const std::string stale = entry.access_token;  // expiring, expired or refused
  lock.unlock();

  // Another worker sharing the token state file may have refreshed this merchant meanwhile
  // (rotating the refresh token this one holds): the file is read again before every refresh.
  Result<AccessToken> result = fromStateFile(tenant.appid, stale, &refresh_token);
  if (!result.ok()) {
    result = doRefresh(tenant.appid, refresh_token);
    // 61023: the refresh token was rotated away, perhaps by another worker whose rotation is
    // in the file by now.
    if (!result.ok() && result.error().errcode == 61023) {
      std::string rotated = refresh_token;
      Result<bool> reread = store_.readAgain(tenant.appid);
      if (!reread.ok()) {
        log_.warn("stored tokens not read again after a 61023",
                  {{"appid", tenant.appid}, {"error", reread.error().describe()}});
      }
      Result<AccessToken> adopted = fromStateFile(tenant.appid, stale, &rotated);
      if (adopted.ok()) {
        result = adopted;
      } else if (rotated != refresh_token) {
        log_.info("refresh token rotated by another worker; refreshing with it",
                  {{"appid", tenant.appid}});
        result = doRefresh(tenant.appid, rotated);
      }
    }
  }

  lock.lock();
  if (result.ok()) {
    entry.access_token = result->value;
    entry.expires_at = result->expires_at;
  }
  entry.inflight = {};
  lock.unlock();
  promise.set_value(result);
  return result;
}

Result<AccessToken> ComponentTokenSource::fromStateFile(const std::string& appid,
                                                       const std::string& stale,
                                                       std::string* refresh_token) {
  Result<std::optional<TokenState>> found = store_.find(appid);
  if (!found.ok()) {
    log_.warn("token state not read before a refresh",
              {{"appid", appid}, {"error", found.error().cause}});
    return found.error();
  }
  if (!found->has_value()) return Error::of(ErrorClass::kRetryable, "no state for " + appid);
  const TokenState& state = **found;
  std::unique_lock<std::mutex> lock(mutex_);
  Entry& entry = entries_[appid];
  // A state of an older chain (before an operator replaced the tenants file's refresh token)
  // does not count.
  if (!state.file_refresh_token.empty() && !entry.file_refresh_token.empty() &&
      state.file_refresh_token != entry.file_refresh_token) {
    return Error::of(ErrorClass::kRetryable, "state of an older chain for " + appid);
  }
  // Older than what this worker knows: a save of its own rotation failed, and the store still
  // holds the refresh token it rotated away.
  if (std::find(entry.spent_refresh_tokens.begin(), entry.spent_refresh_tokens.end(),
                state.refresh_token) != entry.spent_refresh_tokens.end()) {
    return Error::of(ErrorClass::kRetryable, "stored state older than this worker's for " + appid);
  }
  if (!state.refresh_token.empty()) {
    *refresh_token = state.refresh_token;
    entry.refresh_token = state.refresh_token;
  }
  const TimePoint expires_at = TimePoint(std::chrono::milliseconds(state.expires_at_ms));
  if (state.access_token.empty() || state.access_token == stale || state.expires_at_ms <= 0 ||
      clock_.now() >= expires_at - settings_.renew_ahead) {
    return Error::of(ErrorClass::kRetryable, "no fresh access token in the file for " + appid);
  }
  // Another worker refreshed it: taken as it is, no call to WeChat.
  entry.access_token = state.access_token;
  entry.expires_at = expires_at;
  lock.unlock();
  Redactor::global().addSecret(state.access_token);
  Redactor::global().addSecret(state.refresh_token);
  log_.info("authorizer token taken from the stored state",
            {{"appid", appid}, {"from", store_.where()}});
  {
    std::lock_guard<std::mutex> metrics_lock(metrics_mutex_);
    ++metrics_.taken_from_file;
  }
  return AccessToken{state.access_token, expires_at};
}

Result<AccessToken> ComponentTokenSource::doRefresh(const std::string& appid,
                                                   const std::string& refresh_token) {
  if (refresh_token.empty()) {
    Error e = Error::of(ErrorClass::kInvalidTenant,
                          "appid " + appid +
                              ": no authorizer_refresh_token to renew the token with; the "
                              "merchant must authorize the platform again");
    countFailure(e);
    return e;
  }
  std::string stale;
  Result<AuthorizerTokens> tokens = Error::of(ErrorClass::kRetryable, "not attempted");
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<ComponentToken> component = componentToken(stale);
    if (!component.ok()) {
      Error e = component.error();
      e.cause = "component token: " + (e.cause.empty() ? e.describe() : e.cause);
      countFailure(e);
      log_.warn("token renewal failed", {{"appid", appid}, {"error", e.describe()}});
      return e;
    }
    tokens = requestAuthorizerToken(transport_, component->token, settings_.appid, appid,
                                    refresh_token);
    // A refused component token is replaced once (compare-and-swap), then the call repeated.
    if (!tokens.ok() && tokens.error().error_class == ErrorClass::kTokenInvalid) {
      stale = component->token;
      continue;
    }
    break;
  }
  if (!tokens.ok()) {
    Error e = tokens.error();
    countFailure(e);
    log_.warn("token renewal failed", {{"appid", appid}, {"error", e.describe()}});
    return e;
  }
  TimePoint now = clock_.now();
  AccessToken token{tokens->access_token, now + tokens->expires_in};
  // Persist the rotated refresh token before anyone uses the new access token: WeChat may
  // already have invalidated the old refresh token.
  std::string file_token;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    file_token = entries_[appid].file_refresh_token;
  }
  TokenState state{tokens->refresh_token, tokens->access_token, toUnixMs(token.expires_at),
                   toUnixMs(now), file_token};
  Result<bool> saved = store_.save(appid, state);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = entries_[appid];
    entry.refresh_token = tokens->refresh_token;
    entry.spent_refresh_tokens.push_back(refresh_token);
    if (entry.spent_refresh_tokens.size() > 8) entry.spent_refresh_tokens.pop_front();
  }
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.renewals_ok;
    if (!saved.ok()) ++metrics_.persist_failures;
  }
  if (!saved.ok()) {
    // The new refresh token is kept in memory and used; the next successful renewal persists.
    log_.error("cannot persist the rotated refresh token; a restart now would need the merchant "
               "to re-authorize",
               {{"appid", appid}, {"to", store_.where()}, {"error", saved.error().cause}});
  }
  log_.info("authorizer token renewed", {{"appid", appid}});
  return token;
}

Result<ComponentToken> ComponentTokenSource::componentToken(const std::string& stale) {
  std::unique_lock<std::mutex> lock(component_mutex_);
  if (component_.inflight.valid()) {
    auto waiting = component_.inflight;
    lock.unlock();
    return waiting.get();
  }
  TimePoint now = clock_.now();
  if (!component_.token.empty() && component_.token != stale &&
      now < component_.expires_at - settings_.renew_ahead) {
    return ComponentToken{component_.token, component_.expires_at - now};
  }
  std::promise<Result<ComponentToken>> promise;
  component_.inflight = promise.get_future().share();
  const std::string replacing = component_.token;
  lock.unlock();

  // Another worker's fresh token is taken as it is: a fetch here would cut that worker's off
  // within 5 minutes.
  Result<ComponentToken> fetched = sharedComponentToken(stale.empty() ? replacing : stale);
  if (!fetched.ok()) {
    fetched = fetchComponentToken();
    if (fetched.ok() && share_) {
      const int64_t expires_at_ms = toUnixMs(clock_.now() + fetched->expires_in);
      Result<bool> shared =
          share_->share(settings_.appid, SharedComponentToken{fetched->token, expires_at_ms});
      if (!shared.ok()) {
        // Not fatal: this worker uses its token; another one may fetch its own meanwhile.
        log_.warn("component token not shared", {{"error", shared.error().describe()}});
      }
    }
  }

  lock.lock();
  if (fetched.ok()) {
    component_.token = fetched->token;
    component_.expires_at = clock_.now() + fetched->expires_in;
  }
  component_.inflight = {};
  lock.unlock();
  promise.set_value(fetched);
  return fetched;
}

Result<ComponentToken> ComponentTokenSource::sharedComponentToken(const std::string& replacing) {
  if (!share_) return Error::of(ErrorClass::kRetryable, "component tokens are not shared");
  Result<std::optional<SharedComponentToken>> latest = share_->latest(settings_.appid);
  if (!latest.ok()) {
    log_.warn("shared component token not read", {{"error", latest.error().describe()}});
    return latest.error();
  }
  const TimePoint now = clock_.now();
  if (!latest->has_value() || (*latest)->token == replacing ||
      now >= TimePoint(std::chrono::milliseconds((*latest)->expires_at_ms)) -
                 settings_.renew_ahead) {
    return Error::of(ErrorClass::kRetryable, "no fresh shared component token");
  }
  Redactor::global().addSecret((*latest)->token);
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.component_tokens_shared;
  }
  log_.info("component token taken from another worker");
  return ComponentToken{(*latest)->token,
                        TimePoint(std::chrono::milliseconds((*latest)->expires_at_ms)) - now};
}

Result<ComponentToken> ComponentTokenSource::fetchComponentToken() {
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.component_token_fetches;
  }
  // Read the ticket every time: WeChat pushes a new one every 10 minutes and the file is
  // rewritten by whatever receives the push.
  std::optional<std::string> read = readFile(settings_.verify_ticket_file);
  if (!read) {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.ticket_failures;
    return Error::of(ErrorClass::kRetryable,
                       "cannot read verify_ticket_file " + settings_.verify_ticket_file);
  }
  std::string ticket = std::move(*read);
  while (!ticket.empty() && (ticket.back() == '\n' || ticket.back() == '\r' ||
                             ticket.back() == ' ' || ticket.back() == '\t')) {
    ticket.pop_back();
  }
  if (ticket.empty()) {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++metrics_.ticket_failures;
    return Error::of(ErrorClass::kRetryable,
                       "verify_ticket_file " + settings_.verify_ticket_file + " is empty");
  }
  Redactor::global().addSecret(ticket);
  return requestComponentToken(transport_, settings_.appid, settings_.appsecret, ticket);
}

}  // namespace fanpull
