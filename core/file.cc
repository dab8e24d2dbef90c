#include "core/file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <memory>

namespace fanpull {

std::optional<std::string> readFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return std::nullopt;
  struct stat st {};
  std::string out;
  if (::fstat(::fileno(file.get()), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out.resize(static_cast<size_t>(st.st_size));
    out.resize(std::fread(out.data(), 1, out.size(), file.get()));
  }
  // The rest: a file that grew since, or one whose size is not known (a pipe).
  char chunk[16 * 1024];
  while (!std::feof(file.get()) && !std::ferror(file.get())) {
    out.append(chunk, std::fread(chunk, 1, sizeof chunk, file.get()));
  }
  if (std::ferror(file.get())) {
    if (errno == 0) errno = EIO;
    return std::nullopt;
  }
  return out;
}

}  // namespace fanpull
