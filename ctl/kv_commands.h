// The everyday commands, as etcdctl 3.4 has them (flags, argument checks, errors, exit codes,
// output formats): get, put, del, txn, watch, lease grant|revoke|timetolive|list|keep-alive.
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/common.h"

namespace cairn::ctl {

void add_kv_commands(CLI::App& app, globals& g);

// As etcdctl, `watch ... -- cmd args` is split on the raw command line: everything after the
// first "--" that follows the word "watch" is the command to run per event. Shortens argc.
void take_watch_exec(int& argc, char** argv);

}  // namespace cairn::ctl
