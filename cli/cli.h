// fanpull's command line: one executable, one subcommand per job (docs/CONTRACTS.md, "Commands").
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fanpull {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Runs `fanpull ARGS...` (args[0] is the command name). Writes to out/err, returns the exit code.
int runCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace fanpull
