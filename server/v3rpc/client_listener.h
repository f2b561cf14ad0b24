// v3rpc/client_listener.h: the sockets clients connect to, and who answers on each.
//
//   --listen-client-urls       gRPC and HTTP/1.1 on one port, as etcd 3.4/3.5: the listener
//                              accepts, reads the first bytes and hands an HTTP/2 connection
//                              (client preface "PRI * HTTP/2.0...") to the gRPC server through
//                              its external connection acceptor, with the bytes already read,
//                              and an HTTP/1.x one (a valid request line) to the HTTP server.
//                              Anything else is closed, as etcd's cmux does.
//   --listen-client-http-urls  when given, HTTP/1.1 is served there only, and the client URLs
//                              speak gRPC only (etcd 3.5.8+).
//   --listen-metrics-urls      HTTP/1.1 with the metrics handler (/metrics and the probes).
//
// gRPC server settings are etcd's: receive limit max-request-bytes + 512 KiB, send limit
// INT32_MAX, max concurrent streams, and keepalive enforcement and pings from the config.
// The standard grpc.health.v1.Health service is registered (gRPC's default implementation,
// the empty service name SERVING), as etcd registers grpc-go's.
//
// TLS (https URLs, with listener_options::client_tls): sniffing parses the ClientHello instead.
// ALPN offering h2 and not http/1.1 (gRPC clients) hands the raw connection and the bytes read
// to a second acceptor built with gRPC's TLS server credentials (gRPC does the handshake);
// anything else (curl offers both; no ALPN is HTTP/1.1) ends in tls::terminator and reaches
// the HTTP server as a plaintext socket with request.secure set. Anything but TLS on a TLS port
// is closed without a word (etcd's own TLS listener does that). https client-HTTP and metrics
// URLs are TLS-terminated at accept. As etcd 3.4, an https URL without a certificate is an
// error at start, and a certificate given with only http URLs is not used.
//
// Thread-safety: start() and stop() from one thread; one internal thread accepts and sniffs
// for every listening socket (non-blocking, so a silent client delays nobody); HTTP
// connections get threads of http::server; gRPC runs its own.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/expected.h"
#include "http/message.h"
#include "http/server.h"
#include "tls/terminator.h"
#include "tls/tls.h"

namespace cairn::v3rpc {

struct listen_url {
  std::string scheme = "http";  // "http" (plain TCP) or "https" (TLS, needs client_tls)
  std::string host;             // name or IP literal; "", "0.0.0.0" or "::": every address
  std::uint16_t port = 0;       // 0: a free port, see the *_addresses() accessors
  std::string to_string() const;
};

struct listener_options {
  std::vector<listen_url> client_urls;
  std::vector<listen_url> client_http_urls;
  std::vector<listen_url> metrics_urls;

  std::uint64_t max_request_bytes = 1572864;           // --max-request-bytes
  std::uint32_t max_concurrent_streams = 4294967295u;  // --max-concurrent-streams
  // --grpc-keepalive-min-time (0: gRPC's default policy), --grpc-keepalive-interval and
  // --grpc-keepalive-timeout (both > 0 to send pings).
  std::chrono::milliseconds keepalive_min_time{std::chrono::seconds(5)};
  std::chrono::milliseconds keepalive_interval{std::chrono::hours(2)};
  std::chrono::milliseconds keepalive_timeout{std::chrono::seconds(20)};
  bool reuse_port = false;  // --socket-reuse-port (SO_REUSEADDR is always set, as Go does)

  // A new client URL connection must show its protocol within this, or it is closed.
  std::chrono::milliseconds sniff_timeout{std::chrono::seconds(10)};
  // Connections still being sniffed; more are closed at once.
  std::size_t max_sniffing = 1024;
  http::server_options http;
  // The certificate and checks for https URLs (--cert-file, --key-file, ...); nullopt: none.
  std::optional<tls::tls_info> client_tls;
};

// What a client URL connection's first bytes say.
enum class sniffed { undecided, grpc, http1, other };
sniffed sniff(std::string_view first_bytes);

// gRPC's receive limit for a request limit: etcd's max-request-bytes + 512 KiB, capped.
int grpc_receive_limit(std::uint64_t max_request_bytes);

class client_listener {
 public:
  // Registers the node's gRPC services on the builder before the server starts.
  using service_registrar = std::function<void(grpc::ServerBuilder&)>;

  // Binds every URL (the error names the one that failed), starts the gRPC server and begins
  // accepting. `client_http` answers HTTP on the client (or client HTTP) URLs, `metrics_http`
  // on the metrics URLs.
  static cairn::expected<std::unique_ptr<client_listener>, std::string> start(
      const listener_options& options, service_registrar register_services,
      http::handler client_http, http::handler metrics_http);

  ~client_listener();  // stop()
  client_listener(const client_listener&) = delete;
  client_listener& operator=(const client_listener&) = delete;

  // Stops accepting, closes HTTP connections, shuts gRPC down (cancelling calls still running
  // after `grace`). Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(1));

  // Bound addresses in option order, with real ports ("127.0.0.1:43121").
  std::vector<std::string> client_addresses() const;
  std::vector<std::string> client_http_addresses() const;
  std::vector<std::string> metrics_addresses() const;

  grpc::Server& grpc_server() { return *grpc_; }

 private:
  enum class kind { client, client_http, metrics };
  struct socket_info {
    int fd = -1;
    kind role = kind::client;
    std::string address;
    bool secure = false;  // an https URL
  };
  struct pending {
    int fd = -1;
    int listener_fd = -1;
    std::string bytes;
    std::string remote;
    std::chrono::steady_clock::time_point deadline;
    bool secure = false;
  };

  client_listener() = default;
  void accept_loop();
  void accept_from(const socket_info& s, std::vector<pending>& sniffing);
  // Reads what `p` has sent; false once it has been handed off or closed.
  bool advance_sniff(pending& p);
  bool advance_tls_sniff(pending& p);
  // TLS ended by the terminator, the plaintext side served by `to`.
  void serve_tls_http(http::server& to, int fd, std::string first, std::string remote);
  std::vector<std::string> addresses(kind role) const;

  listener_options options_;
  bool client_serves_http_ = true;
  // Answers methods nobody registered (as grpc-go words it); declared before grpc_ so that it
  // outlives the server.
  std::unique_ptr<grpc::CallbackGenericService> fallback_;
  std::vector<socket_info> sockets_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> tls_acceptor_;
  std::unique_ptr<tls::http_context> http_tls_;
  std::unique_ptr<tls::terminator> terminator_;
  std::unique_ptr<http::server> client_http_;
  std::unique_ptr<http::server> metrics_http_;
  int stop_fd_ = -1;
  std::thread accept_thread_;
  bool stopped_ = false;
};

}  // namespace cairn::v3rpc
