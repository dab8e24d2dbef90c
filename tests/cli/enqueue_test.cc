// `fanpull enqueue` as a job producer runs it: jobs from flags or JSON lines land in the jobs
// topic keyed by appid, where it says; a bad job or config produces nothing and exits 2.
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/cli.h"
#include "kafka/embedded_broker.h"
#include "support/temp_dir.h"
#include "support/topic_reader.h"
#include "worker/job.h"

using fanpull::Job;
using fanpull::testing::readTopic;
using fanpull::testing::TempDir;
namespace kafka = fanpull::kafka;

namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

// Runs the fanpull binary; `input`, when given, is its whole stdin.
Run run(const std::vector<std::string>& args, const std::optional<std::string>& input = {}) {
  Poco::Pipe in_pipe, out_pipe, err_pipe;
  Poco::ProcessHandle ph = Poco::Process::launch(FANPULL_BINARY, args, input ? &in_pipe : nullptr,
                                                 &out_pipe, &err_pipe);
  if (input) {
    Poco::PipeOutputStream in(in_pipe);
    in << *input;
    in.close();
  }
  Poco::PipeInputStream out(out_pipe), err(err_pipe);
  std::string o, e;
  Poco::StreamCopier::copyToString(out, o);
  Poco::StreamCopier::copyToString(err, e);
  return {ph.wait(), o, e};
}

std::string uniqueTopic(const std::string& what) {
  static std::atomic<int> counter{0};
  return "test.enqueue." + what + "." + std::to_string(::getpid()) + "." +
         std::to_string(++counter);
}

std::unique_ptr<kafka::EmbeddedBroker> startBroker() {
  auto broker = kafka::EmbeddedBroker::start(1);
  REQUIRE(broker.ok());
  return std::move(*broker);
}

// A worker config in `dir` for this broker and jobs topic.
std::string writeConfig(const TempDir& dir, const std::string& bootstrap, const std::string& jobs) {
  dir.write("tenants.json", R"({"tenants": []})");
  nlohmann::json config = {
      {"kafka", {{"bootstrap_servers", bootstrap}, {"topics", {{"jobs", jobs}}}}},
      {"tenants_file", "tenants.json"}};
  return dir.write("config.json", config.dump());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "JOB_ID APPID partition P offset O"
struct Printed {
  std::string job_id, appid;
  int32_t partition = -1;
  int64_t offset = -1;
};
Printed parsePrinted(const std::string& line) {
  Printed p;
  std::string word_partition, word_offset;
  std::istringstream in(line);
  in >> p.job_id >> p.appid >> word_partition >> p.partition >> word_offset >> p.offset;
  CHECK(word_partition == "partition");
  CHECK(word_offset == "offset");
  return p;
}

}  // namespace

TEST_CASE("enqueue with flags produces one job keyed by appid and prints where it went",
          "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs");
  const std::string config = writeConfig(dir, broker->bootstrapServers(), jobs);

  Run r = run({"enqueue", "--config", config, "--appid", "wx1234567890abcdef", "--job-id",
               "j-2026-11-27-0001", "--next-openid", "oCursor_1"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto printed = lines(r.out);
  REQUIRE(printed.size() == 1);
  Printed p = parsePrinted(printed[0]);
  CHECK(p.job_id == "j-2026-11-27-0001");
  CHECK(p.appid == "wx1234567890abcdef");

  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  REQUIRE(read->size() == 1);
  const auto& m = read->front();
  CHECK(m.key == std::optional<std::string>("wx1234567890abcdef"));
  CHECK(m.partition == p.partition);
  CHECK(m.offset == p.offset);
  auto job = fanpull::parseJob(m.value);
  REQUIRE(job.ok());
  CHECK(*job == Job{"j-2026-11-27-0001", "wx1234567890abcdef", "oCursor_1"});
}

TEST_CASE("enqueue takes -b, -X and -t like Kafka's tools, without a config file",
          "[worker][integration]") {
  auto broker = startBroker();
  const std::string jobs = uniqueTopic("jobs-flags");
  Run r = run({"enqueue", "-b", broker->bootstrapServers(), "-X", "client.id=fanpull-enqueue-test",
               "-X", "linger.ms=1", "-t", jobs, "--appid", "wx1234567890abcdef", "--job-id",
               "j-flags-1"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  REQUIRE(read->size() == 1);
  CHECK(read->front().key == std::optional<std::string>("wx1234567890abcdef"));
  CHECK(fanpull::parseJob(read->front().value)->job_id == "j-flags-1");

  // The long forms and -bVALUE too.
  Run longer = run({"enqueue", "--bootstrap-server=" + broker->bootstrapServers(), "--topic", jobs,
                    "--property", "acks=all", "--appid", "wx1234567890abcdef", "--job-id",
                    "j-flags-2"});
  INFO(longer.err);
  CHECK(longer.code == 0);
  Run glued = run({"enqueue", "-b" + broker->bootstrapServers(), "-t" + jobs, "--appid",
                   "wx1234567890abcdef", "--job-id", "j-flags-3"});
  CHECK(glued.code == 0);
  read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  CHECK(read->size() == 3);

  // Every configuration mistake exits 2 and produces nothing.
  Run unknown = run({"enqueue", "-b", broker->bootstrapServers(), "-t", jobs, "-X",
                     "sesion.timeout.ms=6000", "--appid", "wx1234567890abcdef"});
  CHECK(unknown.code == 2);
  CHECK(unknown.err.find("kafka property \"sesion.timeout.ms\"") != std::string::npos);
  Run no_equals = run({"enqueue", "-b", broker->bootstrapServers(), "-t", jobs, "-X", "acks",
                       "--appid", "wx1234567890abcdef"});
  CHECK(no_equals.code == 2);
  CHECK(no_equals.err.find("-X acks: expected KEY=VALUE") != std::string::npos);
  Run nowhere = run({"enqueue", "-t", jobs, "--appid", "wx1234567890abcdef"});
  CHECK(nowhere.code == 2);
  CHECK(nowhere.err.find("-b/--bootstrap-server HOST:PORT or --config FILE is required") !=
        std::string::npos);
  Run bad_short = run({"enqueue", "-q", "--appid", "wx1234567890abcdef"});
  CHECK(bad_short.code == 2);
  CHECK(bad_short.err.find("unknown option -q") != std::string::npos);
  read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  CHECK(read->size() == 3);
}

TEST_CASE("-b and -X on top of a config file win over its kafka section", "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs-override");
  // The config points at a port where nothing listens; -b says where the broker is.
  const std::string config = writeConfig(dir, "127.0.0.1:1", jobs);
  Run r = run({"enqueue", "--config", config, "-b", broker->bootstrapServers(), "--appid",
               "wx1234567890abcdef", "--job-id", "j-override"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  CHECK(read->size() == 1);
}

TEST_CASE("enqueue without --job-id generates a valid job id", "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs");
  const std::string config = writeConfig(dir, broker->bootstrapServers(), jobs);

  Run r = run({"enqueue", "--config", config, "--appid", "wxgenerated"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto printed = lines(r.out);
  REQUIRE(printed.size() == 1);
  Printed p = parsePrinted(printed[0]);
  CHECK(p.job_id.rfind("j-", 0) == 0);
  CHECK(fanpull::validateJob(Job{p.job_id, "wxgenerated", ""}).ok());

  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  REQUIRE(read->size() == 1);
  auto job = fanpull::parseJob(read->front().value);
  REQUIRE(job.ok());
  CHECK(job->job_id == p.job_id);
  CHECK(job->next_openid.empty());
}

TEST_CASE("enqueue - produces every JSON line of stdin, keyed by appid, in input order",
          "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs");
  const std::string config = writeConfig(dir, broker->bootstrapServers(), jobs);

  const std::string input =
      R"({"job_id": "j-a-1", "appid": "wxaaaa"})"
      "\n\n"
      R"({"job_id": "j-b-1", "appid": "wxbbbb", "next_openid": "oStart"})"
      "\r\n"
      R"({"job_id": "j-a-2", "appid": "wxaaaa", "next_openid": null, "note": "ignored"})"
      "\n";
  Run r = run({"enqueue", "--config", config, "-"}, input);
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto printed = lines(r.out);
  REQUIRE(printed.size() == 3);
  std::vector<Printed> p;
  for (const auto& line : printed) p.push_back(parsePrinted(line));
  CHECK(p[0].job_id == "j-a-1");
  CHECK(p[1].job_id == "j-b-1");
  CHECK(p[2].job_id == "j-a-2");
  CHECK(p[0].partition == p[2].partition);  // one appid, one partition, in order
  CHECK(p[0].offset < p[2].offset);

  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  REQUIRE(read->size() == 3);
  std::map<std::string, Job> by_id;
  for (const auto& m : *read) {
    auto job = fanpull::parseJob(m.value);
    REQUIRE(job.ok());
    CHECK(m.key == std::optional<std::string>(job->appid));
    bool printed_here = false;
    for (const auto& q : p) {
      if (q.job_id == job->job_id) {
        printed_here = q.partition == m.partition && q.offset == m.offset && q.appid == job->appid;
      }
    }
    CHECK(printed_here);
    by_id[job->job_id] = *job;
  }
  CHECK(by_id["j-a-1"] == Job{"j-a-1", "wxaaaa", ""});
  CHECK(by_id["j-b-1"] == Job{"j-b-1", "wxbbbb", "oStart"});
  CHECK(by_id["j-a-2"] == Job{"j-a-2", "wxaaaa", ""});
}

TEST_CASE("one bad line makes enqueue - produce nothing, name every bad line and exit 2",
          "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs");
  REQUIRE(broker->createTopic(jobs, 4).ok());
  const std::string config = writeConfig(dir, broker->bootstrapServers(), jobs);

  const std::string input = R"({"job_id": "j-1", "appid": "wxaaaa"})"
                            "\n"
                            "not json\n"
                            R"({"job_id": "j-3"})"
                            "\n"
                            R"({"job_id": "j-1", "appid": "wxbbbb"})"
                            "\n"
                            R"({"job_id": "j 5", "appid": "wxaaaa"})"
                            "\n";
  Run r = run({"enqueue", "--config", config, "-"}, input);
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  INFO(r.err);
  CHECK(r.err.find("line 1:") == std::string::npos);
  CHECK(r.err.find("line 2: bad_job: not JSON") != std::string::npos);
  CHECK(r.err.find("line 3: bad_job: appid: missing") != std::string::npos);
  CHECK(r.err.find("line 4: bad_job: job_id \"j-1\" repeats line 1") != std::string::npos);
  CHECK(r.err.find("line 5: bad_job: job_id") != std::string::npos);

  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  CHECK(read->empty());
}

TEST_CASE("a bad flag value makes enqueue produce nothing and exit 2", "[worker][integration]") {
  auto broker = startBroker();
  TempDir dir;
  const std::string jobs = uniqueTopic("jobs");
  REQUIRE(broker->createTopic(jobs, 4).ok());
  const std::string config = writeConfig(dir, broker->bootstrapServers(), jobs);

  Run bad_appid = run({"enqueue", "--config", config, "--appid", "wx bad!"});
  CHECK(bad_appid.code == 2);
  CHECK(bad_appid.err.find("bad_job: appid") != std::string::npos);
  Run bad_cursor =
      run({"enqueue", "--config", config, "--appid", "wxok", "--next-openid", "a&b=c"});
  CHECK(bad_cursor.code == 2);
  CHECK(bad_cursor.err.find("bad_job: next_openid") != std::string::npos);
  Run bad_id = run({"enqueue", "--config", config, "--appid", "wxok", "--job-id", ""});
  CHECK(bad_id.code == 2);
  CHECK(bad_id.err.find("bad_job: job_id") != std::string::npos);

  auto read = readTopic(broker->bootstrapServers(), jobs);
  REQUIRE(read.ok());
  CHECK(read->empty());
}

TEST_CASE("enqueue with a broken config exits 2 naming the file and the key",
          "[worker][integration]") {
  TempDir dir;
  dir.write("tenants.json", R"({"tenants": []})");
  const std::string config = dir.write(
      "config.json",
      R"({"kafka": {"bootstrap_servers": "127.0.0.1:1", "topicz": {}}, "tenants_file": "tenants.json"})");
  Run r = run({"enqueue", "--config", config, "--appid", "wxaaaa"});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find(config + ": kafka.topicz: unknown key") != std::string::npos);
}

TEST_CASE("enqueue refuses - together with job flags, and --appid missing", "[worker][unit]") {
  std::ostringstream out, err;
  CHECK(fanpull::runCli({"enqueue", "--config", "c.json", "-", "--appid", "wx1"}, out, err) == 2);
  CHECK(err.str().find("either -") != std::string::npos);
  std::ostringstream out2, err2;
  CHECK(fanpull::runCli({"enqueue", "--config", "c.json"}, out2, err2) == 2);
  CHECK(err2.str().find("--appid APPID") != std::string::npos);
  CHECK(out.str().empty());
}

TEST_CASE("enqueue --help explains every flag and stdin", "[worker][unit]") {
  std::ostringstream out, err;
  REQUIRE(fanpull::runCli({"enqueue", "--help"}, out, err) == 0);
  for (const char* text : {"--config FILE", "-b, --bootstrap-server HOST:PORT", "-X, --property KEY=VALUE ...",
                           "-t, --topic TOPIC", "--appid APPID", "--job-id ID", "--next-openid CURSOR",
                           "stdin", "partition P offset O"}) {
    INFO(text);
    CHECK(out.str().find(text) != std::string::npos);
  }
  CHECK(out.str().find("not yet available") == std::string::npos);
}
