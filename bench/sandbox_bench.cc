// Throughput of the sandbox: K keep-alive clients fetching full 10,000-OpenID pages of one account
// of 1,000,000 followers, ~3 s per setting. Prints a table; asserts nothing about time.
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/openids.h"
#include "sandbox/sandbox_server.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace sb = fanpull::sandbox;

constexpr int64_t kFollowers = 1000000;
constexpr int kPages = 100;
constexpr char kAppid[] = "wxbench00000000001";
constexpr char kToken[] = "bench-static-token";

struct ClientResult {
  std::vector<double> latenciesMs;
  int64_t bytes = 0;
  int64_t errors = 0;
};

void runClient(uint16_t port, int offset, Clock::time_point deadline, ClientResult& out) {
  // Cursors: "" for page 0, else the last openid of the previous page.
  std::vector<std::string> targets;
  for (int p = 0; p < kPages; ++p) {
    std::string target = std::string("/cgi-bin/user/get?access_token=") + kToken + "&next_openid=";
    if (p > 0) target += sb::sandboxOpenId(kAppid, int64_t{p} * 10000 - 1);
    targets.push_back(std::move(target));
  }
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setKeepAlive(true);
  session.setTimeout(Poco::Timespan(30, 0));
  std::vector<char> buffer(1 << 16);
  for (int i = offset; Clock::now() < deadline; ++i) {
    const auto t0 = Clock::now();
    try {
      Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, targets[i % kPages],
                                     Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      session.sendRequest(request);
      Poco::Net::HTTPResponse response;
      std::istream& in = session.receiveResponse(response);
      int64_t n = 0;
      while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) ||
             in.gcount() > 0) {
        n += in.gcount();
      }
      if (response.getStatus() != 200 || n < 10000 * 28) {
        ++out.errors;
        continue;
      }
      out.bytes += n;
    } catch (const Poco::Exception&) {
      ++out.errors;
      session.reset();
      continue;
    }
    out.latenciesMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  std::printf(
      "sandbox user/get throughput: 1,000,000 followers, full 10,000-OpenID pages, keep-alive, "
      "%.1f s per row\n",
      seconds);
  sb::SandboxOptions options;
  sb::Account account;
  account.appid = kAppid;
  account.followers = kFollowers;
  account.access_tokens = {kToken};
  options.accounts = {account};
  options.log_capacity = 200000;
  sb::SandboxServer server(options);
  server.start();

  // Warm the page cache once so every row measures serving, not first rendering.
  {
    ClientResult warm;
    runClient(server.port(), 0, Clock::now() + std::chrono::milliseconds(300), warm);
  }

  std::printf("%8s %10s %10s %12s %12s %8s\n", "threads", "pages/s", "MB/s", "median ms", "p99 ms",
              "errors");
  for (int threads : {1, 2, 4}) {
    std::vector<ClientResult> results(static_cast<std::size_t>(threads));
    std::vector<std::thread> workers;
    const auto start = Clock::now();
    const auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back(runClient, server.port(), t * 37, deadline,
                           std::ref(results[static_cast<std::size_t>(t)]));
    }
    for (auto& w : workers) w.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    int64_t bytes = 0, errors = 0;
    for (auto& r : results) {
      all.insert(all.end(), r.latenciesMs.begin(), r.latenciesMs.end());
      bytes += r.bytes;
      errors += r.errors;
    }
    const double pages = static_cast<double>(all.size()) / elapsed;
    const double mbps = static_cast<double>(bytes) / elapsed / 1e6;
    const double median = percentile(all, 0.5);
    const double p99 = percentile(all, 0.99);
    std::printf("%8d %10.0f %10.1f %12.2f %12.2f %8lld\n", threads, pages, mbps, median, p99,
                static_cast<long long>(errors));
  }
  server.stop();
  return 0;
}
