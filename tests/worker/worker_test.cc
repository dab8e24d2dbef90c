// The worker end to end: jobs into the embedded broker, the sandbox behind WeChat's API, and the
// pages, events and dead letters read back the way their consumers read them.
#include <catch2/catch.hpp>

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Process.h>

#include <csignal>
#include <functional>
#include <fstream>
#include <map>
#include <set>

#include "core/buffer_pool.h"
#include "support/shifted_clock.h"
#include "support/worker_fixture.h"
#include "worker/metrics.h"

using namespace fanpull;
using testing::merchant;
using testing::readTopic;
using testing::TopicMessage;
using testing::WorkerFixture;

namespace {

int64_t statusCount(const std::vector<nlohmann::json>& events, const std::string& status) {
  int64_t n = 0;
  for (const auto& e : events) n += e["status"] == status ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("every edge account size arrives complete in the pages topic in both last-page variants",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts;
  const int64_t sizes[] = {0, 1, 9999, 10000, 10001, 23000};
  for (const char* variant : {"r", "e"}) {
    for (int64_t n : sizes) {
      auto a = merchant(std::string("wx") + variant + std::to_string(n), n);
      if (std::string(variant) == "e") a.last_page_variant = sandbox::LastPageVariant::kEmpty;
      accounts.push_back(a);
    }
  }
  WorkerFixture f(accounts);
  f.startWorker();
  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("job-" + a.appid, a.appid);
    jobs.insert("job-" + a.appid);
  }
  f.waitForStatus(jobs, {"completed", "failed"});
  for (const auto& a : accounts) {
    INFO(a.appid);
    std::string job = "job-" + a.appid;
    auto events = f.eventsOf(job);
    CHECK(statusCount(events, "started") == 1);
    REQUIRE(statusCount(events, "completed") == 1);
    CHECK(statusCount(events, "failed") == 0);
    f.requireFollowers(job, a.appid, a.followers);
    auto pages = f.pagesOf(job);
    // Every answer with OpenIDs is a page; a walk whose last data page repeats its final OpenID
    // (variant "repeat") ends with the count-0 answer as one more page, marked last.
    int64_t data_pages = (a.followers + 9999) / 10000;
    int64_t expected_pages =
        a.last_page_variant == sandbox::LastPageVariant::kEmpty ? std::max<int64_t>(data_pages, 1)
                                                                : data_pages + 1;
    CHECK(pages.pages == expected_pages);
    for (const auto& e : events) {
      if (e["status"] == "completed") {
        CHECK(e["openids"] == a.followers);
        CHECK(e["pages"] == expected_pages);
      }
    }
  }
}

TEST_CASE("faults and refusals and bad jobs each end as their error class says",
          "[worker][integration][kafka]") {
  auto flaky = merchant("wxflaky", 25000);
  flaky.faults.script = {sandbox::FaultKind::kBusy, sandbox::FaultKind::kHttp502,
                         sandbox::FaultKind::kTruncated, sandbox::FaultKind::kReset};
  auto expiring = merchant("wxexpiring", 30000);
  expiring.token_expires_after_calls = 1;
  auto no_permission = merchant("wxnoperm", 5000);
  no_permission.func_info = {1, 3};
  auto invalid_appid = merchant("wxinvalid", 5000);
  invalid_appid.errcode = 40013;
  auto unknown = merchant("wxunknown", 5000);
  unknown.errcode = 99999;
  auto cursor = merchant("wxcursor", 5000);
  auto ok = merchant("wxok", 12000);
  WorkerFixture f({flaky, expiring, no_permission, invalid_appid, unknown, cursor, ok});
  f.writeTenants(R"({"tenants": [
      {"appid": "wxflaky", "authorizer_access_token": "token-wxflaky", "func_info": [2]},
      {"appid": "wxexpiring", "authorizer_access_token": "token-wxexpiring"},
      {"appid": "wxnoperm", "authorizer_access_token": "token-wxnoperm", "func_info": [1, 3]},
      {"appid": "wxinvalid", "authorizer_access_token": "token-wxinvalid"},
      {"appid": "wxunknown", "authorizer_access_token": "token-wxunknown"},
      {"appid": "wxcursor", "authorizer_access_token": "token-wxcursor"},
      {"appid": "wxok", "authorizer_access_token": "token-wxok"}]})");
  f.startWorker();
  f.enqueueJob("j-flaky", "wxflaky");
  f.enqueueJob("j-expiring", "wxexpiring");
  f.enqueueJob("j-noperm", "wxnoperm");
  f.enqueueJob("j-invalid", "wxinvalid");
  f.enqueueJob("j-unknown", "wxunknown");
  f.enqueueJob("j-cursor", "wxcursor", "oUnknownCursorOfNoAccount000");
  f.enqueueJob("j-stranger", "wxnotinthefile");
  f.enqueue("wxok", "{\"job_id\": \"j-broken\", \"appid\": 7}");
  f.enqueue("wxok", "not json at all");
  f.enqueueJob("j-ok", "wxok");
  f.waitForStatus({"j-flaky", "j-expiring", "j-noperm", "j-invalid", "j-unknown", "j-cursor",
                   "j-ok"},
                  {"completed", "failed"});
  f.waitForStatus({"j-stranger"}, {"rejected"});

  auto finalOf = [&](const std::string& job) {
    for (auto& e : f.eventsOf(job)) {
      if (e["status"] == "completed" || e["status"] == "failed" || e["status"] == "rejected") {
        return e;
      }
    }
    FAIL("no final event for " << job);
    return nlohmann::json();
  };
  // retryable: -1, 502, a truncated body and a reset, then the walk completes.
  CHECK(finalOf("j-flaky")["status"] == "completed");
  f.requireFollowers("j-flaky", "wxflaky", 25000);
  CHECK(f.sandbox().calls("wxflaky", sandbox::kEndpointUserGet) >= 4 + 4);
  // token_invalid with a static token: one renewal (the file has no fresh token), then failed.
  auto expired = finalOf("j-expiring");
  CHECK(expired["status"] == "failed");
  CHECK(expired["error"]["class"] == "token_invalid");
  CHECK(expired["error"]["errcode"] == 42001);
  // permission_denied from func_info: zero calls.
  auto denied = finalOf("j-noperm");
  CHECK(denied["error"]["class"] == "permission_denied");
  CHECK(f.sandbox().calls("wxnoperm", sandbox::kEndpointUserGet) == 0);
  // invalid_tenant from WeChat: failed at once.
  auto invalid = finalOf("j-invalid");
  CHECK(invalid["error"]["class"] == "invalid_tenant");
  CHECK(invalid["error"]["errcode"] == 40013);
  CHECK(f.sandbox().calls("wxinvalid", sandbox::kEndpointUserGet) == 1);
  // unknown: retried like retryable (4 attempts), then failed with the errcode kept.
  auto unknown_end = finalOf("j-unknown");
  CHECK(unknown_end["error"]["class"] == "unknown");
  CHECK(unknown_end["error"]["errcode"] == 99999);
  CHECK(f.sandbox().calls("wxunknown", sandbox::kEndpointUserGet) == 4);
  // invalid_cursor: failed, no retry.
  auto bad_cursor = finalOf("j-cursor");
  CHECK(bad_cursor["error"]["class"] == "invalid_cursor");
  CHECK(f.sandbox().calls("wxcursor", sandbox::kEndpointUserGet) == 1);
  // Not a tenant: rejected before any call, dead-lettered.
  auto stranger = finalOf("j-stranger");
  CHECK(stranger["error"]["class"] == "invalid_tenant");
  CHECK(statusCount(f.eventsOf("j-stranger"), "started") == 0);
  // Good jobs complete beside all that.
  CHECK(finalOf("j-ok")["status"] == "completed");
  f.requireFollowers("j-ok", "wxok", 12000);

  // Dead letters: the original bytes, with the error headers.
  f.waitForStatus({"j-broken"}, {"rejected"});
  auto dead = f.deadLetters();
  REQUIRE(dead.size() == 3);
  std::map<std::string, testing::TopicMessage> by_value;
  for (const auto& d : dead) by_value[d.value] = d;
  REQUIRE(by_value.count("not json at all"));
  const auto& not_json = by_value["not json at all"];
  CHECK(not_json.header(kHeaderErrorClass) == "bad_job");
  CHECK(not_json.header(kHeaderOriginalTopic) == f.topics().jobs);
  CHECK_FALSE(not_json.header(kHeaderOriginalOffset).empty());
  CHECK_FALSE(not_json.header(kHeaderErrorMessage).empty());
  REQUIRE(by_value.count("{\"job_id\": \"j-broken\", \"appid\": 7}"));
  CHECK(by_value["{\"job_id\": \"j-broken\", \"appid\": 7}"].header(kHeaderErrorClass) == "bad_job");
  bool stranger_dead = false;
  for (const auto& d : dead) {
    stranger_dead |= d.header(kHeaderErrorClass) == "invalid_tenant" &&
                     d.value.find("j-stranger") != std::string::npos;
  }
  CHECK(stranger_dead);
  // Every accepted job ends exactly once.
  for (const char* job : {"j-flaky", "j-expiring", "j-noperm", "j-invalid", "j-unknown",
                          "j-cursor", "j-ok"}) {
    auto events = f.eventsOf(job);
    CHECK(statusCount(events, "completed") + statusCount(events, "failed") == 1);
  }
}

TEST_CASE("a duplicate job id is reported and not pulled twice", "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxdup", 15000)});
  f.startWorker();
  f.enqueueJob("j-dup", "wxdup");
  f.waitForStatus({"j-dup"}, {"completed"});
  int64_t calls = f.sandbox().calls("wxdup", sandbox::kEndpointUserGet);
  f.enqueueJob("j-dup", "wxdup");
  f.waitForStatus({"j-dup"}, {"duplicate"});
  CHECK(f.sandbox().calls("wxdup", sandbox::kEndpointUserGet) == calls);
  CHECK(statusCount(f.eventsOf("j-dup"), "completed") == 1);
}

TEST_CASE("faults past the retry budget fail the job as retryable while other merchants complete",
          "[worker][integration][kafka]") {
  auto busy = merchant("wxbusy", 25000);
  busy.faults.busy = 1.0;  // every call answers -1
  auto slow = merchant("wxslowpoke", 25000);
  slow.faults.delay = 1.0;  // every answer comes after the read timeout
  slow.faults.delay_ms = 900;
  auto fine = merchant("wxfine", 25000);
  fine.latency_ms = 50;
  WorkerFixture f({busy, slow, fine});
  f.setHttpTimeout(std::chrono::milliseconds(300));
  f.startWorker();  // backoff: 4 attempts in all
  f.enqueueJob("j-busy", "wxbusy");
  f.enqueueJob("j-slowpoke", "wxslowpoke");
  f.enqueueJob("j-fine", "wxfine");
  f.waitForStatus({"j-busy", "j-slowpoke", "j-fine"}, {"completed", "failed"});
  auto busy_events = f.eventsOf("j-busy");
  REQUIRE(statusCount(busy_events, "failed") == 1);
  for (const auto& e : busy_events) {
    if (e["status"] != "failed") continue;
    CHECK(e["error"]["class"] == "retryable");
    CHECK(e["error"]["errcode"] == -1);
  }
  CHECK(f.sandbox().calls("wxbusy", sandbox::kEndpointUserGet) == 4);
  auto slow_events = f.eventsOf("j-slowpoke");
  REQUIRE(statusCount(slow_events, "failed") == 1);
  for (const auto& e : slow_events) {
    if (e["status"] != "failed") continue;
    CHECK(e["error"]["class"] == "retryable");
    CHECK(e["error"]["message"].get<std::string>().find("timeout") != std::string::npos);
  }
  CHECK(f.sandbox().calls("wxslowpoke", sandbox::kEndpointUserGet) == 4);  // never sent twice
  CHECK(f.pagesOf("j-busy").pages == 0);
  CHECK(f.pagesOf("j-slowpoke").pages == 0);
  REQUIRE(statusCount(f.eventsOf("j-fine"), "completed") == 1);
  f.requireFollowers("j-fine", "wxfine", 25000);
}

TEST_CASE("45009 defers a merchant until Beijing midnight without delaying others and then resumes",
          "[worker][integration][kafka]") {
  auto quota = merchant("wxquota", 40000);
  quota.daily_quota = 3;
  quota.quota_get_errcode = 76022;  // the quota cannot be asked: WeChat's 45009 stops the walk
  WorkerFixture f({quota, merchant("wxother", 30000)});
  f.startWorker();
  f.enqueueJob("j-quota", "wxquota");
  f.enqueueJob("j-other", "wxother");
  f.waitForStatus({"j-quota"}, {"deferred"});
  f.waitForStatus({"j-other"}, {"completed"});
  auto deferred = f.eventsOf("j-quota");
  nlohmann::json event;
  for (auto& e : deferred) {
    if (e["status"] == "deferred") event = e;
  }
  CHECK(event["error"]["class"] == "quota_exhausted");
  CHECK(event["error"]["errcode"] == 45009);
  CHECK(event["retry_at"] == "2026-11-29T00:00:00+08:00");  // the fixture starts at 01:00 on the 28th
  // Nothing busy-loops while deferred.
  int64_t calls = f.sandbox().calls("wxquota", sandbox::kEndpointUserGet);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(f.sandbox().calls("wxquota", sandbox::kEndpointUserGet) == calls);
  CHECK(calls == 4);  // 3 answered, the 4th refused with 45009
  // Every page paid for is delivered before the deferral: 3 answers, 3 pages, 30,000 OpenIDs.
  auto before = f.pagesOf("j-quota");
  CHECK(before.pages == 3);
  CHECK(before.openids.size() == 30000);
  CHECK(event["openids"] == 30000);

  // Past 00:00 Beijing time: the walk goes on from the last delivered page and needs 2 more
  // calls (the 4th page, then the count-0 answer that ends the walk).
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-quota"}, {"completed"});
  f.requireFollowers("j-quota", "wxquota", 40000);
  CHECK(f.sandbox().calls("wxquota", sandbox::kEndpointUserGet) == 4 + 2);
  CHECK(statusCount(f.eventsOf("j-quota"), "started") == 1);
}

TEST_CASE("a walk stops at the quota WeChat reports without a call WeChat refuses, and resumes "
          "the next day",
          "[worker][integration][kafka]") {
  auto quota = merchant("wxreported", 90000);  // 9 pages and the count-0 answer: 10 calls
  quota.daily_quota = 6;
  WorkerFixture f({quota});
  f.sandbox().spendQuota("wxreported", 2);  // the merchant's own systems spent 2 calls today
  f.startWorker();
  f.enqueueJob("j-reported", "wxreported");
  f.waitForStatus({"j-reported"}, {"deferred"});
  nlohmann::json event;
  for (auto& e : f.eventsOf("j-reported")) {
    if (e["status"] == "deferred") event = e;
  }
  CHECK(event["error"]["class"] == "quota_exhausted");
  CHECK_FALSE(event["error"].contains("errcode"));  // no 45009: the call was never made
  CHECK(event["retry_at"] == "2026-11-29T00:00:00+08:00");
  // Asked once, then exactly the 4 calls left today, none refused.
  CHECK(f.sandbox().calls("wxreported", sandbox::kEndpointQuotaGet) == 1);
  auto log = f.sandbox().callLog("wxreported");
  int64_t calls = 0, refused = 0;
  for (const auto& e : log) {
    if (e.endpoint != sandbox::kEndpointUserGet) continue;
    ++calls;
    if (e.errcode != 0) ++refused;
  }
  CHECK(calls == 4);
  CHECK(refused == 0);
  CHECK(event["openids"] == 40000);
  CHECK(f.worker().stats().quota_checks == 1);
  // The events say what the day allows: 4 pages when the job started, none at its deferral.
  for (auto& e : f.eventsOf("j-reported")) {
    if (e["status"] == "started") CHECK(e["pages_affordable_today"] == 4);
  }
  CHECK(event["pages_affordable_today"] == 0);

  // The next Beijing day: asked again, and the walk completes within the new day's quota.
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-reported"}, {"completed"});
  f.requireFollowers("j-reported", "wxreported", 90000);
  CHECK(f.sandbox().calls("wxreported", sandbox::kEndpointQuotaGet) == 2);
  CHECK(f.sandbox().calls("wxreported", sandbox::kEndpointUserGet) == 4 + 6);  // 6: the new day's quota
}

TEST_CASE("a 45009 the budget did not expect asks WeChat's quota again and defers until "
          "midnight",
          "[worker][integration][kafka]") {
  auto quota = merchant("wxspent", 90000);  // 10 calls in all
  quota.daily_quota = 20;
  quota.latency_ms = 150;
  WorkerFixture f({quota});
  f.startWorker();
  f.enqueueJob("j-spent", "wxspent");
  REQUIRE(f.waitForUserGetCalls("wxspent", 2) >= 2);
  // The merchant's own systems spend the rest of its day mid-walk.
  REQUIRE(f.sandbox().spendQuota("wxspent", 20));
  f.waitForStatus({"j-spent"}, {"deferred"});
  nlohmann::json started, deferred;
  for (auto& e : f.eventsOf("j-spent")) {
    if (e["status"] == "started") started = e;
    if (e["status"] == "deferred") deferred = e;
  }
  CHECK(started["pages_affordable_today"] == 20);  // asked before the job's first call
  CHECK(deferred["error"]["errcode"] == 45009);
  CHECK(deferred["pages_affordable_today"] == 0);
  // Asked once before the walk and once after the refusal; one refused call, no other.
  CHECK(f.sandbox().calls("wxspent", sandbox::kEndpointQuotaGet) == 2);
  CHECK(f.worker().stats().quota_checks == 2);
  int64_t refused = 0;
  for (const auto& e : f.sandbox().callLog("wxspent")) {
    if (e.endpoint == sandbox::kEndpointUserGet && e.errcode == 45009) ++refused;
  }
  CHECK(refused == 1);
  bool logged = false;
  for (const auto& line : f.logLines()) {
    if (line.find("daily quota") != std::string::npos &&
        line.find("\"after\":\"45009\"") != std::string::npos &&
        line.find("\"remain\":0") != std::string::npos) {
      logged = true;
    }
  }
  CHECK(logged);

  // The next Beijing day: the walk completes from where it stopped.
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-spent"}, {"completed"});
  f.requireFollowers("j-spent", "wxspent", 90000);
  CHECK(f.sandbox().calls("wxspent", sandbox::kEndpointUserGet) <= 10 + 1 + 2);
}

TEST_CASE("the configured daily_calls budget defers with retry_at and resumes the next day",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxbudget", 40000)});
  auto options = f.options();
  options.default_limit = {1000, 1000, 3};
  f.startWorker(options);
  f.enqueueJob("j-budget", "wxbudget");
  f.waitForStatus({"j-budget"}, {"deferred"});
  CHECK(f.sandbox().calls("wxbudget", sandbox::kEndpointUserGet) == 3);  // the budget, no more
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-budget"}, {"completed"});
  f.requireFollowers("j-budget", "wxbudget", 40000);
}

TEST_CASE("a state topic with another partition count than the jobs topic stops the start",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxsplit", 100)});
  auto options = f.options();
  options.topics.state = testing::uniqueName("state-2");
  REQUIRE(f.kafka().createTopic(options.topics.state, 2, {{"cleanup.policy", "compact"}}).ok());
  auto started = f.tryStartWorker(options);
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().cause == "the state topic " + options.topics.state +
                                     " has 2 partitions and the jobs topic " + f.topics().jobs +
                                     " has 4: they must have as many (fanpull topics creates "
                                     "them so)");
}

TEST_CASE("a merchant's daily calls count on across a stop and another worker the same day",
          "[worker][integration][kafka]") {
  // daily_calls 6; 80,000 followers take 9 calls. The first worker stops after 3 calls (the
  // answer in flight is kept, its page checkpointed); the second (nothing of the first in its
  // memory) continues the count from the state topic and defers at 6 calls in all, then
  // finishes the next day.
  auto slow = merchant("wxdaily", 80000);
  slow.latency_ms = 150;
  WorkerFixture f({slow});
  auto options = f.options();
  options.default_limit = {1000, 1000, 6};
  f.startWorker(options);
  f.enqueueJob("j-daily", "wxdaily");
  f.waitForUserGetCalls("wxdaily", 3);
  f.stopWorker();
  const int64_t first = f.sandbox().calls("wxdaily", sandbox::kEndpointUserGet);
  REQUIRE(first < 6);
  f.startWorker(options);
  f.waitForStatus({"j-daily"}, {"deferred"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The budget and no more; a budget of 6 is reserved a call at a time, so nothing is wasted.
  CHECK(f.sandbox().calls("wxdaily", sandbox::kEndpointUserGet) == 6);
  CHECK(f.worker().stats().calls_reservations == 6 - first);
  f.clock().advance(std::chrono::hours(23));
  f.waitForStatus({"j-daily"}, {"completed"});
  f.requireFollowers("j-daily", "wxdaily", 80000);
  CHECK(f.sandbox().calls("wxdaily", sandbox::kEndpointUserGet) == 9);
  CHECK(statusCount(f.eventsOf("j-daily"), "started") == 1);
}

TEST_CASE("45011 waits for the next minute and the walk completes", "[worker][integration][kafka]") {
  auto limited = merchant("wxminute", 30000);
  limited.minute_limit = 2;
  WorkerFixture f({limited});
  f.startWorker();
  f.enqueueJob("j-minute", "wxminute");
  f.waitForUserGetCalls("wxminute", 3, std::chrono::seconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.sandbox().calls("wxminute", sandbox::kEndpointUserGet) == 3);  // 2 ok, one 45011
  f.clock().advance(std::chrono::seconds(60));
  f.waitForStatus({"j-minute"}, {"completed"});
  f.requireFollowers("j-minute", "wxminute", 30000);
}

TEST_CASE("a job resumes from its cursor after a graceful stop", "[worker][integration][kafka]") {
  // Nine calls of 300 ms; the stop comes once the third is under way (watched through the
  // sandbox's call count, which costs nothing, so a slow build still stops mid-walk).
  auto slow = merchant("wxslow", 80000);
  slow.latency_ms = 300;
  WorkerFixture f({slow});
  f.startWorker();
  f.enqueueJob("j-slow", "wxslow");
  f.waitForUserGetCalls("wxslow", 3);
  f.stopWorker();
  int64_t calls_before = f.sandbox().calls("wxslow", sandbox::kEndpointUserGet);
  CHECK(calls_before < 9);
  f.startWorker();
  f.waitForStatus({"j-slow"}, {"completed"});
  f.requireFollowers("j-slow", "wxslow", 80000);
  // Resumed, not restarted, and nothing paid twice: the stop waited for the call in flight, its
  // page and their checkpoints.
  CHECK(f.sandbox().calls("wxslow", sandbox::kEndpointUserGet) == 9);
  CHECK(statusCount(f.eventsOf("j-slow"), "started") == 1);
  // Each delivered page's log line carries the job's running totals: the last data page's says
  // 8 pages, 80,000 of 80,000 followers.
  bool totals = false;
  for (const auto& line : f.logLines()) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == "page delivered" && j.value("job_id", "") == "j-slow" &&
        j.value("pages", 0) == 8 && j.value("openids", 0) == 80000 &&
        j.value("total", 0) == 80000) {
      totals = true;
    }
  }
  CHECK(totals);
  CHECK(statusCount(f.eventsOf("j-slow"), "completed") == 1);
}

TEST_CASE("a merchant handed back and forth between workers whose clocks differ by minutes "
          "resumes from the newest checkpoint each time",
          "[worker][integration][kafka]") {
  // Thirteen calls of 200 ms. Three workers in turn, the first and last with clocks 10 minutes
  // ahead, the middle one 10 minutes behind: the middle one's checkpoints carry older times
  // than the first one's, yet they are the newest in the state partition's log.
  auto slow = merchant("wxskew", 120000);
  slow.latency_ms = 200;
  WorkerFixture f({slow});
  testing::ShiftedClock ahead(f.clock().now() + std::chrono::minutes(10));
  testing::ShiftedClock behind(f.clock().now() - std::chrono::minutes(10));
  auto on = [&f](Clock& clock) {
    WorkerOptions o = f.options();
    o.clock = &clock;
    return o;
  };
  f.startWorker(on(ahead));
  f.enqueueJob("j-skew", "wxskew");
  f.waitForUserGetCalls("wxskew", 3);
  f.stopWorker();
  const int64_t first = f.sandbox().calls("wxskew", sandbox::kEndpointUserGet);
  f.startWorker(on(behind));
  f.waitForUserGetCalls("wxskew", first + 4);
  f.stopWorker();
  const int64_t second = f.sandbox().calls("wxskew", sandbox::kEndpointUserGet);
  REQUIRE(second < 13);  // the last worker still has pages to fetch
  f.startWorker(on(ahead));
  f.waitForStatus({"j-skew"}, {"completed"});
  f.requireFollowers("j-skew", "wxskew", 120000);
  // Each stop drops at most the answer in flight: no page is fetched or written twice.
  testing::JobPages pages = f.pagesOf("j-skew");
  CHECK(pages.duplicates == 0);
  CHECK(pages.pages == 13);
  CHECK(f.sandbox().calls("wxskew", sandbox::kEndpointUserGet) <= 13 + 2);
  auto events = f.eventsOf("j-skew");
  CHECK(statusCount(events, "started") == 1);
  CHECK(statusCount(events, "completed") == 1);
  // The last worker found the job in the state partition it restored.
  bool restored = false;
  for (const auto& line : f.logLines()) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == "state restored" && j.value("records", 0) > 0) {
      restored = true;
    }
  }
  CHECK(restored);
}

TEST_CASE("the state topic compacts to one record per job and a restore reads only that",
          "[worker][kafka]") {
  // 40 jobs of 3 pages for 4 merchants on a state topic compacted within seconds; a worker
  // restarted afterwards restores what compaction kept and still knows every finished job.
  std::vector<sandbox::Account> accounts;
  for (int m = 0; m < 4; ++m) accounts.push_back(merchant("wxcompact" + std::to_string(m), 25000));
  WorkerFixture f(accounts);
  REQUIRE(f.kafka().real());
  auto options = f.options();
  options.topics.state = testing::uniqueName("state-compacted");
  REQUIRE(f.kafka()
              .createTopic(options.topics.state, 4,
                           {{"cleanup.policy", "compact"},
                            {"segment.ms", "1000"},
                            {"min.cleanable.dirty.ratio", "0.01"},
                            {"min.compaction.lag.ms", "0"}})
              .ok());
  f.startWorker(options);
  std::vector<std::string> ids;
  for (int j = 0; j < 10; ++j) {
    for (int m = 0; m < 4; ++m) {
      ids.push_back("j-" + std::to_string(m) + "-" + std::to_string(j));
      f.enqueueJob(ids.back(), "wxcompact" + std::to_string(m));
    }
  }
  f.waitForStatus({ids.begin(), ids.end()}, {"completed"});
  f.stopWorker();
  auto count = [&f, &options] {
    auto records = testing::readTopic(f.bootstrapServers(), options.topics.state);
    REQUIRE(records.ok());
    return static_cast<int64_t>(records->size());
  };
  // Each job wrote 4 records (checkpoints after its first 2 pages, ending, done): 160, less what
  // the broker has compacted already.
  const int64_t written = count();
  // The active segment is never compacted: a record written after segment.ms rolls it.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int32_t p = 0; p < 4; ++p) f.produceTo(options.topics.state, p, "roll", "{}");
  const int64_t bound = 40 + 4;  // a done record per job, the roll record per partition
  int64_t retained = count();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (retained > bound && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    retained = count();
  }
  INFO("state records written " << written << ", retained " << retained);
  CHECK(retained <= bound);

  const size_t lines_before = f.logLines().size();
  const int64_t calls = f.sandbox().calls("wxcompact0", sandbox::kEndpointUserGet);
  f.startWorker(options);
  f.enqueueJob("j-0-0", "wxcompact0");  // sent again: finished, so a duplicate
  auto events = f.eventsOf("j-0-0");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (statusCount(events, "duplicate") == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    events = f.eventsOf("j-0-0");
  }
  CHECK(statusCount(events, "duplicate") == 1);
  CHECK(f.sandbox().calls("wxcompact0", sandbox::kEndpointUserGet) == calls);
  int64_t restored = 0;
  int64_t jobs_known = 0;
  auto lines = f.logLines();
  for (size_t i = lines_before; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i], nullptr, false);
    if (j.is_object() && j.value("msg", "") == "state restored") {
      restored += j.value("records", int64_t{0});
      jobs_known += j.value("jobs", int64_t{0});
    }
  }
  CHECK(restored <= retained);
  CHECK(jobs_known == 40);
}

TEST_CASE("a worker killed with SIGKILL mid-walk is restarted and no page is lost",
          "[worker][integration][kafka]") {
  // Ten pages of 400 ms: the kill after the third page lands mid-walk however slow the machine.
  auto a = merchant("wxkill", 100000);
  a.latency_ms = 400;
  auto b = merchant("wxkill2", 45000);
  b.latency_ms = 120;
  WorkerFixture f({a, b});
  std::string config = f.writeConfig();
  f.enqueueJob("j-kill", "wxkill");
  f.enqueueJob("j-kill2", "wxkill2");
  auto first = f.launchWorker(config, "first");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (f.pagesOf("j-kill").pages < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(f.pagesOf("j-kill").pages >= 3);
  ::kill(first.id(), SIGKILL);
  first.wait();
  REQUIRE(statusCount(f.eventsOf("j-kill"), "completed") == 0);  // the kill was mid-walk
  auto second = f.launchWorker(config, "second");
  f.waitForStatus({"j-kill", "j-kill2"}, {"completed"}, std::chrono::seconds(90));
  CHECK(f.terminateWorker(second, "second") == 0);
  f.requireFollowers("j-kill", "wxkill", 100000);
  f.requireFollowers("j-kill2", "wxkill2", 45000);
  CHECK(statusCount(f.eventsOf("j-kill"), "completed") == 1);
  // Resumed from its checkpoint: an uninterrupted walk makes 11 calls (10 pages and the count-0
  // answer); the kill costs at most the page not yet checkpointed and the call in flight.
  CHECK(f.sandbox().calls("wxkill", sandbox::kEndpointUserGet) <= 11 + 2);
  CHECK(statusCount(f.eventsOf("j-kill"), "started") == 1);
}

TEST_CASE("a worker killed after six calls of a fresh walk resumes it at the cost of two calls",
          "[worker][integration][kafka]") {
  // 150,000 followers: 16 calls uninterrupted. Calls of 100 ms, so the kill after the sixth call
  // lands in the worker's first second, when its first checkpoints are just being written.
  auto a = merchant("wxfresh", 150000);
  a.latency_ms = 100;
  WorkerFixture f({a});
  std::string config = f.writeConfig();
  auto first = f.launchWorker(config, "first");
  f.enqueueJob("j-fresh", "wxfresh");
  REQUIRE(f.waitForUserGetCalls("wxfresh", 6, std::chrono::seconds(60)) >= 6);
  ::kill(first.id(), SIGKILL);
  first.wait();
  const int64_t calls_before = f.sandbox().calls("wxfresh", sandbox::kEndpointUserGet);
  REQUIRE(calls_before < 16);  // the kill was mid-walk
  auto second = f.launchWorker(config, "second");
  f.waitForStatus({"j-fresh"}, {"completed"}, std::chrono::seconds(90));
  CHECK(f.terminateWorker(second, "second") == 0);
  f.requireFollowers("j-fresh", "wxfresh", 150000);
  INFO("calls before the kill: " << calls_before << "\n" << f.childLogLines("progress"));
  CHECK(f.sandbox().calls("wxfresh", sandbox::kEndpointUserGet) <= 16 + 2);
  CHECK(f.childLogLines("job resumed").find("second.log") != std::string::npos);
}

TEST_CASE("two workers share the group and when one is killed its merchants finish on the other",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts;
  // Three pages per merchant keep every pages partition far below the embedded broker's 5 MiB
  // retention even when some pages are written twice.
  for (int i = 0; i < 8; ++i) {
    auto a = merchant("wxpair" + std::to_string(i), 30000);
    a.latency_ms = 200;
    accounts.push_back(a);
  }
  WorkerFixture f(accounts);
  std::string config = f.writeConfig();
  auto one = f.launchWorker(config, "one");
  auto two = f.launchWorker(config, "two");
  std::this_thread::sleep_for(std::chrono::seconds(4));  // both join the group
  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("j-" + a.appid, a.appid);
    jobs.insert("j-" + a.appid);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int64_t pages = 0;
    for (const auto& j : jobs) pages += f.pagesOf(j).pages;
    if (pages >= 8) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(one.id(), SIGKILL);
  one.wait();
  f.waitForStatus(jobs, {"completed"}, std::chrono::seconds(120));
  CHECK(f.terminateWorker(two, "two") == 0);
  for (const auto& a : accounts) {
    f.requireFollowers("j-" + a.appid, a.appid, 30000);
    CHECK(statusCount(f.eventsOf("j-" + a.appid), "completed") == 1);
    // 4 calls uninterrupted (3 pages and the count-0 answer); a walk moved by the kill resumes
    // from its checkpoint: at most 2 calls again.
    CHECK(f.sandbox().calls(a.appid, sandbox::kEndpointUserGet) <= 4 + 2);
  }
}

TEST_CASE("a job found ending after a crash gets exactly one end event and no further call",
          "[worker][integration][kafka]") {
  // A worker died after checkpointing "ending": the end event may or may not have been written.
  const bool event_written = GENERATE(true, false);
  INFO("end event already written: " << event_written);
  auto account = merchant("wxending", 30000);
  account.latency_ms = 150;
  WorkerFixture f({account});
  f.enqueueJob("j-ending", "wxending");
  // The merchant's next job runs in the lane while the first one is settled.
  f.enqueueJob("j-after-ending", "wxending");
  auto jobs = readTopic(f.bootstrapServers(), f.topics().jobs);
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 2);
  const TopicMessage& job = jobs->front();

  TimePoint now = f.clock().now();
  JobEvent started{"j-ending", "wxending", "started", 0, 0, std::nullopt, std::nullopt, 0};
  f.produce(f.topics().events, "wxending", encodeEvent(started, now));
  JobEvent completed{"j-ending", "wxending", "completed", 3, 30000, std::nullopt, std::nullopt,
                     std::nullopt};
  const std::string end_event = encodeEvent(completed, now);
  if (event_written) f.produce(f.topics().events, "wxending", end_event);
  auto events_before = readTopic(f.bootstrapServers(), f.topics().events);
  REQUIRE(events_before.ok());

  ProgressRecord ending;
  ending.job_id = "j-ending";
  ending.appid = "wxending";
  ending.state = "ending";
  ending.seq = 3;
  ending.openids = 30000;
  ending.source_topic = f.topics().jobs;
  ending.source_partition = job.partition;
  ending.source_offset = job.offset;
  ending.updated_ms = 1795798800000;
  ending.events_partition = events_before->front().partition;
  ending.events_offset = events_before->front().offset;
  ending.end_event = end_event;
  // Where the crashed owner left it: in the state partition of the job's jobs partition.
  f.produceTo(f.topics().state, job.partition, jobStateKey("j-ending"), encodeProgress(ending));

  f.startWorker();
  // Settled: the final checkpoint follows the "ending" one.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string last_state;
  while (last_state != "completed" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto progress = readTopic(f.bootstrapServers(), f.topics().progress);
    REQUIRE(progress.ok());
    for (const auto& m : *progress) {
      auto p = parseProgress(m.value);
      if (p && p->job_id == "j-ending") last_state = p->state;
    }
  }
  REQUIRE(last_state == "completed");
  auto events = f.eventsOf("j-ending");
  CHECK(statusCount(events, "completed") == 1);
  CHECK(statusCount(events, "started") == 1);
  for (const auto& e : events) {
    if (e["status"] == "completed") CHECK(e.dump() == nlohmann::json::parse(end_event).dump());
  }
  CHECK(f.pagesOf("j-ending").pages == 0);
  f.waitForStatus({"j-after-ending"}, {"completed"});
  f.requireFollowers("j-after-ending", "wxending", 30000);
  CHECK(statusCount(f.eventsOf("j-after-ending"), "completed") == 1);
  // Only the next job called WeChat: three pages and the call that found the end.
  CHECK(f.sandbox().calls("wxending", sandbox::kEndpointUserGet) == 4);
  // Its offset is committed: a restarted worker does not settle it again.
  f.stopWorker();
  f.startWorker();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(statusCount(f.eventsOf("j-ending"), "completed") == 1);
}

TEST_CASE("a start cursor in the job starts the walk after it", "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxfrom", 25000)});
  f.startWorker();
  f.enqueueJob("j-from", "wxfrom", sandbox::sandboxOpenId("wxfrom", 12344));
  f.waitForStatus({"j-from"}, {"completed"});
  f.requireFollowers("j-from", "wxfrom", 25000, 12345);
}

TEST_CASE("a tenants file edit is picked up without a restart", "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxlate", 100)});
  f.writeTenants(R"({"tenants": []})");
  auto options = f.options();
  options.tenants_reload_interval = std::chrono::milliseconds(200);
  f.startWorker(options);
  f.enqueueJob("j-before", "wxlate");
  f.waitForStatus({"j-before"}, {"rejected"});
  f.writeTenants(R"({"tenants": [{"appid": "wxlate", "authorizer_access_token": "token-wxlate"}]})");
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  f.enqueueJob("j-after", "wxlate");
  f.waitForStatus({"j-after"}, {"completed"});
  f.requireFollowers("j-after", "wxlate", 100);
}

TEST_CASE("too many queued jobs pause the jobs partitions and every job still completes",
          "[worker][integration][kafka]") {
  std::vector<sandbox::Account> accounts;
  for (int i = 0; i < 3; ++i) {
    auto a = merchant("wxbacklog" + std::to_string(i), 15000);
    a.latency_ms = 60;
    accounts.push_back(a);
  }
  WorkerFixture f(accounts);
  auto options = f.options();
  options.max_queued_jobs = 4;
  f.startWorker(options);
  std::set<std::string> jobs;
  for (int n = 0; n < 4; ++n) {
    for (const auto& a : accounts) {
      std::string job = "j-" + a.appid + "-" + std::to_string(n);
      f.enqueueJob(job, a.appid);
      jobs.insert(job);
    }
  }
  bool paused = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!paused && std::chrono::steady_clock::now() < deadline) {
    auto stats = f.worker().stats();
    paused = stats.partitions_paused;
    CHECK(stats.jobs_queued <= 12);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(paused);
  f.waitForStatus(jobs, {"completed"}, std::chrono::seconds(90));
  CHECK_FALSE(f.worker().stats().partitions_paused);
  for (const auto& job : jobs) {
    std::string appid = job.substr(2, job.rfind('-') - 2);
    f.requireFollowers(job, appid, 15000);
  }
}

TEST_CASE("jobs deferred to the next day do not keep the jobs partitions paused",
          "[worker][integration][kafka]") {
  // max_queued_jobs 2 and three merchants deferred by 45009: the worker holds three jobs that
  // cannot run today, yet the jobs that come after them are read and complete.
  std::vector<sandbox::Account> accounts;
  std::vector<std::string> held;
  for (int i = 0; i < 3; ++i) {
    auto a = merchant("wxheld" + std::to_string(i), 20000);
    a.daily_quota = 1;  // the second call is refused with 45009
    a.quota_get_errcode = 76022;
    accounts.push_back(a);
    held.push_back(a.appid);
  }
  for (int i = 0; i < 3; ++i) accounts.push_back(merchant("wxfree" + std::to_string(i), 100));
  WorkerFixture f(accounts);
  auto options = f.options();
  options.max_queued_jobs = 2;
  f.startWorker(options);
  std::set<std::string> deferred;
  for (const auto& appid : held) {
    f.enqueueJob("j-" + appid, appid);
    deferred.insert("j-" + appid);
  }
  f.waitForStatus(deferred, {"deferred"});
  std::map<std::string, int64_t> calls;
  for (const auto& appid : held) calls[appid] = f.sandbox().calls(appid, sandbox::kEndpointUserGet);
  std::set<std::string> free;
  for (int i = 0; i < 3; ++i) {
    const std::string appid = "wxfree" + std::to_string(i);
    f.enqueueJob("j-" + appid, appid);
    free.insert("j-" + appid);
  }
  f.waitForStatus(free, {"completed"}, std::chrono::seconds(30));
  for (const auto& job : free) f.requireFollowers(job, job.substr(2), 100);
  auto stats = f.worker().stats();
  CHECK_FALSE(stats.partitions_paused);
  CHECK(stats.deferred == 3);
  CHECK(stats.jobs_queued == 3);  // the deferred jobs, still held here for their day
  // Waiting for their day costs no call.
  for (const auto& appid : held) {
    CHECK(f.sandbox().calls(appid, sandbox::kEndpointUserGet) == calls[appid]);
  }
}

TEST_CASE("a page larger than message.max.bytes is split into ordered parts",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxsplit", 23000)});
  auto options = f.options();
  options.properties["message.max.bytes"] = "120000";
  f.startWorker(options);
  f.enqueueJob("j-split", "wxsplit");
  f.waitForStatus({"j-split"}, {"completed"});
  f.requireFollowers("j-split", "wxsplit", 23000);
  auto msgs = testing::readTopic(f.bootstrapServers(), f.topics().pages);
  REQUIRE(msgs.ok());
  int parts = 0;
  for (const auto& m : *msgs) {
    CHECK(m.value.size() <= 120000);
    auto j = nlohmann::json::parse(m.value);
    if (j.contains("parts")) {
      ++parts;
      CHECK(m.header(kHeaderPart) == std::to_string(j["part"].get<int>()));
    }
  }
  CHECK(parts >= 6);  // two full pages of about 310 KB, three parts each
}

TEST_CASE("SIGTERM stops the worker gracefully and a second signal exits at once",
          "[worker][integration][kafka]") {
  auto slow = merchant("wxsignal", 50000);
  slow.latency_ms = 2500;
  WorkerFixture f({slow});
  std::string config = f.writeConfig();
  f.enqueueJob("j-signal", "wxsignal");

  auto graceful = f.launchWorker(config, "graceful");
  f.waitForStatus({"j-signal"}, {"started"}, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a call is in flight
  auto t0 = std::chrono::steady_clock::now();
  Poco::Process::requestTermination(graceful.id());
  CHECK(graceful.wait() == 0);
  auto graceful_took = std::chrono::steady_clock::now() - t0;
  CHECK(graceful_took < std::chrono::seconds(30));

  auto hurried = f.launchWorker(config, "hurried");
  f.waitForUserGetCalls("wxsignal", f.sandbox().calls("wxsignal", sandbox::kEndpointUserGet) + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto t1 = std::chrono::steady_clock::now();
  Poco::Process::requestTermination(hurried.id());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Poco::Process::requestTermination(hurried.id());
  CHECK(hurried.wait() == 1);
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(2000));
}

TEST_CASE("SIGTERM with every broker down exits within shutdown_timeout_ms and the steps' bounds, "
          "and the next worker finishes the job with every follower",
          "[worker][integration]") {
  auto walk = merchant("wxgone", 60000);
  walk.latency_ms = 400;
  WorkerFixture f({walk});
  nlohmann::json config = f.config();
  config["shutdown_timeout_ms"] = 1500;
  const std::string path = f.dir().write("gone.json", config.dump(2));
  f.enqueueJob("j-gone", "wxgone");

  auto first = f.launchWorker(path, "first");
  f.waitForStatus({"j-gone"}, {"started"}, std::chrono::seconds(30));
  f.waitForUserGetCalls("wxgone", 2);
  for (int32_t b = 1; b <= f.broker().brokerCount(); ++b) REQUIRE(f.broker().setBrokerDown(b).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Without the bounds the close waited 10 s more for runs and each producer up to 10 s for
  // deliveries: the same test failed a bound of 13.5 s.
  f.checkStopWithBrokersGone(first);

  for (int32_t b = 1; b <= f.broker().brokerCount(); ++b) REQUIRE(f.broker().setBrokerUp(b).ok());
  auto second = f.launchWorker(path, "second");
  f.waitForStatus({"j-gone"}, {"completed"}, std::chrono::seconds(60));
  f.requireFollowers("j-gone", "wxgone", 60000);
  int completed = 0;
  for (const auto& e : f.events()) completed += e["status"] == "completed" ? 1 : 0;
  CHECK(completed == 1);
  // What the first worker fetched and could not deliver is fetched again, and nothing more: at
  // most the 7 calls of the walk and the first worker's calls.
  CHECK(f.sandbox().calls("wxgone", sandbox::kEndpointUserGet) <= 7 + 7);
  CHECK(f.terminateWorker(second, "second") == 0);
}

TEST_CASE("answer buffers kept after a busy spell are freed once no answer has come for "
          "idle_buffers_after",
          "[worker][integration]") {
  WorkerFixture f({merchant("wxquiet", 30000)});
  WorkerOptions options = f.options();
  options.idle_buffers_after = std::chrono::milliseconds(400);
  f.startWorker(options);
  f.enqueueJob("j-quiet", "wxquiet");
  // While pages flow, answers' buffers are kept for the next ones.
  size_t most_kept = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto completed = [&] {
    auto s = f.worker().stats().jobs_by_status;
    return s.count("completed") > 0 && s["completed"] >= 1;
  };
  while (!completed() && std::chrono::steady_clock::now() < deadline) {
    most_kept = std::max(most_kept, BufferPool::bodies().stats().kept_bytes);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  f.waitForStatus({"j-quiet"}, {"completed"});
  f.requireFollowers("j-quiet", "wxquiet", 30000);
  CHECK(most_kept >= 300 * 1024);  // at least one full page's buffer was kept
  // Then, quiet: within two intervals (and a margin) nothing is kept any more.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (BufferPool::bodies().stats().kept_bytes > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(BufferPool::bodies().stats().kept_bytes == 0);
  CHECK(BufferPool::bodies().stats().kept == 0);
}

TEST_CASE("a deferred merchant counts as deferred until its walk resumes", "[worker][integration][kafka]") {
  auto quota = merchant("wxgauge", 30000);
  quota.daily_quota = 3;  // the walk needs 4 calls: deferred once, then completed
  WorkerFixture f({quota});
  f.startWorker();
  f.enqueueJob("j-gauge", "wxgauge");
  f.waitForStatus({"j-gauge"}, {"deferred"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.worker().stats().deferred == 1);
  f.clock().advance(std::chrono::hours(23));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (f.worker().stats().deferred != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(f.worker().stats().deferred == 0);
  f.waitForStatus({"j-gauge"}, {"completed"});
}

TEST_CASE("a metrics port that is taken makes fanpull run exit 2 naming the address",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxport", 100)});
  Poco::Net::ServerSocket taken(Poco::Net::SocketAddress("127.0.0.1", 0));  // held open
  const std::string address = "127.0.0.1:" + std::to_string(taken.address().port());
  std::string config = f.writeConfig();
  auto text = nlohmann::json::parse(std::ifstream(config));
  text["http"]["listen"] = address;
  std::ofstream(config, std::ios::trunc) << text.dump();
  auto worker = f.launchWorker(config, "taken");
  CHECK(worker.wait() == 2);
  std::string logs = f.childLogs();
  CHECK(logs.find("http.listen: cannot listen on " + address) != std::string::npos);
  CHECK(logs.find("metrics and health on") == std::string::npos);
}

TEST_CASE("enqueue then collect against a running worker give the full follower list",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxcli", 23000)});
  std::string config = f.writeConfig();
  auto worker = f.launchWorker(config, "worker");
  auto run = [](const std::vector<std::string>& args) {
    Poco::Pipe out;
    auto ph = Poco::Process::launch(FANPULL_BINARY, args, nullptr, &out, nullptr);
    Poco::PipeInputStream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return std::make_pair(ph.wait(), text);
  };
  auto [enqueued, enqueue_out] =
      run({"enqueue", "--config", config, "--appid", "wxcli", "--job-id", "j-cli"});
  CHECK(enqueued == 0);
  CHECK(enqueue_out.rfind("j-cli wxcli partition", 0) == 0);
  std::string out_file = f.dir().file("followers.txt");
  auto [collected, summary] = run({"collect", "--config", config, "--job-id", "j-cli", "--out",
                                   out_file, "--timeout", "60"});
  INFO(summary << f.childLogs());
  CHECK(collected == 0);
  CHECK(summary.find("status: complete") != std::string::npos);
  std::ifstream in(out_file);
  std::string line;
  int64_t i = 0;
  while (std::getline(in, line)) {
    REQUIRE(line == sandbox::sandboxOpenId("wxcli", i));
    ++i;
  }
  CHECK(i == 23000);
  Poco::Process::requestTermination(worker.id());
  CHECK(worker.wait() == 0);
}

TEST_CASE("worker started names the build and configuration; SIGHUP reloads tenants and log level",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxhup", 300), merchant("wxhup2", 300)});
  f.writeTenants(R"({"tenants": [{"appid": "wxhup", "authorizer_access_token": "token-wxhup"}]})");
  std::string config = f.writeConfig();
  auto worker = f.launchWorker(config, "hup");
  auto waitForLine = [&f](const std::string& needle) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string lines;
    while (lines.empty() && std::chrono::steady_clock::now() < deadline) {
      lines = f.childLogLines(needle);
      if (lines.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    INFO(f.childLogs());
    REQUIRE_FALSE(lines.empty());
    // The JSON of the last such line (after the "hup.log: " prefix).
    std::string last = lines.substr(0, lines.size() - 1);
    last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    return nlohmann::json::parse(last.substr(last.find('{')));
  };

  auto started = waitForLine("\"worker started\"");
  CHECK(started["version"] == "0.1.0");
  CHECK(started["librdkafka"].get<std::string>().rfind("2.", 0) == 0);
  CHECK_FALSE(started["revision"].get<std::string>().empty());
  CHECK(started["config"] == config);
  CHECK(started["bootstrap_servers"] == f.bootstrapServers());
  CHECK(started["tenants"] == 1);  // a number, not "1"
  CHECK(started["max_in_flight"] == 8);
  CHECK(started["tokens"] == "static");
  CHECK(started["kafka_properties"] == "heartbeat.interval.ms,session.timeout.ms");
  CHECK(started["requests_per_second"] == 1000.0);

  // A second merchant in the tenants file and the log level raised to error, then SIGHUP.
  f.writeTenants(R"({"tenants": [{"appid": "wxhup", "authorizer_access_token": "token-wxhup"},
                                 {"appid": "wxhup2", "authorizer_access_token": "token-wxhup2"}]})");
  auto text = nlohmann::json::parse(std::ifstream(config));
  text["log"]["level"] = "error";
  std::ofstream(config, std::ios::trunc) << text.dump();
  REQUIRE(::kill(worker.id(), SIGHUP) == 0);
  auto reloaded = waitForLine("reloaded on SIGHUP");
  CHECK(reloaded["tenants"] == 2);
  CHECK(reloaded["log_level"] == "error");
  CHECK(reloaded["level"] == "info");  // shown at the old, more verbose level

  // The worker lives on: the new merchant's job completes, and at level error its info lines
  // (job started, page delivered, job completed) are no longer written.
  f.enqueueJob("j-hup2", "wxhup2");
  f.waitForStatus({"j-hup2"}, {"completed"});
  f.requireFollowers("j-hup2", "wxhup2", 300);
  CHECK(f.childLogLines("j-hup2").empty());
  CHECK(Poco::Process::isRunning(worker));
  CHECK(f.childLogLines("token-wxhup").empty());  // no token in any line
  Poco::Process::requestTermination(worker.id());
  CHECK(worker.wait() == 0);
}

namespace {

// A broken dependency: the first call's report throws.
class ThrowOnceObserver final : public CallObserver {
 public:
  void observeCall(std::string_view, double) override {
    if (calls_++ == 0) throw std::runtime_error("observer broke");
  }
  void observeRateLimitWait(double) override {}
  void observeThrottleWait(double) override {}
  void observeConsumerStatistics(const std::string&) override {}

 private:
  std::atomic<int> calls_{0};
};

}  // namespace

TEST_CASE("an exception in a job's step fails that job with class unknown and the worker lives",
          "[worker][integration][kafka]") {
  WorkerFixture f({merchant("wxthrow", 100)});
  ThrowOnceObserver observer;
  auto options = f.options();
  options.observer = &observer;
  f.startWorker(options);
  f.enqueueJob("j-throw", "wxthrow");
  f.waitForStatus({"j-throw"}, {"failed"});
  auto failed = f.eventsOf("j-throw").back();
  CHECK(failed["error"]["class"] == "unknown");
  CHECK(failed["error"]["message"].get<std::string>().find("internal error: observer broke") !=
        std::string::npos);
  bool logged = false;
  for (const auto& line : f.logLines()) {
    if (line.find("\"job step threw\"") != std::string::npos &&
        line.find("observer broke") != std::string::npos) {
      logged = true;
    }
  }
  CHECK(logged);
  // The worker goes on: the next job of the same merchant completes, and a stop does not wait
  // for a call the exception left "in progress".
  f.enqueueJob("j-after-throw", "wxthrow");
  f.waitForStatus({"j-after-throw"}, {"completed"});
  f.requireFollowers("j-after-throw", "wxthrow", 100);
  CHECK(f.sandbox().calls("wxthrow", sandbox::kEndpointUserGet) == 1 + 2);
  auto t0 = std::chrono::steady_clock::now();
  f.stopWorker();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

namespace {

// `count` merchants of 20,000 followers (two full pages and a count-0 last answer each), all
// queued at once under `options`; every walk must complete with its followers in exactly its 3
// calls. Returns the most bytes waiting for delivery, sampled every millisecond while they walk.
int64_t highestUndeliveredOfFleet(const std::string& prefix, int count,
                                  const std::function<void(WorkerOptions&)>& configure,
                                  WorkerStats* stats) {
  std::vector<sandbox::Account> accounts;
  for (int i = 0; i < count; ++i) accounts.push_back(merchant(prefix + std::to_string(i), 20000));
  WorkerFixture f(accounts);
  auto options = f.options();
  configure(options);
  f.startWorker(options);
  std::set<std::string> jobs;
  for (const auto& a : accounts) {
    f.enqueueJob("j-" + a.appid, a.appid);
    jobs.insert("j-" + a.appid);
  }
  int64_t highest = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (f.worker().stats().pages < 3 * static_cast<int64_t>(accounts.size()) &&
         std::chrono::steady_clock::now() < deadline) {
    highest = std::max(highest, f.worker().stats().undelivered_bytes);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  f.waitForStatus(jobs, {"completed"});
  for (const auto& a : accounts) f.requireFollowers("j-" + a.appid, a.appid, 20000);
  // Waiting cost no call: each walk made exactly its 3 calls (2 pages and the empty answer).
  for (const auto& a : accounts) CHECK(f.sandbox().calls(a.appid, sandbox::kEndpointUserGet) == 3);
  *stats = f.worker().stats();
  return highest;
}

}  // namespace

TEST_CASE("what waits for delivery stays within max_undelivered_bytes and every job completes",
          "[worker][integration][kafka]") {
  // 12 walks of 2 full pages: 8 MB of pages, within what the embedded broker keeps. The
  // smallest budget: any page waiting for delivery holds back the next call; and each page
  // waits 200 ms in the producer before it is sent, so the calls that follow find it waiting
  // whatever the machine's speed.
  const int64_t budget = 1;
  WorkerStats stats;
  const int64_t highest = highestUndeliveredOfFleet("wxbudget", 12, [&](WorkerOptions& o) {
    o.max_undelivered_bytes = budget;
    o.properties["linger.ms"] = "200";
    o.max_in_flight = 8;
  }, &stats);
  INFO("highest undelivered: " << highest << " bytes; waits: " << stats.budget_waits);
  CHECK(highest > 0);
  // At most the budget plus the pages of the calls already under way when it was reached (one
  // page of about 330 KB each).
  CHECK(highest <= budget + 8 * 400 * 1024);
  CHECK(stats.budget_waits > 0);       // the budget was reached and calls waited
  CHECK(stats.undelivered_bytes == 0);  // everything settled
}

TEST_CASE("calls reserve a full page where one is coming: many first calls or walks ending "
          "together do not push what waits past max_undelivered_bytes",
          "[worker][integration][kafka]") {
  // 24 walks. The first calls all start at once, and the small last answers come in a burst: a
  // call reserves what its walk's previous page took (a first call, a full page until first
  // pages say otherwise), so neither lets more calls go than the budget holds.
  const int64_t budget = 2 << 20;  // about 6 full pages
  WorkerStats stats;
  const int64_t highest = highestUndeliveredOfFleet("wxburst", 24, [&](WorkerOptions& o) {
    o.max_undelivered_bytes = budget;
    o.properties["linger.ms"] = "100";
    o.max_in_flight = 24;
  }, &stats);
  INFO("highest undelivered: " << highest << " bytes");
  CHECK(highest > budget / 2);  // the budget was what held the calls
  // At most one page past the budget (the call admitted just under it), never the 24 pages of
  // every call in flight.
  CHECK(highest <= budget + 400 * 1024);
}

TEST_CASE("a pages topic that does not exist makes the worker unready until it is created, and "
          "no page is lost",
          "[worker][kafka]") {
  // Apache Kafka only: the embedded broker creates any topic it is asked for. The test broker
  // runs with auto.create.topics.enable=false, as a production cluster should.
  const auto account = merchant("wxnotopic", 25000);  // 3 pages
  WorkerFixture f({account});
  WorkerOptions o = f.options();
  o.topics.pages = testing::uniqueName("pages-not-yet");
  f.startWorker(o);
  auto problemsNow = [&] { return readinessProblems(f.worker().stats()); };
  auto names = [&](const std::vector<std::string>& problems) {
    for (const auto& p : problems) {
      if (p.find("topic " + o.topics.pages + " cannot be written") != std::string::npos) return true;
    }
    return false;
  };
  // Known at start: the worker looks its output topics up before it takes jobs.
  CHECK(names(problemsNow()));
  f.enqueueJob("j-notopic", account.appid);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (f.eventsOf("j-notopic").empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE_FALSE(f.eventsOf("j-notopic").empty());  // started: the walk runs, its page waits
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(names(problemsNow()));
  int errors = 0;
  for (const auto& line : f.logLines()) {
    if (line.find("topic cannot be written") != std::string::npos &&
        line.find("\"level\":\"error\"") != std::string::npos &&
        line.find(o.topics.pages) != std::string::npos) {
      ++errors;
    }
  }
  CHECK(errors == 1);  // logged once, not once per attempt
  // The walk waits for its first page: one call, not a walk racing ahead of what it cannot write.
  CHECK(f.sandbox().calls(account.appid, sandbox::kEndpointUserGet) <= 2);

  REQUIRE(f.kafka().createTopic(o.topics.pages, 4).ok());
  f.waitForStatus({"j-notopic"}, {"completed", "failed"}, std::chrono::seconds(90));
  auto events = f.eventsOf("j-notopic");
  CHECK(statusCount(events, "completed") == 1);
  CHECK(statusCount(events, "failed") == 0);
  auto pages = readTopic(f.bootstrapServers(), o.topics.pages, std::chrono::seconds(30));
  REQUIRE(pages.ok());
  WorkerFixture::requireFollowersIn(*pages, "j-notopic", account.appid, account.followers);
  CHECK_FALSE(names(problemsNow()));
  bool again = false;
  for (const auto& line : f.logLines()) {
    again = again || (line.find("topic writable again") != std::string::npos &&
                      line.find(o.topics.pages) != std::string::npos);
  }
  CHECK(again);
  // Cost: the 4 calls of the walk (3 pages and the count-0 answer), none repeated.
  CHECK(f.sandbox().calls(account.appid, sandbox::kEndpointUserGet) == 4);
}
