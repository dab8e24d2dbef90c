// Reassembling a job from the pages topic as a downstream consumer does: PageCollector on page
// messages (order, duplicates, gaps, parts, contradictions), and `fanpull collect` against the
// embedded broker.
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/cli.h"
#include "cli/page_collector.h"
#include "core/page_message.h"
#include "kafka/embedded_broker.h"
#include "kafka/producer.h"
#include "support/temp_dir.h"
#include "worker/messages.h"

using namespace std::chrono_literals;
using fanpull::FollowerPage;
using fanpull::PageCollector;
using fanpull::PageIdentity;
using fanpull::testing::TempDir;
using Added = fanpull::PageCollector::Added;
using Status = fanpull::PageCollector::Status;
namespace kafka = fanpull::kafka;

namespace {

const std::string kJob = "j-collect-1";
const std::string kAppid = "wxcollect0001";

// OpenIDs [from, from + n) of a fake merchant.
std::vector<std::string> ids(int from, int n) {
  std::vector<std::string> out;
  for (int i = from; i < from + n; ++i) out.push_back("oFakeOpenId_" + std::to_string(i));
  return out;
}

std::vector<std::string> concat(std::vector<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

FollowerPage followerPage(const std::vector<std::string>& openids, int64_t total) {
  FollowerPage page;
  for (const auto& id : openids) page.add(id);
  page.count = static_cast<int64_t>(openids.size());
  page.total = total;
  page.has_data = !openids.empty();
  page.next_openid = openids.empty() ? "" : openids.back();
  return page;
}

// A page message as the worker writes it: value and headers.
struct Message {
  std::string value;
  kafka::Headers headers;
};

Message pageMessage(int64_t seq, const std::vector<std::string>& openids, bool last,
                    const std::string& job = kJob, const std::string& appid = kAppid,
                    int64_t total = 100) {
  PageIdentity id{job, appid, seq, last};
  return {fanpull::encodePageMessage(id, followerPage(openids, total)),
          {{fanpull::kHeaderJobId, job}, {fanpull::kHeaderSeq, std::to_string(seq)}}};
}

// The page split into parts of at most max_bytes, as the worker writes a large page.
std::vector<Message> splitPageMessages(int64_t seq, const std::vector<std::string>& openids,
                                       bool last, size_t max_bytes) {
  PageIdentity id{kJob, kAppid, seq, last};
  auto parts = fanpull::encodePageMessages(id, followerPage(openids, 100), max_bytes);
  REQUIRE(parts.ok());
  std::vector<Message> out;
  for (size_t i = 0; i < parts->size(); ++i) {
    out.push_back({(*parts)[i],
                   {{fanpull::kHeaderJobId, kJob},
                    {fanpull::kHeaderSeq, std::to_string(seq)},
                    {fanpull::kHeaderPart, std::to_string(i)}}});
  }
  return out;
}

Added feed(PageCollector& c, const Message& m) { return c.add(m.value, m.headers); }

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PageCollector

TEST_CASE("pages fed in order make a complete job with every OpenID in order", "[worker][unit]") {
  PageCollector c(kJob);
  CHECK(c.status() == Status::kIncomplete);
  CHECK(feed(c, pageMessage(0, ids(0, 3), false)) == Added::kNew);
  CHECK(feed(c, pageMessage(1, ids(3, 3), false)) == Added::kNew);
  CHECK_FALSE(c.complete());
  CHECK(feed(c, pageMessage(2, ids(6, 2), true, kJob, kAppid, 8)) == Added::kNew);
  CHECK(c.complete());
  CHECK(c.problems().empty());
  CHECK(c.openids() == ids(0, 8));
  CHECK(c.pages() == 3);
  CHECK(c.messages() == 3);
  CHECK(c.openidCount() == 8);
  CHECK(c.duplicates() == 0);
  CHECK(c.appid() == kAppid);
  CHECK(c.lastSeq() == std::optional<int64_t>(2));
  CHECK(c.total() == std::optional<int64_t>(8));
}

TEST_CASE("pages arriving out of order are put back in seq order", "[worker][unit]") {
  PageCollector c(kJob);
  feed(c, pageMessage(2, ids(6, 2), true));
  CHECK(c.status() == Status::kIncomplete);
  CHECK(c.missingSeqs() == std::vector<int64_t>{0, 1});
  feed(c, pageMessage(0, ids(0, 3), false));
  feed(c, pageMessage(1, ids(3, 3), false));
  CHECK(c.complete());
  CHECK(c.openids() == ids(0, 8));
}

TEST_CASE("identical repeats of a page are dropped and counted", "[worker][unit]") {
  PageCollector c(kJob);
  feed(c, pageMessage(0, ids(0, 3), false));
  CHECK(feed(c, pageMessage(0, ids(0, 3), false)) == Added::kDuplicate);
  feed(c, pageMessage(1, ids(3, 1), true));
  CHECK(feed(c, pageMessage(1, ids(3, 1), true)) == Added::kDuplicate);
  CHECK(feed(c, pageMessage(0, ids(0, 3), false)) == Added::kDuplicate);
  CHECK(c.complete());
  CHECK(c.duplicates() == 3);
  CHECK(c.messages() == 2);
  CHECK(c.openids() == ids(0, 4));
}

TEST_CASE("a repeated identity with different bytes makes the job inconsistent", "[worker][unit]") {
  PageCollector c(kJob);
  feed(c, pageMessage(0, ids(0, 3), false));
  feed(c, pageMessage(1, ids(3, 3), true));
  REQUIRE(c.complete());
  CHECK(feed(c, pageMessage(1, ids(30, 3), true)) == Added::kRejected);
  CHECK(c.status() == Status::kInconsistent);
  CHECK_FALSE(c.complete());
  CHECK(mentions(c.problems(), "seq 1"));
  CHECK(mentions(c.problems(), "different message with the same identity"));
  CHECK(c.openids() == ids(0, 6));  // the first one stays
}

TEST_CASE("a gap leaves the job incomplete, naming the missing seq", "[worker][unit]") {
  PageCollector c(kJob);
  feed(c, pageMessage(0, ids(0, 3), false));
  feed(c, pageMessage(2, ids(6, 3), false));
  feed(c, pageMessage(3, ids(9, 3), true));
  CHECK(c.status() == Status::kIncomplete);
  CHECK(c.missingSeqs() == std::vector<int64_t>{1});
  CHECK(mentions(c.problems(), "missing seq 1"));
  CHECK(c.inconsistencies().empty());
  feed(c, pageMessage(1, ids(3, 3), false));
  CHECK(c.complete());
  CHECK(c.openids() == ids(0, 12));
}

TEST_CASE("without the last page a job is incomplete", "[worker][unit]") {
  PageCollector c(kJob);
  CHECK(mentions(c.problems(), "no page of this job yet"));
  feed(c, pageMessage(0, ids(0, 3), false));
  CHECK(c.status() == Status::kIncomplete);
  CHECK(mentions(c.problems(), "no page marked last yet (highest seq 0)"));
}

TEST_CASE("split pages are complete only with every part, read in part order", "[worker][unit]") {
  auto big = ids(100, 40);
  auto parts = splitPageMessages(1, big, false, 400);
  REQUIRE(parts.size() >= 3);
  PageCollector c(kJob);
  feed(c, pageMessage(0, ids(0, 5), false));
  feed(c, pageMessage(2, ids(200, 2), true));
  for (size_t i = parts.size(); i-- > 1;) CHECK(feed(c, parts[i]) == Added::kNew);
  CHECK(c.status() == Status::kIncomplete);
  CHECK(c.missingSeqs().empty());
  CHECK(mentions(c.problems(),
                 "missing seq 1 part 0 of " + std::to_string(parts.size())));
  CHECK(feed(c, parts[0]) == Added::kNew);
  CHECK(feed(c, parts[1]) == Added::kDuplicate);
  CHECK(c.complete());
  CHECK(c.pages() == 3);
  CHECK(c.messages() == 2 + parts.size());
  CHECK(c.openids() == concat({ids(0, 5), big, ids(200, 2)}));
}

TEST_CASE("a job with no followers is one count-0 page marked last", "[worker][unit]") {
  PageCollector c(kJob);
  CHECK(feed(c, pageMessage(0, {}, true, kJob, kAppid, 0)) == Added::kNew);
  CHECK(c.complete());
  CHECK(c.openids().empty());
  CHECK(c.pages() == 1);
  CHECK(c.total() == std::optional<int64_t>(0));
}

TEST_CASE("pages of other jobs are ignored, by header or by job_id", "[worker][unit]") {
  PageCollector c(kJob);
  CHECK(feed(c, pageMessage(0, ids(0, 1), true, "j-other")) == Added::kOtherJob);
  Message no_header = pageMessage(0, ids(0, 1), true, "j-other");
  no_header.headers.clear();
  CHECK(feed(c, no_header) == Added::kOtherJob);
  CHECK(c.add("not json at all") == Added::kOtherJob);
  // This job's page without headers is recognised by its job_id field.
  Message mine = pageMessage(0, ids(0, 1), true);
  mine.headers.clear();
  CHECK(feed(c, mine) == Added::kNew);
  CHECK(c.complete());
  CHECK(c.messages() == 1);
}

TEST_CASE("contradicting pages make the job inconsistent and say why", "[worker][unit]") {
  SECTION("another appid") {
    PageCollector c(kJob);
    feed(c, pageMessage(0, ids(0, 3), false));
    CHECK(feed(c, pageMessage(1, ids(3, 3), true, kJob, "wxsomeoneelse")) == Added::kRejected);
    CHECK(c.status() == Status::kInconsistent);
    CHECK(mentions(c.problems(), "appid wxsomeoneelse"));
  }
  SECTION("count disagreeing with the OpenIDs") {
    PageCollector c(kJob);
    std::string value = R"({"job_id":")" + kJob + R"(","appid":")" + kAppid +
                        R"(","seq":0,"total":5,"count":3,"openids":["oA","oB"],)"
                        R"("next_openid":"","last":true})";
    CHECK(c.add(value, {{fanpull::kHeaderJobId, kJob}}, "partition 1 offset 7") ==
          Added::kRejected);
    CHECK(c.status() == Status::kInconsistent);
    CHECK(mentions(c.problems(), "(partition 1 offset 7): count 3 but 2 openids"));
  }
  SECTION("a page after the last one") {
    PageCollector c(kJob);
    feed(c, pageMessage(0, ids(0, 3), true));
    CHECK(feed(c, pageMessage(1, ids(3, 3), false)) == Added::kRejected);
    CHECK(mentions(c.problems(), "after the last page"));
  }
  SECTION("a fanpull-job-id header disagreeing with the job_id field") {
    PageCollector c(kJob);
    Message m = pageMessage(0, ids(0, 3), true, "j-other");
    m.headers = {{fanpull::kHeaderJobId, kJob}};
    CHECK(feed(c, m) == Added::kRejected);
    CHECK(mentions(c.problems(), "another job_id field"));
  }
}

// ---------------------------------------------------------------------------------------------
// fanpull collect

namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run finish(Poco::ProcessHandle& ph, Poco::Pipe& out_pipe, Poco::Pipe& err_pipe) {
  Poco::PipeInputStream out(out_pipe), err(err_pipe);
  std::string o, e;
  Poco::StreamCopier::copyToString(out, o);
  Poco::StreamCopier::copyToString(err, e);
  return {ph.wait(), o, e};
}

Run run(const std::vector<std::string>& args) {
  Poco::Pipe out_pipe, err_pipe;
  Poco::ProcessHandle ph =
      Poco::Process::launch(FANPULL_BINARY, args, nullptr, &out_pipe, &err_pipe);
  return finish(ph, out_pipe, err_pipe);
}

std::string uniqueTopic(const std::string& what) {
  static std::atomic<int> counter{0};
  return "test.collect." + what + "." + std::to_string(::getpid()) + "." +
         std::to_string(++counter);
}

const kafka::LogCallback kQuiet = [](int, const std::string&, const std::string&) {};

struct Cluster {
  std::unique_ptr<kafka::EmbeddedBroker> broker;
  std::unique_ptr<kafka::Producer> producer;
  std::string pages = uniqueTopic("pages");
  TempDir dir;
  std::string config;

  Cluster() {
    auto b = kafka::EmbeddedBroker::start(1);
    REQUIRE(b.ok());
    broker = std::move(*b);
    kafka::ProducerOptions options;
    options.bootstrap_servers = broker->bootstrapServers();
    options.log = kQuiet;
    auto p = kafka::Producer::create(options);
    REQUIRE(p.ok());
    producer = std::move(*p);
    dir.write("tenants.json", R"({"tenants": []})");
    nlohmann::json c = {
        {"kafka",
         {{"bootstrap_servers", broker->bootstrapServers()}, {"topics", {{"pages", pages}}}}},
        {"tenants_file", "tenants.json"}};
    config = dir.write("config.json", c.dump());
  }

  void produce(const std::vector<Message>& messages, const std::string& key = kAppid) {
    for (const auto& m : messages) {
      REQUIRE(producer->produce(pages, key, m.value, m.headers).ok());
    }
    REQUIRE(producer->flush(10s).ok());
  }
};

std::vector<std::string> fileLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("collect reassembles a job from out-of-order pages with duplicates and writes --out",
          "[worker][integration]") {
  Cluster cluster;
  auto split = splitPageMessages(1, ids(10, 30), false, 400);
  REQUIRE(split.size() >= 2);
  std::vector<Message> messages = {pageMessage(0, ids(0, 2), true, "j-other", "wxother"),
                                   pageMessage(2, ids(40, 5), true, kJob, kAppid, 45),
                                   pageMessage(0, ids(0, 10), false)};
  messages.push_back(split[1]);
  messages.push_back(pageMessage(0, ids(0, 10), false));  // a redelivery
  messages.push_back(split[0]);
  for (size_t i = 2; i < split.size(); ++i) messages.push_back(split[i]);
  cluster.produce(messages);
  cluster.produce({pageMessage(2, ids(40, 5), true, kJob, kAppid, 45)}, "another-key");

  const std::string out_file = cluster.dir.file("openids.txt");
  Run r = run({"collect", "--config", cluster.config, "--job-id", kJob, "--out", out_file,
               "--timeout", "30"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("job: " + kJob + "\n") != std::string::npos);
  CHECK(r.out.find("appid: " + kAppid + "\n") != std::string::npos);
  CHECK(r.out.find("pages: 3 (") != std::string::npos);
  CHECK(r.out.find("openids: 45\n") != std::string::npos);
  CHECK(r.out.find("duplicates dropped: 2\n") != std::string::npos);
  CHECK(r.out.find("total: 45\n") != std::string::npos);
  CHECK(r.out.find("status: complete\n") != std::string::npos);
  CHECK(r.out.find("problem:") == std::string::npos);
  CHECK(fileLines(out_file) == ids(0, 45));
  // Only the file itself: the temporary file was renamed.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(cluster.dir.path())) {
    (void)e;
    ++files;
  }
  CHECK(files == 3);  // tenants.json, config.json, openids.txt
}

TEST_CASE("collect names a missing seq, writes nothing and exits 1", "[worker][integration]") {
  Cluster cluster;
  cluster.produce({pageMessage(0, ids(0, 10), false), pageMessage(2, ids(20, 10), false),
                   pageMessage(3, ids(30, 1), true)});
  const std::string out_file = cluster.dir.file("openids.txt");
  Run r = run({"collect", "--config", cluster.config, "--job-id", kJob, "--out", out_file,
               "--timeout", "2"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("status: incomplete\n") != std::string::npos);
  CHECK(r.out.find("problem: missing seq 1\n") != std::string::npos);
  CHECK(r.out.find("problem: timed out after 2 s") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out_file));
}

TEST_CASE("collect reports a differing repeat of a page as inconsistent and exits 1",
          "[worker][integration]") {
  Cluster cluster;
  cluster.produce({pageMessage(0, ids(0, 10), false), pageMessage(1, ids(10, 10), true),
                   pageMessage(0, ids(50, 10), false)});
  Run r = run({"collect", "--config", cluster.config, "--job-id", kJob, "--timeout", "20"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("status: inconsistent\n") != std::string::npos);
  CHECK(r.out.find("seq 0 (partition ") != std::string::npos);
}

TEST_CASE("collect waits for the pages still to come until the job is complete",
          "[worker][integration]") {
  Cluster cluster;
  cluster.produce({pageMessage(0, ids(0, 10), false)});
  Poco::Pipe out_pipe, err_pipe;
  Poco::ProcessHandle ph = Poco::Process::launch(
      FANPULL_BINARY, {"collect", "--config", cluster.config, "--job-id", kJob, "--timeout", "30"},
      nullptr, &out_pipe, &err_pipe);
  std::this_thread::sleep_for(1500ms);
  cluster.produce({pageMessage(1, ids(10, 4), true)});
  Run r = finish(ph, out_pipe, err_pipe);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("openids: 14\n") != std::string::npos);
  CHECK(r.out.find("status: complete\n") != std::string::npos);
}

TEST_CASE("collect before any page times out as incomplete; bad flags and config exit 2",
          "[worker][integration]") {
  Cluster cluster;
  Run none = run({"collect", "--config", cluster.config, "--job-id", kJob, "--timeout", "1"});
  INFO(none.out << none.err);
  CHECK(none.code == 1);
  CHECK(none.out.find("status: incomplete\n") != std::string::npos);

  CHECK(run({"collect", "--config", cluster.config, "--job-id", "bad id"}).code == 2);
  CHECK(run({"collect", "--config", cluster.config, "--job-id", kJob, "--timeout", "0"}).code == 2);
  const std::string broken = cluster.dir.write("broken.json", R"({"kafka": {}})");
  Run bad_config = run({"collect", "--config", broken, "--job-id", kJob});
  CHECK(bad_config.code == 2);
  CHECK(bad_config.err.find(broken + ": kafka.bootstrap_servers: required") != std::string::npos);
}

TEST_CASE("collect takes -b, -X and -t like Kafka's tools, without a config file",
          "[worker][integration]") {
  Cluster cluster;
  cluster.produce({pageMessage(0, ids(0, 10), false), pageMessage(1, ids(10, 3), true)});
  Run r = run({"collect", "-b", cluster.broker->bootstrapServers(), "-t", cluster.pages, "-X",
               "client.id=fanpull-collect-test", "--job-id", kJob, "--timeout", "20"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("openids: 13\n") != std::string::npos);
  CHECK(r.out.find("status: complete\n") != std::string::npos);

  Run unknown = run({"collect", "-b", cluster.broker->bootstrapServers(), "-t", cluster.pages,
                     "-X", "fetch.wait.max.msec=5", "--job-id", kJob});
  CHECK(unknown.code == 2);
  CHECK(unknown.err.find("kafka property \"fetch.wait.max.msec\"") != std::string::npos);
  Run nowhere = run({"collect", "--job-id", kJob});
  CHECK(nowhere.code == 2);
  CHECK(nowhere.err.find("-b/--bootstrap-server") != std::string::npos);
}

TEST_CASE("collect --help explains every flag", "[worker][unit]") {
  std::ostringstream out, err;
  REQUIRE(fanpull::runCli({"collect", "--help"}, out, err) == 0);
  for (const char* text : {"--config FILE", "-b, --bootstrap-server HOST:PORT", "-X, --property KEY=VALUE ...",
                           "-t, --topic TOPIC", "--job-id ID", "--out FILE", "--timeout SECONDS",
                           "incomplete", "inconsistent"}) {
    INFO(text);
    CHECK(out.str().find(text) != std::string::npos);
  }
  CHECK(out.str().find("not yet available") == std::string::npos);
}
