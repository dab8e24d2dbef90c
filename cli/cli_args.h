// A small command-line parser for fanpull's subcommands: "--name VALUE", "--name=VALUE", boolean
// "--flag", one-letter aliases as Kafka's tools have them ("-b VALUE", "-bVALUE"), options that may
// repeat ("-X a=1 -X b=2"), "-" and other positionals. Unknown options are usage errors (exit code
// 2). Thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fanpull {

struct OptionSpec {
  std::string name;   // without the dashes: "config"
  std::string value;  // placeholder of its value ("FILE"); empty for a boolean flag
  std::string help;
  char short_name = 0;      // 'b' for "-b"; 0: none
  bool repeatable = false;  // every value is kept (getAll); otherwise the last one wins
};

class CliArgs {
 public:
  // Parses args (without the program and command names). Returns an error message, or empty.
  std::string parse(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string getOr(const std::string& name, const std::string& fallback) const;
  // Every value of a repeatable option, in order.
  std::vector<std::string> getAll(const std::string& name) const;
  // The option as an integer in [min, max]; an error message in *error otherwise.
  std::optional<long long> getInt(const std::string& name, long long fallback, long long min,
                                  long long max, std::string* error) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_values_;
  std::vector<std::string> positionals_;
};

// The options block of a --help text.
std::string formatOptions(const std::vector<OptionSpec>& specs);

}  // namespace fanpull
