#include "cli/cli_args.h"

#include <cerrno>
#include <cstdlib>

namespace fanpull {

std::string CliArgs::parse(const std::vector<std::string>& args,
                           const std::vector<OptionSpec>& specs) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool is_long = a.size() >= 3 && a.compare(0, 2, "--") == 0;
    const bool is_short = !is_long && a.size() >= 2 && a[0] == '-' && a[1] != '-';
    if (!is_long && !is_short) {
      positionals_.push_back(a);
      continue;
    }
    const OptionSpec* spec = nullptr;
    std::string shown;  // the option as the user wrote it, for messages
    std::optional<std::string> inline_value;
    if (is_long) {
      std::string name = a.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      for (const auto& s : specs) {
        if (s.name == name) spec = &s;
      }
      shown = "--" + name;
    } else {
      for (const auto& s : specs) {
        if (s.short_name != 0 && s.short_name == a[1]) spec = &s;
      }
      shown = a.substr(0, 2);
      if (a.size() > 2) inline_value = a.substr(2);  // "-bHOST:PORT"
    }
    if (!spec) return "unknown option " + shown;
    std::string value;
    if (spec->value.empty()) {
      if (inline_value) return shown + " takes no value";
      value = "true";
    } else if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size()) return shown + " needs a value (" + spec->value + ")";
      value = args[++i];
    }
    values_[spec->name] = value;
    if (spec->repeatable) all_values_[spec->name].push_back(value);
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

std::vector<std::string> CliArgs::getAll(const std::string& name) const {
  auto it = all_values_.find(name);
  return it == all_values_.end() ? std::vector<std::string>{} : it->second;
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
    std::string left = std::string(s.short_name ? std::string("  -") + s.short_name + ", " : "  ") +
                       "--" + s.name + (s.value.empty() ? "" : " " + s.value) +
                       (s.repeatable ? " ..." : "");
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    out += left + s.help + "\n";
  }
  return out;
}

}  // namespace fanpull
