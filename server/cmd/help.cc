#include "cmd/help.h"

#include "base/version.h"
#include "cmd/flags.h"

namespace cairn::cmd {

namespace {

constexpr flag_group group_order[] = {
    flag_group::member,       flag_group::clustering, flag_group::security, flag_group::auth,
    flag_group::monitoring,   flag_group::logging,    flag_group::tracing,  flag_group::proxy,
    flag_group::experimental, flag_group::features,   flag_group::unsafe,   flag_group::deprecated,
    flag_group::ignored,
};

void append_flag(std::string& out, const flag_spec& spec) {
  out += "  --" + std::string(spec.name);
  if (spec.group != flag_group::ignored) out += " '" + std::string(spec.default_text) + "'";
  if (const auto label = status_label(spec.status); !label.empty()) {
    out += "  " + std::string(label);
  }
  out += "\n";
  if (spec.group == flag_group::ignored) return;
  out += "    " + std::string(spec.help) + "\n";
  if (!spec.replaced_by.empty()) {
    out += "    newer name: --";
    out += spec.replaced_by;
    out += " (the same setting; giving both is an error)\n";
  }
  for (const auto& gate : feature_gate_table()) {
    if (gate.experimental_flag == spec.name) {
      out += "    etcd 3.6: --feature-gates=" + std::string(gate.name) + "=true|false\n";
    }
  }
  if (spec.name == "feature-gates") {
    const feature_gates defaults;
    for (const auto& gate : feature_gate_table()) {
      out += "      " + std::string(gate.name) + "=true|false (" + (gate.alpha ? "alpha" : "beta") +
             ", default " + (defaults.*gate.field ? "true" : "false");
      if (!gate.experimental_flag.empty()) {
        out += "; 3.5 flag --" + std::string(gate.experimental_flag);
      }
      out += ")\n";
    }
  }
}

}  // namespace

std::string help_text() {
  std::string out =
      "Usage:\n\n  cairn [flags]\n    Start a Cairn member (an etcd-compatible server).\n";
  for (const auto& spec : flag_table()) {
    if (spec.group != flag_group::usage) continue;
    out += "\n  cairn ";
    out += spec.name == "help" ? "-h | --help" : "--" + std::string(spec.name);
    if (spec.name == "config-file") out += " <path>";
    out += "\n    " + std::string(spec.help) + "\n";
  }
  out +=
      "\nEvery flag --some-flag can also be set with the environment variable ETCD_SOME_FLAG.\n"
      "Setting one both ways is an error; an unknown ETCD_* variable is only a warning.\n"
      "Flags may be written --flag=value, --flag value or -flag; booleans as --flag or "
      "--flag=false.\n"
      "\n"
      "Flags marked " +
      std::string(status_label(flag_status::not_yet)) +
      " are read and checked, but this build does not use them yet.\n"
      "Flags marked " +
      std::string(status_label(flag_status::no_effect)) +
      " are accepted so that etcd command lines keep working.\n";
  for (const auto group : group_order) {
    out += '\n';
    out += group_title(group);
    out += ":\n";
    for (const auto& spec : flag_table()) {
      if (spec.group == group) append_flag(out, spec);
    }
  }
  return out;
}

std::string version_text() {
  std::string arch = "unknown";
#if defined(__x86_64__)
  arch = "amd64";
#elif defined(__aarch64__)
  arch = "arm64";
#endif
  std::string compiler = "unknown";
#if defined(__clang__)
  compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  compiler = "g++ " __VERSION__;
#endif
  const std::string etcd(base::etcd_version);
  return "cairn Version: " + std::string(base::cairn_version) + " (behaves as etcd " + etcd +
         ")\n" + "etcd Version: " + etcd + "\n" +
         "API Version: " + std::string(base::etcd_api_version()) + "\n" + "Compiler: " + compiler +
         "\n" + "OS/Arch: linux/" + arch + "\n";
}

}  // namespace cairn::cmd
