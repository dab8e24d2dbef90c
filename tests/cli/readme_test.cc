// The README's quick start, run as a user would paste it: the shell block between the
// `quick-start` markers, in a folder whose build/fanpull is this build's binary, against the
// embedded broker and the sandbox it starts itself. The README cannot rot without this failing.
#include <catch2/catch.hpp>

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/temp_dir.h"

namespace {

// The lines of the ```sh block between the README's quick-start markers ("" when not found).
std::string quickStartBlock(const std::string& readme) {
  const std::string begin = "<!-- quick-start: begin -->";
  const std::string end = "<!-- quick-start: end -->";
  auto b = readme.find(begin);
  auto e = readme.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  std::string block = readme.substr(b + begin.size(), e - b - begin.size());
  auto open = block.find("```sh\n");
  auto close = block.rfind("```");
  if (open == std::string::npos || close == std::string::npos || close <= open) return "";
  return block.substr(open + 6, close - open - 6);
}

}  // namespace

TEST_CASE("the README's quick start runs as pasted and collects every follower",
          "[worker][integration]") {
  std::ifstream in(std::string(FANPULL_SOURCE_DIR) + "/README.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string block = quickStartBlock(text.str());
  REQUIRE_FALSE(block.empty());

  fanpull::testing::TempDir root;
  REQUIRE(::mkdir(root.file("build").c_str(), 0755) == 0);
  REQUIRE(::symlink(FANPULL_BINARY, root.file("build/fanpull").c_str()) == 0);

  // bash -e: any command of the block that fails fails the run; 180 s at most.
  Poco::Pipe out_pipe, err_pipe;
  // TMPDIR: the block's `mktemp -d` folder is made inside this test's own, removed with it.
  Poco::Process::Env env = {{"TMPDIR", root.path()}};
  Poco::ProcessHandle ph = Poco::Process::launch(
      "/usr/bin/timeout", {"180", "/bin/bash", "-e", "-c", block}, root.path(), nullptr, &out_pipe,
      &err_pipe, env);
  Poco::PipeInputStream out_stream(out_pipe), err_stream(err_pipe);
  std::string out, err;
  std::thread err_reader([&] { Poco::StreamCopier::copyToString(err_stream, err); });
  Poco::StreamCopier::copyToString(out_stream, out);
  err_reader.join();
  const int code = ph.wait();
  INFO("stdout:\n" << out << "\nstderr:\n" << err);
  CHECK(code == 0);
  CHECK(out.find("worker.json: ok (1 tenant)") != std::string::npos);  // check-config
  CHECK(out.find("j-1 wxdemo000000000006 partition") != std::string::npos);  // enqueue
  // The block's last line counts the OpenIDs collect wrote: the demo merchant's 23,000.
  std::string last = out.substr(0, out.find_last_not_of(" \n") + 1);
  last = last.substr(last.find_last_of('\n') + 1);
  CHECK(last == "23000");
}
