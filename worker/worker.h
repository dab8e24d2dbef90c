// Worker: fanpull's main job. Consumes per-merchant jobs from the jobs topic (consumer group),
// runs each merchant's jobs in order in its own lane, walks the follower list with the rate
// limiter, token source and getFans client, and produces pages, progress checkpoints, events and
// dead letters (docs/CONTRACTS.md). Lanes that wait (rate limit, backoff, 45011, quota deferral) hold
// no thread; at most max_in_flight calls run at once. Offsets are committed only below the
// lowest unfinished job of each partition, and a checkpoint follows each delivered page into the
// state topic (the jobs partition's state partition, restored by whoever is assigned it next),
// so a restarted worker (or another one after a rebalance) resumes a job from its cursor.
// Thread-safe: start() and stop() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/worker_config.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rate_limiter.h"
#include "core/user_list_client.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/topic_scan.h"
#include "tenants/tenant_registry.h"
#include "tenants/token_source.h"
#include "worker/call_reservations.h"
#include "worker/executor.h"
#include "worker/job.h"
#include "worker/job_ending.h"
#include "worker/job_records.h"
#include "worker/job_walk.h"
#include "worker/lanes.h"
#include "worker/offset_tracker.h"
#include "worker/outbox.h"
#include "worker/state_store.h"
#include "worker/state_token_store.h"
#include "worker/transactions.h"

namespace fanpull {

class CallObserver;  // worker/metrics.h

struct WorkerOptions {
  std::string bootstrap_servers;
  std::string group_id = "fanpull";
  KafkaTopics topics;
  kafka::Properties properties;  // the config's kafka.properties
  size_t max_in_flight = 32;
  RateLimit default_limit;
  BackoffPolicy backoff;
  // kafka.max_queued_jobs: jobs ready to run here (running or queued, apart from those deferred
  // to another day), at most; at it the jobs partitions are paused, below half they resume.
  // 0: kQueuedJobsPerCallInFlight times max_in_flight (what kafka.max_queued_jobs defaults to).
  size_t max_queued_jobs = 0;
  // Produced but not yet delivered, at most (bytes): above it calls wait for deliveries, walks
  // already started before new ones, so memory does not grow with the merchants queued.
  int64_t max_undelivered_bytes = 16 * 1024 * 1024;
  // A lane's next call goes while its previous page is being delivered (once every page before
  // that one is checkpointed). False: it waits for the delivery (benchmarks compare the two).
  bool pipeline_calls = true;
  Duration shutdown_timeout = std::chrono::seconds(30);
  Duration commit_interval = std::chrono::seconds(1);
  // kafka.exactly_once (docs/RELIABILITY.md): pages, events, checkpoints and the input offsets
  // of finished jobs are written in transactions committed every transaction_interval; the
  // day's calls and the merchants' tokens are written outside them (an abort never undoes a
  // call WeChat counted or a token it rotated). Needs a Kafka cluster with transactions.
  bool exactly_once = false;
  Duration transaction_interval = std::chrono::milliseconds(100);
  Duration tenants_reload_interval = std::chrono::seconds(2);
  // Answers' buffers kept for reuse (up to max_undelivered_bytes) are freed once no large
  // answer has come for between this and twice this (machine time).
  Duration idle_buffers_after = std::chrono::seconds(60);
  Clock* clock = &SystemClock::instance();
  uint64_t seed = 0;  // 0: random
  CallObserver* observer = nullptr;  // call durations, limiter waits, consumer lag; null: none
  LogFields started_fields;  // added to the `worker started` line (version, configuration)
  // With a state key: where the merchants' tokens are kept (the token source saves to it); the
  // worker writes its records and feeds it each restored partition. Null: tokens stay elsewhere.
  StateTokenStore* token_store = nullptr;
  // Called once (on the poll thread) when the worker cannot go on: the state key does not open
  // the state topic's token records (class invalid_argument: do not restart as it is), or, with
  // exactly_once, a transaction was aborted (class retryable: restart, and the new worker
  // resumes from the last committed transaction).
  std::function<void(const Error&)> on_fatal;
};

// Counters for operators and tests.
struct WorkerStats {
  int64_t jobs_received = 0;
  std::map<std::string, int64_t> jobs_by_status;  // events produced, by status
  int64_t pages = 0;
  int64_t openids = 0;
  std::map<std::string, int64_t> calls_by_class;  // "ok" or an error class
  int64_t produce_errors = 0;
  int64_t produce_failures = 0;  // messages given up after a permanent error
  int64_t undelivered_bytes = 0;  // produced, not yet delivered (or given up)
  int64_t budget_waits = 0;       // calls that waited for deliveries (max_undelivered_bytes)
  int64_t quota_checks = 0;       // openapi/quota/get answers that capped a merchant's day
  int64_t commit_errors = 0;  // offset commits that failed (each is made again)
  // State partitions restored (docs/RELIABILITY.md, "State topic"), the records they held and
  // the time the restores took; partitions assigned whose state could not be read yet (their
  // jobs wait, and /readyz says so).
  int64_t state_restores = 0;
  int64_t state_records_restored = 0;
  int64_t state_restore_ms = 0;
  int64_t state_unrestored = 0;
  // Reservations of daily calls written to the state topic before the calls were made.
  int64_t calls_reservations = 0;
  int64_t lanes_active = 0;
  int64_t jobs_queued = 0;
  int64_t deferred = 0;
  bool partitions_paused = false;
  int64_t assigned_partitions = 0;
  int64_t poll_heartbeat_ms = 0;  // steady clock (ms) when the poll loop last turned; 0: not yet
  bool producer_fatal = false;    // the producer hit a fatal error (it cannot produce any more)
  std::string fatal_error;        // why the worker cannot go on (a wrong state key); "" none
  int64_t token_records_restored = 0;  // merchants' sealed tokens opened at restores
  // exactly_once: transactions committed, and restores that waited for a transaction still
  // open in a state partition (a crashed owner's, until the cluster aborts it).
  int64_t transactions_committed = 0;
  int64_t transactions_aborted = 0;  // each sends the worker back to the last committed one
  int64_t transaction_commit_ms = 0;  // time the commits took (groups meanwhile held), summed
  int64_t state_restores_unstable = 0;
  // Output topics that do not exist or may not be written, with the last error about each;
  // a topic leaves when a message to it is delivered.
  std::map<std::string, std::string> unwritable_topics;
};

// What keeps a worker with these stats from doing its work, one line each (no partition
// assigned, a fatal producer, a topic it cannot write): part of what /readyz answers.
std::vector<std::string> readinessProblems(const WorkerStats& stats);

class Worker {
 public:
  Worker(WorkerOptions options, TenantRegistry& tenants, TokenSource& tokens,
         UserListClient& client, Logger& log);
  ~Worker();

  // Creates the producer and the consumer, joins the group and starts polling in a thread of its
  // own; each jobs partition assigned has its state partition restored before its jobs run.
  // Errors: Kafka clients cannot be created (bad properties); the state topic's partition count
  // differs from the jobs topic's.
  Result<kafka::Done> start();

  // Graceful stop: no new jobs or calls, calls in flight finish, the producer is flushed, offsets
  // are committed and the group is left, within shutdown_timeout. Idempotent; returns when done.
  void stop();

  // True once the poll loop has ended (after stop(), or a fatal error).
  bool stopped() const { return stopped_.load(); }

  WorkerStats stats() const;

 private:
  struct Run;
  using Outgoing = OutboxRecord;

  void pollLoop();
  void onMessage(const kafka::ConsumedMessage& m);
  void onAssigned(const std::vector<kafka::TopicPartition>& partitions);
  void onRevoked(const std::vector<kafka::TopicPartition>& partitions, bool lost);
  void commitOffsets(bool sync);
  // exactly_once, on the poll thread: commits the open transaction with the input offsets of
  // every partition held (when it holds anything new) and, unless `last`, begins the next one.
  // A failure aborts it and stops the worker (abortTransaction()).
  void commitTransaction(bool last);
  // Aborts the open transaction and begins the next: every run is dropped as if its partition
  // were lost, and the partitions held (but `leaving`, being revoked) are taken back and given
  // again, from the group's committed offsets and the state topic. When the producer cannot
  // begin again (fenced, broken), on_fatal is told and the worker stops.
  void abortTransaction(const Error& why, const std::set<kafka::TopicPartition>& leaving);
  // abortTransaction() with the gate already closed by the committer (it opens it).
  void abortClosedTransaction(const Error& why, const std::set<kafka::TopicPartition>& leaving);
  void onCommitted(const Result<std::vector<kafka::PartitionOffset>>& outcome);
  void updatePause();
  // Poll thread, hourly: forgets the rate limits, call reservations and quota days of merchants
  // with no job here and nothing spent today (RateLimiter::forgetIdle), and every earlier day's
  // reservations and quota asks, so the worker's memory follows the merchants it serves these
  // days rather than every merchant it ever served.
  void forgetIdleMerchants();
  void shutdown();
  // Until none of `runs` has a call under way or a write not yet settled, the deadline passes,
  // or a transaction was aborted (nothing more is written then).
  void waitForRuns(const std::vector<std::shared_ptr<Run>>& runs,
                   std::chrono::steady_clock::time_point deadline);

  // The life of one job, on executor threads.
  // A lane's front job starts: at once, or at the retry time it was read back deferred to.
  void startFront(const std::shared_ptr<Run>& run);
  // `run`, its lane's front, waits for another day: counted deferred, its lane held. With mutex_.
  void markDeferredLocked(Run& run);
  void schedule(const std::shared_ptr<Run>& run, TimePoint when);
  void step(const std::shared_ptr<Run>& run);
  // False when the undelivered bytes are at max_undelivered_bytes: the run is parked until a
  // delivery frees room (started walks are woken first). True: `reserve` bytes are held for the
  // run's call (released by releaseUndelivered(0, reserve)).
  bool withinUndeliveredBudget(const std::shared_ptr<Run>& run, int64_t reserve);
  // A message was delivered or given up (the outbox counts its bytes), or a call that reserved
  // `fetched` bytes is over: wakes parked runs if there is room.
  void releaseUndelivered(int64_t fetched);
  // Bytes waiting to be delivered besides the calls' reservations (budget_): in the outbox and
  // (exactly_once) held during a commit. With mutex_ held.
  int64_t waitingLocked() const;
  // step(), failing the job (class unknown) instead of letting an exception escape.
  void guardedStep(const std::shared_ptr<Run>& run);
  bool begin(const std::shared_ptr<Run>& run);
  void callOnce(const std::shared_ptr<Run>& run);
  // True (once per merchant and Beijing day) when openapi/quota/get should be asked.
  bool quotaDue(const std::string& appid, TimePoint now);
  // Asks openapi/quota/get and caps the merchant's calls today at its `remain`. `after`: what
  // made it ask again the same day (logged), or null.
  void askQuota(const std::shared_ptr<Run>& run, TimePoint now, const char* after = nullptr);
  // An answer or an error of the call: the walk decides (worker/job_walk.h), carryOut() acts.
  // The page's OpenIDs go into its message (pageMessages); its other fields stay.
  void onPage(const std::shared_ptr<Run>& run, FollowerPage& page);
  void onError(const std::shared_ptr<Run>& run, const Error& error);
  void carryOut(const std::shared_ptr<Run>& run, const WalkNext& next);
  // A page of the run was delivered or given up: moves the checkpoint and writes it, or wakes
  // what waits for the walk to drain.
  void onPageSettled(const std::shared_ptr<Run>& run, const WalkPage& out, int64_t total);
  // A checkpoint covering `seq` pages was delivered: a call waiting for it may go.
  void onCheckpointed(const std::shared_ptr<Run>& run, int64_t seq);
  // Carries out `next` once every page produced is delivered (at once when none is pending).
  void afterDrained(const std::shared_ptr<Run>& run, WalkNext next);
  // The run's walk, read under its lock.
  static WalkCheckpoint checkpointOf(const Run& run);
  static std::string cursorOf(const Run& run);
  // The error that fails a job one of whose pages could not be written; nullopt when none.
  std::optional<Error> pageWriteError(const Run& run);
  // Every page delivered, the last included: writes the end of the job.
  void complete(const std::shared_ptr<Run>& run);
  void fail(const std::shared_ptr<Run>& run, const Error& error);
  // Writes the job's end event exactly once, as planEnding (worker/job_ending.h) orders it;
  // `then` runs after the last record is delivered.
  void end(const std::shared_ptr<Run>& run, Outgoing event, const std::string& state,
           std::function<void()> then);
  // Produces `plan`'s groups from `group` on, each once the one before it is delivered, building
  // each record when its turn comes; `state` is the final checkpoint's.
  void writeEnding(const std::shared_ptr<Run>& run, EndingPlan plan, size_t group,
                   std::shared_ptr<Outgoing> event, const std::string& state,
                   std::function<void()> then);
  // A job found "ending" after a restart or a rebalance: writes its end event unless the events
  // topic already has it, then checkpoints the final state and finishes the job's offset.
  void settleEnding(const std::shared_ptr<Run>& run, const ProgressRecord& record);
  void defer(const std::shared_ptr<Run>& run, TimePoint until, const Error& error);
  void reject(const std::shared_ptr<Run>& run, const Error& error);
  // Ends the job (its offset may be committed) and starts the next one of its lane.
  void finish(const std::shared_ptr<Run>& run);
  // The run stops without an outcome (revoked partition or shutdown).
  void abandon(const std::shared_ptr<Run>& run);
  // Drops a finished run from its lane and starts the lane's next job.
  void releaseLane(const std::shared_ptr<Run>& run);

  // The page's messages; a page that fits in one gives it its buffer (no copy).
  std::vector<Outgoing> pageMessages(const std::shared_ptr<Run>& run, FollowerPage& page,
                                     int64_t seq, bool last);
  // The started event, and with exactly_once a checkpoint of no page in the same group.
  std::vector<Outgoing> startedMessages(const Run& run);
  // exactly_once: finishes the run's offset inside the group that ends its job; empty without.
  std::function<void()> finishedInside(const Run& run);
  Outgoing eventMessage(const Run& run, const std::string& status,
                        const std::optional<Error>& error = std::nullopt,
                        std::optional<TimePoint> retry_at = std::nullopt);
  // A checkpoint: the job's record in the state topic (in its jobs partition's state partition,
  // kept by this worker's StateStore) and the same in the progress topic for observers.
  std::vector<Outgoing> checkpointMessages(const Run& run, const std::string& state,
                                           TimePoint retry_at = {},
                                           const std::string& end_event = "");
  // True when the call `run` is about to make is covered by the calls reserved today in the
  // state topic (or its merchant has no daily budget). Otherwise writes a larger reservation and
  // returns false: the step runs again once the reservation is acknowledged.
  bool callReserved(const std::shared_ptr<Run>& run, TimePoint now);
  // Restores the state partitions of `partitions` (poll thread); those that cannot be read stay
  // paused and are tried again by the poll loop.
  void restoreState(const std::vector<kafka::TopicPartition>& partitions);
  // Writes one state record to `partition` and waits (30 s at most) for its acknowledgement:
  // StateTokenStore's writer.
  // The state key does not open partition `tp`'s token records (the partition stays unrestored,
  // so no job of it runs): /readyz says why, and on_fatal is told (once).
  void stopForWrongKey(const kafka::TopicPartition& tp, const Error& error);
  // The error a wrong state key stops the worker with (at start or at a restore).
  Error wrongStateKey(const std::string& cause) const;
  Result<bool> writeStateAcked(int32_t partition, const std::string& key, const std::string& value);
  // Sends every message through the outbox, then runs `then` on continuations_.
  // With exactly_once the messages are one group of the open transaction, and `inside` (if
  // any) runs before the group ends (e.g. finishing the job's offset, so that the offset is
  // committed with the event and not one transaction later).
  // During a commit the group is held and written when the next transaction has begun.
  void produceAll(const std::shared_ptr<Run>& run, std::vector<Outgoing> messages,
                  std::function<void()> then, std::function<void()> inside = {});
  void produceNow(const std::shared_ptr<Run>& run, std::vector<Outgoing> messages,
                  std::function<void()> then);
  // The bytes of the messages' values (what the undelivered budget counts).
  static int64_t valueBytes(const std::vector<Outgoing>& messages);
  void finishOffset(const std::string& topic, int32_t partition, int64_t offset);
  void count(std::map<std::string, int64_t> WorkerStats::*field, const std::string& key);

  const WorkerOptions options_;
  TenantRegistry& tenants_;
  TokenSource& tokens_;
  UserListClient& client_;
  Logger& log_;
  Clock& clock_;
  RateLimiter limiter_;
  StateStore state_;
  std::optional<JobRecords> records_;  // once the producer says how large a message may be

  // Declared before the producer, so they outlive the delivery reports it serves as it closes.
  // With exactly_once, sink_ is transactional and durable_outbox_ (a second, plain producer)
  // writes what an abort must never undo; without, durable_outbox_ is outbox_.
  TransactionGate gate_;
  std::unique_ptr<RecordSink> sink_;
  TransactionalRecordSink* transactional_sink_ = nullptr;  // sink_, with exactly_once
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<RecordSink> durable_sink_;
  std::unique_ptr<Outbox> durable_own_outbox_;
  Outbox* durable_outbox_ = nullptr;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::Producer> durable_producer_;
  std::unique_ptr<kafka::Consumer> consumer_;
  // Readers kept for the worker's life (see TopicScanner): the state topic, read on the poll
  // thread, and the events topic, read by settles on executor threads.
  std::unique_ptr<kafka::TopicScanner> state_reader_;
  std::unique_ptr<kafka::TopicScanner> events_reader_;
  // exactly_once: the state topic read uncommitted, for the records written outside
  // transactions (calls, tokens), which a transaction left open would otherwise hide.
  std::unique_ptr<kafka::TopicScanner> durable_reader_;
  std::unique_ptr<Executor> executor_;  // job steps: max_in_flight threads, one call each
  // What runs after a delivery (never a call to WeChat): kContinuationThreads threads.
  std::unique_ptr<Executor> continuations_;
  static constexpr size_t kContinuationThreads = 2;
  std::thread poll_thread_;

  mutable std::mutex mutex_;  // guards everything below
  Lanes<std::shared_ptr<Run>> lanes_;
  std::map<std::string, std::shared_ptr<Run>> active_;        // by job_id: queued or running
  std::map<std::string, TimePoint> quota_asked_;  // by appid: end of the Beijing day last asked
  OffsetTracker offsets_;                                      // jobs topic partitions
  std::set<kafka::TopicPartition> unrestored_;  // assigned, state not read yet: kept paused
  CallReservations reservations_;  // the daily calls the state topic acknowledged
  std::mutex random_mutex_;                                    // guards random_
  SeededRandom random_;
  WorkerStats stats_;
  bool paused_ = false;
  // Calls under way reserve their page's likely bytes in it (their answers not produced yet).
  UndeliveredBudget<std::shared_ptr<Run>> budget_;
  // The bytes a walk's first page is likely to take, from the first pages produced so far
  // (UndeliveredBudget::nextEstimate; a full page before any).
  std::atomic<int64_t> first_page_bytes_{
      UndeliveredBudget<std::shared_ptr<Run>>::kFirstPageEstimate};

  // Poll thread only: an asynchronous offset commit whose outcome has not come yet, and when
  // it was sent.
  bool commit_in_flight_ = false;
  std::chrono::steady_clock::time_point commit_sent_;
  // Poll thread only, once shutdown() has begun: until when runs may be waited for, and until
  // when the consumer's close (and the revocation's commit inside it) may take.
  std::optional<std::chrono::steady_clock::time_point> drain_deadline_;
  std::optional<std::chrono::steady_clock::time_point> close_deadline_;

  // exactly_once, poll thread: when the last transaction was committed.
  std::chrono::steady_clock::time_point last_transaction_;
  bool in_transaction_ = false;  // one was begun and not committed or aborted yet
  bool rewinding_ = false;       // abortTransaction() is giving the partitions held again
  std::atomic<bool> aborted_{false};  // a transaction was aborted: nothing more is written

  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::mutex stop_mutex_;  // serializes stop()
};

}  // namespace fanpull
