// base/log.h: logs as etcd's zap logger writes them, through spdlog.
//
//   json     {"level":"info","ts":"2026-12-03T08:26:56.625Z","caller":"etcdserver/server.cc:859",
//             "msg":"saved snapshot","index":100000,"term":2}   (one object a line; the default)
//   console  2026-12-03T08:26:56.625Z	INFO	etcdserver/server.cc:859	saved snapshot
//            {"index":100000,"term":2}
//
// Plain spdlog calls (spdlog::info("text {}", x)) come out the same way with their text as
// `msg`, no fields, and no caller. CAIRN_LOG adds fields and the caller:
//
//   CAIRN_LOG(info, "saved snapshot", {"index", index}, {"term", term});
//
// Field values are strings (quoted) or numbers and booleans (bare), as zap encodes them.
// Callers must never pass a secret or a stored value as a field.
//
// Thread-safety: spdlog's loggers and sinks (the _mt kinds) are thread-safe; so is log().
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cairn::base {

enum class log_style { json, console };

std::unique_ptr<spdlog::formatter> make_log_formatter(log_style style);

struct log_field {
  log_field(std::string_view k, std::string_view v) : key(k), value(v), quoted(true) {}
  log_field(std::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  log_field(std::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  log_field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), quoted(false) {}
  template <typename T>
  requires std::is_arithmetic_v<T> log_field(std::string_view k, T v)
      : key(k), value(std::to_string(v)), quoted(false) {}
  std::string_view key;
  std::string value;
  bool quoted;
};

// What CAIRN_LOG calls (a macro, not std::source_location: clang 14, which builds the fuzz
// targets, has no __builtin_source_location).
void log_at(const char* file, int line, spdlog::level::level_enum level, std::string_view msg,
            std::initializer_list<log_field> fields);

// Go's time.Duration.String() ("1.5s", "312.4ms", "42µs"), which etcd's "took" fields print.
std::string go_duration(std::chrono::nanoseconds d);

// Separates a log line's message from its encoded fields inside the spdlog payload.
inline constexpr char log_fields_marker = '\x1f';

}  // namespace cairn::base

#define CAIRN_LOG(lvl, msg, ...) \
  ::cairn::base::log_at(__FILE__, __LINE__, ::spdlog::level::lvl, msg, {__VA_ARGS__})
