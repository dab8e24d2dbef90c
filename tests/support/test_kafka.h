// TestKafka: the Kafka cluster a test or a benchmark runs against, one fixture for both brokers:
// librdkafka's mock cluster inside the process (fast, fault injection), or a real Apache Kafka
// broker in KRaft mode started by scripts/kafka-broker (one per process, shared by the tests of
// that process, stopped when the process ends, however it ends: the script stops its broker when
// its standard input, a pipe from this process, closes).
//
// Which one: the test asks for one, or takes the environment's: FANPULL_TEST_BROKER=kafka (real)
// or embedded (the default). FANPULL_KAFKA_BOOTSTRAP=HOST:PORT uses a real broker already running
// instead of starting one. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/result.h"
#include "kafka/admin.h"
#include "kafka/embedded_broker.h"
#include "kafka/kafka_types.h"

namespace fanpull::testing {

enum class BrokerKind { kEmbedded, kReal };

// FANPULL_TEST_BROKER: "kafka" or "real" -> kReal; unset, "", "embedded" or "mock" -> kEmbedded.
BrokerKind brokerKindFromEnvironment();
const char* brokerKindName(BrokerKind kind);

class TestKafka {
 public:
  // The broker of `kind`: a new mock cluster of `embedded_brokers` brokers, or the process's real
  // broker (started at the first call). Errors: the real broker cannot be started (its install
  // step, scripts/install-kafka, has not run; Java missing; ...), with the script's words.
  static Result<std::unique_ptr<TestKafka>> start(BrokerKind kind, int embedded_brokers = 3);
  static Result<std::unique_ptr<TestKafka>> start() { return start(brokerKindFromEnvironment()); }
  // Benchmarks call this before the first start(): the process's real broker then runs as in
  // production (both JIT compilers, a 1 GiB heap) rather than started quickly for tests (C1
  // only, 256 MiB), and keeps its logs in RAM (after about 1 GB written, a small machine's disk
  // throttles every write): otherwise the broker's JVM and the disk are what is measured.
  static void preferSteadyState();
  // A real Apache Kafka cluster of its own (not the process's shared broker) of `brokers`
  // brokers: node 1 is broker and controller, the others brokers; with 3 or more, every topic
  // (internal ones too) is replicated 3 times with 2 in sync, so one broker may die. About 10 s
  // to start and 450 MB for 3 brokers. Stopped when this object is destroyed.
  static Result<std::unique_ptr<TestKafka>> startCluster(int brokers);
  ~TestKafka();

  BrokerKind kind() const { return kind_; }
  bool real() const { return kind_ == BrokerKind::kReal; }
  const std::string& bootstrapServers() const { return bootstrap_servers_; }

  // Creates `name` with `partitions` partitions and `configs` (ignored by the mock) and waits
  // until the cluster's metadata shows it. Errors: the cluster refuses or does not answer.
  Result<kafka::Done> createTopic(const std::string& name, int partitions,
                                  const std::map<std::string, std::string>& configs = {});

  // The mock cluster, for fault injection; nullptr on a real broker.
  kafka::EmbeddedBroker* embedded() { return embedded_.get(); }

  // Kills broker `node` of a cluster from startCluster() with SIGKILL. Errors: not such a
  // cluster, or no such node.
  Result<kafka::Done> killBroker(int node);

  class Process;  // a scripts/kafka-broker child (test_kafka.cc)

 private:
  TestKafka(BrokerKind kind, std::string bootstrap, std::unique_ptr<kafka::EmbeddedBroker> e);
  // A real broker's admin client, one for every createTopic().
  Result<kafka::Done> connectAdmin();

  BrokerKind kind_;
  std::string bootstrap_servers_;
  std::unique_ptr<kafka::EmbeddedBroker> embedded_;
  std::unique_ptr<Process> own_;  // startCluster(): the script running this cluster
  std::unique_ptr<kafka::Admin> admin_;  // a real broker's (connectAdmin)
};

// The real broker of this process (started on first use): its bootstrap servers.
Result<std::string> realBrokerBootstrap();

}  // namespace fanpull::testing
