#include "worker/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace fanpull {

std::optional<ProcessSample> parseProcStat(const std::string& stat_line, int64_t boot_time_seconds,
                                           int64_t ticks_per_second, int64_t page_size) {
  // "PID (COMM) STATE ..." where COMM may hold spaces and parentheses: fields start after the
  // last ')'. Numbering below is proc(5)'s, counting STATE as field 3.
  auto close = stat_line.rfind(')');
  if (close == std::string::npos || ticks_per_second <= 0) return std::nullopt;
  std::istringstream in(stat_line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  // fields[0] is field 3 (state): field N is fields[N - 3].
  auto field = [&](size_t n) -> std::optional<double> {
    if (n - 3 >= fields.size()) return std::nullopt;
    try {
      return std::stod(fields[n - 3]);
    } catch (...) {
      return std::nullopt;
    }
  };
  auto utime = field(14), stime = field(15), starttime = field(22), vsize = field(23),
       rss = field(24);
  if (!utime || !stime || !starttime || !vsize || !rss) return std::nullopt;
  ProcessSample s;
  const double ticks = static_cast<double>(ticks_per_second);
  s.cpu_seconds = (*utime + *stime) / ticks;
  s.start_time_seconds = static_cast<double>(boot_time_seconds) + *starttime / ticks;
  s.virtual_bytes = *vsize;
  s.resident_bytes = *rss * static_cast<double>(page_size);
  return s;
}

std::optional<ProcessSample> sampleProcess() {
  std::ifstream stat_file("/proc/self/stat");
  std::string line;
  if (!std::getline(stat_file, line)) return std::nullopt;
  int64_t boot_time = 0;
  std::ifstream proc_stat("/proc/stat");
  for (std::string l; std::getline(proc_stat, l);) {
    if (l.rfind("btime ", 0) == 0) {
      boot_time = std::stoll(l.substr(6));
      break;
    }
  }
  auto sample = parseProcStat(line, boot_time, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
  if (!sample) return std::nullopt;
  if (DIR* dir = opendir("/proc/self/fd")) {
    int64_t n = 0;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(dir);
    sample->open_fds = static_cast<double>(n - 1);  // not counting the directory's own fd
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    sample->max_fds = static_cast<double>(limit.rlim_cur);
  }
  return sample;
}

}  // namespace fanpull
