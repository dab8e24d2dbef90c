// Logger: one line per event, JSON (default) or text, with a level threshold. Every line goes
// through the Redactor before it is written, so a secret that slipped into a message never
// reaches the log. The sink is injected (stderr in production, a capture in tests). Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/redactor.h"

namespace fanpull {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// "trace", "debug", "info", "warn", "error"; false for anything else.
bool parseLogLevel(std::string_view name, LogLevel* level);

using LogFields = std::vector<std::pair<std::string, std::string>>;

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;

  Logger(LogLevel level, bool json, Sink sink, Clock& clock = SystemClock::instance(),
         Redactor& redactor = Redactor::global());

  // A logger writing lines to stderr.
  static Sink stderrSink();

  bool enabled(LogLevel level) const { return level >= level_; }
  void log(LogLevel level, std::string_view message, const LogFields& fields = {});
  void info(std::string_view message, const LogFields& fields = {}) {
    log(LogLevel::kInfo, message, fields);
  }
  void warn(std::string_view message, const LogFields& fields = {}) {
    log(LogLevel::kWarn, message, fields);
  }
  void error(std::string_view message, const LogFields& fields = {}) {
    log(LogLevel::kError, message, fields);
  }
  void debug(std::string_view message, const LogFields& fields = {}) {
    log(LogLevel::kDebug, message, fields);
  }

 private:
  const LogLevel level_;
  const bool json_;
  Sink sink_;
  Clock& clock_;
  Redactor& redactor_;
  std::mutex mutex_;  // serializes writes to sink_
};

}  // namespace fanpull
