// fanpull: the one executable; every command lives in worker/.
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return fanpull::runCli(args, std::cout, std::cerr);
}
