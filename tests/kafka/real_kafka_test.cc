// What only a real Apache Kafka broker can prove (the `kafka` tier): that Debian's librdkafka
// 2.0.2 works with the pinned Kafka 4.x (idempotent produce, a consumer group with commits,
// transactions whose aborted writes stay hidden from read_committed consumers and whose offsets
// commit with the group's metadata), that `fanpull topics` creates and checks what the worker
// needs, and that `fanpull run` refuses a cluster without its topics.
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kafka/admin.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "support/temp_dir.h"
#include "support/test_kafka.h"
#include "support/topic_reader.h"

using namespace std::chrono_literals;
namespace kafka = fanpull::kafka;
using fanpull::testing::BrokerKind;
using fanpull::testing::readTopic;
using fanpull::testing::TestKafka;

namespace {

std::string uniqueName(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::unique_ptr<TestKafka> realKafka() {
  auto k = TestKafka::start(BrokerKind::kReal);
  INFO((k.ok() ? std::string() : k.error().describe()));
  REQUIRE(k.ok());
  return std::move(*k);
}

// librdkafka's C API, as plainly as the probe of a compatibility claim should be.
struct Rk {
  rd_kafka_t* rk = nullptr;
  Rk(rd_kafka_type_t type, const std::vector<std::pair<std::string, std::string>>& props) {
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    for (const auto& [k, v] : props) {
      REQUIRE(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) ==
              RD_KAFKA_CONF_OK);
    }
    rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    INFO(errstr);
    REQUIRE(rk != nullptr);
  }
  ~Rk() {
    if (rk) rd_kafka_destroy(rk);
  }
};

std::string errorText(rd_kafka_error_t* e) {
  if (e == nullptr) return "";
  std::string s = rd_kafka_error_string(e);
  rd_kafka_error_destroy(e);
  return s;
}

void produceValue(rd_kafka_t* rk, const std::string& topic, const std::string& value,
                  int32_t partition = RD_KAFKA_PARTITION_UA) {
  REQUIRE(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

struct CommandRun {
  int code = -1;
  std::string out;
  std::string err;
};

CommandRun runFanpull(const std::vector<std::string>& args) {
  Poco::Pipe out_pipe, err_pipe;
  Poco::ProcessHandle ph =
      Poco::Process::launch(FANPULL_BINARY, args, nullptr, &out_pipe, &err_pipe);
  Poco::PipeInputStream out_stream(out_pipe), err_stream(err_pipe);
  CommandRun r;
  std::thread err_reader([&] { Poco::StreamCopier::copyToString(err_stream, r.err); });
  Poco::StreamCopier::copyToString(out_stream, r.out);
  err_reader.join();
  r.code = ph.wait();
  return r;
}

std::string writeConfig(fanpull::testing::TempDir& dir, const std::string& bootstrap,
                        const std::string& prefix) {
  dir.write("tenants.json",
            R"({"tenants": [{"appid": "wxtopics", "authorizer_access_token": "t"}]})");
  nlohmann::json c = {
      {"kafka",
       {{"bootstrap_servers", bootstrap},
        {"group_id", prefix + ".group"},
        {"topics",
         {{"jobs", prefix + ".jobs"},
          {"pages", prefix + ".pages"},
          {"events", prefix + ".events"},
          {"dlq", prefix + ".dlq"},
          {"progress", prefix + ".progress"},
          {"state", prefix + ".state"}}},
        {"properties", {{"session.timeout.ms", "6000"}}}}},
      {"wechat", {{"base_url", "http://127.0.0.1:9"}}},
      {"tenants_file", "tenants.json"},
      {"http", {{"listen", "127.0.0.1:0"}}},
      {"log", {{"format", "text"}}}};
  return dir.write("worker.json", c.dump(2));
}

}  // namespace

TEST_CASE("librdkafka 2.0.2 produces idempotently, consumes in a group and commits on Kafka 4",
          "[worker][kafka]") {
  auto k = realKafka();
  const std::string topic = uniqueName("compat");
  REQUIRE(k->createTopic(topic, 2).ok());
  {
    Rk producer(RD_KAFKA_PRODUCER,
                {{"bootstrap.servers", k->bootstrapServers()}, {"enable.idempotence", "true"}});
    // Both partitions get 10: a partition nothing was read from has no committed offset.
    for (int i = 0; i < 20; ++i) produceValue(producer.rk, topic, "m" + std::to_string(i), i % 2);
    REQUIRE(rd_kafka_flush(producer.rk, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    char reason[256];
    CHECK(rd_kafka_fatal_error(producer.rk, reason, sizeof reason) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  const std::string group = uniqueName("compat-group");
  Rk consumer(RD_KAFKA_CONSUMER, {{"bootstrap.servers", k->bootstrapServers()},
                                  {"group.id", group},
                                  {"auto.offset.reset", "earliest"},
                                  {"enable.auto.commit", "false"},
                                  {"partition.assignment.strategy", "cooperative-sticky"}});
  rd_kafka_poll_set_consumer(consumer.rk);
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, topic.c_str(), RD_KAFKA_PARTITION_UA);
  REQUIRE(rd_kafka_subscribe(consumer.rk, sub) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(sub);
  int got = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (got < 20 && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ++got;
    rd_kafka_message_destroy(m);
  }
  REQUIRE(got == 20);
  REQUIRE(rd_kafka_commit(consumer.rk, nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_t* committed = rd_kafka_topic_partition_list_new(2);
  rd_kafka_topic_partition_list_add(committed, topic.c_str(), 0);
  rd_kafka_topic_partition_list_add(committed, topic.c_str(), 1);
  REQUIRE(rd_kafka_committed(consumer.rk, committed, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  // Every message read is committed, as the coordinator tells.
  const int64_t first = committed->elems[0].offset;
  const int64_t second = committed->elems[1].offset;
  rd_kafka_topic_partition_list_destroy(committed);
  CHECK(first == 10);
  CHECK(second == 10);
  rd_kafka_consumer_close(consumer.rk);
}

TEST_CASE("librdkafka 2.0.2 transactions on Kafka 4: committed visible, aborted hidden, offsets "
          "committed with the group's metadata",
          "[worker][kafka]") {
  auto k = realKafka();
  const std::string topic = uniqueName("txn");
  const std::string input = uniqueName("txn-in");
  REQUIRE(k->createTopic(topic, 1).ok());
  REQUIRE(k->createTopic(input, 1).ok());
  const std::string group = uniqueName("txn-group");
  Rk consumer(RD_KAFKA_CONSUMER, {{"bootstrap.servers", k->bootstrapServers()},
                                  {"group.id", group},
                                  {"enable.auto.commit", "false"}});
  Rk producer(RD_KAFKA_PRODUCER, {{"bootstrap.servers", k->bootstrapServers()},
                                  {"transactional.id", uniqueName("txn-id")}});
  REQUIRE(errorText(rd_kafka_init_transactions(producer.rk, 60000)).empty());

  REQUIRE(errorText(rd_kafka_begin_transaction(producer.rk)).empty());
  produceValue(producer.rk, topic, "committed-1");
  produceValue(producer.rk, topic, "committed-2");
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(offsets, input.c_str(), 0)->offset = 7;
  rd_kafka_consumer_group_metadata_t* meta = rd_kafka_consumer_group_metadata(consumer.rk);
  REQUIRE(errorText(rd_kafka_send_offsets_to_transaction(producer.rk, offsets, meta, 30000))
              .empty());
  rd_kafka_consumer_group_metadata_destroy(meta);
  rd_kafka_topic_partition_list_destroy(offsets);
  REQUIRE(errorText(rd_kafka_commit_transaction(producer.rk, 30000)).empty());

  REQUIRE(errorText(rd_kafka_begin_transaction(producer.rk)).empty());
  produceValue(producer.rk, topic, "aborted");
  REQUIRE(rd_kafka_flush(producer.rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(errorText(rd_kafka_abort_transaction(producer.rk, 30000)).empty());

  REQUIRE(errorText(rd_kafka_begin_transaction(producer.rk)).empty());
  produceValue(producer.rk, topic, "committed-3");
  REQUIRE(errorText(rd_kafka_commit_transaction(producer.rk, 30000)).empty());

  // A read_committed reader sees the three committed values and not the aborted one.
  auto read = readTopic(k->bootstrapServers(), topic);
  REQUIRE(read.ok());
  std::vector<std::string> values;
  for (const auto& m : *read) values.push_back(m.value);
  CHECK(values == std::vector<std::string>{"committed-1", "committed-2", "committed-3"});

  // The input offset sent with the transaction is the group's committed offset.
  rd_kafka_topic_partition_list_t* committed = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(committed, input.c_str(), 0);
  REQUIRE(rd_kafka_committed(consumer.rk, committed, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(committed->elems[0].offset == 7);
  rd_kafka_topic_partition_list_destroy(committed);
}

TEST_CASE("fanpull's transactional producer: committed visible once, aborted hidden, input "
          "offsets committed with the group, an older producer with the same id fenced",
          "[worker][kafka]") {
  auto k = realKafka();
  const std::string out = uniqueName("txn-out");
  const std::string in = uniqueName("txn-in");
  REQUIRE(k->createTopic(out, 1).ok());
  REQUIRE(k->createTopic(in, 1).ok());
  {
    kafka::ProducerOptions plain;
    plain.bootstrap_servers = k->bootstrapServers();
    auto p = kafka::Producer::create(plain);
    REQUIRE(p.ok());
    for (const char* v : {"job-1", "job-2", "job-3"}) REQUIRE((*p)->produce(in, "k", v).ok());
    REQUIRE((*p)->flush(10s).ok());
  }
  kafka::ConsumerOptions co;
  co.bootstrap_servers = k->bootstrapServers();
  co.group_id = uniqueName("txn-group");
  co.properties = {{"auto.offset.reset", "earliest"}, {"log_level", "3"}};
  auto consumer = kafka::Consumer::create(co);
  REQUIRE(consumer.ok());
  REQUIRE((*consumer)->subscribe({in}).ok());
  int consumed = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (consumed < 3 && std::chrono::steady_clock::now() < deadline) {
    auto m = (*consumer)->poll(200ms);
    if (m.ok() && m->has_value()) ++consumed;
  }
  REQUIRE(consumed == 3);
  auto group = (*consumer)->groupMetadata();
  REQUIRE(group != nullptr);

  kafka::ProducerOptions po;
  po.bootstrap_servers = k->bootstrapServers();
  po.transactional_id = uniqueName("txn-id");
  po.properties = {{"log_level", "3"}};
  auto first = kafka::Producer::create(po);
  REQUIRE(first.ok());
  kafka::Producer& p1 = **first;
  REQUIRE_FALSE(p1.initTransactions(30s).has_value());
  REQUIRE_FALSE(p1.beginTransaction().has_value());
  REQUIRE(p1.produce(out, "k", "page-1").ok());
  REQUIRE(p1.produce(out, "k", "page-2").ok());
  REQUIRE_FALSE(
      p1.sendOffsetsToTransaction({{kafka::TopicPartition{in, 0}, 3}}, *group, 30s).has_value());
  REQUIRE_FALSE(p1.commitTransaction(30s).has_value());

  REQUIRE_FALSE(p1.beginTransaction().has_value());
  REQUIRE(p1.produce(out, "k", "aborted").ok());
  // Delivered first: aborting while the partition's registration with the transaction is
  // still under way can be refused by Kafka 4 with INVALID_TXN_STATE (seen once with librdkafka
  // 2.0.2), a fatal error for the producer (a worker then exits 1 and resumes when restarted).
  // This test is about what becomes visible.
  REQUIRE(p1.flush(10s).ok());
  REQUIRE_FALSE(p1.abortTransaction(30s).has_value());

  // A newer producer with the same id (a restarted worker) fences the first: its transaction
  // never becomes visible, and it is told it is done.
  auto second = kafka::Producer::create(po);
  REQUIRE(second.ok());
  kafka::Producer& p2 = **second;
  REQUIRE_FALSE(p2.initTransactions(30s).has_value());
  kafka::TxnOutcome zombie = p1.beginTransaction();
  if (!zombie) {
    (void)p1.produce(out, "k", "zombie");
    zombie = p1.commitTransaction(30s);
  }
  REQUIRE(zombie.has_value());
  CHECK(zombie->next == kafka::TxnNext::kFatal);
  INFO(zombie->error.describe());
  REQUIRE_FALSE(p2.beginTransaction().has_value());
  REQUIRE(p2.produce(out, "k", "page-3").ok());
  REQUIRE_FALSE(p2.commitTransaction(30s).has_value());

  // A read_committed reader sees each committed page once, nothing aborted or fenced.
  auto read = readTopic(k->bootstrapServers(), out);
  REQUIRE(read.ok());
  std::vector<std::string> values;
  for (const auto& m : *read) values.push_back(m.value);
  CHECK(values == std::vector<std::string>{"page-1", "page-2", "page-3"});
  auto committed = (*consumer)->committed(kafka::TopicPartition{in, 0}, 10s);
  REQUIRE(committed.ok());
  CHECK(*committed == std::optional<int64_t>(3));
}

TEST_CASE("fanpull topics creates every topic of the config, state compacted and co-partitioned",
          "[worker][kafka]") {
  auto k = realKafka();
  fanpull::testing::TempDir dir;
  const std::string prefix = uniqueName("ft");
  std::string config = writeConfig(dir, k->bootstrapServers(), prefix);

  CommandRun before = runFanpull({"topics", "--config", config, "--check"});
  CHECK(before.code == 1);
  CHECK(before.out.find(prefix + ".jobs: the jobs topic does not exist") != std::string::npos);
  CHECK(before.out.find("6 problems") != std::string::npos);

  CommandRun run = runFanpull({"run", "--config", config});
  CHECK(run.code == 2);  // refuses instead of spinning on a missing topic
  CHECK(run.err.find("topic " + prefix + ".jobs") != std::string::npos);
  CHECK(run.err.find("fanpull topics --config") != std::string::npos);

  CommandRun created = runFanpull({"topics", "--config", config, "--partitions", "3"});
  INFO(created.out << created.err);
  REQUIRE(created.code == 0);
  CHECK(created.out.find(prefix + ".state: created (3 partitions, replication 1, compacted)") !=
        std::string::npos);
  auto admin = kafka::Admin::create(k->bootstrapServers(), {});
  REQUIRE(admin.ok());
  auto described = (*admin)->describeTopics({prefix + ".jobs", prefix + ".state"},
                                            {"cleanup.policy"}, 10s);
  REQUIRE(described.ok());
  CHECK(described->at(0).partitions == 3);
  CHECK(described->at(1).partitions == 3);
  CHECK(described->at(1).configs["cleanup.policy"] == "compact");

  // Run again: nothing to create, all present.
  CommandRun again = runFanpull({"topics", "--config", config});
  CHECK(again.code == 0);
  CHECK(again.out.find(prefix + ".pages: exists (3 partitions") != std::string::npos);
  CHECK(runFanpull({"topics", "--config", config, "--check"}).code == 0);
}

TEST_CASE("fanpull topics --check names a state topic not compacted or not co-partitioned and a "
          "pages topic too small for the producer's pages",
          "[worker][kafka]") {
  auto k = realKafka();
  fanpull::testing::TempDir dir;
  const std::string prefix = uniqueName("fb");
  std::string config = writeConfig(dir, k->bootstrapServers(), prefix);
  REQUIRE(k->createTopic(prefix + ".jobs", 4).ok());
  REQUIRE(k->createTopic(prefix + ".pages", 4, {{"max.message.bytes", "100000"}}).ok());
  REQUIRE(k->createTopic(prefix + ".events", 4).ok());
  REQUIRE(k->createTopic(prefix + ".dlq", 4).ok());
  REQUIRE(k->createTopic(prefix + ".progress", 4).ok());
  REQUIRE(k->createTopic(prefix + ".state", 2).ok());  // neither compacted nor co-partitioned

  CommandRun check = runFanpull({"topics", "--config", config, "--check"});
  INFO(check.out << check.err);
  CHECK(check.code == 1);
  CHECK(check.out.find(prefix + ".state: has 2 partitions, the jobs topic has 4") !=
        std::string::npos);
  CHECK(check.out.find(prefix + ".state: cleanup.policy is delete, it must be compact") !=
        std::string::npos);
  CHECK(check.out.find(prefix + ".pages: max.message.bytes is 100000, below the producer's "
                                "message.max.bytes 1000000") != std::string::npos);
  CHECK(check.out.find("3 problems") != std::string::npos);

  // `fanpull topics` leaves existing topics as they are, so the problems remain: exit 1.
  CHECK(runFanpull({"topics", "--config", config}).code == 1);
}

TEST_CASE("fanpull topics with a bad flag or a bad config exits 2", "[worker][integration]") {
  fanpull::testing::TempDir dir;
  std::string config = writeConfig(dir, "127.0.0.1:9", "fu");
  CommandRun bad_flag = runFanpull({"topics", "--config", config, "--partitions", "0"});
  CHECK(bad_flag.code == 2);
  CHECK(bad_flag.err.find("--partitions") != std::string::npos);
  std::string broken = dir.write("broken.json", R"({"kafka": {}})");
  CommandRun bad_config = runFanpull({"topics", "--config", broken});
  CHECK(bad_config.code == 2);
  CHECK(bad_config.err.find("kafka.bootstrap_servers") != std::string::npos);
}
