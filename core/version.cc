#include "core/version.h"

#ifndef FANPULL_VERSION
#define FANPULL_VERSION "0.0.0"
#endif
#ifndef FANPULL_REVISION
#define FANPULL_REVISION "unknown"
#endif

namespace fanpull {

const std::string& fanpullVersion() {
  static const std::string v = FANPULL_VERSION;
  return v;
}

const std::string& fanpullRevision() {
  static const std::string r = FANPULL_REVISION;
  return r;
}

}  // namespace fanpull
