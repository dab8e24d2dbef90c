#include "core/log.h"

#include <cstdio>
#include <ctime>
#include <iostream>

#include "core/page_message.h"

namespace fanpull {
namespace {

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

std::string utcTimestamp(TimePoint t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

bool parseLogLevel(std::string_view name, LogLevel* level) {
  for (auto l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                 LogLevel::kError}) {
    if (name == levelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

Logger::Logger(LogLevel level, bool json, Sink sink, Clock& clock, Redactor& redactor)
    : level_(level), json_(json), sink_(std::move(sink)), clock_(clock), redactor_(redactor) {}

Logger::Sink Logger::stderrSink() {
  return [](const std::string& line) { std::cerr << line << '\n' << std::flush; };
}

void Logger::log(LogLevel level, std::string_view message, const LogFields& fields) {
  if (!enabled(level)) return;
  std::string line;
  std::string ts = utcTimestamp(clock_.now());
  if (json_) {
    line = "{\"ts\":\"" + ts + "\",\"level\":\"" + levelName(level) + "\",\"msg\":";
    appendJsonString(line, message);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      appendJsonString(line, key);
      line.push_back(':');
      appendJsonString(line, value);
    }
    line.push_back('}');
  } else {
    line = ts + " " + levelName(level) + " " + std::string(message);
    for (const auto& [key, value] : fields) line += " " + key + "=" + value;
  }
  line = redactor_.redact(line);
  std::lock_guard<std::mutex> lock(mutex_);
  sink_(line);
}

}  // namespace fanpull
