#include "cmd/start.h"

#include <memory>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "base/version.h"
#include "cmd/help.h"

extern char** environ;

namespace cairn::cmd {

namespace {

spdlog::level::level_enum spdlog_level(log_level level) {
  switch (level) {
    case log_level::debug:
      return spdlog::level::debug;
    case log_level::info:
      return spdlog::level::info;
    case log_level::warn:
      return spdlog::level::warn;
    case log_level::error:
      return spdlog::level::err;
    case log_level::panic:
    case log_level::fatal:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

void log_settings(const load_result& loaded) {
  const config& cfg = loaded.cfg;
  spdlog::info("cairn {} (behaves as etcd {}), settings from {}", base::cairn_version,
               base::etcd_version,
               cfg.config_file.empty() ? std::string("the command line and environment")
                                       : "config file " + cfg.config_file);
  for (const auto& spec : flag_table()) {
    if (spec.group == flag_group::usage || spec.group == flag_group::ignored) continue;
    const std::string name(spec.name);
    const std::string value = spec.secret ? std::string("******") : spec.value.get(cfg);
    if (auto it = loaded.given.find(name); it != loaded.given.end()) {
      std::string mark;
      if (spec.status != flag_status::acted_on) {
        mark = " ";
        mark += status_label(spec.status);
      }
      spdlog::info("  --{}={} ({}){}", name, value, origin_name(it->second), mark);
      continue;
    }
    // One line per setting: the etcd 3.6 spelling, unless the user wrote the old one.
    if (!spec.replaced_by.empty()) continue;
    if (const flag_spec* old = old_spelling_of(spec);
        old != nullptr && loaded.given.contains(std::string(old->name))) {
      continue;
    }
    if (name == "data-dir" || name == "initial-cluster") {
      spdlog::info("  --{}={} (derived)", name, value);
    } else {
      spdlog::debug("  --{}={} (default)", name, value);
    }
  }
}

}  // namespace

int start(std::span<const std::string> args, const environment& env, std::ostream& out,
          std::ostream& err, run_function run) {
  auto loaded = load(args, env);
  if (!loaded) {
    err << "cairn: " << loaded.error() << "\n";
    return 1;
  }
  for (const auto& warning : loaded->warnings) err << "cairn: warning: " << warning << "\n";
  switch (loaded->what) {
    case action::help:
      out << help_text();
      return 0;
    case action::version:
      out << version_text();
      return 0;
    case action::run:
      break;
  }
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(err, /*force_flush=*/true);
  auto logger = std::make_shared<spdlog::logger>("cairn", std::move(sink));
  logger->set_level(spdlog_level(loaded->cfg.level));
  spdlog::set_default_logger(std::move(logger));
  log_settings(*loaded);
  return run(loaded->cfg);
}

environment process_environment() {
  environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(text.substr(0, eq), text.substr(eq + 1));
  }
  return env;
}

}  // namespace cairn::cmd
