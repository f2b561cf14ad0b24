#include "cmd/values.h"

#include <arpa/inet.h>
#include <algorithm>
#include <cmath>
#include <limits>

namespace cairn::cmd {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Go accepts "_" in base-0 literals only as a separator: after a digit or the base prefix,
// before a digit, never last.
bool underscores_ok(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  bool hex = false;
  std::size_t i = 0;
  char saw = '^';  // '^' start, '0' digit or prefix, '_' underscore, '!' anything else
  if (s.size() >= 2 && s[0] == '0' &&
      (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
    hex = lower(s[1]) == 'x';
    i = 2;
    saw = '0';
  }
  for (; i < s.size(); ++i) {
    const char c = lower(s[i]);
    if ((c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f')) {
      saw = '0';
    } else if (c == '_') {
      if (saw != '0') return false;
      saw = '_';
    } else {
      if (saw == '_') return false;
      saw = '!';
    }
  }
  return saw != '_';
}

// The magnitude of an unsigned base-0 literal (Go's prefixes; underscores already checked).
std::expected<std::uint64_t, std::string> parse_magnitude(std::string_view s) {
  if (s.empty()) return std::unexpected("not a number");
  int base = 10;
  if (s.size() >= 2 && s[0] == '0') {
    const char p = lower(s[1]);
    if (p == 'x') {
      base = 16;
      s.remove_prefix(2);
    } else if (p == 'o') {
      base = 8;
      s.remove_prefix(2);
    } else if (p == 'b') {
      base = 2;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  if (s.empty()) return std::unexpected("not a number");
  std::uint64_t value = 0;
  bool any_digit = false;
  bool overflow = false;
  for (const char raw : s) {
    if (raw == '_') continue;
    const char c = lower(raw);
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'z') {
      digit = c - 'a' + 10;
    } else {
      return std::unexpected("not a number");
    }
    if (digit >= base) return std::unexpected("not a number");
    any_digit = true;
    if (value > (std::numeric_limits<std::uint64_t>::max() - static_cast<std::uint64_t>(digit)) /
                    static_cast<std::uint64_t>(base)) {
      overflow = true;
    } else {
      value = value * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
    }
  }
  if (!any_digit) return std::unexpected("not a number");
  if (overflow) return std::unexpected("value out of range");
  return value;
}

}  // namespace

std::expected<bool, std::string> parse_go_bool(std::string_view text) {
  if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" ||
      text == "True") {
    return true;
  }
  if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" ||
      text == "False") {
    return false;
  }
  return std::unexpected("not a boolean (use true or false)");
}

std::expected<std::uint64_t, std::string> parse_go_uint(std::string_view text, int bits) {
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    return std::unexpected("not an unsigned integer");
  }
  if (!underscores_ok(text)) return std::unexpected("not an unsigned integer");
  auto magnitude = parse_magnitude(text);
  if (!magnitude) {
    if (magnitude.error() == "value out of range") return magnitude;
    return std::unexpected("not an unsigned integer");
  }
  if (bits < 64 && *magnitude > ((std::uint64_t{1} << bits) - 1)) {
    return std::unexpected("value out of range");
  }
  return *magnitude;
}

std::expected<std::int64_t, std::string> parse_go_int(std::string_view text, int bits) {
  bool negative = false;
  if (!underscores_ok(text)) return std::unexpected("not an integer");
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  auto magnitude = parse_magnitude(text);
  if (!magnitude) {
    if (magnitude.error() == "value out of range") return std::unexpected(magnitude.error());
    return std::unexpected("not an integer");
  }
  const std::uint64_t limit = std::uint64_t{1} << (bits - 1);  // |min|; max is limit - 1
  if (negative ? *magnitude > limit : *magnitude >= limit) {
    return std::unexpected("value out of range");
  }
  if (negative) return static_cast<std::int64_t>(0 - *magnitude);
  return static_cast<std::int64_t>(*magnitude);
}

std::expected<duration, std::string> parse_go_duration(std::string_view text) {
  const std::string invalid = "not a duration (use a number with a unit: 500ms, 5s, 1h30m)";
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return duration{0};
  if (text.empty()) return std::unexpected(invalid);

  // Accumulate in unsigned nanoseconds, as Go does, and check for overflow at each step.
  std::uint64_t total = 0;
  constexpr std::uint64_t max_magnitude = std::uint64_t{1} << 63;
  while (!text.empty()) {
    const char first = text[0];
    if (!(first == '.' || (first >= '0' && first <= '9'))) return std::unexpected(invalid);
    // Integer part.
    std::uint64_t whole = 0;
    std::size_t i = 0;
    bool whole_digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (whole > (max_magnitude - static_cast<std::uint64_t>(text[i] - '0')) / 10) {
        return std::unexpected("duration out of range");
      }
      whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
      whole_digits = true;
      ++i;
    }
    // Fraction part: keep the digits that still fit, as Go does.
    std::uint64_t fraction = 0;
    double scale = 1;
    bool fraction_digits = false;
    if (i < text.size() && text[i] == '.') {
      ++i;
      bool overflowed = false;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        fraction_digits = true;
        if (!overflowed) {
          if (fraction > (std::numeric_limits<std::int64_t>::max() - 9) / 10) {
            overflowed = true;
          } else {
            fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
            scale *= 10;
          }
        }
        ++i;
      }
    }
    if (!whole_digits && !fraction_digits) return std::unexpected(invalid);
    // Unit: everything up to the next digit or dot.
    std::size_t unit_end = i;
    while (unit_end < text.size() && text[unit_end] != '.' &&
           !(text[unit_end] >= '0' && text[unit_end] <= '9')) {
      ++unit_end;
    }
    const std::string_view unit_text = text.substr(i, unit_end - i);
    if (unit_text.empty()) {
      return std::unexpected("missing unit in duration (use ns, us, ms, s, m or h)");
    }
    std::uint64_t unit = 0;
    if (unit_text == "ns") {
      unit = 1;
    } else if (unit_text == "us" || unit_text == "\xC2\xB5s" || unit_text == "\xCE\xBCs") {
      unit = 1000;
    } else if (unit_text == "ms") {
      unit = 1000 * 1000;
    } else if (unit_text == "s") {
      unit = 1000 * 1000 * 1000;
    } else if (unit_text == "m") {
      unit = 60ull * 1000 * 1000 * 1000;
    } else if (unit_text == "h") {
      unit = 3600ull * 1000 * 1000 * 1000;
    } else {
      return std::unexpected("unknown unit \"" + std::string(unit_text) +
                             "\" in duration (use ns, us, ms, s, m or h)");
    }
    if (whole > max_magnitude / unit) return std::unexpected("duration out of range");
    std::uint64_t value = whole * unit;
    if (fraction > 0) {
      const auto extra = static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                                    (static_cast<double>(unit) / scale));
      value += extra;
      if (value > max_magnitude) return std::unexpected("duration out of range");
    }
    total += value;
    if (total > max_magnitude) return std::unexpected("duration out of range");
    text.remove_prefix(unit_end);
  }
  if (negative) return duration{static_cast<std::int64_t>(0 - total)};
  if (total > max_magnitude - 1) return std::unexpected("duration out of range");
  return duration{static_cast<std::int64_t>(total)};
}

namespace {

// Writes v's last `digits` decimal digits as a fraction (".5", ".25"), trailing zeros cut;
// returns v with those digits removed. Go's fmtFrac.
std::uint64_t append_fraction(std::string& out, std::uint64_t v, int digits) {
  std::string frac;
  bool significant = false;
  for (int i = 0; i < digits; ++i) {
    const auto digit = static_cast<char>('0' + v % 10);
    significant = significant || digit != '0';
    if (significant) frac.insert(frac.begin(), digit);
    v /= 10;
  }
  if (!frac.empty()) out += "." + frac;
  return v;
}

}  // namespace

std::string format_go_duration(duration d) {
  const std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  const bool negative = ns < 0;
  std::uint64_t u = negative ? 0 - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
  std::string out;
  if (u < 1000ull * 1000 * 1000) {
    if (u < 1000) {
      out = std::to_string(u) + "ns";
    } else if (u < 1000ull * 1000) {
      std::string frac;
      const std::uint64_t whole = append_fraction(frac, u, 3);
      out = std::to_string(whole) + frac + "\xC2\xB5s";
    } else {
      std::string frac;
      const std::uint64_t whole = append_fraction(frac, u, 6);
      out = std::to_string(whole) + frac + "ms";
    }
  } else {
    std::string frac;
    u = append_fraction(frac, u, 9);
    out = std::to_string(u % 60) + frac + "s";
    u /= 60;
    if (u > 0) {
      out = std::to_string(u % 60) + "m" + out;
      u /= 60;
      if (u > 0) out = std::to_string(u) + "h" + out;
    }
  }
  return negative ? "-" + out : out;
}

std::string url::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool url::host_is_ip() const {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

std::expected<url, std::string> parse_url(std::string_view text) {
  // etcd trims each list item before parsing it.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  const std::string shown(text);
  const std::string bad_scheme = "URL scheme must be http, https, unix, or unixs: " + shown;
  const std::string bad_address = "URL address does not have the form \"host:port\": " + shown;

  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::unexpected(bad_scheme);
  std::string scheme;
  for (const char c : text.substr(0, colon)) scheme += lower(c);
  if (scheme != "http" && scheme != "https" && scheme != "unix" && scheme != "unixs") {
    return std::unexpected(bad_scheme);
  }
  std::string_view rest = text.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return std::unexpected(bad_address);
  rest.remove_prefix(2);
  const auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (authority_end != std::string_view::npos) {
    return std::unexpected("URL must not contain a path: " + shown);
  }
  if (authority.find('@') != std::string_view::npos) {
    return std::unexpected("URL must not contain user information: " + shown);
  }
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close + 1 >= authority.size() ||
        authority[close + 1] != ':') {
      return std::unexpected(bad_address);
    }
    host = authority.substr(1, close - 1);
    port = authority.substr(close + 2);
  } else {
    const auto last = authority.rfind(':');
    if (last == std::string_view::npos) return std::unexpected(bad_address);
    host = authority.substr(0, last);
    port = authority.substr(last + 1);
    if (host.find(':') != std::string_view::npos) return std::unexpected(bad_address);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::unexpected(bad_address);
  }
  const unsigned long port_number = std::stoul(std::string(port));
  if (port_number > 65535) return std::unexpected(bad_address);
  url parsed;
  parsed.scheme = std::move(scheme);
  parsed.host = std::string(host);
  parsed.port = static_cast<std::uint16_t>(port_number);
  return parsed;
}

std::expected<std::vector<url>, std::string> parse_url_list(std::string_view text) {
  std::vector<url> urls;
  for (const auto& item : split_commas(text)) {
    auto parsed = parse_url(item);
    if (!parsed) return std::unexpected(parsed.error());
    urls.push_back(std::move(*parsed));
  }
  if (urls.empty()) return std::unexpected("no valid URLs given");
  std::sort(urls.begin(), urls.end(),
            [](const url& a, const url& b) { return a.to_string() < b.to_string(); });
  urls.erase(std::unique(urls.begin(), urls.end()), urls.end());
  return urls;
}

std::string format_url_list(const std::vector<url>& urls) {
  std::string out;
  for (const auto& u : urls) {
    if (!out.empty()) out += ',';
    out += u.to_string();
  }
  return out;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    items.emplace_back(text.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

std::string join_commas(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

}  // namespace cairn::cmd
