#include "http/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

namespace cairn::http {

void router::handle(std::string pattern, handler h) {
  if (pattern.empty() || pattern.front() != '/') {
    std::fprintf(stderr, "cairn: http route %s must start with '/'\n", pattern.c_str());
    std::abort();
  }
  auto& table = pattern.back() == '/' ? subtree_ : exact_;
  if (!table.emplace(pattern, std::move(h)).second) {
    std::fprintf(stderr, "cairn: http route %s registered twice\n", pattern.c_str());
    std::abort();
  }
}

response router::route(const request& r) const {
  if (r.path == "*" || r.path.empty() || r.path.front() != '/') {
    // Go's ServeMux answers "OPTIONS *" and other odd targets with a bare 400.
    response bad;
    bad.status = 400;
    return bad;
  }
  const std::string cleaned = clean_path(r.path);
  if (cleaned != r.path) {
    std::string location = cleaned;
    if (!r.raw_query.empty()) location += "?" + r.raw_query;
    response redirect;
    redirect.status = 301;
    redirect.headers = {{"Content-Type", "text/html; charset=utf-8"}, {"Location", location}};
    if (r.method == "GET" || r.method == "HEAD") {
      redirect.body = "<a href=\"" + location + "\">Moved Permanently</a>.\n\n";
    }
    return redirect;
  }
  if (auto it = exact_.find(r.path); it != exact_.end()) return it->second(r);
  // Longest subtree pattern that prefixes the path.
  const handler* best = nullptr;
  std::size_t best_length = 0;
  for (const auto& [pattern, h] : subtree_) {
    if (r.path.starts_with(pattern) && pattern.size() > best_length) {
      best = &h;
      best_length = pattern.size();
    }
  }
  if (best != nullptr) return (*best)(r);
  return not_found();
}

handler router::as_handler() const {
  return [this](const request& r) { return route(r); };
}

std::string clean_path(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    const std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const std::string_view part : parts) {
    out += '/';
    out.append(part);
  }
  if (out.empty()) out = "/";
  // ServeMux keeps a trailing slash (path.Clean drops it; ServeMux puts it back).
  if (path.back() == '/' && out != "/") out += '/';
  return out;
}

namespace {

// Go's net.SplitHostPort host part, or the whole value when it has no port (etcd's
// httputil.GetHostname).
std::string hostname(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close != std::string_view::npos && close + 1 < host.size() && host[close + 1] == ':') {
      return std::string(host.substr(1, close - 1));
    }
    return std::string(host);
  }
  const std::size_t colon = host.rfind(':');
  if (colon == std::string_view::npos || host.find(':') != colon) return std::string(host);
  return std::string(host.substr(0, colon));
}

bool allowed(const std::set<std::string, std::less<>>& set, std::string_view value) {
  return set.empty() || set.contains("*") || set.contains(value);
}

std::string rebinding_message(std::string_view host) {
  // etcd's errCVE20185702 text; %q of a host is a JSON-like quoted string.
  return "\netcd received your request, but the Host header was unrecognized.\n\n"
         "To fix this, choose one of the following options:\n"
         "- Enable TLS, then any HTTPS request will be allowed.\n"
         "- Add the hostname you want to use to the whitelist in settings.\n"
         "  - e.g. etcd --host-whitelist " +
         json_quote(host) +
         "\n\n"
         "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
         "(CVE-2018-5702).\n";
}

}  // namespace

handler with_access_control(handler next, access_options options) {
  std::set<std::string, std::less<>> cors(options.cors.begin(), options.cors.end());
  std::set<std::string, std::less<>> hosts(options.host_whitelist.begin(),
                                           options.host_whitelist.end());
  return [next = std::move(next), cors = std::move(cors),
          hosts = std::move(hosts)](const request& r) -> response {
    if (!r.secure) {
      const std::string host = hostname(r.host);
      if (!allowed(hosts, host)) {
        spdlog::warn("rejecting HTTP request to prevent DNS rebinding attacks (host {})", host);
        return error_response(421, rebinding_message(host));
      }
    }
    std::string origin;
    if (allowed(cors, "*")) {
      origin = "*";
    } else if (const std::string* o = find_header(r.headers, "Origin"); o && allowed(cors, *o)) {
      origin = *o;
    }
    response out;
    if (r.method == "OPTIONS") {
      out.status = 200;
    } else if (r.path.starts_with("/v3beta/")) {
      request rewritten = r;
      rewritten.path.replace(0, 8, "/v3/");
      out = next(rewritten);
    } else {
      out = next(r);
    }
    if (!origin.empty()) {
      out.headers.push_back({"Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"});
      out.headers.push_back({"Access-Control-Allow-Origin", origin});
      out.headers.push_back(
          {"Access-Control-Allow-Headers", "accept, content-type, authorization"});
    }
    return out;
  };
}

}  // namespace cairn::http
