#include "base/log.h"

#include <spdlog/details/log_msg.h>

#include <cstdio>
#include <ctime>

namespace cairn::base {
namespace {

// Go's encoding/json quoting, as zap writes strings (control characters escaped; '<', '>' and
// '&' kept, as zap does not HTML-escape).
void quote(std::string_view s, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(std::string_view(buf));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// zap's ISO8601 time in UTC, millisecond precision: 2026-12-03T08:26:56.625Z.
void timestamp(spdlog::log_clock::time_point t, spdlog::memory_buf_t& out) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  out.append(std::string_view(buf));
}

std::string_view level_name(spdlog::level::level_enum l, bool upper) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return upper ? "DEBUG" : "debug";
    case spdlog::level::info:
      return upper ? "INFO" : "info";
    case spdlog::level::warn:
      return upper ? "WARN" : "warn";
    case spdlog::level::err:
      return upper ? "ERROR" : "error";
    case spdlog::level::critical:
      return upper ? "FATAL" : "fatal";
    default:
      return upper ? "INFO" : "info";
  }
}

// "…/server/etcdserver/server.cc" → "etcdserver/server.cc".
std::string_view short_file(std::string_view path) {
  const auto at = path.rfind("/server/");
  if (at != std::string_view::npos) return path.substr(at + 8);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return path;
  const auto before = path.rfind('/', slash - 1);
  return before == std::string_view::npos ? path : path.substr(before + 1);
}

class zap_formatter final : public spdlog::formatter {
 public:
  explicit zap_formatter(log_style style) : style_(style) {}
  void format(const spdlog::details::log_msg& m, spdlog::memory_buf_t& dest) override {
    std::string_view payload(m.payload.data(), m.payload.size());
    std::string_view msg = payload;
    std::string_view fields;  // `"k":v,"k2":v2` (no braces)
    if (auto at = payload.find(log_fields_marker); at != std::string_view::npos) {
      msg = payload.substr(0, at);
      fields = payload.substr(at + 1);
    }
    std::string caller;
    if (!m.source.empty()) {
      caller = std::string(short_file(m.source.filename)) + ":" + std::to_string(m.source.line);
    }
    if (style_ == log_style::json) {
      dest.append(std::string_view("{\"level\":\""));
      dest.append(level_name(m.level, false));
      dest.append(std::string_view("\",\"ts\":\""));
      timestamp(m.time, dest);
      dest.push_back('"');
      if (!caller.empty()) {
        dest.append(std::string_view(",\"caller\":"));
        quote(caller, dest);
      }
      dest.append(std::string_view(",\"msg\":"));
      quote(msg, dest);
      if (!fields.empty()) {
        dest.push_back(',');
        dest.append(fields);
      }
      dest.append(std::string_view("}\n"));
    } else {
      timestamp(m.time, dest);
      dest.push_back('\t');
      dest.append(level_name(m.level, true));
      dest.push_back('\t');
      if (!caller.empty()) {
        dest.append(caller);
        dest.push_back('\t');
      }
      dest.append(msg);
      if (!fields.empty()) {
        dest.append(std::string_view("\t{"));
        dest.append(fields);
        dest.push_back('}');
      }
      dest.push_back('\n');
    }
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<zap_formatter>(style_);
  }

 private:
  log_style style_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(log_style style) {
  return std::make_unique<zap_formatter>(style);
}

void log_at(const char* file, int line, spdlog::level::level_enum level, std::string_view msg,
            std::initializer_list<log_field> fields) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  spdlog::memory_buf_t payload;
  payload.append(msg);
  if (fields.size() > 0) {
    payload.push_back(log_fields_marker);
    bool first = true;
    for (const auto& f : fields) {
      if (!first) payload.push_back(',');
      first = false;
      quote(f.key, payload);
      payload.push_back(':');
      if (f.quoted) {
        quote(f.value, payload);
      } else {
        payload.append(std::string_view(f.value));
      }
    }
  }
  logger->log(spdlog::source_loc{file, line, ""}, level,
              std::string_view(payload.data(), payload.size()));
}

std::string go_duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%lldns", static_cast<long long>(d.count()));
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%gµs", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%gms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%gs", ns / 1e9);
  }
  return buf;
}

}  // namespace cairn::base
