#include <catch2/catch.hpp>

#include <cerrno>
#include <string>

#include "core/file.h"
#include "support/temp_dir.h"

using namespace fanpull;

TEST_CASE("readFile gives a file's bytes, or nothing and errno when it cannot be read",
          "[file][unit]") {
  testing::TempDir dir;
  std::string text(200 * 1024, 'x');  // larger than one read
  text += std::string("\0tail\n", 6);
  CHECK(readFile(dir.write("big.json", text)) == text);
  CHECK(readFile(dir.write("empty", "")) == std::string());

  errno = 0;
  CHECK_FALSE(readFile(dir.file("missing.json")));
  CHECK(errno == ENOENT);

  errno = 0;
  CHECK_FALSE(readFile(dir.path()));  // a folder opens but does not read
  CHECK(errno == EISDIR);
}
