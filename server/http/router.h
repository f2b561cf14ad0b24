// http/router.h: dispatch by path, as Go's http.ServeMux does for etcd (exact patterns, subtree
// patterns ending in '/', longest match wins, unclean paths redirected with 301, otherwise
// "404 page not found"); and etcd's client-port access controller in front of it (Host
// allow-list against DNS rebinding, CORS headers, OPTIONS, /v3beta → /v3).
//
// Thread-safety: register every route before serving; afterwards a router is read-only and may
// be called from any number of connection threads at once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "http/message.h"

namespace cairn::http {

class router {
 public:
  // "/health" matches that path only; "/v3/" matches every path under it. Registering a
  // pattern twice is a programming error (aborts), as in Go.
  void handle(std::string pattern, handler h);
  response route(const request& r) const;
  // The router as a handler. It refers to *this, which must outlive it.
  handler as_handler() const;

 private:
  std::map<std::string, handler, std::less<>> exact_;
  std::map<std::string, handler, std::less<>> subtree_;
};

// Go's path.Clean, keeping a trailing slash as ServeMux does ("//a/./b/" → "/a/b/").
std::string clean_path(std::string_view path);

struct access_options {
  // --cors: origins that get CORS headers ("*": every origin; empty: every origin).
  std::vector<std::string> cors = {"*"};
  // --host-whitelist: Host values accepted over plain HTTP ("*" or empty: every host).
  std::vector<std::string> host_whitelist = {"*"};
};

// etcd's accessController around `next` (embed/serve.go), for the client URLs' HTTP side.
handler with_access_control(handler next, access_options options);

}  // namespace cairn::http
