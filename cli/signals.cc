#include "cli/signals.h"

#include <pthread.h>
#include <signal.h>

namespace fanpull {
namespace {

sigset_t terminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

sigset_t terminationAndReloadSet() {
  sigset_t set = terminationSet();
  sigaddset(&set, SIGHUP);
  return set;
}

int waitFor(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace

void blockTerminationSignals() {
  sigset_t set = terminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int waitForTerminationSignal() { return waitFor(terminationSet()); }

void blockTerminationAndReloadSignals() {
  sigset_t set = terminationAndReloadSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int waitForTerminationOrReloadSignal() { return waitFor(terminationAndReloadSet()); }

}  // namespace fanpull
