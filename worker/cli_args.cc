#include "worker/cli_args.h"

#include <cerrno>
#include <cstdlib>

namespace fanpull {

std::string CliArgs::parse(const std::vector<std::string>& args,
                           const std::vector<OptionSpec>& specs) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) return "unknown option --" + name;
    if (spec->value.empty()) {
      if (inline_value) return "--" + name + " takes no value";
      values_[name] = "true";
    } else if (inline_value) {
      values_[name] = *inline_value;
    } else {
      if (i + 1 >= args.size()) return "--" + name + " needs a value (" + spec->value + ")";
      values_[name] = args[++i];
    }
  }
  return "";
}

std::optional<std::string> CliArgs::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string CliArgs::getOr(const std::string& name, const std::string& fallback) const {
  auto v = get(name);
  return v ? *v : fallback;
}

std::optional<long long> CliArgs::getInt(const std::string& name, long long fallback,
                                         long long min, long long max, std::string* error) const {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    *error = "--" + name + " expects an integer from " + std::to_string(min) + " to " +
             std::to_string(max) + ", got \"" + *v + "\"";
    return std::nullopt;
  }
  return n;
}

std::string formatOptions(const std::vector<OptionSpec>& specs) {
  std::string out = "Options:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.value.empty() ? "" : " " + s.value);
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    out += left + s.help + "\n";
  }
  return out;
}

}  // namespace fanpull
