// What `cairn` does from argv to exit status, minus the server itself: read the settings,
// print help, version, warnings and errors, set the log level, log the settings, then hand
// the config to `run` (run.h).
//
// Installs a spdlog default logger writing to `err`; call from the main thread at start-up.
#pragma once

#include <ostream>
#include <span>
#include <string>

#include "cmd/config.h"
#include "cmd/parse.h"

namespace cairn::cmd {

using run_function = int (*)(const config&);

// Exit status: 0 after --help/--version, 1 for a bad command line, variable or config file
// (one line "cairn: ..." on `err`), otherwise whatever `run` returns.
int start(std::span<const std::string> args, const environment& env, std::ostream& out,
          std::ostream& err, run_function run);

// The process environment as a map (for main).
environment process_environment();

}  // namespace cairn::cmd
