// The process's malloc arenas, set by the fanpull executable and the worker benchmarks. glibc
// gives a thread that finds its arena locked an arena of its own, up to eight per core, and each
// arena keeps the memory freed in it. A worker runs dozens of threads (one per call in flight,
// librdkafka's, Poco's), so under load most of them get one, and what a burst of jobs allocated
// and freed stays spread over them. With one arena the same work peaks about 1 to 2 MB lower for
// the same CPU per page (docs/BENCHMARKS.md, "Memory by fleet size"). An operator who sets
// MALLOC_ARENA_MAX, or glibc.malloc.arena_max in GLIBC_TUNABLES, keeps what they chose.
#pragma once

#include <optional>

namespace fanpull {

// The arenas fanpull sets given the values of MALLOC_ARENA_MAX and GLIBC_TUNABLES (null: not
// set): one, or nullopt when the environment chose already.
std::optional<int> mallocArenasToSet(const char* malloc_arena_max, const char* glibc_tunables);

// Applies mallocArenasToSet() to this process (mallopt M_ARENA_MAX); call it before any thread
// starts. Nothing when the environment chose.
void limitMallocArenas();

}  // namespace fanpull
