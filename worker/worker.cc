#include "worker/worker.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <random>

#include <nlohmann/json.hpp>

#include "core/buffer_pool.h"
#include "core/erase_if.h"
#include "core/error_class.h"
#include "kafka/topic_scan.h"
#include "worker/job_intake.h"
#include "worker/messages.h"
#include "worker/metrics.h"

namespace fanpull {

// One accepted job and where its walk stands. Steps of one run never overlap (a lane schedules
// one step at a time); its walk's state is locked because deliveries reach it meanwhile, and the
// atomics are read by revocation and shutdown. A queued job holds only what it was accepted with: its walk's state (Walking, about
// 400 bytes) is made the first time it is needed, usually when the walk begins, so a thousand
// queued jobs do not each carry one (docs/BENCHMARKS.md, "Memory by fleet size").
struct Worker::Run {
  // The walk and the fields below are guarded by walk_mutex: a page's delivery is handled while
  // the call after it is made. Recursive: messages built while holding it read the checkpoint.
  struct Walking {
    explicit Walking(const BackoffPolicy& backoff) : walk(backoff) {}
    mutable std::recursive_mutex walk_mutex;
    JobWalk walk;  // where the walk stands and what it does next (worker/job_walk.h)
    int64_t checkpointed = 0;  // pages covered by a delivered checkpoint
    bool waiting = false;      // the next call waits for a checkpoint to be delivered
    std::function<void()> on_drained;  // the end, deferral or failure, once every page is settled
    std::string token;
    // A page of this job could not be written (guarded by mutex_).
    std::optional<Error> write_error;
    // exactly_once: the end event the last page's group recorded in its "ending" checkpoint.
    std::shared_ptr<OutboxRecord> ending_event;
  };

  explicit Run(const BackoffPolicy& walk_backoff) : backoff(walk_backoff) {}

  // The walk's state, made on first use (from any thread; once).
  Walking& w() const {
    std::call_once(walking_made_, [this] { walking_ = std::make_unique<Walking>(backoff); });
    return *walking_;
  }

  Job job;
  std::string raw;  // the job message as consumed (for a dead letter)
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;

  std::shared_ptr<const Tenant> tenant;
  bool begun = false;
  bool resumed = false;
  TimePoint resume_at{};  // a deferred job resumes at this time
  BackoffPolicy backoff;  // its walk's

  bool deferred = false;  // counted in stats_.deferred until the walk resumes

  // The partition and offset of the job's first delivered event (-1: none yet).
  std::atomic<int32_t> events_partition{-1};
  std::atomic<int64_t> events_offset{-1};

  std::atomic<bool> cancelled{false};
  // Taken away by a lost partition: its new owner may already have read the state topic, so
  // nothing of this run may be written there any more. A stop or an orderly revocation waits
  // for what the run has in flight, so its delivered pages are still checkpointed.
  std::atomic<bool> lost{false};
  std::atomic<int> calling{0};  // a call to WeChat in progress
  std::atomic<int> pending{0};  // messages produced, not yet delivered
  // What its next page will likely take in message bytes (0: no page yet; see callOnce).
  std::atomic<int64_t> next_page_bytes{0};

 private:
  mutable std::once_flag walking_made_;
  mutable std::unique_ptr<Walking> walking_;
};

namespace {

// How often the poll thread forgets what it keeps of merchants idle since an earlier Beijing day
// (forgetIdleMerchants).
constexpr std::chrono::hours kForgetIdleMerchantsEvery{1};

// A stopping worker's last two steps after its shutdown_timeout (committing the offsets, leaving
// the group) each wait at most this long for brokers that may be gone.
constexpr std::chrono::milliseconds kFinalStepTimeout{5000};

// One call in flight on `calling` for its scope, however the scope ends (an exception included):
// a revocation or a stop waits until the count is back to zero.
class CountedCall {
 public:
  explicit CountedCall(std::atomic<int>& calling) : calling_(calling) { ++calling_; }
  ~CountedCall() { --calling_; }
  CountedCall(const CountedCall&) = delete;
  CountedCall& operator=(const CountedCall&) = delete;

 private:
  std::atomic<int>& calling_;
};

// KIP-447: one transactional id per worker process, unique in the fleet (hostname, pid and a
// random tag); the consumer group's generation fences a worker that lost its partitions.
std::string transactionalId(const std::string& group_id) {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "host");
  char tag[9];
  std::snprintf(tag, sizeof(tag), "%08x", static_cast<unsigned>(std::random_device{}()));
  return "fanpull-" + group_id + "-" + host + "-" + std::to_string(::getpid()) + "-" + tag;
}

uint64_t seedOf(uint64_t seed) {
  if (seed != 0) return seed;
  return std::random_device{}();
}

}  // namespace

Worker::Worker(WorkerOptions options, TenantRegistry& tenants, TokenSource& tokens,
               UserListClient& client, Logger& log)
    : options_(std::move(options)),
      tenants_(tenants),
      tokens_(tokens),
      client_(client),
      log_(log),
      clock_(*options_.clock),
      limiter_(options_.default_limit),
      random_(seedOf(options_.seed)),
      budget_(options_.max_undelivered_bytes) {
  // Answers' buffers held at once stay within the budget: keeping as many for reuse suffices.
  BufferPool::bodies().setMaxKeptBytes(static_cast<size_t>(options_.max_undelivered_bytes));
}

Worker::~Worker() { stop(); }

Result<kafka::Done> Worker::start() {
  kafka::ProducerOptions po;
  po.bootstrap_servers = options_.bootstrap_servers;
  po.properties = kafka::withoutConsumerOnly(options_.properties);
  po.log = [this](int level, const std::string& facility, const std::string& message) {
    if (level <= 4) log_.warn("kafka producer: " + message, {{"facility", facility}});
  };
  // shutdown() has waited for deliveries within shutdown_timeout already: what is still in
  // flight when a producer is destroyed is given up soon (it was never checkpointed, so the
  // job's next owner writes it again).
  po.close_timeout = std::chrono::milliseconds(1000);
  auto retry = [this](TimePoint when, std::function<void()> task) {
    continuations_->postAt(when, std::move(task));
  };
  if (options_.exactly_once) {
    // What an abort must not undo (the day's calls, rotated tokens) goes through a plain
    // producer of its own.
    auto durable = kafka::Producer::create(po);
    if (!durable.ok()) return durable.error();
    durable_producer_ = std::move(durable).value();
    durable_sink_ = std::make_unique<KafkaRecordSink>(*durable_producer_);
    durable_own_outbox_ = std::make_unique<Outbox>(*durable_sink_, clock_, log_, retry);
    // A crashed worker's open transaction holds its partitions' readers back until the cluster
    // aborts it: 10 s unless configured, not Kafka's 60 s.
    if (!po.properties.count("transaction.timeout.ms")) {
      po.properties["transaction.timeout.ms"] = "10000";
    }
    po.transactional_id = transactionalId(options_.group_id);
  }
  auto producer = kafka::Producer::create(po);
  if (!producer.ok()) return producer.error();
  producer_ = std::move(producer).value();
  // A page message leaves room for its headers within the producer's message.max.bytes.
  records_.emplace(options_.topics, producer_->maxMessageBytes() - 1024);
  if (options_.exactly_once) {
    if (auto failed = producer_->initTransactions(std::chrono::seconds(30))) {
      return Error::of(ErrorClass::kUnknown,
                       "kafka.exactly_once: the cluster did not start transactions for this "
                       "worker (it needs Apache Kafka with transactions; the embedded broker "
                       "has none): " + failed->error.describe());
    }
    if (auto failed = producer_->beginTransaction()) return failed->error;
    in_transaction_ = true;
    last_transaction_ = std::chrono::steady_clock::now();
    auto sink = std::make_unique<TransactionalRecordSink>(*producer_, gate_);
    transactional_sink_ = sink.get();
    sink_ = std::move(sink);
  } else {
    sink_ = std::make_unique<KafkaRecordSink>(*producer_);
  }
  outbox_ = std::make_unique<Outbox>(*sink_, clock_, log_, retry,
                                     [this](int64_t) { releaseUndelivered(0); });
  durable_outbox_ = durable_own_outbox_ ? durable_own_outbox_.get() : outbox_.get();
  if (transactional_sink_) outbox_->settleFailuresAtOnce();
  // The producer learns its topics now: its first checkpoint must not wait a second for
  // metadata (a crash in that second would lose the checkpoints, and the walk would restart).
  Result<int> state_partitions = 0;
  for (const std::string* topic : {&options_.topics.pages, &options_.topics.progress,
                                   &options_.topics.events, &options_.topics.dlq,
                                   &options_.topics.state}) {
    auto prepared = producer_->prepareTopic(*topic, std::chrono::seconds(10));
    if (topic == &options_.topics.state) state_partitions = prepared;
    if (!prepared.ok()) {
      if (kafka::isTopicUnavailable(prepared.error())) {
        outbox_->markUnwritable(*topic, prepared.error());
      } else {
        log_.warn("output topic not ready", {{"topic", *topic},
                                             {"error", prepared.error().describe()}});
      }
    }
  }

  auto reader_log = [this](int level, const std::string& facility, const std::string& message) {
    if (level <= 4) log_.warn("kafka reader: " + message, {{"facility", facility}});
  };
  // Jobs partition p's state is in state partition p: the two topics must have as many.
  auto jobs_partitions = producer_->prepareTopic(options_.topics.jobs, std::chrono::seconds(10));
  if (jobs_partitions.ok() && state_partitions.ok() && *jobs_partitions != *state_partitions) {
    return Error::of(ErrorClass::kUnknown,
                     "the state topic " + options_.topics.state + " has " +
                         std::to_string(*state_partitions) + " partitions and the jobs topic " +
                         options_.topics.jobs + " has " + std::to_string(*jobs_partitions) +
                         ": they must have as many (fanpull topics creates them so)");
  }
  // Readers see committed records only (librdkafka's default, made sure of with exactly_once).
  kafka::Properties committed = options_.properties;
  if (options_.exactly_once) committed["isolation.level"] = "read_committed";
  state_reader_ = std::make_unique<kafka::TopicScanner>(options_.bootstrap_servers, committed,
                                                        reader_log);
  if (options_.exactly_once) {
    kafka::Properties uncommitted = options_.properties;
    uncommitted["isolation.level"] = "read_uncommitted";
    durable_reader_ = std::make_unique<kafka::TopicScanner>(options_.bootstrap_servers,
                                                            uncommitted, reader_log);
    (void)durable_producer_->prepareTopic(options_.topics.state, std::chrono::seconds(10));
  }
  if (options_.token_store) {
    options_.token_store->attach(
        [this](int32_t partition, const std::string& key, const std::string& value) {
          return writeStateAcked(partition, key, value);
        },
        [this](int32_t partition, int64_t from, const StateTokenStore::Visit& visit) {
          kafka::ScanOptions scan;
          scan.from[partition] = from;
          scan.timeout = std::chrono::seconds(30);
          kafka::TopicScanner& reader = durable_reader_ ? *durable_reader_ : *state_reader_;
          return reader.scan(options_.topics.state, scan,
                                     [&visit](const kafka::ConsumedMessage& m) {
                                       visit(m.offset,
                                             m.key ? std::string_view(*m.key) : std::string_view(),
                                             m.value);
                                     });
        });
    // A worker with another key than the fleet's stops here, before it writes anything a
    // worker with the right key could not open.
    Result<std::string> problem = options_.token_store->checkKey();
    if (!problem.ok()) {
      log_.warn("state key not checked against the state topic (checked again at restores)",
                {{"error", problem.error().describe()}});
    } else if (!problem->empty()) {
      Error wrong = wrongStateKey(*problem);
      if (options_.on_fatal) options_.on_fatal(wrong);
      return wrong;
    }
  }
  events_reader_ = std::make_unique<kafka::TopicScanner>(options_.bootstrap_servers, committed,
                                                         reader_log);

  kafka::ConsumerOptions co;
  co.bootstrap_servers = options_.bootstrap_servers;
  co.group_id = options_.group_id;
  co.properties = kafka::withoutProducerOnly(options_.properties);
  co.on_assigned = [this](const std::vector<kafka::TopicPartition>& p) { onAssigned(p); };
  co.on_revoked = [this](const std::vector<kafka::TopicPartition>& p, bool lost) {
    onRevoked(p, lost);
  };
  co.log = [this](int level, const std::string& facility, const std::string& message) {
    if (level <= 4) log_.warn("kafka consumer: " + message, {{"facility", facility}});
  };
  co.on_commit = [this](const Result<std::vector<kafka::PartitionOffset>>& outcome) {
    onCommitted(outcome);
  };
  if (CallObserver* observer = options_.observer) {
    co.on_statistics = [observer](const std::string& json) {
      observer->observeConsumerStatistics(json);
    };
  }
  auto consumer = kafka::Consumer::create(co);
  if (!consumer.ok()) return consumer.error();
  consumer_ = std::move(consumer).value();
  auto subscribed = consumer_->subscribe({options_.topics.jobs});
  if (!subscribed.ok()) return subscribed.error();

  // What follows a delivery (checkpoints, the next step's scheduling, the end of a job) never
  // waits behind calls to WeChat, which hold the executor's threads for a whole answer.
  continuations_ = std::make_unique<Executor>(
      kContinuationThreads, clock_, [this](const std::string& what) {
        log_.error("a worker task threw; the worker goes on", {{"error", what}});
      });
  executor_ = std::make_unique<Executor>(
      options_.max_in_flight, clock_, [this](const std::string& what) {
        // Last resort (a job's own steps are guarded in schedule()): logged, the worker lives.
        log_.error("a worker task threw; the worker goes on", {{"error", what}});
      });
  poll_thread_ = std::thread([this] { pollLoop(); });
  LogFields started = {{"group", options_.group_id},
                       {"jobs_topic", options_.topics.jobs},
                       {"max_in_flight", options_.max_in_flight}};
  started.insert(started.end(), options_.started_fields.begin(), options_.started_fields.end());
  log_.info("worker started", started);
  return kafka::Done{};
}

void Worker::stop() {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  stopping_ = true;
  if (outbox_) outbox_->stop();
  if (durable_own_outbox_) durable_own_outbox_->stop();
  if (poll_thread_.joinable()) poll_thread_.join();
  if (executor_) executor_->stop();
  if (continuations_) continuations_->stop();
  stopped_ = true;
}

WorkerStats Worker::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  WorkerStats s = stats_;
  s.jobs_queued = static_cast<int64_t>(lanes_.queued());
  s.partitions_paused = paused_;
  s.lanes_active = static_cast<int64_t>(lanes_.lanes());
  s.assigned_partitions = static_cast<int64_t>(offsets_.size());
  s.state_unrestored = static_cast<int64_t>(unrestored_.size());
  if (outbox_) {
    OutboxStats o = outbox_->stats();
    s.produce_errors = o.produce_errors;
    s.produce_failures = o.produce_failures;
    s.undelivered_bytes = o.undelivered_bytes;
    s.unwritable_topics = std::move(o.unwritable_topics);
  }
  return s;
}

void Worker::count(std::map<std::string, int64_t> WorkerStats::*field, const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++(stats_.*field)[key];
}

// ---------------------------------------------------------------------------------------------
// The poll thread: jobs in, offsets out.

void Worker::pollLoop() {
  // Housekeeping runs on the machine's steady clock: it must not stall under a test clock.
  auto last_commit = std::chrono::steady_clock::now();
  auto last_reload = last_commit;
  auto last_restore = last_commit;
  auto last_buffers_check = last_commit;
  auto last_forget = last_commit;
  uint64_t answers_at_check = 0;
  while (!stopping_) {
    // Paused, nothing comes: a short wait, so the partitions resume as soon as jobs run out.
    bool paused = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      paused = paused_;
    }
    auto polled = consumer_->poll(std::chrono::milliseconds(paused ? 10 : 100));
    if (!polled.ok()) {
      log_.warn("kafka consumer error", {{"error", polled.error().describe()}});
    } else if (polled->has_value()) {
      onMessage(**polled);
    }
    auto now = std::chrono::steady_clock::now();
    bool producer_fatal = producer_->fatalError().has_value();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.poll_heartbeat_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
      stats_.producer_fatal = producer_fatal;
    }
    if (transactional_sink_) {
      if (now - last_transaction_ >= options_.transaction_interval) commitTransaction(false);
    } else if (now - last_commit >= options_.commit_interval) {
      commitOffsets(false);
      last_commit = now;
    }
    if (now - last_reload >= options_.tenants_reload_interval) {
      std::vector<TenantProblem> problems;
      auto reload = tenants_.reloadIfChanged(&problems);
      if (reload == TenantRegistry::Reload::kReloaded) {
        log_.info("tenants file reloaded",
                  {{"tenants", tenants_.current()->size()}});
      } else if (reload == TenantRegistry::Reload::kRejected) {
        for (const auto& p : problems) log_.error("tenants file rejected", {{"problem", p.describe()}});
      }
      last_reload = now;
    }
    if (now - last_restore >= std::chrono::seconds(2)) {
      std::vector<kafka::TopicPartition> unread;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        unread.assign(unrestored_.begin(), unrestored_.end());
      }
      if (!unread.empty()) restoreState(unread);
      last_restore = now;
    }
    if (now - last_buffers_check >= options_.idle_buffers_after) {
      // A quiet worker does not hold a busy spell's buffers: none was taken since the last look.
      const BufferPoolStats pool = BufferPool::bodies().stats();
      const uint64_t answers = pool.reused + pool.allocated;
      if (answers == answers_at_check && pool.kept_bytes > 0) {
        const size_t freed = BufferPool::bodies().releaseKept();
        log_.debug("answer buffers freed after a quiet spell", {{"bytes", freed}});
      }
      answers_at_check = answers;
      last_buffers_check = now;
    }
    if (now - last_forget >= kForgetIdleMerchantsEvery) {
      forgetIdleMerchants();
      last_forget = now;
    }
    updatePause();
  }
  shutdown();
}

void Worker::forgetIdleMerchants() {
  const TimePoint now = clock_.now();
  const TimePoint day_end = nextBeijingMidnight(now);
  std::set<std::string> busy;
  size_t reservations = 0;
  size_t quota_days = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Only this thread queues jobs in new lanes, so none becomes busy before the limiter below.
    busy = lanes_.appids();
    reservations = reservations_.forgetBefore(toUnixMs(day_end));
    quota_days = eraseIf(quota_asked_, [&](const auto& asked) { return asked.second < day_end; });
  }
  const size_t limits = limiter_.forgetIdle(now, busy);
  if (limits + reservations + quota_days == 0) return;
  log_.info("idle merchants forgotten", {{"limits", limits},
                                         {"reservations", reservations},
                                         {"quota_days", quota_days}});
}

void Worker::onMessage(const kafka::ConsumedMessage& m) {
  auto run = std::make_shared<Run>(options_.backoff);
  run->raw = m.value;
  run->topic = m.topic;
  run->partition = m.partition;
  run->offset = m.offset;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.jobs_received;
    offsets_.received({m.topic, m.partition}, m.offset);
  }
  Result<Job> job = parseJob(m.value);
  if (!job.ok()) {
    run->job = nameRejectedJob(m.value, m.key);
    reject(run, job.error());
    return;
  }
  run->job = job.value();

  std::optional<JobSource> queued;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto active = active_.find(run->job.job_id);
    if (active != active_.end()) {
      queued = JobSource{active->second->topic, active->second->partition,
                         active->second->offset};
    }
  }
  std::optional<ProgressRecord> record;
  if (!queued) record = state_.find(m.partition, run->job.job_id);
  const IntakeDecision intake =
      decideIntake(run->job, {m.topic, m.partition, m.offset}, queued, record);
  run->events_partition = intake.events_partition;
  run->events_offset = intake.events_offset;
  switch (intake.kind) {
    case IntakeDecision::Kind::kQueuedAlready:
      return;
    case IntakeDecision::Kind::kDuplicate: {
      log_.info("duplicate job ignored", {{"job_id", run->job.job_id}, {"appid", run->job.appid}});
      auto r = run;
      produceAll(run, {eventMessage(*run, "duplicate")},
                 [this, r] { finishOffset(r->topic, r->partition, r->offset); },
                 finishedInside(*run));
      count(&WorkerStats::jobs_by_status, "duplicate");
      return;
    }
    case IntakeDecision::Kind::kEndedAlready:
      // Delivered again after a restart: its outcome is already in the events topic.
      finishOffset(m.topic, m.partition, m.offset);
      return;
    case IntakeDecision::Kind::kSettleEnding:
      settleEnding(run, *record);
      return;
    case IntakeDecision::Kind::kResume:
      run->resumed = true;
      run->w().checkpointed = intake.from.seq;
      run->resume_at = intake.resume_at;
      break;
    case IntakeDecision::Kind::kStart:
      break;
  }
  // A walk from the beginning is made when it begins; one from a cursor or a checkpoint now.
  if (!(intake.from == WalkCheckpoint{})) run->w().walk = JobWalk(options_.backoff, intake.from);

  bool start_now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    active_[run->job.job_id] = run;
    start_now = lanes_.add(run->job.appid, run);
  }
  if (start_now) startFront(run);
}

std::vector<std::string> readinessProblems(const WorkerStats& stats) {
  std::vector<std::string> problems;
  if (stats.assigned_partitions == 0) problems.push_back("no jobs partition assigned yet");
  if (stats.producer_fatal) problems.push_back("the Kafka producer hit a fatal error");
  if (!stats.fatal_error.empty()) problems.push_back(stats.fatal_error);
  if (stats.state_unrestored > 0) {
    problems.push_back(std::to_string(stats.state_unrestored) +
                       " jobs partition(s) wait for their state partition to be read");
  }
  for (const auto& [topic, error] : stats.unwritable_topics) {
    problems.push_back("topic " + topic + " cannot be written: " + error);
  }
  return problems;
}

void Worker::finishOffset(const std::string& topic, int32_t partition, int64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  offsets_.finish({topic, partition}, offset);
}

void Worker::commitOffsets(bool sync) {
  // exactly_once: offsets are committed with the transaction (and a revocation or the stop
  // commits it at once).
  if (transactional_sink_) return commitTransaction(/*last=*/stopping_.load());
  // One asynchronous commit at a time: librdkafka 2.0 can send a commit held back by a
  // coordinator error after a later one, which would move the group's offset back. A commit
  // whose outcome has not come for 30 s no longer holds the next one.
  const auto now = std::chrono::steady_clock::now();
  if (!sync && commit_in_flight_ && now - commit_sent_ < std::chrono::seconds(30)) return;
  std::vector<kafka::PartitionOffset> offsets;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    offsets = offsets_.due();
  }
  if (offsets.empty()) return;
  // A synchronous commit waits for the coordinator at most kFinalStepTimeout, and while the
  // consumer closes, at most what is left of the close's time.
  auto timeout = kFinalStepTimeout;
  if (close_deadline_) {
    timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                             *close_deadline_ - std::chrono::steady_clock::now()),
                         std::chrono::milliseconds(100), kFinalStepTimeout);
  }
  auto done = sync ? consumer_->commit(offsets, timeout) : consumer_->commitAsync(offsets);
  if (!done.ok()) {
    log_.warn("offset commit failed", {{"error", done.error().describe()}});
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.commit_errors;
    return;
  }
  if (!sync) {
    commit_in_flight_ = true;
    commit_sent_ = now;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  offsets_.sent(offsets);
}

void Worker::commitTransaction(bool last) {
  // Nothing open: the stop committed the last one already (closing the consumer revokes the
  // partitions, which commits again).
  if (aborted_ || !in_transaction_) return;
  last_transaction_ = std::chrono::steady_clock::now();
  gate_.close();
  // Every group queued so far is in this transaction; none begins until the next one has.
  std::vector<kafka::PartitionOffset> offsets;
  bool moved = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    offsets = offsets_.positions();
    moved = !offsets_.due().empty();
  }
  const bool written = transactional_sink_->takeWritten();
  if (!written && !moved && !last) {
    gate_.open();
    return;
  }
  std::optional<Error> failed = transactional_sink_->doomed();
  if (!failed && !offsets.empty()) {
    // KIP-447: the group's generation fences a worker that lost these partitions; sent with
    // every commit, so that no transaction of such a worker commits.
    std::shared_ptr<const kafka::GroupMetadata> group = consumer_->groupMetadata();
    if (!group) {
      failed = Error::of(ErrorClass::kRetryable, "no consumer group metadata");
    } else if (auto sent = producer_->sendOffsetsToTransaction(offsets, *group,
                                                                std::chrono::seconds(30))) {
      failed = sent->error;
    }
  }
  if (!failed) {
    kafka::TxnOutcome committed;
    for (int attempt = 0; attempt < 3; ++attempt) {
      committed = producer_->commitTransaction(std::chrono::seconds(30));
      if (!committed || committed->next != kafka::TxnNext::kRetry) break;
    }
    if (committed) failed = committed->error;
  }
  if (failed) return abortClosedTransaction(*failed, {});
  in_transaction_ = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    offsets_.sent(offsets);
    ++stats_.transactions_committed;
    stats_.transaction_commit_ms += std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - last_transaction_)
                                        .count();
  }
  if (!last) {
    if (auto begun = producer_->beginTransaction()) {
      return abortClosedTransaction(begun->error, {});
    }
    in_transaction_ = true;
  }
  gate_.open();
}

void Worker::abortTransaction(const Error& why, const std::set<kafka::TopicPartition>& leaving) {
  if (aborted_) return;
  gate_.close();
  abortClosedTransaction(why, leaving);
}

void Worker::abortClosedTransaction(const Error& why,
                                    const std::set<kafka::TopicPartition>& leaving) {
  if (aborted_) {
    gate_.discardHeld();  // the producer is gone: nothing more is written
    gate_.open();
    return;
  }
  // No group may reach the transaction being aborted, nor the next one, from a run that was
  // under way: each is dropped as if its partition were lost (produceAll drops their groups).
  // The groups held during the commit are forgotten: all they belong to is done again from the
  // last committed transaction.
  gate_.discardHeld();
  std::vector<kafka::TopicPartition> held;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, run] : active_) {
      run->lost = true;
      run->cancelled = true;
    }
    for (const auto& tp : offsets_.partitions()) {
      if (!leaving.count(tp)) held.push_back(tp);
    }
  }
  log_.warn("transaction aborted; the worker goes back to the last committed one",
            {{"error", why.describe()}, {"partitions", held.size()}});
  auto aborted = producer_->abortTransaction(std::chrono::seconds(30));
  std::optional<kafka::TxnOutcome> begun;
  if (!aborted) {
    in_transaction_ = false;
    begun = producer_->beginTransaction();
  }
  if (aborted || *begun) {
    // The producer cannot go on (fenced, or broken): the worker stops.
    aborted_ = true;
    gate_.open();
    const Error& cause = aborted ? aborted->error : (*begun)->error;
    Error stop = Error::of(ErrorClass::kRetryable,
                           "a Kafka transaction could not be aborted and begun again (" +
                               cause.describe() +
                               "): the worker stops; started again it resumes from the last "
                               "committed transaction");
    log_.error("transaction aborted, producer unusable", {{"error", cause.describe()}});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stats_.fatal_error = stop.cause;
    }
    stopping_ = true;
    if (options_.on_fatal) options_.on_fatal(stop);
    return;
  }
  in_transaction_ = true;
  transactional_sink_->began();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.transactions_aborted;
  }
  gate_.open();
  log_.info("back at the last committed transaction", {{"partitions", held.size()}});
  if (held.empty()) return;
  // The partitions still held are taken back as lost and given again: read from what the
  // group committed, their state from the state topic, their jobs from their committed offsets.
  rewinding_ = true;
  onRevoked(held, /*lost=*/true);
  rewinding_ = false;
  std::vector<kafka::PartitionOffset> from;
  for (const auto& tp : held) {
    auto committed = consumer_->committed(tp, std::chrono::seconds(30));
    from.push_back({tp, committed.ok() && committed->has_value() ? **committed
                                                                   : kafka::kOffsetBeginning});
  }
  if (auto sought = consumer_->seek(from, std::chrono::seconds(10)); !sought.ok()) {
    log_.warn("jobs partitions not moved back to their committed offsets",
              {{"error", sought.error().describe()}});
  }
  onAssigned(held);
}

void Worker::onCommitted(const Result<std::vector<kafka::PartitionOffset>>& outcome) {
  commit_in_flight_ = false;
  if (!outcome.ok()) {
    // The commit failed after it was sent (a coordinator moving, a timeout): forget what was
    // counted as committed, so the next interval commits every partition again instead of
    // leaving the group's offsets behind until new jobs arrive.
    log_.warn("offset commit failed; committed again at the next interval",
              {{"error", outcome.error().describe()}});
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.commit_errors;
    offsets_.commitFailed();
    return;
  }
  // A commit that landed after a later one (a synchronous commit on revocation) moved the
  // group's offset back: commit the partition again at the next interval.
  std::vector<kafka::PartitionOffset> back;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    back = offsets_.landed(*outcome);
  }
  for (const auto& po : back) {
    log_.warn("an earlier offset commit landed last; committed again",
              {{"partition", po.partition.partition},
               {"offset", po.offset}});
  }
}

void Worker::updatePause() {
  bool pause = false;
  bool resume = false;
  std::vector<kafka::TopicPartition> assigned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Jobs deferred to another day do not count: they cannot keep the partitions paused.
    const size_t bound =
        options_.max_queued_jobs > 0
            ? options_.max_queued_jobs
            : static_cast<size_t>(kQueuedJobsPerCallInFlight) * options_.max_in_flight;
    if (!paused_ && lanes_.ready() >= bound) pause = true;
    if (paused_ && lanes_.ready() <= bound / 2) resume = true;
    assigned = offsets_.partitions();
  }
  if (assigned.empty() || (!pause && !resume)) return;
  if (resume) {
    std::lock_guard<std::mutex> lock(mutex_);
    // A partition whose state is not read yet stays paused.
    assigned.erase(std::remove_if(assigned.begin(), assigned.end(),
                                  [this](const kafka::TopicPartition& tp) {
                                    return unrestored_.count(tp) != 0;
                                  }),
                   assigned.end());
  }
  auto r = pause ? consumer_->pause(assigned) : consumer_->resume(assigned);
  if (!r.ok()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  paused_ = pause;
  log_.info(pause ? "jobs partitions paused: too many jobs queued" : "jobs partitions resumed",
            {{"queued", lanes_.queued()}, {"ready", lanes_.ready()}});
}

void Worker::onAssigned(const std::vector<kafka::TopicPartition>& partitions) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& tp : partitions) offsets_.assign(tp);
    stats_.assigned_partitions = static_cast<int64_t>(offsets_.size());
    if (paused_) (void)consumer_->pause(partitions);
  }
  log_.info("partitions assigned", {{"count", partitions.size()}});
  // The previous owner's checkpoints and the job ids it finished must be known before any job of
  // these partitions runs.
  restoreState(partitions);
}

void Worker::restoreState(const std::vector<kafka::TopicPartition>& partitions) {
  std::vector<kafka::TopicPartition> unread;
  for (const auto& tp : partitions) {
    auto restored = state_.restore(
        tp.partition, clock_.now(),
        durable_reader_
            ? transactionalPartitionReader(*state_reader_, *durable_reader_,
                                           options_.topics.state, tp.partition,
                                           std::chrono::seconds(30))
            : partitionReader(*state_reader_, options_.topics.state, tp.partition,
                              std::chrono::seconds(30)));
    if (!restored.ok() && restored.error().cause.rfind(kTransactionStillOpen, 0) == 0) {
      // Expected after a crash with exactly_once: tried again every 2 s meanwhile.
      log_.info("state partition waits for an open transaction to end; its jobs wait",
                {{"partition", tp.partition}, {"error", restored.error().cause}});
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.state_restores_unstable;
      unread.push_back(tp);
      continue;
    }
    if (!restored.ok()) {
      log_.error("state partition not restored; its jobs wait",
                 {{"topic", options_.topics.state},
                  {"partition", tp.partition},
                  {"error", restored.error().describe()}});
      unread.push_back(tp);
      continue;
    }
    int64_t tokens = 0;
    if (options_.token_store) {
      Result<TokenRestore> opened = options_.token_store->restore(tp.partition, restored->tokens);
      if (!opened.ok()) {
        // Not a reason to wait: no key but the right one will ever open these records, and
        // refreshing without them would fail every merchant of the partition with 61023.
        stopForWrongKey(tp, opened.error());
        unread.push_back(tp);
        continue;
      }
      tokens = opened->merchants;
      for (const auto& [appid, why] : opened->unreadable) {
        log_.error("a merchant's token record is dropped; its tokens are renewed from the "
                   "tenants file",
                   {{"appid", appid}, {"partition", tp.partition}, {"error", why}});
      }
      // Written back before any job of the partition runs, so that no newer record of a merchant
      // can land before its resealed old one.
      int64_t resealed = 0;
      for (const auto& [key, value] : opened->resealed) {
        Result<bool> written = writeStateAcked(tp.partition, key, value);
        if (written.ok()) {
          ++resealed;
        } else {
          log_.warn("a token record was not sealed again (the previous key still opens it)",
                    {{"partition", tp.partition}, {"error", written.error().describe()}});
        }
      }
      if (resealed > 0) {
        log_.info("token records sealed again with the current state key",
                  {{"partition", tp.partition}, {"records", resealed}});
      }
    }
    log_.info("state restored", {{"partition", tp.partition},
                                 {"tokens", tokens},
                                 {"records", restored->records},
                                 {"jobs", restored->jobs},
                                 {"expired", restored->expired.size()},
                                 {"ms", static_cast<int64_t>(restored->took.count())}});
    // What the merchants' previous owners reserved today counts as spent here.
    const TimePoint now = clock_.now();
    const int64_t today_end = toUnixMs(nextBeijingMidnight(now));
    for (const auto& [appid, calls] : restored->calls) {
      if (calls.day_end_ms != today_end) continue;
      limiter_.spendAtLeastToday(appid, now, calls.reserved);
      std::lock_guard<std::mutex> lock(mutex_);
      reservations_.acknowledged(appid, today_end, calls.reserved);
    }
    // Done records past their 7 days: tombstones, so that compaction removes them.
    for (const auto& key : restored->expired) {
      outbox_->send(key,
                    std::make_shared<Outgoing>(options_.topics.state, std::string(),
                                               kafka::Headers{}, key, tp.partition),
                    [](const Result<kafka::Delivery>&) {});
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.state_restores;
    stats_.token_records_restored += tokens;
    stats_.state_records_restored += restored->records;
    stats_.state_restore_ms += static_cast<int64_t>(restored->took.count());
    if (unrestored_.erase(tp) != 0 && !paused_) (void)consumer_->resume({tp});
  }
  if (unread.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& tp : unread) {
    // Still assigned (a revocation may have come in between).
    if (!offsets_.assigned(tp)) continue;
    unrestored_.insert(tp);
  }
  (void)consumer_->pause(unread);
}

Error Worker::wrongStateKey(const std::string& cause) const {
  return Error::of(ErrorClass::kUnknown, "the state key does not open the state topic " +
                                             options_.topics.state + ": " + cause);
}

void Worker::stopForWrongKey(const kafka::TopicPartition& tp, const Error& error) {
  const Error wrong = wrongStateKey(error.cause);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stats_.fatal_error.empty()) return;
    stats_.fatal_error = wrong.cause;
  }
  log_.error("the state key does not open the merchants' tokens in the state topic; no job runs",
             {{"partition", tp.partition}, {"error", error.cause}});
  if (options_.on_fatal) options_.on_fatal(wrong);
}

Result<bool> Worker::writeStateAcked(int32_t partition, const std::string& key,
                                     const std::string& value) {
  auto acked = std::make_shared<std::promise<Result<kafka::Delivery>>>();
  std::future<Result<kafka::Delivery>> outcome = acked->get_future();
  durable_outbox_->send(key,
                std::make_shared<Outgoing>(options_.topics.state, value, kafka::Headers{}, key,
                                           partition),
                [acked](const Result<kafka::Delivery>& d) { acked->set_value(d); });
  // At most 30 s; once the worker stops, 2 s (a record the outbox must try again is dropped).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::optional<std::chrono::steady_clock::time_point> stop_deadline;
  while (outcome.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    const auto now = std::chrono::steady_clock::now();
    if (stopping_ && !stop_deadline) stop_deadline = now + std::chrono::seconds(2);
    if (now >= deadline || (stop_deadline && now >= *stop_deadline)) {
      return Error::of(ErrorClass::kRetryable,
                       "the state record " + key + " was not acknowledged in time");
    }
  }
  Result<kafka::Delivery> delivered = outcome.get();
  if (!delivered.ok()) return delivered.error();
  return true;
}

void Worker::onRevoked(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  std::set<kafka::TopicPartition> revoked(partitions.begin(), partitions.end());
  std::vector<std::shared_ptr<Run>> runs;
  std::vector<std::shared_ptr<Run>> restart;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = active_.begin(); it != active_.end();) {
      if (revoked.count({it->second->topic, it->second->partition})) {
        it->second->lost = lost;
        it->second->cancelled = true;
        if (it->second->deferred) {
          --stats_.deferred;
          it->second->deferred = false;
        }
        runs.push_back(it->second);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    // Revoked jobs leave their lanes; a lane whose front left goes on with its next job.
    restart = lanes_.drop([](const std::shared_ptr<Run>& r) { return r->cancelled.load(); });
  }
  if (lost && transactional_sink_ && !rewinding_) {
    // exactly_once: the open transaction holds writes for partitions another worker may own
    // by now; it must never commit.
    abortTransaction(Error::of(ErrorClass::kRetryable, "partitions lost to the group"), revoked);
  }
  for (const auto& next : restart) startFront(next);
  // Calls in flight finish and their pages are delivered before the partitions go; while the
  // worker stops, only within what is left of its shutdown_timeout.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (drain_deadline_) deadline = std::min(deadline, *drain_deadline_);
  waitForRuns(runs, deadline);
  if (!lost) commitOffsets(true);
  for (const auto& tp : partitions) {
    state_.forget(tp.partition);
    if (options_.token_store) options_.token_store->forget(tp.partition);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& tp : partitions) {
    offsets_.revoke(tp);
    unrestored_.erase(tp);
  }
  log_.info(lost ? "partitions lost" : "partitions revoked",
            {{"count", partitions.size()}, {"jobs", runs.size()}});
}

void Worker::waitForRuns(const std::vector<std::shared_ptr<Run>>& runs,
                         std::chrono::steady_clock::time_point deadline) {
  // After an aborted transaction nothing more is written: no run is waited for.
  for (const auto& run : runs) {
    while (!aborted_ && (run->calling > 0 || run->pending > 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

void Worker::shutdown() {
  log_.info("worker stopping");
  auto deadline = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  drain_deadline_ = deadline;
  std::vector<std::shared_ptr<Run>> runs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, run] : active_) {
      run->cancelled = true;
      runs.push_back(run);
    }
  }
  waitForRuns(runs, deadline);
  // Both producers (with exactly_once, the durable one too) within what is left of the time.
  for (kafka::Producer* producer : {producer_.get(), durable_producer_.get()}) {
    if (producer == nullptr) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto flushed = producer->flush(std::max(left, std::chrono::milliseconds(100)));
    if (!flushed.ok()) log_.warn("producer not flushed", {{"error", flushed.error().describe()}});
  }
  // The last asynchronous commit's outcome first, so that it cannot land after the final one.
  // The partitions are paused meanwhile; a job polled anyway is left uncommitted for the next
  // owner.
  if (commit_in_flight_) {
    std::vector<kafka::TopicPartition> assigned;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      assigned = offsets_.partitions();
    }
    if (!assigned.empty()) (void)consumer_->pause(assigned);
    while (commit_in_flight_ && std::chrono::steady_clock::now() < deadline) {
      (void)consumer_->poll(std::chrono::milliseconds(50));
    }
  }
  commitOffsets(true);
  close_deadline_ = std::chrono::steady_clock::now() + kFinalStepTimeout;
  auto closed = consumer_->close(kFinalStepTimeout);
  if (!closed.ok()) log_.warn("consumer close", {{"error", closed.error().describe()}});
  // The token store outlives the worker (the token source holds it): nothing of this worker's
  // may be called through it any more.
  if (options_.token_store) options_.token_store->attach({}, {});
  log_.info("worker stopped");
}

// ---------------------------------------------------------------------------------------------
// Lanes and steps, on executor threads.

void Worker::startFront(const std::shared_ptr<Run>& run) {
  if (run->resume_at > clock_.now()) {
    // Read back deferred: it waits for its day as one deferred here would.
    std::lock_guard<std::mutex> lock(mutex_);
    markDeferredLocked(*run);
  }
  schedule(run, run->resume_at);
}

void Worker::markDeferredLocked(Run& run) {
  if (!run.deferred) ++stats_.deferred;
  run.deferred = true;
  lanes_.hold(run.job.appid, true);
}

void Worker::schedule(const std::shared_ptr<Run>& run, TimePoint when) {
  auto task = [this, run] { guardedStep(run); };
  if (when == TimePoint{} || when <= clock_.now()) {
    executor_->post(std::move(task));
  } else {
    executor_->postAt(when, std::move(task));
  }
}

void Worker::guardedStep(const std::shared_ptr<Run>& run) {
  std::string what;
  try {
    return step(run);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  // A bug or a broken dependency must not take the worker down with the job: the job fails
  // with class unknown and the others go on.
  log_.error("job step threw", {{"job_id", run->job.job_id},
                                {"appid", run->job.appid},
                                {"error", what}});
  if (run->cancelled || stopping_) return abandon(run);
  fail(run, Error::of(ErrorClass::kUnknown, "internal error: " + what));
}

void Worker::step(const std::shared_ptr<Run>& run) {
  if (run->deferred) {
    std::lock_guard<std::mutex> lock(mutex_);
    --stats_.deferred;
    run->deferred = false;
    lanes_.hold(run->job.appid, false);
  }
  if (run->cancelled || stopping_) return abandon(run);
  if (!run->begun && !begin(run)) return;
  if (auto lost = pageWriteError(*run)) return fail(run, *lost);
  callOnce(run);
}

bool Worker::begin(const std::shared_ptr<Run>& run) {
  run->begun = true;
  auto tenant = tenants_.admit(run->job.appid);
  if (!tenant.ok()) {
    const Error& e = tenant.error();
    if (e.error_class == ErrorClass::kInvalidTenant) {
      reject(run, e);  // not a merchant of this platform: no call, no started
    } else {
      // Known merchant that cannot be served (no permission set 2 / 100): zero calls.
      if (!run->resumed) {
        produceAll(run, startedMessages(*run), [] {});
        count(&WorkerStats::jobs_by_status, "started");
      }
      fail(run, e);
    }
    return false;
  }
  run->tenant = tenant.value();
  if (options_.token_store) options_.token_store->place(run->job.appid, run->partition);
  limiter_.setLimit(run->job.appid, run->tenant->rateLimit(options_.default_limit));
  // Before the started event, which says how many pages the merchant can still afford today.
  const TimePoint now = clock_.now();
  if (quotaDue(run->job.appid, now)) askQuota(run, now);
  if (!run->resumed) {
    produceAll(run, startedMessages(*run), [] {});
    count(&WorkerStats::jobs_by_status, "started");
    log_.info("job started", {{"job_id", run->job.job_id}, {"appid", run->job.appid}});
  } else {
    log_.info("job resumed", {{"job_id", run->job.job_id},
                              {"appid", run->job.appid},
                              {"seq", checkpointOf(*run).seq}});
  }
  return true;
}

bool Worker::withinUndeliveredBudget(const std::shared_ptr<Run>& run, int64_t reserve) {
  const bool started = checkpointOf(*run).seq > 0;  // before mutex_: walk_mutex comes first
  std::lock_guard<std::mutex> lock(mutex_);
  if (budget_.tryReserve(waitingLocked(), reserve, started, run)) return true;
  ++stats_.budget_waits;
  return false;
}

int64_t Worker::waitingLocked() const {
  return outbox_->undeliveredBytes() + gate_.heldBytes();
}


void Worker::releaseUndelivered(int64_t fetched) {
  std::vector<std::shared_ptr<Run>> wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wake = budget_.release(waitingLocked(), fetched);
  }
  if (stopping_) return;
  for (auto& run : wake) schedule(run, {});
}

void Worker::callOnce(const std::shared_ptr<Run>& run) {
  // Memory stays bounded whatever the number of merchants: no new page is fetched while too
  // much is waiting to be delivered. The answer being fetched counts in the budget as the page
  // it will likely become until the call is over and its page, if any, is produced: the
  // followers WeChat said are left, at the walk's previous page's size per OpenID (a full page,
  // a smaller last one, or the empty page that ends a list of whole pages), and for a walk's
  // first call, as recent first pages were. Not an average over every page: when many walks
  // end at once, their small last pages would bring it down to a few KB, and the calls it then
  // lets go would fetch full pages.
  const int64_t reserved = run->next_page_bytes > 0 ? run->next_page_bytes.load()
                                                    : first_page_bytes_.load();
  if (!withinUndeliveredBudget(run, reserved)) return;
  TimePoint now = clock_.now();
  // Once per merchant and Beijing day: how many calls WeChat still allows today, so no walk is
  // planned beyond it (a call WeChat would refuse with 45009 is not made).
  if (quotaDue(run->job.appid, now)) askQuota(run, now);
  // A call is recorded in the state topic before it is made, so that a crash, a restart or the
  // merchant's next owner never spends beyond the day's budget.
  if (!callReserved(run, now)) {
    releaseUndelivered(reserved);
    return;
  }
  Admission admission = limiter_.tryAcquire(run->job.appid, now);
  if (admission.kind == Admission::Kind::kWait) {
    releaseUndelivered(reserved);
    if (options_.observer) {
      options_.observer->observeRateLimitWait(
          std::chrono::duration<double>(admission.at - now).count());
    }
    return schedule(run, admission.at);
  }
  if (admission.kind == Admission::Kind::kQuotaExhausted) {
    releaseUndelivered(reserved);
    const bool wechat_quota = limiter_.cappedToday(run->job.appid, now);
    std::unique_lock<std::recursive_mutex> lock(run->w().walk_mutex);
    WalkNext next = run->w().walk.budgetSpent(admission.at, wechat_quota);
    lock.unlock();
    return afterDrained(run, next);
  }
  // Counts down however this call ends, an exception included (a stop waits for it).
  struct CallInProgress {
    CountedCall counted;
    Worker& worker;
    int64_t reserved;
    ~CallInProgress() { worker.releaseUndelivered(reserved); }
  } in_progress{CountedCall(run->calling), *this, reserved};
  Result<AccessToken> token = tokens_.current(*run->tenant);
  if (!token.ok()) return onError(run, token.error());
  run->w().token = token->value;
  auto call_started = std::chrono::steady_clock::now();
  Result<FollowerPage> page = client_.getFans(run->w().token, cursorOf(*run));
  if (options_.observer) {
    options_.observer->observeCall(
        page.ok() ? std::string_view("ok") : errorClassName(page.error().error_class),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - call_started).count());
  }
  // A paid answer is kept unless the partition was lost: a stop or an orderly revocation waits
  // for its page and checkpoint, so the next owner does not pay for it again.
  if (run->lost || (run->cancelled && !page.ok())) return abandon(run);
  if (page.ok()) {
    count(&WorkerStats::calls_by_class, "ok");
    onPage(run, *page);
  } else {
    count(&WorkerStats::calls_by_class, std::string(errorClassName(page.error().error_class)));
    onError(run, page.error());
  }
}

bool Worker::callReserved(const std::shared_ptr<Run>& run, TimePoint now) {
  const std::string& appid = run->job.appid;
  const int64_t limit = limiter_.dailyCalls(appid);
  if (limit <= 0) return true;  // no daily budget to keep
  const int64_t used = limiter_.usedToday(appid, now);
  CallsReserved record;
  record.appid = appid;
  record.day_end_ms = toUnixMs(nextBeijingMidnight(now));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    record.reserved = reservations_.toReserve(appid, record.day_end_ms, used, limit);
    if (record.reserved == 0) return true;
    ++stats_.calls_reservations;
  }
  run->pending++;  // a revocation or a stop waits for the reservation
  auto out = std::make_shared<Outgoing>(options_.topics.state, encodeCalls(record),
                                        kafka::Headers{}, callsStateKey(appid), run->partition);
  durable_outbox_->send(appid, std::move(out), [this, run, record](const Result<kafka::Delivery>& d) {
    if (d.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      reservations_.acknowledged(record.appid, record.day_end_ms, record.reserved);
    }
    std::optional<Error> failed;
    if (!d.ok()) failed = d.error();
    continuations_->post([this, run, failed] {
      if (run->cancelled) {
        abandon(run);
      } else if (failed) {
        // Given up by the outbox (a permanent error): no call may go unrecorded.
        fail(run, Error::of(ErrorClass::kUnknown, "the day's calls could not be reserved in " +
                                                      options_.topics.state + ": " +
                                                      failed->describe()));
      } else if (!stopping_) {
        schedule(run, {});
      }
      run->pending--;
    });
  });
  return false;
}

bool Worker::quotaDue(const std::string& appid, TimePoint now) {
  const TimePoint day_end = nextBeijingMidnight(now);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, inserted] = quota_asked_.emplace(appid, day_end);
  if (!inserted && it->second == day_end) return false;
  it->second = day_end;
  return true;
}

void Worker::askQuota(const std::shared_ptr<Run>& run, TimePoint now, const char* after) {
  // A call in flight (a revocation or a stop waits for it): it may renew the merchant's token.
  const CountedCall counted(run->calling);
  Result<AccessToken> token = tokens_.current(*run->tenant);
  if (!token.ok()) return;  // the call that follows meets the same problem and handles it
  Result<ApiQuota> quota = client_.getQuota(token->value);
  if (!quota.ok()) {
    // Not fatal: the configured budget and WeChat's 45009 still stop the walk.
    log_.warn("daily quota not known", {{"appid", run->job.appid},
                                        {"error", quota.error().describe()}});
    return;
  }
  limiter_.capToday(run->job.appid, now, quota->remain);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.quota_checks;
  }
  LogFields fields = {{"appid", run->job.appid},
                      {"daily_limit", quota->daily_limit},
                      {"used", quota->used},
                      {"remain", quota->remain}};
  if (after) fields.push_back({"after", after});
  log_.info("daily quota", fields);
}

void Worker::onPage(const std::shared_ptr<Run>& run, FollowerPage& page) {
  std::unique_lock<std::recursive_mutex> lock(run->w().walk_mutex);
  if (auto lost = pageWriteError(*run)) {
    lock.unlock();
    return fail(run, *lost);
  }
  WalkDecision decision = run->w().walk.answer(page);
  if (!decision.page) {
    lock.unlock();
    return afterDrained(run, decision.next);
  }
  // Produced as soon as it arrives (docs/CONTRACTS.md, Page); its checkpoint follows its delivery.
  const WalkPage out = *decision.page;
  const int64_t fetched = run->w().walk.fetchedOpenids();
  lock.unlock();
  auto r = run;
  const int64_t total = page.total;
  std::vector<Outgoing> messages = pageMessages(run, page, out.seq, out.last);
  const int64_t bytes = valueBytes(messages);
  // What the walk's next answer, and other walks' first ones, will likely cost.
  const int64_t next = UndeliveredBudget<std::shared_ptr<Run>>::nextPageEstimate(
      bytes, out.count, total, fetched);
  if (run->next_page_bytes.exchange(next) == 0) {
    int64_t estimate = first_page_bytes_.load();
    while (!first_page_bytes_.compare_exchange_weak(
        estimate, UndeliveredBudget<std::shared_ptr<Run>>::nextEstimate(estimate, bytes))) {
    }
  }
  if (transactional_sink_) {
    // exactly_once: the page and its checkpoint are one group of the transaction, so whatever
    // commits has both or neither; the last page's checkpoint is "ending" with the end event,
    // so that no restart walks past the end again.
    lock.lock();
    run->w().walk.delivered(out.seq);
    if (out.last) {
      run->w().ending_event = std::make_shared<Outgoing>(eventMessage(*run, "completed"));
      for (auto& m : checkpointMessages(*run, kProgressEnding, {}, run->w().ending_event->value)) {
        messages.push_back(std::move(m));
      }
    } else {
      for (auto& m : checkpointMessages(*run, kProgressRunning)) messages.push_back(std::move(m));
    }
    run->w().checkpointed = run->w().walk.checkpoint().seq;
    produceAll(run, std::move(messages),
               [this, r, out, total = page.total] { onPageSettled(r, out, total); });
    lock.unlock();
  } else {
    produceAll(run, std::move(messages),
               [this, r, out, total = page.total] { onPageSettled(r, out, total); });
  }
  if (run->cancelled) return abandon(run);
  if (decision.next != WalkNext::Kind::kCall) return afterDrained(run, decision.next);
  // Pipelined: the next call does not wait for this page's delivery, only for a delivered
  // checkpoint of every page before it, so a crash still costs at most this page and that call.
  lock.lock();
  const bool go = options_.pipeline_calls ? run->w().checkpointed >= out.seq
                                          : run->w().walk.undelivered() == 0;
  if (!go) {
    run->w().waiting = true;
    return;
  }
  lock.unlock();
  carryOut(run, decision.next);
}

void Worker::onPageSettled(const std::shared_ptr<Run>& run, const WalkPage& out, int64_t total) {
  if (run->lost) return abandon(run);
  if (transactional_sink_) {
    // exactly_once: the checkpoint went with the page (a failed delivery aborts the
    // transaction, and the worker with it); what is left is the progress line.
    if (run->cancelled || pageWriteError(*run)) return abandon(run);
    log_.info("page delivered", {{"job_id", run->job.job_id},
                                 {"appid", run->job.appid},
                                 {"seq", out.seq},
                                 {"count", out.count},
                                 {"pages", out.seq + 1},
                                 {"total", total}});
    return;
  }
  std::function<void()> wake;
  {
    std::lock_guard<std::recursive_mutex> lock(run->w().walk_mutex);
    if (run->cancelled) {
      // Stopped, or its partition handed over in order: nothing more is called or woken, but a
      // delivered page is checkpointed (the stop or the revocation waits for it), so the next
      // owner resumes after it instead of paying for it again.
      if (!pageWriteError(*run) && run->w().walk.delivered(out.seq) && !run->w().walk.over()) {
        const int64_t seq = run->w().walk.checkpoint().seq;
        auto r = run;
        produceAll(run, checkpointMessages(*run, kProgressRunning),
                   [this, r, seq] { onCheckpointed(r, seq); });
      }
      return abandon(run);
    }
    if (pageWriteError(*run)) {
      // A page given up never drains the walk: whatever waits goes on now and fails the job.
      if (run->w().waiting) {
        run->w().waiting = false;
        wake = [this, run] { schedule(run, {}); };
      } else if (run->w().on_drained) {
        wake = std::move(run->w().on_drained);
        run->w().on_drained = nullptr;
      }
    } else if (run->w().walk.delivered(out.seq)) {
      const WalkCheckpoint& at = run->w().walk.checkpoint();
      // The job's running totals, so a long walk shows its progress in the log.
      log_.info("page delivered", {{"job_id", run->job.job_id},
                                   {"appid", run->job.appid},
                                   {"seq", out.seq},
                                   {"count", out.count},
                                   {"pages", at.seq},
                                   {"openids", at.openids},
                                   {"total", total}});
      if (run->w().walk.undelivered() == 0 && run->w().on_drained) {
        wake = std::move(run->w().on_drained);
        run->w().on_drained = nullptr;
      } else if (!run->w().walk.over()) {
        if (!options_.pipeline_calls && run->w().waiting && run->w().walk.undelivered() == 0) {
          run->w().waiting = false;
          wake = [this, run] { schedule(run, {}); };
        }
        // Produced under the walk's lock, so checkpoints reach the topic in the walk's order.
        const int64_t seq = at.seq;
        auto r = run;
        produceAll(run, checkpointMessages(*run, kProgressRunning),
                   [this, r, seq] { onCheckpointed(r, seq); });
      }
    }
  }
  if (wake) wake();
}

void Worker::onCheckpointed(const std::shared_ptr<Run>& run, int64_t seq) {
  {
    std::lock_guard<std::recursive_mutex> lock(run->w().walk_mutex);
    run->w().checkpointed = std::max(run->w().checkpointed, seq);
    if (!options_.pipeline_calls) return;
    // The call after the newest page goes once every page before that page is checkpointed.
    if (!run->w().waiting || run->w().checkpointed < run->w().walk.emitted() - 1) return;
    run->w().waiting = false;
  }
  if (run->cancelled) return abandon(run);
  schedule(run, {});
}

void Worker::afterDrained(const std::shared_ptr<Run>& run, WalkNext next) {
  // Kept in the run itself until its pages drain: a weak reference, or the run would own itself
  // and never be freed when it is abandoned (revoked, or stopped) before they drain.
  std::weak_ptr<Run> weak = run;
  auto then = [this, weak, next = std::move(next)] {
    std::shared_ptr<Run> r = weak.lock();
    if (!r) return;
    if (r->cancelled) return abandon(r);
    if (auto lost = pageWriteError(*r)) return fail(r, *lost);
    carryOut(r, next);
  };
  {
    std::lock_guard<std::recursive_mutex> lock(run->w().walk_mutex);
    if (run->w().walk.undelivered() > 0 && !pageWriteError(*run)) {
      run->w().on_drained = std::move(then);
      return;
    }
  }
  then();
}

void Worker::onError(const std::shared_ptr<Run>& run, const Error& error) {
  TimePoint now = clock_.now();
  log_.debug("call failed", {{"job_id", run->job.job_id},
                             {"appid", run->job.appid},
                             {"error", error.describe()}});
  if (error.error_class == ErrorClass::kQuotaExhausted) {
    limiter_.markQuotaExhausted(run->job.appid, now);
    // The budget let this call go and WeChat refused it: someone else spent the merchant's
    // quota. What WeChat says is left is asked again (and logged) so that no plan of today goes
    // beyond it.
    if (error.errcode == 45009) askQuota(run, now, "45009");
  }
  if (auto lost = pageWriteError(*run)) return fail(run, *lost);
  WalkNext next;
  {
    std::lock_guard<std::recursive_mutex> walk_lock(run->w().walk_mutex);
    std::lock_guard<std::mutex> lock(random_mutex_);
    next = run->w().walk.error(error, now, random_);
  }
  if (error.error_class == ErrorClass::kRateLimited && next == WalkNext::Kind::kCall &&
      options_.observer) {
    options_.observer->observeThrottleWait(std::chrono::duration<double>(next.at - now).count());
  }
  // A deferral or a failure counts every page paid for: it waits for their delivery.
  if (next == WalkNext::Kind::kDefer || next == WalkNext::Kind::kFail) {
    return afterDrained(run, next);
  }
  carryOut(run, next);
}

void Worker::carryOut(const std::shared_ptr<Run>& run, const WalkNext& next) {
  switch (next.kind) {
    case WalkNext::Kind::kCall:
      return schedule(run, next.at);
    case WalkNext::Kind::kRenewToken: {
      Result<AccessToken> renewed = tokens_.renew(*run->tenant, run->w().token);
      WalkNext after;
      {
        std::lock_guard<std::recursive_mutex> walk_lock(run->w().walk_mutex);
        if (renewed.ok()) {
          run->w().token = renewed->value;
          after = run->w().walk.renewed();
        } else {
          std::lock_guard<std::mutex> lock(random_mutex_);
          after = run->w().walk.renewFailed(next.error, renewed.error(), clock_.now(), random_);
        }
      }
      if (after == WalkNext::Kind::kFail) return afterDrained(run, after);
      return carryOut(run, after);
    }
    case WalkNext::Kind::kDefer:
      return defer(run, next.at, next.error);
    case WalkNext::Kind::kFail:
      return fail(run, next.error);
    case WalkNext::Kind::kComplete:
      return complete(run);
  }
}

WalkCheckpoint Worker::checkpointOf(const Run& run) {
  std::lock_guard<std::recursive_mutex> lock(run.w().walk_mutex);
  return run.w().walk.checkpoint();
}

std::string Worker::cursorOf(const Run& run) {
  std::lock_guard<std::recursive_mutex> lock(run.w().walk_mutex);
  return run.w().walk.cursor();
}

std::optional<Error> Worker::pageWriteError(const Run& run) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!run.w().write_error) return std::nullopt;
  return Error::of(ErrorClass::kUnknown, "page " + std::to_string(checkpointOf(run).seq) +
                                                 " could not be written to " +
                                                 options_.topics.pages + ": " +
                                                 run.w().write_error->describe());
}

void Worker::complete(const std::shared_ptr<Run>& run) {
  auto r = run;
  end(run, eventMessage(*run, "completed"), kProgressCompleted, [this, r] {
    count(&WorkerStats::jobs_by_status, "completed");
    const WalkCheckpoint at = checkpointOf(*r);
    log_.info("job completed", {{"job_id", r->job.job_id},
                                {"appid", r->job.appid},
                                {"pages", at.seq},
                                {"openids", at.openids}});
    finish(r);
  });
}

void Worker::fail(const std::shared_ptr<Run>& run, const Error& error) {
  log_.warn("job failed", {{"job_id", run->job.job_id},
                           {"appid", run->job.appid},
                           {"error", error.describe()}});
  auto r = run;
  end(run, eventMessage(*run, "failed", error), kProgressFailed, [this, r] {
    count(&WorkerStats::jobs_by_status, "failed");
    finish(r);
  });
}

void Worker::end(const std::shared_ptr<Run>& run, Outgoing event, const std::string& state,
                 std::function<void()> then) {
  // Once "ending" is written the end goes through even if the partition is revoked meanwhile:
  // revocation waits for it, and whoever reads "ending" next looks for the event before writing.
  // exactly_once: a completed walk's last page wrote "ending" with its end event in the same
  // group; that event is the one written.
  if (transactional_sink_ && run->w().ending_event && state == kProgressCompleted) {
    event = *run->w().ending_event;
  }
  writeEnding(run, planEnding(transactional_sink_ != nullptr), 0,
              std::make_shared<Outgoing>(std::move(event)), state, std::move(then));
}

void Worker::writeEnding(const std::shared_ptr<Run>& run, EndingPlan plan, size_t group,
                         std::shared_ptr<Outgoing> event, const std::string& state,
                         std::function<void()> then) {
  // Built when its turn comes: the final checkpoint names where the event was delivered.
  std::vector<Outgoing> out;
  for (EndingWrite write : plan[group]) {
    switch (write) {
      case EndingWrite::kEndingCheckpoint:
        for (auto& m : checkpointMessages(*run, kProgressEnding, {}, event->value)) {
          out.push_back(std::move(m));
        }
        break;
      case EndingWrite::kEvent:
        out.push_back(*event);
        break;
      case EndingWrite::kFinalCheckpoint:
        for (auto& m : checkpointMessages(*run, state)) out.push_back(std::move(m));
        break;
    }
  }
  if (group + 1 == plan.size()) return produceAll(run, std::move(out), std::move(then));
  auto r = run;
  produceAll(run, std::move(out),
             [this, r, plan = std::move(plan), group, event, state, then = std::move(then)] {
               writeEnding(r, plan, group + 1, event, state, then);
             });
}

void Worker::settleEnding(const std::shared_ptr<Run>& run, const ProgressRecord& record) {
  nlohmann::json event = nlohmann::json::parse(record.end_event, nullptr, false);
  std::string status = event.is_object() ? event.value("status", "") : "";
  const std::string state = finalProgressState(status);
  run->w().walk = JobWalk(options_.backoff, {record.seq, record.cursor, record.openids});
  run->w().checkpointed = record.seq;
  run->begun = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    active_[run->job.job_id] = run;
  }
  run->pending++;  // a revocation waits for the settling
  executor_->post([this, run, record, status, state] {
    kafka::ScanOptions scan;
    if (record.events_partition >= 0) scan.from[record.events_partition] = record.events_offset;
    scan.timeout = std::chrono::seconds(30);
    bool found = false;
    auto scanned = events_reader_->scan(
        options_.topics.events, scan, [&](const kafka::ConsumedMessage& m) {
          if (found || m.value.find(run->job.job_id) == std::string::npos) return;
          nlohmann::json e = nlohmann::json::parse(m.value, nullptr, false);
          if (e.is_object() && e.value("job_id", "") == run->job.job_id &&
              e.value("status", "") == status) {
            found = true;
          }
        });
    if (!scanned.ok() || run->cancelled) {
      // Not settled here: the job's message stays unfinished, so whoever reads it next settles it.
      if (!scanned.ok()) {
        log_.warn("job end in doubt, not settled", {{"job_id", run->job.job_id},
                                                    {"appid", run->job.appid},
                                                    {"error", scanned.error().describe()}});
      }
      run->pending--;
      return;
    }
    log_.info(found ? "job end found written" : "job end written after a restart",
              {{"job_id", run->job.job_id}, {"appid", run->job.appid}, {"status", status}});
    auto r = run;
    writeEnding(run, planSettling(found), 0,
                std::make_shared<Outgoing>(options_.topics.events, record.end_event),
                state, [this, r, status, found] {
                  if (!found) count(&WorkerStats::jobs_by_status, status);
                  finish(r);
                });
    run->pending--;
  });
}

void Worker::defer(const std::shared_ptr<Run>& run, TimePoint until, const Error& error) {
  log_.info("job deferred", {{"job_id", run->job.job_id},
                             {"appid", run->job.appid},
                             {"retry_at", formatBeijing(until)},
                             {"error", error.describe()}});
  auto r = run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    markDeferredLocked(*run);
  }
  std::vector<Outgoing> out = checkpointMessages(*run, kProgressDeferred, until);
  out.push_back(eventMessage(*run, "deferred", error, until));
  produceAll(run, std::move(out),
             [this, r, until] {
               count(&WorkerStats::jobs_by_status, "deferred");
               {
                 // The deferral's record is a checkpoint of every page.
                 std::lock_guard<std::recursive_mutex> lock(r->w().walk_mutex);
                 r->w().checkpointed = std::max(r->w().checkpointed, r->w().walk.checkpoint().seq);
               }
               schedule(r, until);
             });
}

void Worker::reject(const std::shared_ptr<Run>& run, const Error& error) {
  log_.warn("job rejected", {{"job_id", run->job.job_id},
                             {"appid", run->job.appid},
                             {"error", error.describe()}});
  auto r = run;
  std::vector<Outgoing> out;
  Outgoing letter{options_.topics.dlq, run->raw,
                  deadLetterHeaders(error, run->topic, run->partition, run->offset)};
  // A job as large as the consumer allows may not fit what this producer writes: the dead
  // letter keeps what fits and says how long the original was.
  fitDeadLetter(&letter.value, &letter.headers, run->job.appid.size(),
                producer_->maxMessageBytes());
  out.push_back(std::move(letter));
  out.push_back(eventMessage(*run, "rejected", error));
  produceAll(
      run, std::move(out),
      [this, r] {
        count(&WorkerStats::jobs_by_status, "rejected");
        if (r->begun) {
          finish(r);
        } else {
          finishOffset(r->topic, r->partition, r->offset);
        }
      },
      finishedInside(*run));
}

std::function<void()> Worker::finishedInside(const Run& run) {
  // exactly_once: the job's offset is committed with the group that ends it; without
  // transactions it waits for the group's delivery (produceAll's `then`).
  if (!transactional_sink_) return {};
  return [this, topic = run.topic, partition = run.partition, offset = run.offset] {
    finishOffset(topic, partition, offset);
  };
}

void Worker::finish(const std::shared_ptr<Run>& run) {
  finishOffset(run->topic, run->partition, run->offset);
  releaseLane(run);
}

void Worker::abandon(const std::shared_ptr<Run>& run) {
  // Revocation or shutdown took the job away; it resumes from its last checkpoint elsewhere or
  // after a restart. The lane was already dropped by whoever cancelled.
  (void)run;
}

void Worker::releaseLane(const std::shared_ptr<Run>& run) {
  std::shared_ptr<Run> next;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto a = active_.find(run->job.job_id);
    if (a != active_.end() && a->second == run) active_.erase(a);
    // A run that is not its lane's running job (one settled after a restart, or one revoked and
    // dropped from its lane) hands nothing on: the lane's own job is running or scheduled.
    auto following = lanes_.finish(run->job.appid, run);
    if (!following) return;
    next = std::move(*following);
  }
  if (!stopping_) startFront(next);
}

// ---------------------------------------------------------------------------------------------
// Messages out.

std::vector<Worker::Outgoing> Worker::pageMessages(const std::shared_ptr<Run>& run,
                                                   FollowerPage& page, int64_t seq, bool last) {
  const int64_t openids = static_cast<int64_t>(page.size());
  std::vector<Outgoing> out = records_->page(run->job, page, seq, last);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.pages += 1;
    stats_.openids += openids;
  }
  return out;
}

std::vector<Worker::Outgoing> Worker::startedMessages(const Run& run) {
  std::vector<Outgoing> out{eventMessage(run, "started")};
  // exactly_once: with a checkpoint of no page in the same group, a restart finds the job
  // begun and does not announce it again.
  if (transactional_sink_) {
    for (auto& m : checkpointMessages(run, kProgressRunning)) out.push_back(std::move(m));
  }
  return out;
}

Worker::Outgoing Worker::eventMessage(const Run& run, const std::string& status,
                                      const std::optional<Error>& error,
                                      std::optional<TimePoint> retry_at) {
  const TimePoint now = clock_.now();
  std::optional<int64_t> affordable;
  if (status == "started" || status == "deferred") {
    affordable = limiter_.leftToday(run.job.appid, now);
  }
  return records_->event(run.job, checkpointOf(run), status, now, error, retry_at, affordable);
}

std::vector<Worker::Outgoing> Worker::checkpointMessages(const Run& run,
                                                         const std::string& state,
                                                         TimePoint retry_at,
                                                         const std::string& end_event) {
  const ProgressRecord p = JobRecords::progress(
      run.job, {run.topic, run.partition, run.offset}, checkpointOf(run), state, clock_.now(),
      {run.events_partition, run.events_offset}, retry_at, end_event);
  return records_->checkpoint(p, state_.apply(run.partition, p));
}

int64_t Worker::valueBytes(const std::vector<Outgoing>& messages) {
  int64_t bytes = 0;
  for (const auto& m : messages) bytes += static_cast<int64_t>(m.value.size());
  return bytes;
}

void Worker::produceAll(const std::shared_ptr<Run>& run, std::vector<Outgoing> messages,
                        std::function<void()> then, std::function<void()> inside) {
  if (transactional_sink_) {
    // One group of the open transaction: no commit comes between its messages. During a
    // commit it is held (its bytes in the undelivered budget) and written into the next one.
    const int64_t bytes = valueBytes(messages);
    auto group = std::make_shared<std::vector<Outgoing>>(std::move(messages));
    gate_.run(
        [this, run, group, then = std::move(then), inside = std::move(inside)]() mutable {
          // A run dropped by an abort writes nothing into the transactions that follow.
          if (run->lost) return;
          if (inside) inside();
          produceNow(run, std::move(*group), std::move(then));
        },
        bytes);
    return;
  }
  if (inside) inside();
  produceNow(run, std::move(messages), std::move(then));
}

void Worker::produceNow(const std::shared_ptr<Run>& run, std::vector<Outgoing> messages,
                        std::function<void()> then) {
  if (messages.empty()) {
    if (then) continuations_->post(std::move(then));
    return;
  }
  run->pending++;
  auto remaining = std::make_shared<std::atomic<size_t>>(messages.size());
  auto continuation = std::make_shared<std::function<void()>>(std::move(then));
  for (auto& m : messages) {
    const bool event = m.topic == options_.topics.events;
    const bool page = m.topic == options_.topics.pages;
    auto settled = [this, run, remaining, continuation, event, page](
                       const Result<kafka::Delivery>& d) {
      if (d.ok() && event) {
        // The job's first event: its end event, if any, is later in this partition.
        int64_t none = -1;
        if (run->events_offset.compare_exchange_strong(none, d->offset)) {
          run->events_partition = d->partition;
        }
      }
      if (!d.ok() && page && !transactional_sink_) {
        // A page that can never be written fails its job (checked before its next step). With
        // exactly_once it aborts the transaction instead, and the job goes back with it.
        std::lock_guard<std::mutex> lock(mutex_);
        if (!run->w().write_error) run->w().write_error = d.error();
      }
      if (--*remaining != 0) return;
      if (!*continuation) {
        run->pending--;
        return;
      }
      // Still pending until the continuation ran: a revocation waiting for this run also waits
      // for what the continuation produces.
      continuations_->post([run, continuation] {
        (*continuation)();
        run->pending--;
      });
    };
    outbox_->send(run->job.appid, std::make_shared<const Outgoing>(std::move(m)),
                  std::move(settled));
  }
}

}  // namespace fanpull
