// Reading a whole file: the tenants file, the worker config, keys and state files.
#pragma once

#include <optional>
#include <string>

namespace fanpull {

// The bytes of the file at `path`, read in one piece into a string of the file's size (a tenants
// file of ten thousand merchants is a few megabytes: it is not copied again as it grows), or
// nullopt when it cannot be opened or read; errno then says why.
std::optional<std::string> readFile(const std::string& path);

}  // namespace fanpull
