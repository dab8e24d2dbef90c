#include "core/malloc_arenas.h"

#include <malloc.h>

#include <cstdlib>
#include <string_view>

namespace fanpull {

std::optional<int> mallocArenasToSet(const char* malloc_arena_max, const char* glibc_tunables) {
  if (malloc_arena_max != nullptr) return std::nullopt;
  if (glibc_tunables != nullptr &&
      std::string_view(glibc_tunables).find("glibc.malloc.arena_max") != std::string_view::npos) {
    return std::nullopt;
  }
  return 1;
}

void limitMallocArenas() {
  const std::optional<int> arenas =
      mallocArenasToSet(std::getenv("MALLOC_ARENA_MAX"), std::getenv("GLIBC_TUNABLES"));
  if (arenas) mallopt(M_ARENA_MAX, *arenas);
}

}  // namespace fanpull
