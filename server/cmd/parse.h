// Turns a command line, the environment and (if named) a config file into a checked
// `config`, with etcd's rules:
//   - Go flag syntax: --flag=value, --flag value, -flag, boolean --flag / --flag=false; parsing
//     stops at the first argument that is not a flag, and a stray argument is an error.
//   - Every flag has an ETCD_<NAME> variable. A setting given both ways is fatal; an unknown
//     ETCD_* variable is only a warning (charts set variables of their own).
//   - With --config-file (or ETCD_CONFIG_FILE), every other flag and variable is ignored.
//   - An etcd 3.5 --experimental-* flag and its etcd 3.6 name (or feature gate) set the same
//     setting; giving both is an error, as in etcd 3.6.
// Errors are one line that names the flag, variable or file key at fault.
//
// Pure functions of their inputs; safe from any thread.
#pragma once

#include <expected>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cmd/config.h"
#include "cmd/flags.h"

namespace cairn::cmd {

enum class action { run, help, version };

struct load_result {
  action what = action::run;
  config cfg;
  std::map<std::string, origin> given;  // flag name → where its value came from
  std::vector<std::string> warnings;    // one line each, without a "cairn: " prefix
};

using environment = std::map<std::string, std::string>;

// Reads `args` (argv without argv[0]) and `env`, the config file if one is named, then
// finalizes and checks the result. On `help` or `version`, `cfg` holds whatever was parsed.
std::expected<load_result, std::string> load(std::span<const std::string> args,
                                             const environment& env);

// The steps of `load`, exposed for tests that check one flag or variable at a time (no
// finalize). parse_command_line applies `args` onto `result.cfg` and records them in
// `result.given`; apply_environment then applies the ETCD_* variables the same way.
std::expected<void, std::string> parse_command_line(std::span<const std::string> args,
                                                    load_result& result);
std::expected<void, std::string> apply_environment(const environment& env, load_result& result);

}  // namespace cairn::cmd
