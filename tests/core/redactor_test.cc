#include <catch2/catch.hpp>

#include "core/log.h"
#include "core/redactor.h"
#include "support/simulated_clock.h"

using namespace fanpull;

TEST_CASE("registered secrets are replaced wherever they stand as whole tokens", "[core][unit]") {
  Redactor r;
  r.addSecret("ACCESS_TOKEN_abc123");
  r.addSecret("ticket@@@xyz");
  CHECK(r.redact("GET /cgi-bin/user/get?access_token=ACCESS_TOKEN_abc123&next_openid=") ==
        "GET /cgi-bin/user/get?access_token=[redacted]&next_openid=");
  CHECK(r.redact("{\"t\":\"ACCESS_TOKEN_abc123\"}") == "{\"t\":\"[redacted]\"}");
  CHECK(r.redact("ticket=ticket@@@xyz;") == "ticket=[redacted];");
  CHECK(r.redact("xACCESS_TOKEN_abc123 is another token") == "xACCESS_TOKEN_abc123 is another token");
  CHECK(r.redact("nothing here") == "nothing here");
  CHECK(r.size() == 2);
}

TEST_CASE("a log line never carries a registered secret", "[core][unit]") {
  Redactor r;
  r.addSecret("S3CR3T-TOKEN");
  std::vector<std::string> lines;
  testing::SimulatedClock clock(fromUnixSeconds(1795795200));
  Logger log(LogLevel::kInfo, true, [&](const std::string& l) { lines.push_back(l); }, clock, r);
  log.info("calling with S3CR3T-TOKEN", {{"appid", "wxa"}, {"token", "S3CR3T-TOKEN"}});
  log.debug("not shown");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] ==
        "{\"ts\":\"2026-11-27T16:00:00.000Z\",\"level\":\"info\",\"msg\":\"calling with "
        "[redacted]\",\"appid\":\"wxa\",\"token\":\"[redacted]\"}");
  Logger text(LogLevel::kWarn, false, [&](const std::string& l) { lines.push_back(l); }, clock, r);
  text.warn("refused", {{"appid", "wxa"}});
  CHECK(lines.back() == "ts=2026-11-27T16:00:00.000Z level=warn msg=refused appid=wxa");
}
