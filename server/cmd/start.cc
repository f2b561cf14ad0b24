#include "cmd/start.h"

#include <spdlog/sinks/basic_file_sink.h>

#include "base/log.h"

#include <memory>

#include <grpc/support/log.h>
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
  // --log-outputs: "default" and "stderr" are the error stream, "stdout" the output stream,
  // anything else a file (appended to), as etcd.
  std::vector<spdlog::sink_ptr> sinks;
  for (const auto& o : loaded->cfg.log_outputs) {
    if (o == "default" || o == "stderr") {
      sinks.push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(err, /*force_flush=*/true));
    } else if (o == "stdout") {
      sinks.push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(out, /*force_flush=*/true));
    } else {
      try {
        sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(o));
      } catch (const spdlog::spdlog_ex& e) {
        err << "cairn: cannot open log output " << o << ": " << e.what() << "\n";
        return 1;
      }
    }
  }
  if (sinks.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(err, /*force_flush=*/true));
  }
  auto logger = std::make_shared<spdlog::logger>("cairn", sinks.begin(), sinks.end());
  logger->set_formatter(base::make_log_formatter(loaded->cfg.format == log_format::console
                                                     ? base::log_style::console
                                                     : base::log_style::json));
  logger->set_level(spdlog_level(loaded->cfg.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  // gRPC core's own lines (refused TLS handshakes among them) into the same log and format.
  gpr_set_log_function([](gpr_log_func_args* args) {
    const auto level = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::warn
                       : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                                 : spdlog::level::debug;
    spdlog::log(level, "grpc: {}", args->message);
  });
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
