// Log lines as a user's tools read them: JSON values keep their types (jq compares numbers), the
// text format is logfmt (a parser splits it back into the same fields), and the level can be
// changed while running.
#include "core/log.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/simulated_clock.h"

using namespace fanpull;

namespace {

struct Captured {
  std::vector<std::string> lines;
  Logger::Sink sink() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
};

// A logfmt line split back into key -> value the way logfmt parsers do (quoted values unescaped).
std::map<std::string, std::string> parseLogfmt(const std::string& line) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t eq = line.find('=', i);
    REQUIRE(eq != std::string::npos);
    std::string key = line.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < line.size() && line[i] == '"') {
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\') {
          ++i;
          REQUIRE(i < line.size());
          value.push_back(line[i] == 'n' ? '\n' : line[i] == 't' ? '\t' : line[i]);
        } else {
          value.push_back(line[i]);
        }
      }
      REQUIRE(i < line.size());
      ++i;  // closing quote
    } else {
      size_t end = line.find(' ', i);
      if (end == std::string::npos) end = line.size();
      value = line.substr(i, end - i);
      i = end;
    }
    out[key] = value;
  }
  return out;
}

}  // namespace

TEST_CASE("JSON log values keep their types", "[core][unit]") {
  Captured c;
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  Redactor r;
  Logger log(LogLevel::kInfo, true, c.sink(), clock, r);
  int64_t openids = 250000;
  size_t pages = 26;
  log.info("page delivered", {{"job_id", "J-1"},
                              {"openids", openids},
                              {"pages", pages},
                              {"last", true},
                              {"ratio", 0.25},
                              {"seq", std::string("12")}});
  REQUIRE(c.lines.size() == 1);
  auto j = nlohmann::json::parse(c.lines[0]);
  CHECK(j["msg"] == "page delivered");
  CHECK(j["openids"].is_number_integer());
  CHECK(j["openids"] == 250000);
  CHECK(j["openids"] > 100000);  // what jq 'select(.openids > 100000)' relies on
  CHECK(j["pages"] == 26);
  CHECK(j["last"].is_boolean());
  CHECK(j["last"] == true);
  CHECK(j["ratio"] == 0.25);
  CHECK(j["seq"].is_string());  // text stays text
  CHECK(c.lines[0] ==
        "{\"ts\":\"2026-11-27T16:00:00.000Z\",\"level\":\"info\",\"msg\":\"page delivered\","
        "\"job_id\":\"J-1\",\"openids\":250000,\"pages\":26,\"last\":true,\"ratio\":0.25,"
        "\"seq\":\"12\"}");
}

TEST_CASE("the text format is logfmt: values with spaces, quotes or = are quoted", "[core][unit]") {
  Captured c;
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  Redactor r;
  Logger log(LogLevel::kInfo, false, c.sink(), clock, r);
  log.warn("job failed", {{"job_id", "J-1"},
                          {"error", "token_invalid: errcode 40001 (invalid credential)"},
                          {"quoted", "say \"hi\"\nbye"},
                          {"empty", ""},
                          {"expr", "a=b"},
                          {"pages", 3},
                          {"ok", false}});
  REQUIRE(c.lines.size() == 1);
  CHECK(c.lines[0] ==
        "ts=2026-11-27T16:00:00.000Z level=warn msg=\"job failed\" job_id=J-1 "
        "error=\"token_invalid: errcode 40001 (invalid credential)\" "
        "quoted=\"say \\\"hi\\\"\\nbye\" empty=\"\" expr=\"a=b\" pages=3 ok=false");
  auto fields = parseLogfmt(c.lines[0]);
  CHECK(fields["msg"] == "job failed");
  CHECK(fields["error"] == "token_invalid: errcode 40001 (invalid credential)");
  CHECK(fields["quoted"] == "say \"hi\"\nbye");
  CHECK(fields["empty"] == "");
  CHECK(fields["expr"] == "a=b");
  CHECK(fields["pages"] == "3");
  CHECK(fields.size() == 10);
}

TEST_CASE("the level can be changed while logging", "[core][unit]") {
  Captured c;
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  Redactor r;
  Logger log(LogLevel::kWarn, true, c.sink(), clock, r);
  log.info("hidden");
  CHECK(c.lines.empty());
  log.setLevel(LogLevel::kDebug);
  CHECK(log.level() == LogLevel::kDebug);
  log.debug("shown");
  CHECK(c.lines.size() == 1);
  LogLevel parsed = LogLevel::kInfo;
  CHECK(parseLogLevel("error", &parsed));
  CHECK(parsed == LogLevel::kError);
  CHECK_FALSE(parseLogLevel("verbose", &parsed));
  CHECK(std::string(logLevelName(LogLevel::kTrace)) == "trace");
}
