// http/message.h: the values Cairn's HTTP/1.1 side speaks in: a parsed request, a response
// (whole, or streamed in chunks), the handler signature, and the small text helpers every
// handler needs (query strings, Go's error bodies, JSON string quoting).
//
// Responses imitate Go's net/http byte for byte where a client could notice (status lines,
// error bodies, header names), because etcd's HTTP side is Go's: scripts compare those bytes.
//
// Thread-safety: plain values. A stream_writer belongs to the connection thread that calls the
// stream function; it must not be used after that function returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"

namespace cairn::http {

struct header {
  std::string name;
  std::string value;
  friend bool operator==(const header&, const header&) = default;
};
using header_list = std::vector<header>;

// ASCII case-insensitive comparison (header names, tokens).
bool iequals(std::string_view a, std::string_view b);
// The value of the first header called `name` (any case), or nullptr.
const std::string* find_header(const header_list& headers, std::string_view name);

struct request {
  std::string method;
  std::string target;     // the request-target as sent
  std::string path;       // percent-decoded path ("/health")
  std::string raw_query;  // what follows '?', still escaped
  int minor_version = 1;  // HTTP/1.<minor_version>
  header_list headers;
  std::string host;  // the Host header (or the authority of an absolute-form target)
  std::string body;
  bool keep_alive = true;      // the connection stays open after the answer
  bool secure = false;         // arrived over TLS
  std::string remote_address;  // "ip:port" of the client, for logs
  // Query parameters in order, decoded as Go's url.ParseQuery does (pairs with a bad escape
  // are dropped, '+' is a space).
  std::vector<std::pair<std::string, std::string>> query;

  std::vector<std::string> query_values(std::string_view key) const;
  bool has_query(std::string_view key) const;           // present, even with an empty value
  std::string query_value(std::string_view key) const;  // the first value, or ""
};

// Where a streamed body goes: each write() is sent at once as one chunk.
class stream_writer {
 public:
  virtual ~stream_writer() = default;
  // Sends `data` (nothing for an empty string). False once the client has gone or the server
  // is stopping: the stream function should then return.
  virtual bool write(std::string_view data) = 0;
  // Waits up to `timeout` for the connection to end (client hang-up or server stop) and says
  // whether it has: lets an idle stream notice a client that left.
  virtual bool wait_closed(std::chrono::milliseconds timeout) = 0;
};

struct response {
  int status = 200;
  header_list headers;  // Date, Content-Length, Connection and Transfer-Encoding are added
  std::string body;
  // When set, the body is streamed instead: the server sends the head, then calls this on the
  // connection's thread; it writes chunks until it returns. (HTTP/1.1: chunked encoding;
  // HTTP/1.0: raw bytes, then the connection closes.)
  std::function<void(stream_writer&)> stream;
  // Sent after a streamed body, in the last chunk (HTTP/1.1 only; HTTP/1.0 has no trailers).
  // Go sends them only if announced: add a `Trailer` header naming them.
  header_list trailers;
};

using handler = std::function<response(const request&)>;

// "OK", "Not Found", ... as Go's http.StatusText; "" for a code it does not know.
std::string_view reason_phrase(int status);

// Go's http.Error: text/plain; charset=utf-8, X-Content-Type-Options: nosniff, text + "\n".
response error_response(int status, std::string_view text);
// Go's answer to a method a handler does not take: 405 with `Allow`, "Method Not Allowed".
response method_not_allowed(std::string_view allow);
// Go's http.NotFound: 404 "404 page not found".
response not_found();

// Percent-decoding as Go's url.PathUnescape / QueryUnescape (plus_is_space); nullopt for a
// malformed escape.
std::optional<std::string> unescape(std::string_view text, bool plus_is_space);
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view raw_query);

// Go's encoding/json string literal (base/json.h).
using base::json_quote;

// An IMF-fixdate ("Sun, 22 Nov 2026 04:30:27 GMT"), as in Go's Date header.
std::string http_date(std::chrono::system_clock::time_point t);

}  // namespace cairn::http
