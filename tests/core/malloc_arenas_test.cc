// How many malloc arenas the fanpull process sets, by what its environment says.
#include <catch2/catch.hpp>

#include "core/malloc_arenas.h"

using namespace fanpull;

TEST_CASE("the process keeps one malloc arena unless its environment chose", "[core][unit]") {
  CHECK(mallocArenasToSet(nullptr, nullptr) == std::optional<int>(1));
  // Tunables about something else leave the choice to fanpull.
  CHECK(mallocArenasToSet(nullptr, "glibc.malloc.tcache_count=0") == std::optional<int>(1));
  // The operator's choice stands, whatever its value.
  CHECK(mallocArenasToSet("8", nullptr) == std::nullopt);
  CHECK(mallocArenasToSet("", nullptr) == std::nullopt);
  CHECK(mallocArenasToSet(nullptr, "glibc.malloc.arena_max=4") == std::nullopt);
  CHECK(mallocArenasToSet(nullptr, "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2") ==
        std::nullopt);
}
