#include "cli/cli.h"

#include <functional>
#include <ostream>

#include "cli/cli_args.h"
#include "cli/client_options.h"
#include "cli/commands.h"
#include "core/version.h"
#include "kafka/kafka_types.h"

namespace fanpull {
namespace {

using Handler = std::function<int(const CliArgs&, std::ostream&, std::ostream&)>;

struct Command {
  std::string name;
  std::string synopsis;  // after "fanpull NAME"
  std::string summary;   // one line for the command list
  std::string description;
  std::vector<OptionSpec> options;
  Handler handler;  // empty: not yet available in this build
};

const OptionSpec kHelp{"help", "", "show this help and exit"};
const OptionSpec kConfig{"config", "FILE", "the worker configuration (JSON, see README)"};

// A command's own options after `common`, then --help.
std::vector<OptionSpec> withHelp(std::vector<OptionSpec> common,
                                 const std::vector<OptionSpec>& own) {
  common.insert(common.end(), own.begin(), own.end());
  common.push_back(kHelp);
  return common;
}

std::vector<Command> commands() {
  return {
      {"run", "--config FILE",
       "the worker: consume jobs, pull followers, produce pages and events",
       "Consumes per-merchant jobs from the jobs topic, calls WeChat's getFans for each merchant\n"
       "with its rate limit and token, and produces pages, progress and events until SIGTERM or\n"
       "SIGINT. Secrets may come from the environment: FANPULL_COMPONENT_APPSECRET, and\n"
       "FANPULL_STATE_KEY (base64 of 32 bytes; the same on every worker), which seals the\n"
       "merchants' tokens kept in the state topic so that workers on any machine can take\n"
       "over each other's merchants (FANPULL_STATE_PREVIOUS_KEY while rotating it). Exits 2\n"
       "on a configuration problem, also one found once running (a state key that does not\n"
       "open the state topic's tokens).",
       {kConfig, kHelp},
       runCommand},
      {"demo", "[--json] [--seed N]",
       "run everything embedded on demo merchants, with progress and a summary",
       "Runs everything embedded in this process: a Kafka-protocol broker, the WeChat sandbox with\n"
       "20 demo merchants (0 to 250,000 followers; one answering 40013, one without permission\n"
       "set 2 or 100, one running out of daily quota, one whose token expires mid-walk, one behind\n"
       "a flaky API) and a worker. Enqueues a job per merchant, reads the pages back like a\n"
       "downstream consumer (every OpenID checked against the sandbox), shows live progress (bars\n"
       "on a terminal, one line per job event otherwise) and ends with a summary table. Exits 0\n"
       "when every merchant ended as designed.",

       {{"json", "", "print the summary as JSON instead of a table"},
        {"seed", "N", "seed of the sandbox's fault injection (default 1)"},
        kHelp},
       demoCommand},
      {"broker", "[--brokers N] [--partitions N]",
       "an embedded Kafka-protocol broker for development and tests",
       "Runs librdkafka's mock cluster, prints bootstrap.servers on the first stdout line and\n"
       "serves until SIGTERM or SIGINT. For development and tests only: it keeps just the last\n"
       "5 MiB of each partition (about 16 pages of 10,000 OpenIDs; older pages are gone, so\n"
       "`collect` finds them missing), never compacts, creates any topic asked for, and cannot\n"
       "honour transactions. Use a real Kafka cluster for anything else (see `fanpull topics`).",
       {{"brokers", "N", "number of brokers (default 3)"},
        {"partitions", "N",
         "partitions of the fanpull.* topics created at start (default 4; other topics get 4)"},
        kHelp},
       brokerCommand},
      {"sandbox", "[--listen HOST:PORT] [--accounts FILE | --demo]",
       "the WeChat API emulator (user/get, component tokens, faults, stats)",
       "Serves WeChat's user/get and third-party platform token endpoints for the accounts of\n"
       "FILE (or the demo accounts), with faults on demand and a stats endpoint. Prints its base\n"
       "URL on the first stdout line and serves until SIGTERM or SIGINT. Listens on loopback\n"
       "unless told otherwise.",
       {{"listen", "HOST:PORT", "address to listen on (default 127.0.0.1:0, a free port)"},
        {"accounts", "FILE", "accounts file (JSON, see README)"},
        {"demo", "", "serve the generated demo accounts"},
        {"tls-cert", "FILE", "serve HTTPS with this certificate (PEM); needs --tls-key"},
        {"tls-key", "FILE", "private key (PEM) of --tls-cert"},
        {"latency-ms", "N", "fixed latency added to every API answer (default 0)"},
        {"jitter-ms", "N", "random extra latency, uniform in [0, N] (default 0)"},
        {"seed", "N", "seed of the random faults, jitter and issued tokens (default 1)"},
        kHelp},
       sandboxCommand},
      {"enqueue",
       "(-b HOST:PORT [-X KEY=VALUE]... [-t TOPIC] | --config FILE) "
       "(--appid APPID [--job-id ID] [--next-openid CURSOR] | -)",
       "produce one job (or JSON lines from stdin with -)",
       "Produces jobs to the jobs topic (-t, else kafka.topics.jobs of --config, else\n"
       "fanpull.jobs) at -b (else kafka.bootstrap_servers of --config), keyed by appid, with an\n"
       "idempotent producer, and waits for every delivery (up to 30 s). -X sets a librdkafka\n"
       "property (security.protocol, sasl.*, ssl.*, ...) on top of the config's kafka.properties.\n"
       "One job from the flags, or with - one job a line from stdin as JSON:\n"
       "  {\"job_id\": \"j-0001\", \"appid\": \"wx1234567890abcdef\", \"next_openid\": \"\"}\n"
       "(blank lines are skipped; each job is produced in that canonical form). Every job is\n"
       "validated before anything is produced: a bad value or line (\"line 3: bad_job: ...\"), a\n"
       "job_id repeated in the input, a property librdkafka refuses or a configuration problem\n"
       "produces nothing and exits 2.\n"
       "Prints one line per job: JOB_ID APPID partition P offset O. Exit 0 when every job was\n"
       "written, 1 when a delivery failed (the failures are listed on stderr).\n"
       "Example: fanpull enqueue -b kafka1:9092 -X security.protocol=SSL --appid wx1234567890abcdef",
       withHelp(clientKafkaOptions("the jobs topic (default: kafka.topics.jobs of --config, else "
                                   "fanpull.jobs)"),
                {{"appid", "APPID", "the merchant's appid (1-64 of A-Z a-z 0-9 _ -)"},
                 {"job-id", "ID", "job id, 1-128 of A-Za-z0-9._:- (default: j-<UTC time>-<hex>)"},
                 {"next-openid", "CURSOR",
                  "start cursor, an OpenID (default: from the first follower)"}}),
       enqueueCommand},
      {"collect",
       "(-b HOST:PORT [-X KEY=VALUE]... [-t TOPIC] | --config FILE) --job-id ID [--out FILE] "
       "[--timeout SECONDS]",
       "reassemble one job's followers from the pages topic and verify them",
       "A reference downstream consumer: reads every partition of the pages topic (-t, else\n"
       "kafka.topics.pages of --config, else fanpull.pages) at -b (else the config's bootstrap\n"
       "servers) from the beginning, without a consumer group and read_committed,\n"
       "keeps the pages of job ID, drops exact repeats of a (job_id, seq[, part]) and waits until\n"
       "it has the page marked last and every seq (and part) below it. It checks that repeats are\n"
       "identical, counts match the OpenIDs, parts are whole and the appid never changes.\n"
       "Prints a summary (job, appid, pages, openids, duplicates dropped, total, status and any\n"
       "problem). Exit 0 when complete; 1 when incomplete at the timeout (the missing seqs are\n"
       "named) or inconsistent (the reason is named); 2 for a usage or configuration error.\n"
       "--out gets the OpenIDs in seq then part order, one a line, only when the job is complete;\n"
       "it is written to a temporary file beside FILE, then renamed over FILE.\n"
       "Example: fanpull collect -b kafka1:9092 --job-id j-0001 --out followers.txt",
       withHelp(clientKafkaOptions("the pages topic (default: kafka.topics.pages of --config, "
                                   "else fanpull.pages)"),
                {{"job-id", "ID", "the job to collect"},
                 {"out", "FILE", "when complete, write the OpenIDs to FILE (default: summary only)"},
                 {"timeout", "SECONDS",
                  "how long to wait for the job to be complete (default 60)"}}),
       collectCommand},
      {"check-config", "--config FILE",
       "validate the configuration; print every problem with file, key and reason",
       "Reads the worker configuration and reports every problem (file, key, reason).\n"
       "Exit 0 when it is valid, 1 when it has problems.",
       {kConfig, kHelp},
       checkConfigCommand},
      {"topics", "--config FILE [--partitions N] [--replication N] [--check]",
       "create the config's topics on a real cluster, or check them",
       "Creates the topics the configuration names (kafka.topics: jobs, pages, events, dlq,\n"
       "progress and state) through the Kafka admin API, leaving any that exist as they are: N\n"
       "partitions each, the state topic compacted and with the jobs topic's partition count.\n"
       "Then checks them all, or with --check only checks: a missing topic, a state topic that is\n"
       "not compacted or not co-partitioned with the jobs topic, a pages or dlq topic whose\n"
       "max.message.bytes is below the producer's message.max.bytes. Prints what it did and every\n"
       "problem with its fix. Exit 0 when every topic is ready, 1 when something is wrong or the\n"
       "cluster cannot be reached, 2 for a usage or configuration error.",
       {kConfig,
        {"partitions", "N", "partitions of each new topic (default 12; state: as the jobs topic)"},
        {"replication", "N", "replication factor of new topics (default: min(3, brokers))"},
        {"check", "", "only check; create nothing"},
        kHelp},
       topicsCommand},
  };
}

void printUsage(std::ostream& os) {
  os << "fanpull: pulls WeChat follower lists for many merchants, from Kafka jobs to Kafka pages.\n\n"
        "Usage: fanpull COMMAND [OPTIONS]   (fanpull COMMAND --help for a command's options)\n\n"
        "Commands:\n";
  for (const auto& c : commands()) {
    std::string left = "  " + c.name;
    left.resize(16, ' ');
    os << left << c.summary << (c.handler ? "" : " [not yet available]") << "\n";
  }
  os << "\nExit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n";
}

void printCommandHelp(const Command& c, std::ostream& os) {
  os << "Usage: fanpull " << c.name << " " << c.synopsis << "\n\n" << c.description << "\n";
  if (!c.handler) os << "\nThis command is not yet available in this build.\n";
  os << "\n" << formatOptions(c.options);
}

}  // namespace

int runCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    printUsage(err);
    return kExitUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    printUsage(out);
    return kExitOk;
  }
  if (name == "--version") {
    out << "fanpull " << fanpullVersion() << " (revision " << fanpullRevision() << ", librdkafka "
        << kafka::librdkafkaVersion() << ")\n";
    return kExitOk;
  }
  for (const auto& c : commands()) {
    if (c.name != name) continue;
    CliArgs parsed;
    std::string problem =
        parsed.parse(std::vector<std::string>(args.begin() + 1, args.end()), c.options);
    if (parsed.has("help")) {
      printCommandHelp(c, out);
      return kExitOk;
    }
    if (!problem.empty()) {
      err << "fanpull " << c.name << ": " << problem << "\n(see fanpull " << c.name
          << " --help)\n";
      return kExitUsage;
    }
    if (!c.handler) {
      err << "fanpull " << c.name << ": not yet available in this build\n";
      return kExitFailure;
    }
    return c.handler(parsed, out, err);
  }
  err << "fanpull: unknown command \"" << name << "\"\n\n";
  printUsage(err);
  return kExitUsage;
}

}  // namespace fanpull
