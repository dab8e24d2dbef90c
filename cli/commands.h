// The subcommands behind runCli(). Each receives its parsed options and returns an exit code.
#pragma once

#include <iosfwd>

#include "cli/cli_args.h"

namespace fanpull {

int runCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int sandboxCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int demoCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int brokerCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int checkConfigCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int enqueueCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int topicsCommand(const CliArgs& args, std::ostream& out, std::ostream& err);
int collectCommand(const CliArgs& args, std::ostream& out, std::ostream& err);

}  // namespace fanpull
