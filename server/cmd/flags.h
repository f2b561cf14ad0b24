// The one table of Cairn's settings. Each row is one etcd flag: its name, help text, default,
// how far Cairn acts on it, its etcd 3.6 spelling, its config-file key, and how to read and
// show its value. The command-line parser, the ETCD_* reader, the config-file reader and
// `--help` all walk this table, so they cannot disagree about what exists.
//
// The table is immutable after first use; safe to read from any thread.
#pragma once

#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "cmd/config.h"

namespace cairn::cmd {

// Sections of --help, in etcd's order (plus the groups etcd 3.6 and Cairn add).
enum class flag_group {
  usage,  // --help, --version, --config-file
  member,
  clustering,
  security,
  auth,
  monitoring,
  logging,
  tracing,
  proxy,
  experimental,  // etcd 3.5's --experimental-* flags
  features,      // etcd 3.6's names for them, and --feature-gates
  unsafe,
  deprecated,  // etcd 3.4 flags that 3.5 dropped
  ignored,     // flags etcd accepts and ignores (pre-2.0 leftovers)
};
std::string_view group_title(flag_group group);

// How far this build acts on a flag. Later work flips rows to `acted_on` as it lands.
enum class flag_status {
  acted_on,   // this build does what the flag says
  not_yet,    // parsed and validated; the code that acts on it is not written yet
  no_effect,  // accepted so etcd command lines keep working; meaningless in Cairn
};
std::string_view status_label(flag_status status);  // "" for acted_on

// How a value is written; decides Go's boolean syntax and config-file conversions.
enum class value_kind { boolean, integer, duration, text, choice, list };

struct accessor {
  std::expected<void, std::string> (*set)(config&, std::string_view);
  std::string (*get)(const config&);
  value_kind kind;
};

struct flag_spec {
  std::string_view name;  // without dashes
  flag_group group;
  std::string_view default_text;  // as --help shows it
  std::string_view help;
  flag_status status;
  accessor value;
  // For an old spelling (etcd 3.5 --experimental-*, 3.4 leftovers): the etcd 3.6 flag that
  // sets the same setting. Giving both is an error, as in etcd 3.6.
  std::string_view replaced_by = {};
  // Config-file key when it is not the flag name: "client-transport-security.cert-file" for
  // the TLS settings etcd nests, "-" when the file has no such key.
  std::string_view file_key = {};
  bool from_env = true;  // read from ETCD_<NAME>
  bool secret = false;   // never logged
  // A fixed value the integration test passes when etcd's --help default is not a value
  // (e.g. 'math.MaxUint32'); empty when the default text parses.
  std::string_view sample = {};
};

// Where a setting's value came from.
enum class origin { flag, env, file };
std::string_view origin_name(origin where);  // "flag", "environment", "config file"

std::span<const flag_spec> flag_table();
const flag_spec* find_flag(std::string_view name);
// The variable etcd reads for a flag: ETCD_ + upper case, '-' → '_'.
std::string env_name(std::string_view flag_name);
// The config-file key of a flag ("" when there is none).
std::string_view file_key(const flag_spec& spec);
// The flag whose 3.5 or 3.4 spelling `spec` is (reverse of replaced_by), or nullptr.
const flag_spec* old_spelling_of(const flag_spec& spec);

}  // namespace cairn::cmd
