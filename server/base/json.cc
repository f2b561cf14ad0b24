#include "base/json.h"

namespace cairn::base {

namespace {

// The length of the valid UTF-8 sequence at the start of `s` (its code point in `rune`), or 0.
std::size_t utf8_sequence(std::string_view s, char32_t& rune) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) {
    rune = b0;
    return 1;
  }
  auto cont = [&](std::size_t i) {
    return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80;
  };
  auto bits = [&](std::size_t i) { return static_cast<char32_t>(s[i] & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    rune = (static_cast<char32_t>(b0 & 0x1F) << 6) | bits(1);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    rune = (static_cast<char32_t>(b0 & 0x0F) << 12) | (bits(1) << 6) | bits(2);
    if (rune < 0x800 || (rune >= 0xD800 && rune <= 0xDFFF)) return 0;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    rune = (static_cast<char32_t>(b0 & 0x07) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
    if (rune < 0x10000 || rune > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

std::string json_quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text[0]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
          } else {
            out += static_cast<char>(c);
          }
      }
      text.remove_prefix(1);
      continue;
    }
    char32_t rune = 0;
    const std::size_t n = utf8_sequence(text, rune);
    if (n == 0) {
      out += "\\ufffd";
      text.remove_prefix(1);
    } else if (rune == 0x2028 || rune == 0x2029) {
      out += rune == 0x2028 ? "\\u2028" : "\\u2029";
      text.remove_prefix(n);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  out += '"';
  return out;
}

}  // namespace cairn::base
