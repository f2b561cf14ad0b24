#include "tls/terminator.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <climits>

namespace cairn::tls {

namespace {

using steady = std::chrono::steady_clock;

// Writes all of `data` to a non-blocking socket, waiting for room as needed. False if the
// socket broke or `stop_fd` became readable.
bool send_fully(int fd, std::string_view data, int stop_fd) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return false;
      if (fds[1].revents != 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

// One TLS session over a non-blocking socket, with memory BIOs so that the bytes the listener
// already read go first.
class session_io {
 public:
  session_io(int net, SSL_CTX* ctx, int stop_fd) : net_(net), stop_fd_(stop_fd) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) return;
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);  // the SSL owns both
    SSL_set_accept_state(ssl_);
  }
  ~session_io() {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  bool ok() const { return ssl_ != nullptr; }
  SSL* ssl() { return ssl_; }
  void feed(std::string_view bytes) {
    if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
  }

  // Sends what OpenSSL produced. False if the socket broke or stop() ran.
  bool flush() {
    std::array<char, 16384> buf{};
    while (BIO_ctrl_pending(out_) > 0) {
      const int n = BIO_read(out_, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) break;
      if (!send_all(std::string_view(buf.data(), static_cast<std::size_t>(n)))) return false;
    }
    return true;
  }

  // Moves what OpenSSL produced into `out` (to be sent when the socket has room).
  void take(std::string& out) {
    std::array<char, 16384> buf{};
    while (BIO_ctrl_pending(out_) > 0) {
      const int n = BIO_read(out_, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) break;
      out.append(buf.data(), static_cast<std::size_t>(n));
    }
  }

  // Reads from the socket into OpenSSL. False on EOF, error or stop; waits at most until
  // `deadline` (max(): no deadline).
  bool receive(steady::time_point deadline) {
    while (true) {
      const int wait = wait_ms(deadline);
      if (wait == 0) return false;
      pollfd fds[2] = {{net_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      const int r = ::poll(fds, 2, wait);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || fds[1].revents != 0) return false;
      std::array<char, 16384> buf{};
      const ssize_t n = ::recv(net_, buf.data(), buf.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return false;
      feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      return true;
    }
  }

 private:
  static int wait_ms(steady::time_point deadline) {
    if (deadline == steady::time_point::max()) return -1;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0) return 0;
    return static_cast<int>(std::min<long long>(left, INT_MAX));
  }
  bool send_all(std::string_view data) { return send_fully(net_, data, stop_fd_); }

  int net_;
  int stop_fd_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

// Decrypted bytes waiting in OpenSSL, appended to `out`. False once the TLS session ended.
bool read_plain(session_io& io, std::string& out) {
  std::array<char, 16384> buf{};
  while (true) {
    const int n = SSL_read(io.ssl(), buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      out.append(buf.data(), static_cast<std::size_t>(n));
      continue;
    }
    const int err = SSL_get_error(io.ssl(), n);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
  }
}

// Sends what it can of `buf` on a non-blocking socket; false if the socket broke.
bool send_some(int fd, std::string& buf) {
  const ssize_t n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
  if (n > 0) {
    buf.erase(0, static_cast<std::size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

void run_session(int net, int app, std::string first, std::shared_ptr<SSL_CTX> ctx, tls_info info,
                 steady::time_point deadline, std::string remote, int stop_fd) {
  session_io io(net, ctx.get(), stop_fd);
  bool up = io.ok();
  io.feed(first);
  while (up) {
    const int r = SSL_do_handshake(io.ssl());
    if (!io.flush()) {
      up = false;
      break;
    }
    if (r == 1) break;
    const int err = SSL_get_error(io.ssl(), r);
    if (err == SSL_ERROR_WANT_READ) {
      if (!io.receive(deadline)) up = false;
      continue;
    }
    std::array<char, 256> why{};
    ERR_error_string_n(ERR_get_error(), why.data(), why.size());
    ERR_clear_error();
    // Go's server logs these at debug level only ("http: TLS handshake error from ...").
    spdlog::debug("TLS handshake error from {}: {}", remote, why.data());
    up = false;
  }
  if (up) {
    if (X509* peer = SSL_get0_peer_certificate(io.ssl())) {
      std::vector<X509*> chain;
      if (STACK_OF(X509)* sent = SSL_get_peer_cert_chain(io.ssl())) {
        for (int i = 0; i < sk_X509_num(sent); ++i) {
          X509* c = sk_X509_value(sent, i);
          if (X509_cmp(c, peer) != 0) chain.push_back(c);
        }
      }
      if (std::string reason = check_certificate(info, peer, chain); !reason.empty()) {
        spdlog::warn("rejected connection from {}: {}", remote, reason);
        up = false;
      }
    }
  }
  // Both directions at once, never blocking on either side: a client that keeps sending while
  // the HTTP server writes a long answer cannot wedge the two threads against each other. Each
  // direction buffers at most `limit` bytes; past it, that side is not read from.
  constexpr std::size_t limit = 1 << 20;
  std::string to_app, to_net;
  auto take_output = [&] { io.take(to_net); };
  bool net_eof = false, app_eof = false;
  if (up && !read_plain(io, to_app)) net_eof = true;  // data sent with the Finished
  take_output();
  while (up) {
    if ((net_eof && to_app.empty()) || (app_eof && to_net.empty())) break;
    const short net_events = static_cast<short>((!net_eof && to_app.size() < limit ? POLLIN : 0) |
                                                (!to_net.empty() ? POLLOUT : 0));
    const short app_events = static_cast<short>((!app_eof && to_net.size() < limit ? POLLIN : 0) |
                                                (!to_app.empty() ? POLLOUT : 0));
    pollfd fds[3] = {{net, net_events, 0}, {app, app_events, 0}, {stop_fd, POLLIN, 0}};
    const int r = ::poll(fds, 3, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || fds[2].revents != 0) break;
    std::array<char, 16384> buf{};
    if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0) break;
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0 && (net_events & POLLIN) != 0) {
      const ssize_t n = ::recv(net, buf.data(), buf.size(), 0);
      if (n < 0 && errno != EAGAIN && errno != EINTR) break;
      if (n == 0) net_eof = true;
      if (n > 0) {
        io.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        if (!read_plain(io, to_app)) net_eof = true;
        take_output();
      }
    }
    if ((fds[0].revents & POLLOUT) != 0 && !send_some(net, to_net)) break;
    if ((fds[1].revents & (POLLERR | POLLNVAL)) != 0) break;
    if ((fds[1].revents & (POLLIN | POLLHUP)) != 0 && (app_events & POLLIN) != 0) {
      const ssize_t n = ::recv(app, buf.data(), buf.size(), 0);
      if (n < 0 && errno != EAGAIN && errno != EINTR) break;
      if (n == 0) {
        // The HTTP server closed: close_notify goes out with what is left.
        app_eof = true;
        SSL_shutdown(io.ssl());
        take_output();
      }
      if (n > 0) {
        if (SSL_write(io.ssl(), buf.data(), static_cast<int>(n)) <= 0) break;
        take_output();
      }
    }
    if ((fds[1].revents & POLLOUT) != 0 && !send_some(app, to_app)) break;
  }
  ::close(app);
  ::close(net);
}

}  // namespace

terminator::terminator() : stop_fd_(::eventfd(0, EFD_CLOEXEC)) {}

terminator::~terminator() {
  stop();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

int terminator::start(int net_fd, std::string already_read, std::shared_ptr<SSL_CTX> ctx,
                      const tls_info& info, std::chrono::milliseconds handshake_timeout,
                      std::string remote) {
  std::lock_guard lock(mu_);
  reap_locked();
  int pair[2] = {-1, -1};
  if (stopped_ || !ctx || sessions_.size() >= max_sessions ||
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    if (sessions_.size() >= max_sessions) {
      spdlog::warn("TLS: refusing a connection from {}: {} sessions open", remote, max_sessions);
    }
    ::close(net_fd);
    return -1;
  }
  // The HTTP server's end blocks on writes as a socket would.
  ::fcntl(pair[1], F_SETFL, ::fcntl(pair[1], F_GETFL) & ~O_NONBLOCK);
  auto s = std::make_unique<session>();
  session* raw = s.get();
  const auto deadline = steady::now() + handshake_timeout;
  try {
    s->thread =
        std::thread([this, raw, net_fd, app = pair[0], first = std::move(already_read),
                     ctx = std::move(ctx), info, deadline, remote = std::move(remote)]() mutable {
          run_session(net_fd, app, std::move(first), std::move(ctx), std::move(info), deadline,
                      std::move(remote), stop_fd_);
          std::lock_guard l(mu_);
          raw->done = true;
        });
  } catch (const std::system_error& e) {
    spdlog::warn("TLS: no thread for a connection: {}", e.what());
    ::close(net_fd);
    ::close(pair[0]);
    ::close(pair[1]);
    return -1;
  }
  sessions_.push_back(std::move(s));
  return pair[1];
}

void terminator::stop() {
  std::list<std::unique_ptr<session>> all;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
    all.swap(sessions_);
  }
  for (auto& s : all) {
    if (s->thread.joinable()) s->thread.join();
  }
}

void terminator::reap_locked() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace cairn::tls
