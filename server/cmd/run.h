// The server's entry point: everything after the configuration is read and checked.
// Today the server does not exist yet; this is the one place that changes when it lands.
// Called once, from the main thread, by start() (start.h).
#pragma once

#include "cmd/config.h"

namespace cairn::cmd {

// Runs a member with `cfg` until it stops; returns the process exit status.
int run(const config& cfg);

}  // namespace cairn::cmd
