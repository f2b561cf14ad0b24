#include "http/parser.h"

#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace cairn::http {

namespace {

// Go lets a head grow this much past MaxHeaderBytes before answering 431.
constexpr std::size_t head_slack = 4096;
// The longest chunk-size or trailer line accepted.
constexpr std::size_t max_chunk_line = 4096;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 9110 tchar.
bool is_token_char(char c) {
  return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

// Go's httpguts.ValidHostHeader: the bytes a Host header may hold.
bool valid_host(std::string_view host) {
  for (char c : host) {
    if (!is_alnum(c) && std::string_view("!$%&'()*+,-.:;=[]_~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool valid_value(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::optional<std::size_t> parse_decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::size_t>(c - '0');
    if (v > (std::numeric_limits<std::size_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<std::size_t> parse_hex(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  for (char c : s) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0 || v > (std::numeric_limits<std::size_t>::max() >> 4)) return std::nullopt;
    v = (v << 4) | static_cast<std::size_t>(d);
  }
  return v;
}

// The comma-separated tokens of every `name` header contain `token` (any case).
bool has_token(const header_list& headers, std::string_view name, std::string_view token) {
  for (const header& h : headers) {
    if (!iequals(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::vector<const std::string*> all_headers(const header_list& headers, std::string_view name) {
  std::vector<const std::string*> out;
  for (const header& h : headers) {
    if (iequals(h.name, name)) out.push_back(&h.value);
  }
  return out;
}

}  // namespace

std::string format_parse_error(const parse_error& e) {
  return "HTTP/1.1 " + e.public_text +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
         (e.body.empty() ? e.public_text : e.body);
}

request_reader::request_reader(limits l) : limits_(l) {}

void request_reader::feed(std::string_view bytes) { buffer_.append(bytes); }

bool request_reader::mid_request() const {
  if (phase_ != phase::head) return phase_ != phase::failed;
  // Blank lines between requests do not count.
  for (std::size_t i = start_; i < buffer_.size(); ++i) {
    if (buffer_[i] != '\r' && buffer_[i] != '\n') return true;
  }
  return false;
}

request_reader::step request_reader::fail(int status, std::string public_text, std::string body) {
  phase_ = phase::failed;
  error_ = parse_error{status, std::move(public_text), std::move(body)};
  return step::failed;
}

request_reader::step request_reader::advance() {
  switch (phase_) {
    case phase::head: {
      // Blank lines before a request line are ignored (RFC 9112 §2.2).
      while (start_ < buffer_.size()) {
        if (buffer_[start_] == '\n') {
          ++start_;
        } else if (buffer_[start_] == '\r' && start_ + 1 < buffer_.size() &&
                   buffer_[start_ + 1] == '\n') {
          start_ += 2;
        } else {
          break;
        }
      }
      if (scan_ < start_) scan_ = start_;
      const std::size_t head_limit = limits_.max_header_bytes + head_slack;
      while (true) {
        const std::size_t nl = buffer_.find('\n', scan_);
        if (nl == std::string::npos) {
          if (buffer_.size() - start_ > head_limit) {
            return fail(431, "431 Request Header Fields Too Large");
          }
          return step::need_more;
        }
        if (nl + 1 - start_ > head_limit) return fail(431, "431 Request Header Fields Too Large");
        const std::string_view line = strip_cr(std::string_view(buffer_).substr(scan_, nl - scan_));
        if (line.empty() && scan_ > start_) {
          const std::string_view head = std::string_view(buffer_).substr(start_, scan_ - start_);
          body_start_ = nl + 1;
          scan_ = nl + 1;
          const step s = parse_head(head);
          if (s != step::ready) return s;
          return advance();
        }
        scan_ = nl + 1;
      }
    }
    case phase::body_length:
      if (buffer_.size() - body_start_ >= body_length_) {
        current_.body = buffer_.substr(body_start_, body_length_);
        end_ = body_start_ + body_length_;
        phase_ = phase::ready;
        continue_pending_ = false;
        return step::ready;
      }
      if (continue_pending_) {
        continue_pending_ = false;
        return step::send_continue;
      }
      return step::need_more;
    case phase::body_chunked: {
      const step s = read_chunked();
      if (s == step::need_more && continue_pending_) {
        continue_pending_ = false;
        return step::send_continue;
      }
      if (s != step::need_more) continue_pending_ = false;
      return s;
    }
    case phase::ready:
      return step::ready;
    case phase::failed:
      return step::failed;
  }
  return step::failed;
}

// Reads the request line and headers (every line ends with '\n'; the blank line is not part of
// `head`). On success sets phase_ to the body's framing and returns ready (meaning: go on).
request_reader::step request_reader::parse_head(std::string_view head) {
  current_ = request{};
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const std::size_t nl = head.find('\n');
    lines.push_back(strip_cr(head.substr(0, nl)));
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
  }
  // Request line: METHOD SP request-target SP HTTP-version (Go cuts at the first two spaces).
  const std::string_view line = lines.front();
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(400, "400 Bad Request");
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "400 Bad Request");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view proto = line.substr(sp2 + 1);

  // HTTP/<major>.<minor>, digits only.
  if (!proto.starts_with("HTTP/")) return fail(400, "400 Bad Request");
  const std::string_view version = proto.substr(5);
  const std::size_t dot = version.find('.');
  if (dot == std::string_view::npos) return fail(400, "400 Bad Request");
  const auto major = parse_decimal(version.substr(0, dot));
  const auto minor = parse_decimal(version.substr(dot + 1));
  if (!major || !minor || *major > 1000000 || *minor > 1000000) {
    return fail(400, "400 Bad Request");
  }
  if (!is_token(method)) return fail(400, "400 Bad Request");
  if (*major != 1) return fail(400, "400 Bad Request: unsupported protocol version");
  current_.method.assign(method);
  current_.minor_version = *minor > 1 ? 1 : static_cast<int>(*minor);
  current_.target.assign(target);

  // Request target: origin-form, absolute-form or "*".
  if (target.empty()) return fail(400, "400 Bad Request");
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail(400, "400 Bad Request");
  }
  std::string_view path_and_query = target;
  std::string authority;
  bool absolute = false;
  if (target == "*") {
    current_.path = "*";
    path_and_query = {};
  } else if (target.front() != '/') {
    const std::size_t scheme_end = target.find("://");
    const std::string_view scheme =
        scheme_end == std::string_view::npos ? std::string_view{} : target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return fail(400, "400 Bad Request");
    std::string_view rest = target.substr(scheme_end + 3);
    const std::size_t path_start = rest.find_first_of("/?");
    authority.assign(rest.substr(0, path_start));
    path_and_query =
        path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
    absolute = true;
  }
  if (target != "*") {
    const std::size_t q = path_and_query.find('?');
    std::string_view raw_path = path_and_query.substr(0, q);
    if (q != std::string_view::npos) current_.raw_query.assign(path_and_query.substr(q + 1));
    if (raw_path.empty()) raw_path = "/";
    auto decoded = unescape(raw_path, false);
    if (!decoded) return fail(400, "400 Bad Request");
    current_.path = std::move(*decoded);
  }

  // Header fields; a line starting with whitespace continues the previous one (obs-fold).
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view l = lines[i];
    if (l.front() == ' ' || l.front() == '\t') {
      if (current_.headers.empty()) return fail(400, "400 Bad Request");
      const std::string_view more = trim(l);
      if (!valid_value(more)) return fail(400, "400 Bad Request");
      std::string& value = current_.headers.back().value;
      if (!more.empty()) {
        if (!value.empty()) value += ' ';
        value.append(more);
      }
      continue;
    }
    const std::size_t colon = l.find(':');
    if (colon == std::string_view::npos) return fail(400, "400 Bad Request");
    const std::string_view name = l.substr(0, colon);
    if (!is_token(name)) return fail(400, "400 Bad Request: invalid header name");
    const std::string_view value = trim(l.substr(colon + 1));
    if (!valid_value(value)) return fail(400, "400 Bad Request");
    current_.headers.push_back({std::string(name), std::string(value)});
  }

  // Host: HTTP/1.1 needs exactly one, made of host bytes.
  const auto hosts = all_headers(current_.headers, "Host");
  if (current_.minor_version >= 1 && hosts.empty()) {
    return fail(400, "400 Bad Request: missing required Host header");
  }
  if (hosts.size() > 1) return fail(400, "400 Bad Request: too many Host headers");
  if (hosts.size() == 1 && !valid_host(*hosts[0])) {
    return fail(400, "400 Bad Request: malformed Host header");
  }
  current_.host = absolute ? authority : (hosts.empty() ? std::string() : *hosts[0]);

  if (current_.minor_version >= 1) {
    current_.keep_alive = !has_token(current_.headers, "Connection", "close");
  } else {
    current_.keep_alive = has_token(current_.headers, "Connection", "keep-alive");
  }
  current_.query = parse_query(current_.raw_query);

  // Body framing: chunked (HTTP/1.1 only, as Go), else Content-Length, else none.
  bool chunked = false;
  const auto encodings = all_headers(current_.headers, "Transfer-Encoding");
  if (current_.minor_version >= 1 && !encodings.empty()) {
    if (encodings.size() > 1 || !iequals(trim(*encodings[0]), "chunked")) {
      return fail(501, "501 Not Implemented", "Unsupported transfer encoding");
    }
    chunked = true;
  }
  std::size_t length = 0;
  if (!chunked) {
    const auto lengths = all_headers(current_.headers, "Content-Length");
    if (!lengths.empty()) {
      const std::string_view first = trim(*lengths[0]);
      for (const std::string* other : lengths) {
        if (trim(*other) != first) return fail(400, "400 Bad Request");
      }
      const auto n = parse_decimal(first);
      if (!n) return fail(400, "400 Bad Request");
      length = *n;
    }
    if (length > limits_.max_body_bytes) return fail(413, "413 Request Entity Too Large");
  }

  // Expect: only 100-continue is understood (HTTP/1.1); Go answers anything else with 417.
  if (const std::string* expect = find_header(current_.headers, "Expect");
      expect != nullptr && current_.minor_version >= 1) {
    if (!iequals(trim(*expect), "100-continue")) return fail(417, "417 Expectation Failed");
    continue_pending_ = chunked || length > 0;
  }

  if (chunked) {
    phase_ = phase::body_chunked;
    chunk_pos_ = body_start_;
    chunk_phase_ = chunk_phase::size_line;
    chunk_left_ = 0;
  } else {
    phase_ = phase::body_length;
    body_length_ = length;
  }
  return step::ready;
}

request_reader::step request_reader::read_chunked() {
  while (true) {
    switch (chunk_phase_) {
      case chunk_phase::size_line:
      case chunk_phase::trailer: {
        const std::size_t nl = buffer_.find('\n', chunk_pos_);
        if (nl == std::string::npos) {
          if (buffer_.size() - chunk_pos_ > max_chunk_line) return fail(400, "400 Bad Request");
          return step::need_more;
        }
        if (nl - chunk_pos_ > max_chunk_line) return fail(400, "400 Bad Request");
        std::string_view line =
            strip_cr(std::string_view(buffer_).substr(chunk_pos_, nl - chunk_pos_));
        chunk_pos_ = nl + 1;
        if (chunk_phase_ == chunk_phase::trailer) {
          if (line.empty()) {
            end_ = chunk_pos_;
            phase_ = phase::ready;
            return step::ready;
          }
          continue;  // trailer fields are read and dropped
        }
        line = line.substr(0, line.find(';'));  // chunk extensions are ignored
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        const auto size = parse_hex(line);
        if (!size) return fail(400, "400 Bad Request");
        if (*size == 0) {
          chunk_phase_ = chunk_phase::trailer;
          continue;
        }
        if (*size > limits_.max_body_bytes - current_.body.size()) {
          return fail(413, "413 Request Entity Too Large");
        }
        chunk_left_ = *size;
        chunk_phase_ = chunk_phase::data;
        continue;
      }
      case chunk_phase::data: {
        const std::size_t available = buffer_.size() - chunk_pos_;
        const std::size_t take = available < chunk_left_ ? available : chunk_left_;
        current_.body.append(buffer_, chunk_pos_, take);
        chunk_pos_ += take;
        chunk_left_ -= take;
        if (chunk_left_ > 0) return step::need_more;
        chunk_phase_ = chunk_phase::data_end;
        continue;
      }
      case chunk_phase::data_end:
        if (buffer_.size() - chunk_pos_ < 2) return step::need_more;
        if (buffer_.compare(chunk_pos_, 2, "\r\n") != 0) return fail(400, "400 Bad Request");
        chunk_pos_ += 2;
        chunk_phase_ = chunk_phase::size_line;
        continue;
    }
  }
}

request request_reader::take() {
  request r = std::move(current_);
  current_ = request{};
#ifdef CAIRN_PLANTED_BUG_HTTP_PIPELINE
  // Planted bug: whatever the client sent after this request is thrown away.
  buffer_.clear();
#else
  buffer_.erase(0, end_);
#endif
  start_ = 0;
  scan_ = 0;
  end_ = 0;
  body_start_ = 0;
  body_length_ = 0;
  chunk_pos_ = 0;
  chunk_left_ = 0;
  continue_pending_ = false;
  phase_ = phase::head;
  return r;
}

}  // namespace cairn::http
