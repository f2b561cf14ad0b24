// Test support (compiled into tests only): a raw HTTP/1.1 client over a socket, so tests see the
// exact bytes a server sends (status line, header order, chunk framing, when it closes).
//
// Thread-safety: none; one client per thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace cairn::http::testing {

struct parsed_response {
  std::string raw;          // every byte of this response
  std::string status_line;  // "HTTP/1.1 200 OK"
  int status = 0;
  header_list headers;              // in the order sent
  std::string body;                 // de-chunked
  std::vector<std::string> chunks;  // chunked responses: each chunk as framed
  header_list trailers;             // chunked responses: the trailer fields of the last chunk
  bool chunked = false;
};

class raw_client {
 public:
  explicit raw_client(int fd);  // takes ownership
  // Connects to 127.0.0.1:port (aborts the test binary if it cannot).
  static raw_client connect_tcp(int port);
  ~raw_client();
  raw_client(raw_client&& other) noexcept;
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;
  raw_client& operator=(raw_client&&) = delete;

  bool send(std::string_view bytes);
  void shutdown_write();
  // One response: with Content-Length, chunked, or (HTTP/1.0 style) up to EOF. `head_only`:
  // the request was HEAD, so no body follows the head. nullopt if it did not arrive in time.
  std::optional<parsed_response> read_response(
      bool head_only = false, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until `pattern` appears in what was received (kept for later reads); false on
  // timeout or EOF first.
  bool wait_for(std::string_view pattern,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until at least `n` bytes are unconsumed; false on timeout or EOF first.
  bool wait_bytes(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True once the server closed the connection (after draining anything still unread into
  // leftover()); false if it stays open for `timeout`.
  bool wait_eof(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Received but not yet consumed by read_response().
  const std::string& leftover() const { return buffer_; }
  void consume(std::size_t n) { buffer_.erase(0, n); }
  int fd() const { return fd_; }

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace cairn::http::testing
