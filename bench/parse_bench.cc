// Parsing a 10,000-OpenID getFans answer and producing its page message (docs/CONTRACTS.md), against a
// plain nlohmann DOM parse plus dump of the same input, in one run.
//   build/bench/bench_parse [runs]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "core/page_message.h"
#include "core/user_list_parser.h"

using nlohmann::json;

namespace {

std::string makeAnswer(int n) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string body = "{\"total\":23000,\"count\":" + std::to_string(n) + ",\"data\":{\"openid\":[";
  uint64_t x = 0x9E3779B97F4A7C15ull;
  std::string last;
  for (int i = 0; i < n; ++i) {
    std::string id = "o";
    for (int k = 0; k < 27; ++k) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      id.push_back(kAlphabet[x % 64]);
    }
    body += (i ? ",\"" : "\"") + id + "\"";
    last = id;
  }
  body += "]},\"next_openid\":\"" + last + "\"}";
  return body;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 400;
  const std::string body = makeAnswer(10000);
  const fanpull::PageIdentity id{"j-2026-11-27-0001", "wx1234567890abcdef", 1, false};

  // Every path must produce the same message, or the comparison would be meaningless.
  std::string ours;
  {
    auto page = fanpull::parseUserListAnswer(body);
    if (!page.ok()) {
      std::fprintf(stderr, "parse failed: %s\n", page.error().describe().c_str());
      return 1;
    }
    ours = fanpull::encodePageMessage(id, page.value());
    auto kept = fanpull::parseUserListAnswer(std::string(body));
    if (!kept.ok() || fanpull::encodePageMessage(id, kept.value()) != ours) {
      std::fprintf(stderr, "a page keeping its body encodes differently\n");
      return 1;
    }
  }
  auto baseline = [&]() {
    json in = json::parse(body);
    json msg = {{"job_id", id.job_id},       {"appid", id.appid},
                {"seq", id.seq},             {"total", in["total"]},
                {"count", in["count"]},      {"openids", std::move(in["data"]["openid"])},
                {"next_openid", in["next_openid"]}, {"last", id.last}};
    return msg.dump();
  };
  if (json::parse(ours) != json::parse(baseline())) {
    std::fprintf(stderr, "the two paths disagree\n");
    return 1;
  }

  size_t sink = 0;
  // The worker's path: the page keeps the answer's body (moved in, as the HTTP client hands it
  // over), so every run gets a body of its own, copied before the timing starts.
  std::vector<std::string> bodies;
  size_t next_body = 0;
  auto freshBodies = [&] {
    bodies.assign(static_cast<size_t>(20 + runs), body);
    next_body = 0;
  };
  freshBodies();
  auto fast = fanpull::bench::timeIt(20, runs, [&] {
    auto page = fanpull::parseUserListAnswer(std::move(bodies[next_body++]));
    sink += fanpull::encodePageMessage(id, page.value()).size();
  });
  freshBodies();
  auto parse_only = fanpull::bench::timeIt(20, runs, [&] {
    auto page = fanpull::parseUserListAnswer(std::move(bodies[next_body++]));
    sink += page->size();
  });
  bodies.clear();
  bodies.shrink_to_fit();
  // As in the worker, which parses an answer it has just read into a buffer used again: the
  // body is copied into one buffer (in the CPU's cache) and parsed there; the copy alone is
  // timed too, to be taken off.
  std::string buffer;
  buffer.reserve(body.size());
  auto cached = fanpull::bench::timeIt(20, runs, [&] {
    buffer.assign(body);
    auto page = fanpull::parseUserListAnswer(std::move(buffer));
    sink += page->size();
    size_t from = 0;
    buffer = page->takeText(&from);
  });
  auto copy_only = fanpull::bench::timeIt(20, runs, [&] {
    buffer.assign(body);
    sink += buffer.size();
  });
  // A body the caller keeps (a string_view): the OpenIDs are copied into the page.
  auto copying = fanpull::bench::timeIt(20, runs, [&] {
    auto page = fanpull::parseUserListAnswer(std::string_view(body));
    sink += fanpull::encodePageMessage(id, page.value()).size();
  });
  auto dom = fanpull::bench::timeIt(5, runs / 4 > 20 ? runs / 4 : 20, [&] { sink += baseline().size(); });

  std::printf("parse + page message, 10,000 OpenIDs (%zu-byte answer, %zu-byte message)\n",
              body.size(), ours.size());
  std::printf("%-44s %10s %10s %10s %6s\n", "path", "median us", "p10 us", "p90 us", "runs");
  auto row = [](const char* name, const fanpull::bench::Timing& t) {
    std::printf("%-44s %10.1f %10.1f %10.1f %6d\n", name, t.median_us, t.p10_us, t.p90_us, t.runs);
  };
  row("fanpull parseUserListAnswer + encodePageMessage", fast);
  row("fanpull parseUserListAnswer only", parse_only);
  row("  the same, body copied into the page", copying);
  row("  the same, body in cache: copy + parse", cached);
  row("  the same, body in cache: the copy alone", copy_only);
  row("nlohmann DOM parse + build + dump (baseline)", dom);
  std::printf("speed-up over the baseline (median): %.1fx; target: median <= 500 us\n",
              dom.median_us / fast.median_us);
  return sink == 0 ? 1 : 0;
}
