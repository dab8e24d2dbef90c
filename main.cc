// fanpull: the one executable; every command lives in cli/.
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "core/malloc_arenas.h"

int main(int argc, char** argv) {
  fanpull::limitMallocArenas();  // before any thread starts
  std::vector<std::string> args(argv + 1, argv + argc);
  return fanpull::runCli(args, std::cout, std::cerr);
}
