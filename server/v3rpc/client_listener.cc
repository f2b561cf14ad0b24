#include "v3rpc/client_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpcpp/generic/async_generic_service.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <utility>

namespace cairn::v3rpc {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::string_view http2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// cmux reads at most this much looking for an HTTP/1 request line.
constexpr std::size_t max_sniff_bytes = 4096;

// Go prints errno texts in lower case ("bind: address already in use").
std::string errno_text(int err) {
  std::string text = std::strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string format_address(const sockaddr_storage& addr) {
  std::array<char, INET6_ADDRSTRLEN> ip{};
  if (addr.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(addr);
    ::inet_ntop(AF_INET6, &a6.sin6_addr, ip.data(), ip.size());
    return "[" + std::string(ip.data()) + "]:" + std::to_string(ntohs(a6.sin6_port));
  }
  if (addr.ss_family == AF_INET) {
    const auto& a4 = reinterpret_cast<const sockaddr_in&>(addr);
    ::inet_ntop(AF_INET, &a4.sin_addr, ip.data(), ip.size());
    return std::string(ip.data()) + ":" + std::to_string(ntohs(a4.sin_port));
  }
  return "?";
}

void set_no_delay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct bound_socket {
  int fd = -1;
  std::string address;
};

cairn::expected<bound_socket, std::string> listen_on(const listen_url& url, bool reuse_port,
                                                     bool have_tls) {
  const std::string where = url.to_string();
  if (url.scheme == "https" && !have_tls) {
    // etcd's words when a client URL is https and no certificate was given.
    return cairn::unexpected(
        "TLS key/cert (--cert-file, --key-file) must be provided for client "
        "url " +
        where + " with HTTPS scheme");
  }
  if (url.scheme != "http" && url.scheme != "https") {
    return cairn::unexpected("listen " + where +
                             ": only http:// and https:// client URLs are supported");
  }
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  bool v6only = false;
  const bool wildcard = url.host.empty() || url.host == "0.0.0.0" || url.host == "::";
  if (wildcard) {
    // Go listens dual-stack on a wildcard host (IPv4 mapped into [::]) when it can.
    auto& a6 = reinterpret_cast<sockaddr_in6&>(addr);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons(url.port);
    addr_len = sizeof a6;
    const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      addr = {};
      auto& a4 = reinterpret_cast<sockaddr_in&>(addr);
      a4.sin_family = AF_INET;
      a4.sin_addr.s_addr = htonl(INADDR_ANY);
      a4.sin_port = htons(url.port);
      addr_len = sizeof a4;
    } else {
      ::close(probe);
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(url.host.c_str(), nullptr, &hints, &found);
    if (rc != 0 || found == nullptr) {
      return cairn::unexpected("listen tcp " + where + ": lookup " + url.host + ": " +
                               ::gai_strerror(rc));
    }
    // Go prefers an IPv4 address for a name with both.
    const addrinfo* pick = found;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET) {
        pick = ai;
        break;
      }
    }
    std::memcpy(&addr, pick->ai_addr, pick->ai_addrlen);
    addr_len = pick->ai_addrlen;
    ::freeaddrinfo(found);
    if (addr.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6&>(addr).sin6_port = htons(url.port);
      v6only = true;
    } else {
      reinterpret_cast<sockaddr_in&>(addr).sin_port = htons(url.port);
    }
  }

  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return cairn::unexpected("listen tcp " + where + ": socket: " + errno_text(errno));
  const int one = 1;
  const int zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (addr.ss_family == AF_INET6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0) {
    const int err = errno;
    ::close(fd);
    return cairn::unexpected("listen tcp " + where + ": bind: " + errno_text(err));
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    return cairn::unexpected("listen tcp " + where + ": listen: " + errno_text(err));
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  return bound_socket{fd, format_address(bound)};
}

void enable_grpc_health_service() {
  // Process-wide and not thread-safe in gRPC: flip it once, before any server is built.
  static std::once_flag once;
  std::call_once(once, [] { grpc::EnableDefaultHealthCheckService(true); });
}

// Methods of services nobody registered: UNIMPLEMENTED with grpc-go's wording, which etcd's
// clients see from etcd. Registering it also gives gRPC a callback service to poll for before
// the node's own services exist.
class unknown_service final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit reactor(const std::string& method) {
        // "/etcdserverpb.KV/Range" → "etcdserverpb.KV"
        std::string service = method.substr(method.empty() ? 0 : 1);
        service = service.substr(0, service.find('/'));
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown service " + service));
      }
      void OnDone() override { delete this; }
    };
    return new reactor(ctx->method());
  }
};

int clamp_to_int(std::uint64_t v) {
  return v > static_cast<std::uint64_t>(INT_MAX) ? INT_MAX : static_cast<int>(v);
}

int clamp_ms(std::chrono::milliseconds d) {
  return d.count() > INT_MAX ? INT_MAX : static_cast<int>(d.count());
}

}  // namespace

std::string listen_url::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

sniffed sniff(std::string_view first) {
  if (first.size() < http2_preface.size()) {
    if (http2_preface.starts_with(first)) return sniffed::undecided;
  } else if (first.starts_with(http2_preface)) {
    return sniffed::grpc;
  }
  const std::size_t nl = first.find('\n');
  if (nl == std::string_view::npos) {
    return first.size() >= max_sniff_bytes ? sniffed::other : sniffed::undecided;
  }
  if (nl >= max_sniff_bytes) return sniffed::other;
  std::string_view line = first.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // cmux's test: "<method> <uri> <proto>" cut at the first two spaces, proto HTTP/1.<n>.
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return sniffed::other;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return sniffed::other;
  const std::string_view proto = line.substr(sp2 + 1);
  if (!proto.starts_with("HTTP/1.") || proto.size() == 7) return sniffed::other;
  for (char c : proto.substr(7)) {
    if (c < '0' || c > '9') return sniffed::other;
  }
  return sniffed::http1;
}

int grpc_receive_limit(std::uint64_t max_request_bytes) {
  // etcd: grpcOverheadBytes = 512 KiB on top of the request limit.
  return clamp_to_int(max_request_bytes + 512 * 1024);
}

cairn::expected<std::unique_ptr<client_listener>, std::string> client_listener::start(
    const listener_options& options, service_registrar register_services, http::handler client_http,
    http::handler metrics_http) {
  std::unique_ptr<client_listener> self(new client_listener());
  self->options_ = options;
  self->client_serves_http_ = options.client_http_urls.empty();

  auto bind_all = [&](const std::vector<listen_url>& urls, kind role) -> std::string {
    for (const listen_url& url : urls) {
      auto bound = listen_on(url, options.reuse_port, options.client_tls.has_value());
      if (!bound) return bound.error();
      self->sockets_.push_back({bound->fd, role, bound->address, url.scheme == "https"});
    }
    return {};
  };
  for (auto [urls, role] : {std::pair{&options.client_urls, kind::client},
                            std::pair{&options.client_http_urls, kind::client_http},
                            std::pair{&options.metrics_urls, kind::metrics}}) {
    if (std::string error = bind_all(*urls, role); !error.empty()) {
      for (const socket_info& s : self->sockets_) ::close(s.fd);
      self->sockets_.clear();
      return cairn::unexpected(std::move(error));
    }
  }

  enable_grpc_health_service();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(grpc_receive_limit(options.max_request_bytes));
  builder.SetMaxSendMessageSize(INT_MAX);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             clamp_to_int(options.max_concurrent_streams));
  if (options.keepalive_min_time.count() > 0) {
    // Go's EnforcementPolicy{MinTime, PermitWithoutStream: false}.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               clamp_ms(options.keepalive_min_time));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  }
  if (options.keepalive_interval.count() > 0 && options.keepalive_timeout.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, clamp_ms(options.keepalive_interval));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, clamp_ms(options.keepalive_timeout));
  }
  self->acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      grpc::InsecureServerCredentials());
  if (options.client_tls) {
    // gRPC does the handshake of connections whose ClientHello asks for h2 only; the rest of
    // TLS (HTTP/1.1) ends in the terminator.
    self->tls_acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        tls::grpc_server_credentials(*options.client_tls));
    self->http_tls_ = std::make_unique<tls::http_context>(*options.client_tls);
    self->terminator_ = std::make_unique<tls::terminator>();
  }
  if (register_services) register_services(builder);
  self->fallback_ = std::make_unique<unknown_service>();
  builder.RegisterCallbackGenericService(self->fallback_.get());
  self->grpc_ = builder.BuildAndStart();
  if (!self->grpc_) {
    for (const socket_info& s : self->sockets_) ::close(s.fd);
    self->sockets_.clear();
    return cairn::unexpected(std::string("gRPC server failed to start"));
  }

  self->client_http_ = std::make_unique<http::server>(std::move(client_http), options.http);
  self->metrics_http_ = std::make_unique<http::server>(std::move(metrics_http), options.http);
  self->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  client_listener* raw = self.get();
  self->accept_thread_ = std::thread([raw] { raw->accept_loop(); });
  for (const socket_info& s : self->sockets_) {
    spdlog::info("serving {}{} on {}", s.secure ? "TLS " : "",
                 s.role == kind::metrics       ? "metrics and probes"
                 : s.role == kind::client_http ? "client HTTP"
                 : self->client_serves_http_   ? "client gRPC and HTTP"
                                               : "client gRPC",
                 s.address);
  }
  return self;
}

client_listener::~client_listener() { stop(); }

void client_listener::stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (stop_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
  }
  if (accept_thread_.joinable()) accept_thread_.join();  // closes the listening sockets
  if (terminator_) terminator_->stop();
  if (client_http_) client_http_->stop();
  if (metrics_http_) metrics_http_->stop();
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() + grace);
    grpc_->Wait();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
  stop_fd_ = -1;
}

std::vector<std::string> client_listener::addresses(kind role) const {
  std::vector<std::string> out;
  for (const socket_info& s : sockets_) {
    if (s.role == role) out.push_back(s.address);
  }
  return out;
}

std::vector<std::string> client_listener::client_addresses() const {
  return addresses(kind::client);
}
std::vector<std::string> client_listener::client_http_addresses() const {
  return addresses(kind::client_http);
}
std::vector<std::string> client_listener::metrics_addresses() const {
  return addresses(kind::metrics);
}

void client_listener::accept_loop() {
  std::vector<pending> sniffing;
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({stop_fd_, POLLIN, 0});
    for (const socket_info& s : sockets_) fds.push_back({s.fd, POLLIN, 0});
    for (const pending& p : sniffing) fds.push_back({p.fd, POLLIN, 0});
    int timeout_ms = -1;
    if (!sniffing.empty()) {
      auto first = std::min_element(sniffing.begin(), sniffing.end(), [](auto& a, auto& b) {
                     return a.deadline < b.deadline;
                   })->deadline;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(first - steady::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(left + 1, 0, INT_MAX));
    }
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      spdlog::error("client listener: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // stop()

    // Connections being sniffed: read what arrived, hand off or drop.
    const std::size_t base = 1 + sockets_.size();
    std::vector<pending> still;
    still.reserve(sniffing.size());
    const auto now = steady::now();
    for (std::size_t i = 0; i < sniffing.size(); ++i) {
      pending& p = sniffing[i];
      if (fds[base + i].revents != 0 && !advance_sniff(p)) continue;
      if (now >= p.deadline) {
        ::close(p.fd);
        continue;
      }
      still.push_back(std::move(p));
    }
    sniffing.swap(still);

    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      if (fds[1 + i].revents != 0) accept_from(sockets_[i], sniffing);
    }
  }
  for (const pending& p : sniffing) ::close(p.fd);
  for (socket_info& s : sockets_) {
    ::close(s.fd);
    s.fd = -1;
  }
}

void client_listener::accept_from(const socket_info& s, std::vector<pending>& sniffing) {
  // A bounded batch per wake-up, so one busy socket cannot starve the others.
  for (int batch = 0; batch < 64; ++batch) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    const int fd = ::accept4(s.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      spdlog::warn("client listener: accept on {}: {}", s.address, std::strerror(err));
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // The socket stays readable while the process is out of descriptors: pause instead
        // of spinning (and logging) until some connection closes.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      return;
    }
    set_no_delay(fd);
    std::string remote = format_address(peer);
    if (s.secure && s.role != kind::client) {
      // HTTP only on these: TLS ends here at once.
      http::server& to = s.role == kind::metrics ? *metrics_http_ : *client_http_;
      serve_tls_http(to, fd, {}, std::move(remote));
      continue;
    }
    switch (s.role) {
      case kind::client_http:
        client_http_->serve(fd, {}, std::move(remote));
        break;
      case kind::metrics:
        metrics_http_->serve(fd, {}, std::move(remote));
        break;
      case kind::client:
        if (sniffing.size() >= options_.max_sniffing) {
          ::close(fd);
          break;
        }
        sniffing.push_back({fd, s.fd, std::string(), std::move(remote),
                            steady::now() + options_.sniff_timeout, s.secure});
        break;
    }
  }
}

bool client_listener::advance_sniff(pending& p) {
  std::array<char, max_sniff_bytes> buf{};
  const ssize_t n = ::recv(p.fd, buf.data(), buf.size(), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
  if (n <= 0) {
    ::close(p.fd);
    return false;
  }
  p.bytes.append(buf.data(), static_cast<std::size_t>(n));
  if (p.secure) return advance_tls_sniff(p);
  switch (sniff(p.bytes)) {
    case sniffed::undecided:
      return true;
    case sniffed::grpc: {
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
      params.listener_fd = p.listener_fd;
      params.fd = p.fd;  // gRPC owns it from here on
#ifndef CAIRN_PLANTED_BUG_SNIFF_DROP_PREFIX
      // The preface and whatever followed it: gRPC reads these before the socket.
      grpc::Slice data(p.bytes.data(), p.bytes.size());
      params.read_buffer = grpc::ByteBuffer(&data, 1);
#endif
      acceptor_->HandleNewConnection(&params);
      return false;
    }
    case sniffed::http1:
      if (client_serves_http_) {
        client_http_->serve(p.fd, std::move(p.bytes), std::move(p.remote));
      } else {
        ::close(p.fd);  // HTTP lives on --listen-client-http-urls
      }
      return false;
    case sniffed::other:
      ::close(p.fd);
      return false;
  }
  return false;
}

bool client_listener::advance_tls_sniff(pending& p) {
  const tls::client_hello hello = tls::parse_client_hello(p.bytes);
  switch (hello.status) {
    case tls::client_hello::state::need_more:
      if (p.bytes.size() <= 64 * 1024) return true;
      ::close(p.fd);
      return false;
    case tls::client_hello::state::not_tls:
      // Plain HTTP or gRPC to a TLS port: closed without a word, as etcd's TLS listener does.
      ::close(p.fd);
      return false;
    case tls::client_hello::state::ok:
      break;
  }
  if (hello.wants_grpc()) {
    if (options_.client_tls->min_version == tls::version::tls13 && !hello.offers_tls13) {
      const std::string_view alert = tls::protocol_version_alert();
      [[maybe_unused]] const ssize_t w = ::send(p.fd, alert.data(), alert.size(), MSG_NOSIGNAL);
      ::close(p.fd);
      return false;
    }
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
    params.listener_fd = p.listener_fd;
    params.fd = p.fd;
    grpc::Slice data(p.bytes.data(), p.bytes.size());
    params.read_buffer = grpc::ByteBuffer(&data, 1);
    tls_acceptor_->HandleNewConnection(&params);
    return false;
  }
  if (!client_serves_http_) {
    ::close(p.fd);  // HTTP lives on --listen-client-http-urls
    return false;
  }
  serve_tls_http(*client_http_, p.fd, std::move(p.bytes), std::move(p.remote));
  return false;
}

void client_listener::serve_tls_http(http::server& to, int fd, std::string first,
                                     std::string remote) {
  const int plain = terminator_->start(fd, std::move(first), http_tls_->get(), *options_.client_tls,
                                       options_.sniff_timeout, remote);
  if (plain >= 0) to.serve(plain, {}, std::move(remote), true);
}

}  // namespace cairn::v3rpc
