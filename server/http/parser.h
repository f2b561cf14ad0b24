// http/parser.h: reading HTTP/1.x requests out of a byte stream, one after another (keep-alive
// and pipelining), with limits. No I/O: the connection feeds bytes in and asks for the next
// step, so every malformed or oversized input can be tested without a socket.
//
// What is accepted and refused follows Go's net/http server (etcd's HTTP side), including its
// exact refusals: "400 Bad Request: missing required Host header", "431 Request Header Fields
// Too Large" once the head passes max_header_bytes + 4096, "501 Not Implemented" for a
// transfer coding other than chunked.
//
// Thread-safety: none; one reader per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/message.h"

namespace cairn::http {

struct limits {
  // Request line plus headers; Go's DefaultMaxHeaderBytes (Go lets 4096 more bytes through).
  std::size_t max_header_bytes = 1 << 20;
  // A request body (Content-Length or chunked); more is refused with 413.
  std::size_t max_body_bytes = 32 << 20;
};

// Why a request was refused. `public_text` is both the status line's tail and the body, as Go
// writes them ("400 Bad Request: invalid header name"), unless `body` says otherwise.
struct parse_error {
  int status = 400;
  std::string public_text;
  std::string body;  // empty: the body is public_text
};

// The bytes Go sends for a refused request (and then it closes the connection).
std::string format_parse_error(const parse_error& e);

class request_reader {
 public:
  enum class step {
    need_more,      // feed more bytes
    send_continue,  // the head asked "Expect: 100-continue": send "100 Continue", then advance
    ready,          // take() the request
    failed,         // error() says why; the connection must close after answering it
  };

  explicit request_reader(limits l = {});

  void feed(std::string_view bytes);
  step advance();
  // The request advance() reported ready; the reader moves on to the bytes after it.
  request take();
  const parse_error& error() const { return error_; }
  // True while part of a request is buffered (so an EOF now is a truncated request).
  bool mid_request() const;

 private:
  enum class phase { head, body_length, body_chunked, ready, failed };
  enum class chunk_phase { size_line, data, data_end, trailer };

  step fail(int status, std::string public_text, std::string body = {});
  step parse_head(std::string_view head);
  step read_chunked();

  limits limits_;
  std::string buffer_;
  std::size_t start_ = 0;  // where the current request begins in buffer_
  std::size_t scan_ = 0;   // head: where to resume looking for the blank line
  phase phase_ = phase::head;
  request current_;
  std::size_t body_length_ = 0;  // body_length: bytes expected
  std::size_t body_start_ = 0;   // offset of the body in buffer_
  std::size_t end_ = 0;          // ready: where the request ends in buffer_
  std::size_t chunk_pos_ = 0;    // body_chunked: parse position in buffer_
  std::size_t chunk_left_ = 0;   // bytes left in the current chunk
  chunk_phase chunk_phase_ = chunk_phase::size_line;
  bool continue_pending_ = false;  // send_continue still to be reported
  parse_error error_;
};

}  // namespace cairn::http
