// ProcessMetrics: the standard `process_*` metrics of a Linux process, read from /proc at each
// scrape (the names and meanings client libraries share: CPU seconds, resident and virtual
// memory, open and maximum file descriptors, start time).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fanpull {

struct ProcessSample {
  double cpu_seconds = 0;          // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;   // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;              // the soft RLIMIT_NOFILE
};

// The fields of /proc/self/stat, /proc/stat's btime, /proc/self/fd and the file limit; nullopt
// when /proc cannot be read (not Linux, or /proc not mounted).
std::optional<ProcessSample> sampleProcess();

// Parses the text of a /proc/PID/stat line and /proc/stat's boot time (seconds since the epoch)
// with the given clock ticks per second and page size. nullopt when the line is malformed.
std::optional<ProcessSample> parseProcStat(const std::string& stat_line, int64_t boot_time_seconds,
                                           int64_t ticks_per_second, int64_t page_size);

}  // namespace fanpull
