// Hostile jobs through a running worker: every malformed job is rejected and dead-lettered with
// its bytes unchanged, the worker goes on with the good jobs behind it, and the sandbox's call
// log shows that every request WeChat received carried a cursor the walk produced.
#include <catch2/catch.hpp>

#include "support/worker_fixture.h"

using namespace fanpull;
using testing::merchant;
using testing::WorkerFixture;

namespace {

std::vector<std::string> hostileJobs() {
  std::vector<std::string> out = {
      "",
      "not json at all",
      "\xff\xfe{\"job_id\": \"j-utf\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j-\xc3\x28\", \"appid\": \"wxhostile\"}",  // invalid UTF-8 in a value
      "[\"j-array\", \"wxhostile\"]",
      "null",
      "42",
      "{}",
      "{\"job_id\": 7, \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j-types\", \"appid\": [\"wxhostile\"]}",
      "{\"job_id\": \"j-types2\", \"appid\": \"wxhostile\", \"next_openid\": {\"o\": 1}}",
      "{\"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j-noapp\"}",
      "{\"job_id\": \"\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j/../etc\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j id\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j\\u0000x\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"" + std::string(129, 'j') + "\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j-app\", \"appid\": \"wxhostile&access_token=stolen\"}",
      "{\"job_id\": \"j-dup\", \"job_id\": \"j-dup2\", \"appid\": \"wxhostile\"}",
      "{\"job_id\": \"j-trailing\", \"appid\": \"wxhostile\"} trailing",
  };
  // Cursors that would change the request if they were pasted into a URL.
  for (const char* cursor : {"o&access_token=x", "o#frag", "o%26x", "o x", "o\\r\\nHost: evil",
                             "&next_openid=", "o?x=1", "o/../x"}) {
    out.push_back("{\"job_id\": \"j-cursor\", \"appid\": \"wxhostile\", \"next_openid\": \"" +
                  std::string(cursor) + "\"}");
  }
  // Deeply nested and huge.
  out.push_back(std::string(20000, '[') + std::string(20000, ']'));
  out.push_back("{\"job_id\": \"j-deep\", \"appid\": \"wxhostile\", \"x\": " +
                std::string(5000, '[') + std::string(5000, ']') + "}");
  out.push_back("{\"job_id\": \"j-huge\", \"appid\": \"wxhostile\", \"pad\": \"" +
                std::string(200 * 1024, 'a') + "\"}");
  return out;
}

}  // namespace

TEST_CASE("a corpus of hostile jobs through a running worker is rejected and no request is altered",
          "[worker][integration][kafka]") {
  auto account = merchant("wxhostile", 23000);
  WorkerFixture f({account});
  f.startWorker();
  const auto corpus = hostileJobs();
  for (const auto& bytes : corpus) f.enqueue("wxhostile", bytes);
  // Good jobs behind the corpus: from the start, and from a cursor the walk itself produces.
  f.enqueueJob("j-good", "wxhostile");
  f.enqueueJob("j-good-cursor", "wxhostile", sandbox::sandboxOpenId("wxhostile", 9999));
  f.waitForStatus({"j-good", "j-good-cursor"}, {"completed"}, std::chrono::seconds(60));
  f.requireFollowers("j-good", "wxhostile", 23000);
  f.requireFollowers("j-good-cursor", "wxhostile", 23000, 10000);

  // Every hostile job is dead-lettered once, bytes unchanged, as bad_job.
  auto dead = f.deadLetters();
  std::multiset<std::string> expected(corpus.begin(), corpus.end());
  std::multiset<std::string> got;
  for (const auto& d : dead) {
    got.insert(d.value);
    INFO("dead letter of " << d.value.substr(0, 120));
    CHECK(d.header(kHeaderErrorClass) == "bad_job");
    CHECK(!d.header(kHeaderErrorMessage).empty());
  }
  CHECK(got == expected);
  int rejected = 0;
  for (const auto& e : f.events()) rejected += e["status"] == "rejected" ? 1 : 0;
  CHECK(rejected == static_cast<int>(corpus.size()));

  // WeChat saw only the good jobs' walks: each cursor empty or an OpenID of the account, and
  // never a call for any other appid.
  std::set<std::string> followers;
  for (int64_t i = 0; i < account.followers; ++i) {
    followers.insert(sandbox::sandboxOpenId("wxhostile", i));
  }
  auto calls = f.sandbox().callLog();
  REQUIRE(!calls.empty());
  for (const auto& c : calls) {
    if (c.endpoint != sandbox::kEndpointUserGet) continue;
    INFO("call with cursor \"" << c.next_openid << "\"");
    CHECK(c.appid == "wxhostile");
    CHECK((c.next_openid.empty() || followers.count(c.next_openid) == 1));
    CHECK(c.errcode == 0);
  }
  // Both walks and their ends: 3 + 1 calls from the start, 2 + 1 from the cursor.
  CHECK(f.sandbox().calls("wxhostile", sandbox::kEndpointUserGet) == 7);
}

TEST_CASE("a job too large for the dead-letter producer is cut to fit and rejected once, "
          "also across a restart",
          "[worker][integration][kafka]") {
  auto account = merchant("wxhuge", 100);
  WorkerFixture f({account});
  auto options = f.options();
  options.properties["message.max.bytes"] = "200000";  // the worker writes at most 200 KB
  f.startWorker(options);
  // 500 KB of job: the consumer takes it, the worker's producer cannot write it back as it is.
  const std::string huge = R"({"job_id": "j-huge", "appid": "wxhuge", "next_openid": ")" +
                           std::string(500000, 'x') + R"("})";
  f.enqueue("wxhuge", huge);
  f.enqueueJob("j-after-huge", "wxhuge");
  f.waitForStatus({"j-after-huge"}, {"completed"});
  auto rejectedEvents = [&f] {
    int n = 0;
    for (const auto& e : f.events()) n += e["status"] == "rejected" ? 1 : 0;
    return n;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (rejectedEvents() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(rejectedEvents() == 1);
  auto dead = f.deadLetters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].value.size() < 200000);
  CHECK(dead[0].value.size() > 150000);  // as much as fits, not an empty letter
  CHECK(huge.compare(0, dead[0].value.size(), dead[0].value) == 0);
  CHECK(dead[0].header(kHeaderOriginalSize) == std::to_string(huge.size()));
  CHECK(dead[0].header(kHeaderErrorClass) == "bad_job");
  CHECK(f.worker().stats().produce_failures == 0);

  // Its offset was committed with the rest: a restart neither rejects it again nor writes a
  // second dead letter, and the good job behind it is not walked again.
  f.stopWorker();
  f.startWorker(options);
  f.enqueueJob("j-after-restart", "wxhuge");
  f.waitForStatus({"j-after-restart"}, {"completed"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(rejectedEvents() == 1);
  CHECK(f.deadLetters().size() == 1);
  // Two calls per good job (100 followers, then the empty answer that ends the walk).
  CHECK(f.sandbox().calls("wxhuge", sandbox::kEndpointUserGet) == 4);
}
