// The build's identity: fanpull's version (CMake's project version) and the source revision it
// was configured from (`git describe`, "unknown" outside a git checkout).
#pragma once

#include <string>

namespace fanpull {

const std::string& fanpullVersion();
const std::string& fanpullRevision();

}  // namespace fanpull
