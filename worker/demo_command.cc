// `fanpull demo`: the sandbox with the demo merchants, and every merchant's followers pulled with
// fanpull's client, rate limiter and backoff, each OpenID checked against the sandbox's list.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <chrono>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/error_class.h"
#include "core/page_message.h"
#include "core/poco_http_transport.h"
#include "core/rate_limiter.h"
#include "core/user_list_client.h"
#include "sandbox/accounts.h"
#include "sandbox/openids.h"
#include "sandbox/sandbox_server.h"
#include "tenants/component_token_source.h"
#include "tenants/permission.h"
#include "worker/cli.h"
#include "worker/commands.h"

namespace fanpull {
namespace {

using std::chrono::milliseconds;

struct Outcome {
  std::string appid;
  int64_t followers = 0;
  std::string status;    // completed, failed, deferred
  std::string expected;  // what the merchant is designed to end with
  std::string error;     // the last error, described
  std::string retry_at;
  int64_t pages = 0;
  int64_t openids = 0;
  int64_t calls = 0;
  int64_t page_bytes = 0;
  std::map<std::string, int64_t> errors;  // by class
  bool verified = true;                   // every OpenID matched the sandbox's list
};

int64_t callsForWalk(const sandbox::Account& a) {
  int64_t data_pages = (a.followers + 9999) / 10000;
  if (a.followers == 0) return 1;
  return a.last_page_variant == sandbox::LastPageVariant::kRepeat ? data_pages + 1 : data_pages;
}

// The status (and class, for failures) each demo merchant is built to end with.
std::string expectedOutcome(const sandbox::Account& a) {
  if (a.errcode != 0) {
    return "failed:" + std::string(errorClassName(classifyErrcode(a.errcode)));
  }
  if (!grantsUserList(a.func_info)) return "failed:permission_denied";
  int64_t calls = callsForWalk(a);
  if (a.daily_quota > 0 && calls > a.daily_quota) return "deferred:quota_exhausted";
  return "completed";
}

class Progress {
 public:
  explicit Progress(std::ostream& out) : out_(out) {}
  void line(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    out_ << text << std::endl;
  }

 private:
  std::mutex mutex_;  // guards out_
  std::ostream& out_;
};

Outcome walk(const sandbox::Account& account, UserListClient& client, RateLimiter& limiter,
             TokenSource& tokens, Progress& progress, uint64_t seed) {
  Outcome o;
  o.appid = account.appid;
  o.followers = account.followers;
  o.expected = expectedOutcome(account);
  Clock& clock = SystemClock::instance();
  if (auto denied = checkUserListPermission(account.func_info)) {
    o.status = "failed";
    o.errors[std::string(errorClassName(denied->error_class))]++;
    o.error = denied->describe();
    progress.line(o.appid + " failed before any call: " + o.error);
    return o;
  }
  progress.line(o.appid + " started");
  SeededRandom random(seed);
  Backoff backoff({milliseconds(100), milliseconds(2000), 8}, random);
  Tenant tenant;
  tenant.appid = account.appid;
  tenant.authorizer_access_token = account.access_tokens.empty() ? "" : account.access_tokens[0];
  tenant.authorizer_refresh_token = account.refresh_token;
  tenant.func_info = account.func_info;
  Result<AccessToken> token = tokens.current(tenant);
  std::string cursor;
  int failures = 0;
  bool renewed_since_success = false;
  while (true) {
    Admission admission = limiter.tryAcquire(account.appid, clock.now());
    if (admission.kind == Admission::Kind::kWait) {
      std::this_thread::sleep_for(admission.at - clock.now());
      continue;
    }
    if (admission.kind == Admission::Kind::kQuotaExhausted) {
      o.status = "deferred";
      o.retry_at = formatBeijing(admission.at);
      break;
    }
    if (!token.ok()) {
      o.errors[std::string(errorClassName(token.error().error_class))]++;
      o.error = token.error().describe();
      o.status = "failed";
      progress.line(o.appid + " failed: " + o.error);
      return o;
    }
    ++o.calls;
    Result<FollowerPage> result = client.getFans(token->value, cursor);
    if (!result.ok()) {
      const Error& e = result.error();
      o.errors[std::string(errorClassName(e.error_class))]++;
      o.error = e.describe();
      if (e.error_class == ErrorClass::kTokenInvalid && !renewed_since_success) {
        // One renewal per refused token; a refusal of the renewed token fails the walk.
        renewed_since_success = true;
        progress.line(o.appid + " token refused (" + o.error + "), renewing");
        token = tokens.renew(tenant, token->value);
        continue;
      }
      if (e.error_class == ErrorClass::kRetryable || e.error_class == ErrorClass::kUnknown) {
        if (auto delay = backoff.delayAfter(++failures)) {
          std::this_thread::sleep_for(*delay);
          continue;
        }
      } else if (e.error_class == ErrorClass::kRateLimited) {
        std::this_thread::sleep_for(nextMinute(clock.now()) - clock.now());
        continue;
      } else if (e.error_class == ErrorClass::kQuotaExhausted) {
        limiter.markQuotaExhausted(account.appid, clock.now());
        o.status = "deferred";
        o.retry_at = formatBeijing(nextBeijingMidnight(clock.now()));
        progress.line(o.appid + " deferred until " + o.retry_at + " after " +
                      std::to_string(o.openids) + " OpenIDs: " + o.error);
        return o;
      }
      o.status = "failed";
      progress.line(o.appid + " failed after " + std::to_string(o.openids) + " OpenIDs: " + o.error);
      return o;
    }
    failures = 0;
    renewed_since_success = false;
    const FollowerPage& page = result.value();
    WalkStep step = nextWalkStep(page, cursor);
    if (!page.empty()) {
      for (size_t i = 0; i < page.size(); ++i) {
        if (page.openid(i) != sandbox::sandboxOpenId(account.appid, o.openids + static_cast<int64_t>(i))) {
          o.verified = false;
        }
      }
      PageIdentity id{"demo-" + account.appid, account.appid, o.pages,
                      step == WalkStep::kLastPage};
      o.page_bytes += static_cast<int64_t>(encodePageMessage(id, page).size());
      o.openids += static_cast<int64_t>(page.size());
      ++o.pages;
    }
    if (step == WalkStep::kContinue) {
      cursor = page.next_openid;
      continue;
    }
    if (step == WalkStep::kStalled) {
      o.status = "failed";
      o.error = "cursor did not advance";
      return o;
    }
    o.status = "completed";
    break;
  }
  if (o.openids != account.followers && o.status == "completed") o.verified = false;
  progress.line(o.appid + " " + o.status + ": " + std::to_string(o.pages) + " pages, " +
                std::to_string(o.openids) + " OpenIDs, " + std::to_string(o.calls) + " calls" +
                (o.status == "deferred" ? ", retry at " + o.retry_at : ""));
  return o;
}

bool endedAsDesigned(const Outcome& o) {
  std::string actual = o.status;
  if (o.status != "completed") {
    // The class that ended the walk is the last one counted.
    std::string cls = o.error.substr(0, o.error.find(':'));
    actual += ":" + cls;
  }
  return actual == o.expected && o.verified;
}

}  // namespace

int demoCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  std::string problem;
  auto seed = args.getInt("seed", 1, 0, INT64_MAX, &problem);
  if (!seed) {
    err << "fanpull demo: " << problem << "\n";
    return kExitUsage;
  }
  sandbox::SandboxOptions options;
  options.accounts = sandbox::demoAccounts();
  options.component = sandbox::demoComponent();
  options.seed = static_cast<uint64_t>(*seed);
  // 45011 waits for the next wall-clock minute: keep the demo's minute limits out of reach.
  for (auto& a : options.accounts) a.minute_limit = 0;
  const std::vector<sandbox::Account> accounts = options.accounts;

  sandbox::SandboxServer server(std::move(options));
  server.start();
  bool json = args.has("json");
  std::ostream& log = json ? err : out;
  log << "fanpull demo: WeChat sandbox at " << server.baseUrl() << ", " << accounts.size()
      << " merchants\n";

  HttpTransportOptions transport_options;
  transport_options.base_url = server.baseUrl();
  auto transport = PocoHttpTransport::create(transport_options);
  if (!transport.ok()) {
    err << "fanpull demo: " << transport.error().describe() << "\n";
    return kExitFailure;
  }
  UserListClient client(*transport.value());
  RateLimiter limiter(RateLimit{10, 10, 0});
  Progress progress(log);

  // Tokens are renewed through the platform's component flow, as in production.
  char dir_template[] = "/tmp/fanpull-demo-XXXXXX";
  std::string dir = ::mkdtemp(dir_template);
  std::ofstream(dir + "/ticket.txt") << sandbox::demoComponent().verify_ticket << "\n";
  TokenStateStore store(dir + "/tokens.json");
  Logger quiet(LogLevel::kError, false, Logger::stderrSink());
  sandbox::ComponentCredentials component = sandbox::demoComponent();
  ComponentTokenSource tokens({component.appid, component.appsecret, dir + "/ticket.txt"},
                              *transport.value(), store, SystemClock::instance(), quiet);

  auto started = std::chrono::steady_clock::now();
  std::vector<Outcome> outcomes(accounts.size());
  std::vector<std::thread> lanes;
  for (size_t i = 0; i < accounts.size(); ++i) {
    lanes.emplace_back([&, i] {
      outcomes[i] = walk(accounts[i], client, limiter, tokens, progress, *seed + i);
    });
  }
  for (auto& t : lanes) t.join();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  server.stop();
  std::filesystem::remove_all(dir);

  int64_t total_openids = 0, total_pages = 0, total_calls = 0;
  int as_designed = 0;
  for (const auto& o : outcomes) {
    total_openids += o.openids;
    total_pages += o.pages;
    total_calls += o.calls;
    as_designed += endedAsDesigned(o) ? 1 : 0;
  }
  bool all_ok = as_designed == static_cast<int>(outcomes.size());

  if (json) {
    nlohmann::json j;
    j["merchants"] = nlohmann::json::array();
    for (const auto& o : outcomes) {
      j["merchants"].push_back({{"appid", o.appid},
                                {"followers", o.followers},
                                {"status", o.status},
                                {"expected", o.expected},
                                {"as_designed", endedAsDesigned(o)},
                                {"pages", o.pages},
                                {"openids", o.openids},
                                {"wechat_calls", o.calls},
                                {"errors", o.errors},
                                {"error", o.error},
                                {"retry_at", o.retry_at}});
    }
    j["totals"] = {{"pages", total_pages},
                   {"openids", total_openids},
                   {"wechat_calls", total_calls},
                   {"seconds", seconds},
                   {"openids_per_second", seconds > 0 ? total_openids / seconds : 0},
                   {"as_designed", as_designed},
                   {"merchants", outcomes.size()}};
    out << j.dump(2) << "\n";
  } else {
    out << "\n"
        << std::left << std::setw(20) << "merchant" << std::right << std::setw(9) << "followers"
        << "  " << std::left << std::setw(10) << "status" << std::right << std::setw(6)
        << "pages" << std::setw(9) << "openids" << std::setw(7) << "calls" << "  "
        << std::left << std::setw(4) << "ok" << "errors by class\n";
    for (const auto& o : outcomes) {
      std::string errs;
      for (const auto& [cls, n] : o.errors) errs += (errs.empty() ? "" : ", ") + cls + " " + std::to_string(n);
      out << std::left << std::setw(20) << o.appid << std::right << std::setw(9) << o.followers
          << "  " << std::left << std::setw(10) << o.status << std::right << std::setw(6)
          << o.pages << std::setw(9) << o.openids << std::setw(7) << o.calls << "  " << std::left
          << std::setw(4) << (endedAsDesigned(o) ? "yes" : "NO") << errs << "\n";
    }
    std::ostringstream rate;
    rate << std::fixed << std::setprecision(0) << (seconds > 0 ? total_openids / seconds : 0);
    out << "\n"
        << total_pages << " pages, " << total_openids << " OpenIDs, " << total_calls
        << " WeChat calls in " << std::fixed << std::setprecision(1) << seconds << " s ("
        << rate.str() << " OpenIDs/s); " << as_designed << " of " << outcomes.size()
        << " merchants ended as designed\n";
  }
  return all_ok ? kExitOk : kExitFailure;
}

}  // namespace fanpull
