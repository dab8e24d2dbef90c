#include "support/test_kafka.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "kafka/admin.h"

#ifndef FANPULL_SOURCE_DIR
#error "FANPULL_SOURCE_DIR must name the source tree (for scripts/kafka-broker)"
#endif

namespace fanpull::testing {

namespace {

Error failure(const std::string& cause) {
  Error e;
  e.error_class = ErrorClass::kUnknown;
  e.cause = cause;
  return e;
}

std::atomic<bool> steady_state{false};  // TestKafka::preferSteadyState()

}  // namespace

void TestKafka::preferSteadyState() { steady_state = true; }

// scripts/kafka-broker as a child with a pipe as its stdin. The pipe's write end stays open for
// this object's life; when it is closed (destruction, or this process ending however it ends)
// the script stops its brokers and removes its directory.
class TestKafka::Process {
 public:
  ~Process() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
  }

  Result<std::string> launch(const std::vector<std::string>& extra_args,
                             const std::string& pid_file) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      return failure(std::string("pipe: ") + std::strerror(errno));
    }
    const std::string script = std::string(FANPULL_SOURCE_DIR) + "/scripts/kafka-broker";
    std::vector<std::string> args = {script};
    if (steady_state.load()) {
      args.insert(args.end(), {"--heap-mb", "1024", "--in-memory"});
    } else {
      args.push_back("--fast-start");
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    if (!pid_file.empty()) {
      args.push_back("--pid-file");
      args.push_back(pid_file);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return failure(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::execv(script.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGTERM);
        return failure("scripts/kafka-broker printed no address within 180 s");
      }
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        return failure("scripts/kafka-broker exited (status " + std::to_string(status) +
                       ") before printing its address; run scripts/install-kafka first");
      }
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    pid_file_ = pid_file;
    return line.substr(0, line.find('\n'));
  }

  // The process id of broker `node`, from the script's --pid-file.
  std::optional<pid_t> brokerPid(int node) const {
    std::ifstream in(pid_file_);
    int id = 0;
    long pid = 0;
    while (in >> id >> pid) {
      if (id == node) return static_cast<pid_t>(pid);
    }
    return std::nullopt;
  }

 private:
  int stdin_fd_ = -1;
  std::string pid_file_;
};

namespace {

// The real broker shared by the tests of this process (started at the first use), or the one
// FANPULL_KAFKA_BOOTSTRAP names.
class RealBroker {
 public:
  Result<std::string> bootstrap() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!bootstrap_.empty()) return bootstrap_;
    if (!failure_.empty()) return failure(failure_);
    if (const char* given = std::getenv("FANPULL_KAFKA_BOOTSTRAP"); given && *given) {
      bootstrap_ = given;
      return bootstrap_;
    }
    auto started = process_.launch({}, "");
    if (!started.ok()) {
      failure_ = started.error().cause;
      return started;
    }
    bootstrap_ = *started;
    return bootstrap_;
  }

 private:
  std::mutex mutex_;
  std::string bootstrap_;
  std::string failure_;
  TestKafka::Process process_;
};

RealBroker& realBroker() {
  static RealBroker* broker = new RealBroker();  // never destroyed: lives as long as the process
  return *broker;
}

}  // namespace

BrokerKind brokerKindFromEnvironment() {
  const char* v = std::getenv("FANPULL_TEST_BROKER");
  if (v != nullptr && (std::strcmp(v, "kafka") == 0 || std::strcmp(v, "real") == 0)) {
    return BrokerKind::kReal;
  }
  return BrokerKind::kEmbedded;
}

const char* brokerKindName(BrokerKind kind) {
  return kind == BrokerKind::kReal ? "Apache Kafka" : "embedded (librdkafka mock)";
}

Result<std::string> realBrokerBootstrap() { return realBroker().bootstrap(); }

TestKafka::TestKafka(BrokerKind kind, std::string bootstrap,
                     std::unique_ptr<kafka::EmbeddedBroker> e)
    : kind_(kind), bootstrap_servers_(std::move(bootstrap)), embedded_(std::move(e)) {}

TestKafka::~TestKafka() = default;

Result<std::unique_ptr<TestKafka>> TestKafka::startCluster(int brokers) {
  auto process = std::make_unique<Process>();
  char dir_template[] = "/tmp/fanpull-cluster-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr) return failure(std::string("mkdtemp: ") + std::strerror(errno));
  const std::string pid_file = std::string(dir) + "/pids";
  auto servers = process->launch({"--brokers", std::to_string(brokers)}, pid_file);
  if (!servers.ok()) return servers.error();
  std::unique_ptr<TestKafka> k(new TestKafka(BrokerKind::kReal, *servers, nullptr));
  k->own_ = std::move(process);
  if (auto made = k->connectAdmin(); !made.ok()) return made.error();
  return k;
}

Result<kafka::Done> TestKafka::connectAdmin() {
  auto made = kafka::Admin::create(bootstrap_servers_, {{"log_level", "3"}});
  if (!made.ok()) return made.error();
  admin_ = std::move(made).value();
  return kafka::Done{};
}

Result<kafka::Done> TestKafka::killBroker(int node) {
  if (!own_) return failure("killBroker: not a cluster of its own (startCluster)");
  auto pid = own_->brokerPid(node);
  if (!pid) return failure("killBroker: no broker " + std::to_string(node));
  if (::kill(*pid, SIGKILL) != 0) return failure(std::string("kill: ") + std::strerror(errno));
  return kafka::Done{};
}

Result<std::unique_ptr<TestKafka>> TestKafka::start(BrokerKind kind, int embedded_brokers) {
  if (kind == BrokerKind::kEmbedded) {
    auto broker = kafka::EmbeddedBroker::start(embedded_brokers);
    if (!broker.ok()) return broker.error();
    std::string servers = (*broker)->bootstrapServers();
    return std::unique_ptr<TestKafka>(
        new TestKafka(kind, std::move(servers), std::move(broker).value()));
  }
  auto servers = realBrokerBootstrap();
  if (!servers.ok()) return servers.error();
  std::unique_ptr<TestKafka> k(new TestKafka(kind, *servers, nullptr));
  if (auto made = k->connectAdmin(); !made.ok()) return made.error();
  return k;
}

Result<kafka::Done> TestKafka::createTopic(const std::string& name, int partitions,
                                           const std::map<std::string, std::string>& configs) {
  if (embedded_) return embedded_->createTopic(name, partitions);

  kafka::NewTopic t;
  t.name = name;
  t.partitions = partitions;
  t.replication = -1;
  t.configs = configs;
  auto created = admin_->createTopics({t}, std::chrono::seconds(30));
  if (!created.ok()) return created.error();
  if (!(*created)[name].empty()) return failure("create topic " + name + ": " + (*created)[name]);
  // Created on the controller; wait until the broker's metadata has every partition's leader.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    auto described = admin_->describeTopics({name}, {}, std::chrono::seconds(10));
    if (described.ok() && described->at(0).exists && described->at(0).partitions == partitions) {
      return kafka::Done{};
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return failure("topic " + name + " not in the cluster's metadata 30 s after creation");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace fanpull::testing
