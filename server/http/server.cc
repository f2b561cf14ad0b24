#include "http/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <system_error>
#include <utility>

namespace cairn::http {

namespace {

using steady = std::chrono::steady_clock;

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Waits for `fd` to be readable until `deadline` (none: forever) or a stop; then reads.
// Returns the byte count, 0 at end of stream, -1 on error, timeout or stop.
ssize_t read_until(int fd, int stop_fd, std::optional<steady::time_point> deadline, char* buf,
                   std::size_t size) {
  while (true) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - steady::now()).count();
      if (left <= 0) return -1;
      timeout_ms = static_cast<int>(std::min<long long>(left, 1 << 30));
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (ready == 0) return -1;                   // deadline
    if (fds[1].revents != 0) return -1;          // stopping
    const ssize_t n = ::recv(fd, buf, size, 0);  // POLLIN, POLLHUP or POLLERR: recv tells
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? -1 : n;
  }
}

bool has_no_body(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

std::string status_line(int minor_version, int status) {
  std::string line = minor_version == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  line += std::to_string(status);
  line += ' ';
  line += reason_phrase(status);
  line += "\r\n";
  return line;
}

// Go's http.DetectContentType, reduced to what Cairn's handlers send: text, or bytes that are
// not text.
std::string_view sniff_content_type(std::string_view body) {
  for (const char c : body.substr(0, 512)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x08 || u == 0x0B || (u >= 0x0E && u <= 0x1A) || (u >= 0x1C && u <= 0x1F)) {
      return "application/octet-stream";
    }
  }
  return "text/plain; charset=utf-8";
}

// The head Go writes: the handler's headers sorted by name, then Date, Content-Length, a sniffed
// Content-Type (when the handler set none and there is a body), Connection, Transfer-Encoding.
std::string format_head(const request& req, const response& resp, bool keep_alive,
                        std::optional<std::size_t> content_length, bool chunked) {
  header_list sorted = resp.headers;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const header& a, const header& b) { return a.name < b.name; });
  std::string head = status_line(req.minor_version, resp.status);
  for (const header& h : sorted) {
    head += h.name;
    head += ": ";
    head += h.value;
    head += "\r\n";
  }
  head += "Date: " + http_date(std::chrono::system_clock::now()) + "\r\n";
  if (content_length) head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  if (!resp.body.empty() && !resp.stream && find_header(resp.headers, "Content-Type") == nullptr) {
    head += "Content-Type: ";
    head += sniff_content_type(resp.body);
    head += "\r\n";
  }
  if (req.minor_version >= 1 && !keep_alive) head += "Connection: close\r\n";
  if (req.minor_version == 0 && keep_alive) head += "Connection: keep-alive\r\n";
  if (chunked) head += "Transfer-Encoding: chunked\r\n";
  head += "\r\n";
  return head;
}

// Sends a streamed body: chunks on HTTP/1.1, raw bytes (and then a close) on HTTP/1.0.
class connection_stream final : public stream_writer {
 public:
  connection_stream(int fd, int stop_fd, bool chunked)
      : fd_(fd), stop_fd_(stop_fd), chunked_(chunked) {}

  bool write(std::string_view data) override {
    if (broken_) return false;
    if (data.empty()) return true;
    if (chunked_) {
      std::array<char, 32> size{};
      const int n = std::snprintf(size.data(), size.size(), "%zx\r\n", data.size());
      std::string frame(size.data(), static_cast<std::size_t>(n));
      frame.append(data);
      frame += "\r\n";
      broken_ = !send_all(fd_, frame);
    } else {
      broken_ = !send_all(fd_, data);
    }
    return !broken_;
  }

  bool wait_closed(std::chrono::milliseconds timeout) override {
    if (broken_) return true;
    // POLLRDHUP: the client shut its side (also with unread input pending); the stop eventfd
    // turns readable when the server stops.
    pollfd fds[2] = {{fd_, POLLRDHUP, 0}, {stop_fd_, POLLIN, 0}};
    const auto deadline = steady::now() + timeout;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      const int ready = ::poll(fds, 2, static_cast<int>(std::max<long long>(left, 0)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return false;
      broken_ = true;
      return true;
    }
  }

  bool finish(const header_list& trailers) {
    if (!broken_ && chunked_) {
      std::string last = "0\r\n";
      for (const header& t : trailers) last += t.name + ": " + t.value + "\r\n";
      last += "\r\n";
      broken_ = !send_all(fd_, last);
    }
    return !broken_;
  }
  bool broken() const { return broken_; }

 private:
  int fd_;
  int stop_fd_;
  bool chunked_;
  bool broken_ = false;
};

}  // namespace

server::server(handler h, server_options options) : handler_(std::move(h)), options_(options) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    std::fprintf(stderr, "cairn: http server: eventfd: %s\n", std::strerror(errno));
    std::abort();
  }
}

server::~server() {
  stop();
  ::close(stop_fd_);
}

bool server::serve(int fd, std::string already_read, std::string remote_address, bool secure) {
  std::lock_guard lock(mu_);
  reap_locked();
  if (stopped_ || connections_.size() >= options_.max_connections) {
    if (!stopped_) {
      spdlog::warn("http: refusing a connection from {}: {} connections open", remote_address,
                   connections_.size());
    }
    ::close(fd);
    return false;
  }
  // Reads wait in poll() with a deadline; writes block (a slow reader holds only this thread).
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  auto c = std::make_unique<connection>();
  c->fd = fd;
  connection* raw = c.get();
  try {
    c->thread =
        std::thread([this, raw, bytes = std::move(already_read), remote = std::move(remote_address),
                     secure]() mutable { run(raw, std::move(bytes), remote, secure); });
  } catch (const std::system_error& e) {
    spdlog::warn("http: no thread for a connection: {}", e.what());
    ::close(fd);
    return false;
  }
  connections_.push_back(std::move(c));
  return true;
}

void server::reap_locked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t server::connection_count() const {
  std::lock_guard lock(mu_);
  std::size_t open = 0;
  for (const auto& c : connections_) open += c->done ? 0 : 1;
  return open;
}

void server::stop() {
  std::list<std::unique_ptr<connection>> joining;
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
    }
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);  // unblocks a send() stuck on a slow reader
    }
    joining.swap(connections_);
  }
  for (auto& c : joining) c->thread.join();
}

void server::run(connection* c, std::string already_read, const std::string& remote, bool secure) {
  const int fd = c->fd;  // only this thread closes it, below
  request_reader reader(options_.request_limits);
  reader.feed(already_read);
  std::array<char, 16 * 1024> buf{};
  std::optional<steady::time_point> request_deadline;  // set by a request's first byte

  bool open = true;
  while (open) {
    switch (reader.advance()) {
      case request_reader::step::need_more: {
        std::optional<steady::time_point> deadline;
        if (reader.mid_request()) {
          if (!request_deadline && options_.read_timeout.count() > 0) {
            request_deadline = steady::now() + options_.read_timeout;
          }
          deadline = request_deadline;
        } else if (options_.idle_timeout.count() > 0) {
          deadline = steady::now() + options_.idle_timeout;
        }
        const ssize_t n = read_until(fd, stop_fd_, deadline, buf.data(), buf.size());
        if (n <= 0) {
          open = false;  // EOF, error, deadline or stop: Go closes without a word too
          break;
        }
        reader.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        break;
      }
      case request_reader::step::send_continue:
        open = send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        break;
      case request_reader::step::failed:
        send_all(fd, format_parse_error(reader.error()));
        open = false;
        break;
      case request_reader::step::ready: {
        request req = reader.take();
        request_deadline.reset();
        req.remote_address = remote;
        req.secure = secure;
        response resp;
        try {
          resp = handler_(req);
        } catch (const std::exception& e) {
          spdlog::error("http: handler for {} {} threw: {}", req.method, req.path, e.what());
          resp = error_response(500, "Internal Server Error");
        }
        bool keep_alive = req.keep_alive;
        const bool head_only = req.method == "HEAD" || has_no_body(resp.status);
        if (resp.stream && !head_only) {
          const bool chunked = req.minor_version >= 1;
          if (!chunked) keep_alive = false;  // HTTP/1.0: the close ends the body
          if (!send_all(fd, format_head(req, resp, keep_alive, std::nullopt, chunked))) {
            open = false;
            break;
          }
          connection_stream stream(fd, stop_fd_, chunked);
          try {
            resp.stream(stream);
          } catch (const std::exception& e) {
            spdlog::error("http: stream for {} {} threw: {}", req.method, req.path, e.what());
            keep_alive = false;
          }
          open = stream.finish(resp.trailers) && keep_alive;
          break;
        }
        std::optional<std::size_t> length;
        if (!has_no_body(resp.status)) length = resp.body.size();
        std::string out = format_head(req, resp, keep_alive, length, false);
        if (!head_only) out += resp.body;
        open = send_all(fd, out) && keep_alive;
        break;
      }
    }
  }

  std::lock_guard lock(mu_);
  ::close(fd);
  c->fd = -1;
  c->done = true;
}

}  // namespace cairn::http
