#include "core/log.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "core/page_message.h"

namespace fanpull {
const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

namespace {

std::string formatDouble(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

bool needsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    if (c == ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

// A logfmt value: bare when it can be, else quoted with JSON's escapes (what logfmt parsers read).
void appendLogfmtText(std::string& out, std::string_view s) {
  if (needsQuotes(s)) {
    appendJsonString(out, s);
  } else {
    out += s;
  }
}

std::string utcTimestamp(TimePoint t) {
  const int64_t ms = toUnixMs(t);
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

std::string LogValue::text() const {
  switch (kind_) {
    case Kind::kText: return text_;
    case Kind::kInt: return std::to_string(int_);
    case Kind::kDouble: return formatDouble(double_);
    case Kind::kBool: return int_ ? "true" : "false";
  }
  return text_;
}

void LogValue::appendJson(std::string& out) const {
  if (kind_ == Kind::kText || (kind_ == Kind::kDouble && !std::isfinite(double_))) {
    appendJsonString(out, text());
  } else {
    out += text();
  }
}

void LogValue::appendLogfmt(std::string& out) const {
  if (kind_ == Kind::kText) {
    appendLogfmtText(out, text_);
  } else {
    out += text();
  }
}

bool parseLogLevel(std::string_view name, LogLevel* level) {
  for (auto l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                 LogLevel::kError}) {
    if (name == logLevelName(l)) {
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
    line = "{\"ts\":\"" + ts + "\",\"level\":\"" + logLevelName(level) + "\",\"msg\":";
    appendJsonString(line, message);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      appendJsonString(line, key);
      line.push_back(':');
      value.appendJson(line);
    }
    line.push_back('}');
  } else {
    line = "ts=" + ts + " level=" + logLevelName(level) + " msg=";
    appendLogfmtText(line, message);
    for (const auto& [key, value] : fields) {
      line.push_back(' ');
      line += key;
      line.push_back('=');
      value.appendLogfmt(line);
    }
  }
  line = redactor_.redact(line);
  std::lock_guard<std::mutex> lock(mutex_);
  sink_(line);
}

}  // namespace fanpull
