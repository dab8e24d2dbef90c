// The fanpull executable as a user runs it: help, exit codes, the sandbox command.
#include <catch2/catch.hpp>

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>

#include <fstream>
#include <regex>
#include <thread>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/secret_box.h"

using Poco::Pipe;
using Poco::PipeInputStream;
using Poco::Process;

namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run run(const std::vector<std::string>& args) {
  Pipe out_pipe, err_pipe;
  Poco::ProcessHandle ph = Process::launch(FANPULL_BINARY, args, nullptr, &out_pipe, &err_pipe);
  PipeInputStream out(out_pipe), err(err_pipe);
  std::string o, e;
  Poco::StreamCopier::copyToString(out, o);
  Poco::StreamCopier::copyToString(err, e);
  return {ph.wait(), o, e};
}

std::string writeTemp(const std::string& name, const std::string& text) {
  std::string path = "/tmp/fanpull-cli-test-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("fanpull --help lists every command of the contract", "[worker][integration]") {
  Run r = run({"--help"});
  CHECK(r.code == 0);
  for (const char* cmd : {"run", "demo", "broker", "sandbox", "enqueue", "collect", "check-config"}) {
    CHECK(r.out.find(std::string("\n  ") + cmd + " ") != std::string::npos);
  }
}

TEST_CASE("every command explains itself with --help and exits 0", "[worker][integration]") {
  for (const char* cmd : {"run", "demo", "broker", "sandbox", "enqueue", "collect", "check-config"}) {
    Run r = run({cmd, "--help"});
    INFO(cmd);
    CHECK(r.code == 0);
    CHECK(r.out.rfind(std::string("Usage: fanpull ") + cmd, 0) == 0);
    CHECK(r.out.find("Options:") != std::string::npos);
  }
}

TEST_CASE("usage errors exit 2 with a message", "[worker][integration]") {
  Run none = run({});
  CHECK(none.code == 2);
  Run unknown = run({"frobnicate"});
  CHECK(unknown.code == 2);
  CHECK(unknown.err.find("unknown command \"frobnicate\"") != std::string::npos);
  Run bad_option = run({"sandbox", "--bogus"});
  CHECK(bad_option.code == 2);
  CHECK(bad_option.err.find("unknown option --bogus") != std::string::npos);
  Run bad_listen = run({"sandbox", "--demo", "--listen", "nowhere"});
  CHECK(bad_listen.code == 2);
  Run missing_value = run({"sandbox", "--accounts"});
  CHECK(missing_value.code == 2);
  CHECK(missing_value.err.find("needs a value") != std::string::npos);
}

TEST_CASE("a broken sandbox accounts file exits 2 naming the file and key", "[worker][integration]") {
  std::string path = writeTemp("accounts.json", R"({"accounts": [{"appid": "wx1", "folowers": 3}]})");
  Run r = run({"sandbox", "--accounts", path});
  CHECK(r.code == 2);
  CHECK(r.err.find(path) != std::string::npos);
  CHECK(r.err.find("folowers") != std::string::npos);
}

TEST_CASE("check-config reports every problem and exits 1, or ok and 0", "[worker][integration]") {
  std::string bad = writeTemp("bad.json", R"({"kafka": {}, "log": {"level": "loud"}})");
  Run r = run({"check-config", "--config", bad});
  CHECK(r.code == 1);
  CHECK(r.out.find(bad + ": kafka.bootstrap_servers: required") != std::string::npos);
  CHECK(r.out.find(bad + ": log.level: expected one of") != std::string::npos);
  CHECK(r.out.find(bad + ": tenants_file: required") != std::string::npos);

  std::string tenants = writeTemp("tenants.json", R"({"tenants": []})");
  std::string good = writeTemp("good.json", R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092"},
      "tenants_file": ")" + tenants + R"("})");
  Run ok = run({"check-config", "--config", good});
  CHECK(ok.code == 0);
  CHECK(ok.out == good + ": ok (0 tenants)\n");

  // With a state key: its id (the same on every worker of a fleet), never the key.
  const std::string key_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  std::string key_file = writeTemp("state.key", key_b64 + "\n");
  std::string keyed = writeTemp("keyed.json", R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092"},
      "tenants_file": ")" + tenants + R"(", "state": {"key_file": ")" + key_file + R"("}})");
  Run with_key = run({"check-config", "--config", keyed});
  CHECK(with_key.code == 0);
  std::string raw_key;
  for (int i = 0; i < 32; ++i) raw_key.push_back(static_cast<char>(i));
  CHECK(with_key.out.find("state key: id " + fanpull::SecretBox(raw_key).keyId() + " (from " +
                          key_file + ")") != std::string::npos);
  CHECK(with_key.out.find(key_b64) == std::string::npos);
  CHECK(with_key.out.find("output: exactly-once") == std::string::npos);  // at-least-once

  // exactly_once: said plainly, with what it needs.
  std::string eos = writeTemp("eos.json", R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092",
      "exactly_once": true, "transaction_interval_ms": 250}, "tenants_file": ")" + tenants + R"("})");
  Run with_eos = run({"check-config", "--config", eos});
  CHECK(with_eos.code == 0);
  CHECK(with_eos.out.find("output: exactly-once (transactions committed every 250 ms; needs "
                          "Apache Kafka: the embedded broker of fanpull demo and fanpull broker "
                          "cannot honour transactions)") != std::string::npos);

  std::string bad_tenants = writeTemp("bad-tenants.json", R"({"tenants": [{"appid": "wxa"}]})");
  std::string with_bad_tenants = writeTemp("good2.json", R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092"},
      "tenants_file": ")" + bad_tenants + R"("})");
  Run bad_t = run({"check-config", "--config", with_bad_tenants});
  CHECK(bad_t.code == 1);
  CHECK(bad_t.out.find(bad_tenants + ": wxa: authorizer_access_token: missing") != std::string::npos);

  // kafka.properties are checked by librdkafka itself: a misspelt name and a bad value.
  std::string typo = writeTemp("typo.json", R"({"kafka": {"bootstrap_servers": "127.0.0.1:9092",
      "properties": {"sesion.timeout.ms": "6000", "acks": "some"}}, "tenants_file": ")" + tenants +
                                                 R"("})");
  Run t = run({"check-config", "--config", typo});
  CHECK(t.code == 1);
  CHECK(t.out.find(typo + ": kafka.properties: kafka property \"sesion.timeout.ms\"") !=
        std::string::npos);
  CHECK(t.out.find(typo + ": kafka.properties: kafka property \"acks\"") != std::string::npos);
  CHECK(t.out.find("2 problems") != std::string::npos);
  // fanpull run refuses the same file as a configuration error (exit 2), naming the property.
  Run refused = run({"run", "--config", typo});
  CHECK(refused.code == 2);
  CHECK(refused.err.find("sesion.timeout.ms") != std::string::npos);
}

TEST_CASE("fanpull --version names the version, the revision and librdkafka",
          "[worker][integration]") {
  Run r = run({"--version"});
  CHECK(r.code == 0);
  INFO(r.out);
  CHECK(std::regex_match(r.out, std::regex("fanpull 0\\.1\\.0 \\(revision [0-9a-z.-]+, librdkafka "
                                           "2\\.[0-9.]+\\)\n")));
}

TEST_CASE("SIGTERM while the worker waits for a broker that does not answer exits at once",
          "[worker][integration]") {
  // Port 1 on loopback: nothing listens, every connection is refused. Starting would take over a
  // minute of metadata timeouts before the worker runs.
  std::string tenants = writeTemp(
      "start-tenants.json",
      R"({"tenants": [{"appid": "wxstart", "authorizer_access_token": "tok-SECRET-2"}]})");
  std::string log = writeTemp("start.log", "");
  std::string config = writeTemp(
      "start-config.json",
      R"({"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "tenants_file": ")" + tenants +
          R"(", "token_state_file": ")" + tenants + R"(.state", "http": {"listen": "127.0.0.1:0"}})");
  Poco::ProcessHandle child = Process::launch(
      "/bin/sh", {"-c", "exec \"$0\" run --config \"$1\" 2>>\"$2\"", FANPULL_BINARY, config, log});
  std::this_thread::sleep_for(std::chrono::seconds(2));  // well into its start
  REQUIRE(Process::isRunning(child));
  auto t0 = std::chrono::steady_clock::now();
  Process::requestTermination(child.id());
  int code = child.wait();
  auto took = std::chrono::steady_clock::now() - t0;
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(text);
  CHECK(code == 0);
  CHECK(took < std::chrono::seconds(3));
  CHECK(text.find("signal received while starting: exiting now") != std::string::npos);
  CHECK(text.find("worker started") == std::string::npos);
  for (const auto& p : {tenants, log, config}) std::remove(p.c_str());
}

TEST_CASE("fanpull run with a config it cannot read exits 2 naming the file",
          "[worker][integration]") {
  Run r = run({"run", "--config", "/nonexistent/fanpull.json"});
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent/fanpull.json: cannot read the file") != std::string::npos);
}

TEST_CASE("fanpull run with a broken tenants file exits 2 naming the file",
          "[worker][integration]") {
  struct Broken {
    const char* what;
    std::string config;   // the config file's text; TENANTS is replaced by the tenants path
    std::string tenants;  // the tenants file's text
    std::string says;     // in stderr, after the file's name
  };
  const std::string good_tenants =
      R"({"tenants": [{"appid": "wx1", "authorizer_access_token": "tok-SECRET-1"}]})";
  const std::string config =
      R"({"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "tenants_file": "TENANTS"})";
  const std::vector<Broken> cases = {
      {"tenants: truncated JSON", config, R"({"tenants": [{"appid": "wx1", )", "not valid JSON"},
      {"tenants: no token", config, R"({"tenants": [{"appid": "wx1"}]})",
       "wx1: authorizer_access_token: missing"},
      {"tenants: wrong type", config, R"({"tenants": {"appid": "wx1"}})", "tenants"},
      {"tenants: overflowing number", config,
       R"({"tenants": [{"appid": "wx1", "authorizer_access_token": "tok-SECRET-1", "requests_per_second": 1e999999}]})",
       "not valid JSON"},
      {"tenants: not UTF-8", config, "{\"tenants\": [{\"appid\": \"wx\xff\"}]}", ""},
      {"tenants: missing file", R"({"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "tenants_file": "/nonexistent/tenants.json"})",
       good_tenants, "cannot read"},
      {"config: truncated JSON", R"({"kafka": {"bootstrap_servers": )", good_tenants,
       "not valid JSON"},
      {"config: wrong type", R"({"kafka": {"bootstrap_servers": 5}, "tenants_file": "TENANTS"})",
       good_tenants, "kafka.bootstrap_servers"},
      {"config: unknown key", R"({"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "tenants_file": "TENANTS", "tenant_file": "x"})",
       good_tenants, "tenant_file"},
      {"config: empty file", "", good_tenants, ""},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Broken& c = cases[i];
    INFO(c.what);
    std::string tenants = writeTemp("tenants-" + std::to_string(i) + ".json", c.tenants);
    std::string text = c.config;
    if (auto at = text.find("TENANTS"); at != std::string::npos) text.replace(at, 7, tenants);
    std::string path = writeTemp("config-" + std::to_string(i) + ".json", text);
    Run r = run({"run", "--config", path});
    INFO(r.err);
    CHECK(r.code == 2);
    const bool tenants_case = std::string(c.what).rfind("tenants", 0) == 0;
    const std::string named = tenants_case && c.config == config ? tenants
                              : tenants_case                     ? "/nonexistent/tenants.json"
                                                                 : path;
    CHECK(r.err.find(named + ":") != std::string::npos);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.err.find("tok-SECRET-1") == std::string::npos);  // never the token
    std::remove(tenants.c_str());
    std::remove(path.c_str());
  }
}

TEST_CASE("fanpull sandbox prints its base URL first and serves until SIGTERM",
          "[worker][integration]") {
  Pipe out_pipe, err_pipe;
  Poco::ProcessHandle ph =
      Process::launch(FANPULL_BINARY, {"sandbox", "--demo"}, nullptr, &out_pipe, &err_pipe);
  PipeInputStream out(out_pipe);
  std::string first;
  std::getline(out, first);
  CHECK(first.rfind("http://127.0.0.1:", 0) == 0);
  Process::requestTermination(ph.id());
  CHECK(ph.wait() == 0);
}

TEST_CASE("fanpull demo ends with every merchant as designed and exit 0", "[worker][integration]") {
  Run r = run({"demo", "--json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["merchants"].size() == 20);
  int completed = 0;
  for (const auto& m : j["merchants"]) {
    INFO(m.dump());
    CHECK(m["as_designed"] == true);
    if (m["status"] == "completed") {
      ++completed;
      CHECK(m["openids"] == m["followers"]);
    }
  }
  CHECK(completed >= 15);
  CHECK(j["totals"]["as_designed"] == 20);
  CHECK(r.err.find("started") != std::string::npos);  // progress lines go to stderr with --json
  // The 250,000-follower merchant's 26 pages (about 7 MiB) outgrow what the embedded broker keeps
  // of a partition: the summary says so, and only for merchants whose pages did.
  std::vector<std::string> outgrew;
  for (const auto& o : j["outgrew_embedded_retention"]) outgrew.push_back(o.get<std::string>());
  INFO(j["outgrew_embedded_retention"].dump());
  REQUIRE_FALSE(outgrew.empty());
  bool big_one = false;
  for (const auto& o : outgrew) {
    if (o.rfind("wxdemo000000000008 (", 0) == 0) big_one = true;
    std::string appid = o.substr(0, o.find(' '));
    for (const auto& m : j["merchants"]) {
      if (m["appid"] == appid) CHECK(m["followers"].get<int64_t>() >= 150000);
    }
  }
  CHECK(big_one);
}

TEST_CASE("the demo's table ends with a note on the embedded broker's retention",
          "[worker][integration]") {
  Run r = run({"demo"});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("note: the embedded broker keeps only the newest 5 MiB of each partition") !=
        std::string::npos);
  CHECK(r.out.find("wxdemo000000000008 (") != std::string::npos);
}
