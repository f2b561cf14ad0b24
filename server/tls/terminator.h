// tls/terminator.h: TLS ended here for connections served by the HTTP/1.1 server.
//
// start() takes an accepted socket (and the bytes already read from it, the ClientHello), makes
// a socketpair, and runs a thread that does the handshake on the socket and then copies
// plaintext between the TLS session and its end of the pair; the other end is returned and
// goes to http::server like any plain connection. The handshake must end within
// `handshake_timeout`; after it, the peer certificate passes tls::check_certificate or the
// connection is closed (etcd's listener checks CRL and allowed names after the handshake too).
//
// Why a pump and not TLS inside http::server: http::server blocks one thread per connection on
// poll/recv/send of a socket, and keeps doing so; HTTP over TLS on an etcd port is light
// (probes, scrapes, curl, the gateway), so the extra copy costs little, while the gRPC
// connections, which carry the load, get gRPC's own TLS.
//
// Thread-safety: start() and stop() from any thread. stop() closes every session and joins
// their threads; later start() calls refuse.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tls/tls.h"

namespace cairn::tls {

class terminator {
 public:
  // Sessions at once (handshakes included); more are refused at once.
  static constexpr std::size_t max_sessions = 1024;

  terminator();
  ~terminator();  // stop()
  terminator(const terminator&) = delete;
  terminator& operator=(const terminator&) = delete;

  // Takes ownership of `net_fd` (non-blocking). Returns the plaintext end, or -1 (net_fd
  // closed) once stopped or when the socketpair cannot be made.
  int start(int net_fd, std::string already_read, std::shared_ptr<SSL_CTX> ctx,
            const tls_info& info, std::chrono::milliseconds handshake_timeout, std::string remote);
  void stop();

 private:
  struct session {
    std::thread thread;
    bool done = false;  // guarded by mu_
  };
  void reap_locked();

  int stop_fd_ = -1;
  std::mutex mu_;
  std::list<std::unique_ptr<session>> sessions_;  // guarded by mu_
  bool stopped_ = false;                          // guarded by mu_
};

}  // namespace cairn::tls
