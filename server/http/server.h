// http/server.h: an HTTP/1.1 server over connections somebody else accepted. The client
// listener (v3rpc/client_listener.h) accepts, sniffs the first bytes, and hands HTTP/1.x
// connections here together with the bytes it already read; the metrics listener hands every
// connection. Keep-alive, pipelining, chunked request bodies, "Expect: 100-continue", Go's
// refusals (400/413/417/431/501) and streamed (chunked) responses are handled here; what to
// answer is the handler's business.
//
// Why no library: Debian's cpprestsdk http_listener and civetweb (both already installed, via
// cpprest and prometheus-cpp) bind their own sockets and cannot take an accepted fd plus bytes
// already read from it; Boost.Beast could parse, but brings Asio's model and a heavy compile
// for what is ~500 lines here.
//
// Concurrency: one thread per connection. HTTP on an etcd port is light (probes, scrapes,
// curl), but the JSON gateway's watch holds a connection for as long as the client wants, and
// a blocking thread per connection lets such a stream simply write when it has something. A
// slow or silent client only ever blocks its own thread; `max_connections` bounds the threads,
// and read deadlines (a whole request must arrive within `read_timeout` of its first byte; an
// idle keep-alive connection closes after `idle_timeout`) bound how long one can hold a thread
// without sending. (etcd's Go server sets no timeouts at all; these are generous.)
//
// Thread-safety: serve() and stop() may be called from any thread; the handler is called
// concurrently from many connection threads and must be thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "http/message.h"
#include "http/parser.h"

namespace cairn::http {

struct server_options {
  limits request_limits;
  std::chrono::milliseconds read_timeout{std::chrono::minutes(2)};  // 0: none
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // 0: none
  std::size_t max_connections = 1024;
};

class server {
 public:
  explicit server(handler h, server_options options = {});
  ~server();  // stop()
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Serves one accepted connection on a thread of its own, taking ownership of `fd`.
  // `already_read`: bytes read from fd before (they come first). Returns false, having closed
  // fd, once stopped or when max_connections are open.
  // `secure`: the connection arrived over TLS (ended by tls::terminator), request.secure.
  bool serve(int fd, std::string already_read, std::string remote_address = {},
             bool secure = false);
  // Closes every connection (streams see their writer fail) and joins their threads. Further
  // serve() calls close their fd at once.
  void stop();
  std::size_t connection_count() const;

 private:
  struct connection {
    int fd = -1;  // guarded by mu_; -1 once the connection thread closed it
    std::thread thread;
    bool done = false;  // guarded by mu_
  };

  void run(connection* c, std::string already_read, const std::string& remote, bool secure);
  void reap_locked();  // joins finished connection threads; mu_ held

  handler handler_;
  server_options options_;
  int stop_fd_ = -1;  // an eventfd, readable once stop() ran: wakes every poll

  mutable std::mutex mu_;
  std::list<std::unique_ptr<connection>> connections_;  // guarded by mu_
  bool stopped_ = false;                                // guarded by mu_
};

}  // namespace cairn::http
