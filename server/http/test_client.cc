#include "http/test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace cairn::http::testing {

namespace {
using steady = std::chrono::steady_clock;
}

raw_client::raw_client(int fd) : fd_(fd) {}

raw_client raw_client::connect_tcp(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "test client: connect to 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    std::abort();
  }
  return raw_client(fd);
}

raw_client::~raw_client() {
  if (fd_ >= 0) ::close(fd_);
}

raw_client::raw_client(raw_client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), buffer_(std::move(other.buffer_)), eof_(other.eof_) {}

bool raw_client::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void raw_client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool raw_client::fill(steady::time_point deadline) {
  if (eof_) return false;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
}

bool raw_client::wait_for(std::string_view pattern, std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (buffer_.find(pattern) == std::string::npos) {
    if (!fill(deadline)) return false;
  }
  return true;
}

bool raw_client::wait_bytes(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (buffer_.size() < n) {
    if (!fill(deadline)) return false;
  }
  return true;
}

bool raw_client::wait_eof(std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (!eof_) {
    if (!fill(deadline) && !eof_) return false;
  }
  return true;
}

std::optional<parsed_response> raw_client::read_response(bool head_only,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  std::size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  parsed_response r;
  const std::string head = buffer_.substr(0, head_end);
  std::size_t line_end = head.find("\r\n");
  r.status_line = head.substr(0, line_end);
  if (r.status_line.size() >= 12) r.status = std::atoi(r.status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    const std::size_t next = head.find("\r\n", line_end + 2);
    const std::string line = head.substr(
        line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      r.headers.push_back({line.substr(0, colon), line.substr(v)});
    }
    line_end = next;
  }
  std::size_t pos = head_end + 4;
  const bool no_body =
      head_only || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  const std::string* length = find_header(r.headers, "Content-Length");
  const std::string* encoding = find_header(r.headers, "Transfer-Encoding");
  if (no_body) {
    // nothing
  } else if (encoding != nullptr && *encoding == "chunked") {
    r.chunked = true;
    while (true) {
      std::size_t nl;
      while ((nl = buffer_.find("\r\n", pos)) == std::string::npos) {
        if (!fill(deadline)) return std::nullopt;
      }
      const std::size_t size = std::strtoul(buffer_.c_str() + pos, nullptr, 16);
      const std::size_t data = nl + 2;
      if (size == 0) {
        // The last chunk: trailer lines, then an empty line.
        std::size_t at = data;
        while (true) {
          std::size_t end;
          while ((end = buffer_.find("\r\n", at)) == std::string::npos) {
            if (!fill(deadline)) return std::nullopt;
          }
          if (end == at) {
            at = end + 2;
            break;
          }
          const std::string line = buffer_.substr(at, end - at);
          const std::size_t colon = line.find(':');
          if (colon != std::string::npos) {
            std::size_t v = colon + 1;
            while (v < line.size() && line[v] == ' ') ++v;
            r.trailers.push_back({line.substr(0, colon), line.substr(v)});
          }
          at = end + 2;
        }
        r.chunks.push_back(buffer_.substr(pos, at - pos));
        pos = at;
        break;
      }
      while (buffer_.size() < data + size + 2) {
        if (!fill(deadline)) return std::nullopt;
      }
      r.chunks.push_back(buffer_.substr(pos, data + size + 2 - pos));
      r.body += buffer_.substr(data, size);
      pos = data + size + 2;
    }
  } else if (length != nullptr) {
    const std::size_t n = std::strtoul(length->c_str(), nullptr, 10);
    while (buffer_.size() < pos + n) {
      if (!fill(deadline)) return std::nullopt;
    }
    r.body = buffer_.substr(pos, n);
    pos += n;
  } else {
    while (!eof_) {
      if (!fill(deadline) && !eof_) return std::nullopt;
    }
    r.body = buffer_.substr(pos);
    pos = buffer_.size();
  }
  r.raw = buffer_.substr(0, pos);
  buffer_.erase(0, pos);
  return r;
}

}  // namespace cairn::http::testing
