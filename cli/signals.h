// Waiting for SIGTERM / SIGINT in a program whose other threads must never see them: block the
// signals before any thread starts (threads inherit the mask), then wait for one.
// Call blockTerminationSignals() first, from the main thread, before starting threads.
#pragma once

namespace fanpull {

void blockTerminationSignals();
// Blocks until SIGTERM or SIGINT arrives; returns the signal number.
int waitForTerminationSignal();

// The same with SIGHUP too (`fanpull run` reloads on it): blocks SIGTERM, SIGINT and SIGHUP, and
// waits for any of them.
void blockTerminationAndReloadSignals();
int waitForTerminationOrReloadSignal();

}  // namespace fanpull
