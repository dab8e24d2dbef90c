// Logger: one line per event, JSON (default) or logfmt text, with a level threshold that can be
// changed while running. Field values keep their type: numbers are JSON numbers and booleans JSON
// booleans, so `jq 'select(.openids > 100000)'` compares numbers. The text format is logfmt
// (`ts=... level=info msg="job started" job_id=J-1 pages=3`, a value quoted when it holds a
// space, `=`, `"` or is empty). Every line goes through the Redactor before it is written, so a
// secret that slipped into a message never reaches the log. The sink is injected (stderr in
// production, a capture in tests). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <type_traits>
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

// The name of a level ("info", ...).
const char* logLevelName(LogLevel level);

// A field's value: text, an integer, a number or a boolean.
class LogValue {
 public:
  LogValue(std::string text) : kind_(Kind::kText), text_(std::move(text)) {}  // NOLINT
  LogValue(std::string_view text) : kind_(Kind::kText), text_(text) {}       // NOLINT
  LogValue(const char* text) : kind_(Kind::kText), text_(text) {}            // NOLINT
  LogValue(bool b) : kind_(Kind::kBool), int_(b ? 1 : 0) {}                  // NOLINT
  LogValue(double d) : kind_(Kind::kDouble), double_(d) {}                   // NOLINT
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                 !std::is_same_v<T, char>,
                             int> = 0>
  LogValue(T n) : kind_(Kind::kInt), int_(static_cast<int64_t>(n)) {}  // NOLINT

  // As a JSON value: a string, a number, true or false (a non-finite double is a string).
  void appendJson(std::string& out) const;
  // As a logfmt value: bare, or quoted with `\`, `"`, newline and tab escaped.
  void appendLogfmt(std::string& out) const;
  // The value as plain text (no quotes).
  std::string text() const;

 private:
  enum class Kind { kText, kInt, kDouble, kBool };
  Kind kind_;
  std::string text_;
  int64_t int_ = 0;
  double double_ = 0;
};

using LogFields = std::vector<std::pair<std::string, LogValue>>;

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;

  Logger(LogLevel level, bool json, Sink sink, Clock& clock = SystemClock::instance(),
         Redactor& redactor = Redactor::global());

  // A logger writing lines to stderr.
  static Sink stderrSink();

  bool enabled(LogLevel level) const { return level >= level_.load(); }
  LogLevel level() const { return level_.load(); }
  // Takes effect for the next line (SIGHUP reloads it from the configuration).
  void setLevel(LogLevel level) { level_.store(level); }
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
  std::atomic<LogLevel> level_;
  const bool json_;
  Sink sink_;
  Clock& clock_;
  Redactor& redactor_;
  std::mutex mutex_;  // serializes writes to sink_
};

}  // namespace fanpull
