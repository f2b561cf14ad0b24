#include "cmd/parse.h"

#include <algorithm>

#include "cmd/config_file.h"

namespace cairn::cmd {

namespace {

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

const flag_spec* find_by_env(std::string_view variable) {
  for (const auto& spec : flag_table()) {
    if (spec.from_env && env_name(spec.name) == variable) return &spec;
  }
  return nullptr;
}

}  // namespace

// ETCD_* variables onto the settings the command line left alone (etcd's SetFlagsFromEnv and
// verifyEnv). Conflicts are checked over every variable before any value is read, so a
// conflict is reported even when some other variable also holds a bad value.
std::expected<void, std::string> apply_environment(const environment& env, load_result& result) {
  for (const auto& [variable, value] : env) {
    if (!starts_with(variable, "ETCD_")) continue;
    const flag_spec* spec = find_by_env(variable);
    if (spec == nullptr) continue;
    const auto set = result.given.find(std::string(spec->name));
    if (set != result.given.end() && set->second == origin::flag) {
      return std::unexpected("conflicting environment variable " + quoted(variable) +
                             " is shadowed by corresponding command-line flag (either unset "
                             "environment variable or disable flag)");
    }
  }
  for (const auto& [variable, value] : env) {
    if (!starts_with(variable, "ETCD_") || variable == "ETCD_CONFIG_FILE") continue;
    if (variable == "ETCD_VERSION") {
      // etcd 3.5 refuses to let the environment print the version instead of starting.
      result.warnings.push_back("cannot set special environment variable ETCD_VERSION; ignored");
      continue;
    }
    const flag_spec* spec = find_by_env(variable);
    if (spec == nullptr) {
      // etcd also prints the value; Cairn does not, since charts keep passwords in ETCD_*.
      result.warnings.push_back("unrecognized environment variable " + variable);
      continue;
    }
    if (value.empty()) continue;  // etcd reads only non-empty variables
    if (auto ok = spec->value.set(result.cfg, value); !ok) {
      return std::unexpected("invalid value " + quoted(value) + " for " + variable + " (--" +
                             std::string(spec->name) + "): " + ok.error());
    }
    result.given[std::string(spec->name)] = origin::env;
  }
  return {};
}

namespace {

// etcd 3.6: an old spelling and its replacement both given is an error, even with equal values.
std::expected<void, std::string> check_spellings(const load_result& result) {
  for (const auto& spec : flag_table()) {
    if (spec.replaced_by.empty()) continue;
    if (result.given.contains(std::string(spec.name)) &&
        result.given.contains(std::string(spec.replaced_by))) {
      return std::unexpected("cannot set --" + std::string(spec.name) + " and --" +
                             std::string(spec.replaced_by) + " at the same time, please use --" +
                             std::string(spec.replaced_by) + " only");
    }
  }
  return {};
}

// etcd 3.6: a 3.5 experimental boolean and --feature-gates naming the same gate is an error.
std::expected<void, std::string> check_gates(const load_result& result) {
  if (result.cfg.feature_gates_text.empty()) return {};
  feature_gates from_text;
  std::vector<std::string> named;
  if (auto ok = apply_feature_gates(result.cfg.feature_gates_text, from_text, &named); !ok) {
    return std::unexpected("--feature-gates: " + ok.error());
  }
  for (const auto& gate : feature_gate_table()) {
    if (gate.experimental_flag.empty() ||
        !result.given.contains(std::string(gate.experimental_flag))) {
      continue;
    }
    if (std::find(named.begin(), named.end(), gate.name) == named.end()) continue;
    const std::string flag_value = result.cfg.features.*gate.field ? "true" : "false";
    const std::string gate_setting =
        std::string(gate.name) + "=" + (from_text.*gate.field ? "true" : "false");
    return std::unexpected("cannot specify both flags: --" + std::string(gate.experimental_flag) +
                           "=" + flag_value + " and --feature-gates=" + gate_setting +
                           " at the same time, please just use --feature-gates=" + gate_setting);
  }
  return {};
}

void warn_about_inert_flags(load_result& result) {
  for (const auto& [name, where] : result.given) {
    const flag_spec* spec = find_flag(name);
    if (spec == nullptr || spec->status != flag_status::no_effect) continue;
    if (spec->group == flag_group::ignored) {
      result.warnings.push_back("flag --" + name + " is no longer supported; ignoring it");
    } else {
      result.warnings.push_back("--" + name + " (" + std::string(origin_name(where)) +
                                ") has no effect in Cairn; accepted for etcd compatibility");
    }
  }
}

}  // namespace

std::expected<void, std::string> parse_command_line(std::span<const std::string> args,
                                                    load_result& result) {
  bool print_version = false;
  std::size_t i = 0;
  while (i < args.size()) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') break;  // first non-flag argument
    std::size_t dashes = 1;
    if (arg[1] == '-') {
      dashes = 2;
      if (arg.size() == 2) {  // "--" ends the flags
        ++i;
        break;
      }
    }
    std::string name = arg.substr(dashes);
    if (name.empty() || name[0] == '-' || name[0] == '=') {
      return std::unexpected("bad flag syntax: " + arg);
    }
    ++i;
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const std::string shown = std::string(dashes, '-') + name;
    if (name == "help" || name == "h") {
      result.what = action::help;
      return {};
    }
    const flag_spec* spec = find_flag(name);
    if (spec == nullptr) return std::unexpected("flag provided but not defined: " + shown);
    if (spec->value.kind == value_kind::boolean) {
      if (!has_value) value = "true";
      auto parsed = parse_go_bool(value);
      if (!parsed) {
        return std::unexpected("invalid boolean value " + quoted(value) + " for " + shown + ": " +
                               parsed.error());
      }
      if (name == "version") print_version = *parsed;
    } else if (!has_value) {
      if (i >= args.size()) return std::unexpected("flag needs an argument: " + shown);
      value = args[i++];  // Go takes the next argument as the value, whatever it looks like
    }
    if (auto ok = spec->value.set(result.cfg, value); !ok) {
      return std::unexpected("invalid value " + quoted(value) + " for flag " + shown + ": " +
                             ok.error());
    }
    result.given[name] = origin::flag;
  }
  if (i < args.size()) {
    const std::string& stray = args[i];
    if (i == 0 && (stray == "gateway" || stray == "grpc-proxy")) {
      return std::unexpected("the etcd subcommand " + quoted(stray) + " is not supported by Cairn");
    }
    return std::unexpected(quoted(stray) + " is not a valid flag");
  }
  if (print_version) result.what = action::version;
  return {};
}

std::expected<load_result, std::string> load(std::span<const std::string> args,
                                             const environment& env) {
  load_result result;
  if (auto ok = parse_command_line(args, result); !ok) return std::unexpected(ok.error());
  if (result.what != action::run) return result;

  std::string path = result.cfg.config_file;
  if (path.empty()) {
    if (auto it = env.find("ETCD_CONFIG_FILE"); it != env.end()) path = it->second;
  }

  finalize_context context;
  if (!path.empty()) {
    // etcd reads nothing but the file then. Say what is being ignored instead of staying silent.
    for (const auto& [name, where] : result.given) {
      if (name == "config-file") continue;
      result.warnings.push_back("--" + name + " is ignored because a config file is given");
    }
    for (const auto& [variable, value] : env) {
      if (!starts_with(variable, "ETCD_") || variable == "ETCD_CONFIG_FILE" || value.empty()) {
        continue;
      }
      result.warnings.push_back(variable + " is ignored because a config file is given");
    }
    load_result from_file;
    from_file.cfg.config_file = path;
    from_file.warnings = std::move(result.warnings);
    if (auto ok = read_config_file(path, from_file.cfg, from_file.given, from_file.warnings); !ok) {
      return std::unexpected(ok.error());
    }
    result = std::move(from_file);
    // "--listen-client-urls needs --advertise-client-urls" is a command-line rule in etcd.
    context.initial_cluster_given = result.given.contains("initial-cluster");
  } else {
    if (auto ok = apply_environment(env, result); !ok) return std::unexpected(ok.error());
    context.initial_cluster_given = result.given.contains("initial-cluster");
    context.listen_client_urls_given_on_command_line = result.given.contains("listen-client-urls");
    context.advertise_client_urls_given_on_command_line =
        result.given.contains("advertise-client-urls");
  }

  if (auto ok = check_spellings(result); !ok) return std::unexpected(ok.error());
  if (auto ok = check_gates(result); !ok) return std::unexpected(ok.error());
  warn_about_inert_flags(result);
  if (auto ok = finalize(result.cfg, context, result.warnings); !ok) {
    return std::unexpected(ok.error());
  }
  return result;
}

}  // namespace cairn::cmd
