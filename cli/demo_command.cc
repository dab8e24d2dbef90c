// `fanpull demo`: everything embedded. The Kafka broker (librdkafka's mock cluster), the WeChat
// sandbox with the demo merchants, and a worker, all in this process; a job per merchant is
// enqueued, the pages are read back like a downstream consumer would (every OpenID checked
// against the sandbox's list), progress is shown live, and a summary ends it.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <set>
#include <ostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/page_collector.h"
#include "core/error_class.h"
#include "core/log.h"
#include "core/poco_http_transport.h"
#include "core/user_list_client.h"
#include "kafka/consumer.h"
#include "kafka/embedded_broker.h"
#include "kafka/producer.h"
#include "sandbox/accounts.h"
#include "sandbox/openids.h"
#include "sandbox/sandbox_server.h"
#include "tenants/component_token_source.h"
#include "tenants/permission.h"
#include "tenants/tenant_registry.h"
#include "worker/job.h"
#include "worker/messages.h"
#include "worker/worker.h"

namespace fanpull {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

int64_t callsForWalk(const sandbox::Account& a) {
  int64_t data_pages = (a.followers + 9999) / 10000;
  if (a.followers == 0) return 1;
  return a.last_page_variant == sandbox::LastPageVariant::kRepeat ? data_pages + 1 : data_pages;
}

// The status (and class, when not completed) each demo merchant is built to end with.
std::string expectedOutcome(const sandbox::Account& a) {
  if (a.errcode != 0) {
    return "failed:" + std::string(errorClassName(classifyErrcode(a.errcode)));
  }
  if (!grantsUserList(a.func_info)) return "failed:permission_denied";
  if (a.daily_quota > 0 && callsForWalk(a) > a.daily_quota) return "deferred:quota_exhausted";
  return "completed";
}

struct MerchantView {
  sandbox::Account account;
  std::string job_id;
  std::string status = "queued";  // the newest event's status
  std::string error_class;
  std::string error;
  std::string retry_at;
  std::unique_ptr<PageCollector> pages;
  // Page messages as read; reassembled at the end so the reader never falls behind the worker.
  std::vector<std::pair<std::string, kafka::Headers>> raw;
  int64_t seen_openids = 0;
  bool verified = false;
  int64_t calls = 0;
  std::map<std::string, int64_t> errors;  // by class, from the sandbox's call log

  bool finished() const {
    return status == "completed" || status == "failed" || status == "rejected" ||
           status == "deferred";
  }
  std::string outcome() const {
    return status == "completed" ? status : status + ":" + error_class;
  }
};

// Reads a topic from the beginning of every partition until stopped, handing each message on.
class TopicFollower {
 public:
  TopicFollower(const std::string& bootstrap, const std::string& topic, int partitions,
                std::function<void(const kafka::ConsumedMessage&)> on_message)
      : on_message_(std::move(on_message)) {
    kafka::ConsumerOptions options;
    options.bootstrap_servers = bootstrap;
    options.report_partition_end = true;
    // Fetch whole pages in big gulps: the reader must stay well within the broker's 5 MiB.
    options.properties = {{"max.partition.fetch.bytes", "16777216"},
                          {"fetch.max.bytes", "67108864"},
                          {"fetch.wait.max.ms", "50"}};
    options.log = [](int, const std::string&, const std::string&) {};
    partitions_ = partitions;
    auto consumer = kafka::Consumer::create(options);
    if (!consumer.ok()) return;
    consumer_ = std::move(consumer).value();
    std::vector<kafka::PartitionOffset> all;
    for (int p = 0; p < partitions; ++p) all.push_back({{topic, p}, kafka::kOffsetBeginning});
    if (!consumer_->assign(all).ok()) return;
    thread_ = std::thread([this] {
      while (!stop_) {
        auto m = consumer_->poll(milliseconds(50));
        if (!m.ok() || !m->has_value()) continue;
        if ((*m)->end_of_partition) {
          std::lock_guard<std::mutex> lock(mutex_);
          ended_.insert((*m)->partition);
          continue;
        }
        on_message_(**m);
      }
    });
  }
  ~TopicFollower() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return consumer_ != nullptr; }
  // Every partition has been read to its end once: the reader keeps up from here on.
  bool ready() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(ended_.size()) == partitions_;
  }

 private:
  std::function<void(const kafka::ConsumedMessage&)> on_message_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;  // guards ended_
  std::set<int32_t> ended_;   // partitions read to their end at least once
  int partitions_ = 0;
  std::thread thread_;
};

std::string bar(double fraction, int width) {
  int filled = static_cast<int>(fraction * width + 0.5);
  filled = std::max(0, std::min(width, filled));
  return "[" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(width - filled), '.') + "]";
}

}  // namespace

int demoCommand(const CliArgs& args, std::ostream& out, std::ostream& err) {
  std::string problem;
  auto seed = args.getInt("seed", 1, 0, INT64_MAX, &problem);
  if (!seed) {
    err << "fanpull demo: " << problem << "\n";
    return kExitUsage;
  }
  const bool json = args.has("json");
  std::ostream& log_out = json ? err : out;
  const bool tty = !json && ::isatty(STDOUT_FILENO);

  // The WeChat sandbox. 45011 waits for the next wall-clock minute: keep the demo's minute limits
  // out of reach so it ends in seconds.
  sandbox::SandboxOptions sandbox_options;
  sandbox_options.accounts = sandbox::demoAccounts();
  sandbox_options.component = sandbox::demoComponent();
  sandbox_options.seed = static_cast<uint64_t>(*seed);
  for (auto& a : sandbox_options.accounts) a.minute_limit = 0;
  const std::vector<sandbox::Account> accounts = sandbox_options.accounts;
  sandbox::SandboxServer sandbox(std::move(sandbox_options));
  sandbox.start();

  // The Kafka broker and the topics.
  auto broker = kafka::EmbeddedBroker::start(3);
  if (!broker.ok()) {
    err << "fanpull demo: " << broker.error().describe() << "\n";
    return kExitFailure;
  }
  KafkaTopics topics;
  constexpr int kPartitions = 16;
  for (const auto& t :
       {topics.jobs, topics.pages, topics.events, topics.dlq, topics.progress, topics.state}) {
    (void)(*broker)->createTopic(t, kPartitions);
  }
  const std::string bootstrap = (*broker)->bootstrapServers();
  log_out << "fanpull demo: Kafka broker at " << bootstrap << ", WeChat sandbox at "
          << sandbox.baseUrl() << ", " << accounts.size() << " merchants\n";

  // The platform's side: tenants file, verify ticket and token state in a scratch folder.
  char dir_template[] = "/tmp/fanpull-demo-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  {
    nlohmann::json tenants = {{"tenants", nlohmann::json::array()}};
    for (const auto& a : accounts) {
      tenants["tenants"].push_back({{"appid", a.appid},
                                    {"authorizer_access_token", a.access_tokens.at(0)},
                                    {"authorizer_refresh_token", a.refresh_token},
                                    {"func_info", a.func_info}});
    }
    std::ofstream(dir + "/tenants.json") << tenants.dump(2);
    std::ofstream(dir + "/ticket.txt") << sandbox::demoComponent().verify_ticket << "\n";
  }
  Logger quiet(LogLevel::kError, false, Logger::stderrSink());
  TenantRegistry registry(dir + "/tenants.json", {true});
  (void)registry.load();
  HttpTransportOptions transport_options;
  transport_options.base_url = sandbox.baseUrl();
  auto transport = PocoHttpTransport::create(transport_options);
  if (!transport.ok()) {
    err << "fanpull demo: " << transport.error().describe() << "\n";
    return kExitFailure;
  }
  UserListClient client(*transport.value());
  TokenStateStore store(dir + "/tokens.json");
  sandbox::ComponentCredentials component = sandbox::demoComponent();
  ComponentTokenSource tokens({component.appid, component.appsecret, dir + "/ticket.txt"},
                              *transport.value(), store, SystemClock::instance(), quiet);
  (void)tokens.start();

  // What a downstream consumer sees.
  std::mutex mutex;  // guards views
  std::map<std::string, MerchantView> views;  // by job_id
  for (const auto& a : accounts) {
    MerchantView v;
    v.account = a;
    v.job_id = "demo-" + a.appid;
    v.pages = std::make_unique<PageCollector>(v.job_id);
    views.emplace(v.job_id, std::move(v));
  }
  TopicFollower pages(bootstrap, topics.pages, kPartitions, [&](const kafka::ConsumedMessage& m) {
    // The count of a page sits near its start: enough for progress without parsing it.
    int64_t count = 0;
    auto at = m.value.find("\"count\":");
    if (at != std::string::npos && at < 512) count = std::atoll(m.value.c_str() + at + 8);
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& h : m.headers) {
      if (h.key != kHeaderJobId) continue;
      auto it = views.find(h.value);
      if (it == views.end()) continue;
      it->second.raw.emplace_back(m.value, m.headers);
      it->second.seen_openids += count;
    }
  });
  TopicFollower events(bootstrap, topics.events, kPartitions, [&](const kafka::ConsumedMessage& m) {
    auto e = nlohmann::json::parse(m.value, nullptr, false);
    if (!e.is_object()) return;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = views.find(e.value("job_id", ""));
    if (it == views.end()) return;
    MerchantView& v = it->second;
    v.status = e.value("status", "");
    if (e.contains("error")) {
      v.error_class = e["error"].value("class", "");
      v.error = e["error"].value("message", "");
    }
    v.retry_at = e.value("retry_at", "");
    if (!tty) {
      log_out << v.account.appid << " " << v.status;
      if (v.status == "completed" || v.status == "deferred") {
        log_out << ": " << e.value("pages", 0) << " pages, " << e.value("openids", 0)
                << " OpenIDs";
      }
      if (!v.retry_at.empty()) log_out << ", retry at " << v.retry_at;
      if (!v.error.empty() && v.status != "completed") log_out << " (" << v.error << ")";
      log_out << std::endl;
    }
  });
  if (!pages.ok() || !events.ok()) {
    err << "fanpull demo: cannot read the embedded broker's topics\n";
    return kExitFailure;
  }
  // The broker keeps only the newest 5 MiB of a partition: the readers start before any job.
  for (int i = 0; i < 200 && !(pages.ready() && events.ready()); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }

  // The worker.
  WorkerOptions options;
  options.bootstrap_servers = bootstrap;
  options.group_id = "fanpull-demo";
  options.topics = topics;
  options.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
  options.max_in_flight = 32;
  options.default_limit = {10, 10, 0};
  options.backoff = {milliseconds(100), milliseconds(2000), 8};
  options.seed = static_cast<uint64_t>(*seed);
  options.shutdown_timeout = std::chrono::seconds(10);
  Worker worker(options, registry, tokens, client, quiet);
  auto started = worker.start();
  if (!started.ok()) {
    err << "fanpull demo: " << started.error().describe() << "\n";
    return kExitFailure;
  }

  // The job producer.
  kafka::ProducerOptions producer_options;
  producer_options.bootstrap_servers = bootstrap;
  auto producer = kafka::Producer::create(producer_options);
  if (!producer.ok()) {
    err << "fanpull demo: " << producer.error().describe() << "\n";
    return kExitFailure;
  }
  auto began = steady_clock::now();
  for (const auto& a : accounts) {
    (void)(*producer)->produce(topics.jobs, a.appid, encodeJob({"demo-" + a.appid, a.appid, ""}));
  }
  (void)(*producer)->flush(std::chrono::seconds(10));

  // Live progress until every merchant has ended (or a minute has passed).
  int drawn = 0;
  const auto deadline = began + std::chrono::seconds(60);
  while (steady_clock::now() < deadline) {
    bool all = true;
    int64_t openids = 0;
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (auto& [id, v] : views) {
        all = all && v.finished() &&
              (v.status != "completed" || v.seen_openids >= v.account.followers);
        openids += v.seen_openids;
        if (tty && v.status == "started") {
          double f = v.account.followers > 0
                         ? static_cast<double>(v.seen_openids) /
                               static_cast<double>(v.account.followers)
                         : 1.0;
          std::ostringstream line;
          line << std::left << std::setw(20) << v.account.appid << bar(f, 30) << " "
               << v.seen_openids << "/" << v.account.followers;
          lines.push_back(line.str());
        }
      }
    }
    if (tty) {
      double seconds = std::chrono::duration<double>(steady_clock::now() - began).count();
      int64_t expected = 0;
      for (const auto& a : accounts) expected += a.followers;
      std::ostringstream overall;
      overall << std::left << std::setw(20) << "all merchants"
              << bar(static_cast<double>(openids) / static_cast<double>(expected), 30) << " "
              << openids << " OpenIDs, " << std::fixed << std::setprecision(0)
              << (seconds > 0 ? openids / seconds : 0) << "/s";
      lines.push_back(overall.str());
      if (drawn > 0) out << "\x1b[" << drawn << "A";
      for (const auto& l : lines) out << "\x1b[2K" << l << "\n";
      for (int i = static_cast<int>(lines.size()); i < drawn; ++i) out << "\x1b[2K\n";
      drawn = std::max(drawn, static_cast<int>(lines.size()));
      out << std::flush;
    }
    if (all) break;
    std::this_thread::sleep_for(milliseconds(tty ? 150 : 50));
  }
  double seconds = std::chrono::duration<double>(steady_clock::now() - began).count();
  worker.stop();
  pages.stop();
  events.stop();
  producer->reset();

  // What WeChat saw, per merchant: calls and errors by class.
  for (const auto& entry : sandbox.callLog()) {
    if (entry.endpoint != sandbox::kEndpointUserGet) continue;
    auto it = views.find("demo-" + entry.appid);
    if (it == views.end()) continue;
    ++it->second.calls;
    if (!entry.fault.empty()) {
      ++it->second.errors["retryable"];
    } else if (entry.errcode != 0) {
      ++it->second.errors[std::string(errorClassName(classifyErrcode(entry.errcode)))];
    }
  }
  sandbox.stop();
  std::filesystem::remove_all(dir);

  int64_t total_openids = 0, total_pages = 0, total_calls = 0;
  int as_designed = 0;
  for (auto& [id, v] : views) {
    for (const auto& [value, headers] : v.raw) v.pages->add(value, headers);
    std::vector<std::string> got = v.pages->openids();
    v.verified = true;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != sandbox::sandboxOpenId(v.account.appid, static_cast<int64_t>(i))) {
        v.verified = false;
        break;
      }
    }
    if (v.status == "completed" &&
        (!v.pages->complete() || static_cast<int64_t>(got.size()) != v.account.followers)) {
      v.verified = false;
    }
    total_openids += static_cast<int64_t>(got.size());
    total_pages += static_cast<int64_t>(v.pages->pages());
    total_calls += v.calls;
    if (v.outcome() == expectedOutcome(v.account) && v.verified) ++as_designed;
  }
  const bool all_ok = as_designed == static_cast<int>(views.size());
  const double rate = seconds > 0 ? static_cast<double>(total_openids) / seconds : 0;

  // Where the embedded broker's retention matters: a merchant whose pages outgrow what it keeps
  // of a partition could not be collected again after the demo (the demo read them live).
  std::vector<std::string> outgrown;
  for (const auto& [id, v] : views) {
    int64_t bytes = 0;
    for (const auto& [value, headers] : v.raw) bytes += static_cast<int64_t>(value.size());
    if (bytes > kafka::EmbeddedBroker::kRetainedBytesPerPartition) {
      std::ostringstream what;
      what << v.account.appid << " (" << std::setprecision(1) << std::fixed
           << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB)";
      outgrown.push_back(what.str());
    }
  }
  if (json) {
    nlohmann::json j;
    j["merchants"] = nlohmann::json::array();
    for (const auto& [id, v] : views) {
      j["merchants"].push_back({{"appid", v.account.appid},
                                {"job_id", v.job_id},
                                {"followers", v.account.followers},
                                {"status", v.status},
                                {"expected", expectedOutcome(v.account)},
                                {"as_designed", v.outcome() == expectedOutcome(v.account) && v.verified},
                                {"pages", v.pages->pages()},
                                {"openids", v.pages->openidCount()},
                                {"verified", v.verified},
                                {"wechat_calls", v.calls},
                                {"errors", v.errors},
                                {"error", v.error},
                                {"retry_at", v.retry_at}});
    }
    j["totals"] = {{"pages", total_pages},         {"openids", total_openids},
                   {"wechat_calls", total_calls},   {"seconds", seconds},
                   {"openids_per_second", rate},    {"as_designed", as_designed},
                   {"merchants", views.size()}};
    // Merchants whose pages outgrew what the embedded broker keeps of a partition (5 MiB).
    j["outgrew_embedded_retention"] = outgrown;
    out << j.dump(2) << "\n";
  } else {
    out << "\n"
        << std::left << std::setw(20) << "merchant" << std::right << std::setw(9) << "followers"
        << "  " << std::left << std::setw(10) << "status" << std::right << std::setw(6) << "pages"
        << std::setw(9) << "openids" << std::setw(7) << "calls" << "  " << std::left
        << std::setw(4) << "ok" << "errors by class\n";
    for (const auto& [id, v] : views) {
      std::string errs;
      for (const auto& [cls, n] : v.errors) {
        errs += (errs.empty() ? "" : ", ") + cls + " " + std::to_string(n);
      }
      if (errs.empty() && !v.error_class.empty()) errs = v.error_class + " (no call made)";
      bool ok = v.outcome() == expectedOutcome(v.account) && v.verified;
      out << std::left << std::setw(20) << v.account.appid << std::right << std::setw(9)
          << v.account.followers << "  " << std::left << std::setw(10) << v.status << std::right
          << std::setw(6) << v.pages->pages() << std::setw(9) << v.pages->openidCount()
          << std::setw(7) << v.calls << "  " << std::left << std::setw(4) << (ok ? "yes" : "NO")
          << errs << "\n";
    }
    out << "\n"
        << total_pages << " pages, " << total_openids << " OpenIDs, " << total_calls
        << " WeChat calls in " << std::fixed << std::setprecision(1) << seconds << " s ("
        << std::setprecision(0) << rate << " OpenIDs/s); " << as_designed << " of "
        << views.size() << " merchants ended as designed\n";
    if (!outgrown.empty()) {
      out << "note: the embedded broker keeps only the newest 5 MiB of each partition. The pages of\n"
             "  ";
      for (size_t i = 0; i < outgrown.size(); ++i) out << (i ? ", " : "") << outgrown[i];
      out << " outgrew it:\n"
             "  a later `fanpull collect` of these jobs would find their first pages missing (the\n"
             "  demo read each page as it arrived). A real Kafka cluster keeps them.\n";
    }
  }
  return all_ok ? kExitOk : kExitFailure;
}

}  // namespace fanpull
