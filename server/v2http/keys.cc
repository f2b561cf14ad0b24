#include "v2http/keys.h"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <optional>

namespace cairn::v2http {

namespace {

constexpr std::string_view keys_prefix = "/v2/keys";

// Go's url.Values after ParseForm: the body's pairs (PUT, POST) first, then the query's.
class form {
 public:
  explicit form(const http::request& r) {
    if (r.method == "PUT" || r.method == "POST") {
      const std::string* ct = http::find_header(r.headers, "Content-Type");
      if (ct != nullptr && ct->starts_with("application/x-www-form-urlencoded")) {
        for (auto& kv : http::parse_query(r.body)) values_[kv.first].push_back(kv.second);
      }
    }
    for (const auto& kv : r.query) values_[kv.first].push_back(kv.second);
  }
  bool has(const std::string& k) const { return values_.contains(k); }
  std::string value(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() || it->second.empty() ? std::string() : it->second.front();
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

// strconv.ParseBool
std::optional<bool> go_bool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False")
    return false;
  return std::nullopt;
}

std::optional<std::uint64_t> go_uint(const std::string& s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

struct parsed {
  etcdserver::v2_request req;
  bool wait = false;
  bool stream = false;
  bool quorum = false;
  std::uint64_t wait_index = 0;
  bool no_value_on_success = false;
};

http::response error_answer(etcdserver::server& node, const v2store::error& e) {
  http::response resp;
  resp.status = e.http_status();
  resp.headers.push_back({"Content-Type", "application/json"});
  resp.headers.push_back({"X-Etcd-Cluster-Id", fmt::format("{:x}", node.cluster_id())});
  resp.headers.push_back({"X-Etcd-Index", std::to_string(e.index)});
  resp.body = e.json() + "\n";
  return resp;
}

cairn::expected<parsed, v2store::error> parse(const http::request& r) {
  using v2store::ecode;
  auto bad = [](ecode c, std::string cause) {
    return cairn::unexpected(v2store::error{c, std::move(cause), 0});
  };
  form f(r);
  parsed p;
  std::string key = r.path.substr(keys_prefix.size());
  p.req.method = r.method == "HEAD" ? "GET" : r.method;
  p.req.path = key.empty() ? "/" : key;
  for (const auto& [name, out] : std::initializer_list<std::pair<const char*, std::uint64_t*>>{
           {"prevIndex", &p.req.prev_index}, {"waitIndex", &p.wait_index}}) {
    if (!f.has(name)) continue;
    auto v = go_uint(f.value(name));
    if (!v) return bad(ecode::index_nan, fmt::format("invalid value for \"{}\"", name));
    *out = *v;
  }
  for (const auto& [name, out] :
       std::initializer_list<std::pair<const char*, bool*>>{{"recursive", &p.req.recursive},
                                                            {"sorted", &p.req.sorted},
                                                            {"wait", &p.wait},
                                                            {"dir", &p.req.dir},
                                                            {"quorum", &p.quorum},
                                                            {"stream", &p.stream}}) {
    if (!f.has(name)) continue;
    auto v = go_bool(f.value(name));
    if (!v) return bad(ecode::invalid_field, fmt::format("invalid value for \"{}\"", name));
    *out = *v;
  }
  if (p.wait && r.method != "GET") {
    return bad(ecode::invalid_field, "\"wait\" can only be used with GET requests");
  }
  p.req.prev_value = f.value("prevValue");
  if (f.has("prevValue") && p.req.prev_value.empty()) {
    return bad(ecode::prev_value_required, "\"prevValue\" cannot be empty");
  }
  if (f.has("noValueOnSuccess")) {
    auto v = go_bool(f.value("noValueOnSuccess"));
    if (!v) return bad(ecode::invalid_field, "invalid value for \"noValueOnSuccess\"");
    p.no_value_on_success = *v;
  }
  std::optional<std::uint64_t> ttl;
  if (!f.value("ttl").empty()) {
    ttl = go_uint(f.value("ttl"));
    if (!ttl) return bad(ecode::ttl_nan, "invalid value for \"ttl\"");
  }
  if (f.has("prevExist")) {
    auto v = go_bool(f.value("prevExist"));
    if (!v) return bad(ecode::invalid_field, "invalid value for prevExist");
    p.req.prev_exist = *v;
  }
  if (f.has("refresh")) {
    auto v = go_bool(f.value("refresh"));
    if (!v) return bad(ecode::invalid_field, "invalid value for refresh");
    p.req.refresh = *v;
    if (*v) {
      if (f.has("value") && !f.value("value").empty()) {
        return bad(ecode::refresh_value, "A value was provided on a refresh");
      }
      if (!ttl) return bad(ecode::refresh_ttl_required, "No TTL value set");
    }
  }
  p.req.value = f.value("value");
  if (ttl) {
    p.req.expiration = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           (v2store::clock::now() + std::chrono::seconds(*ttl)).time_since_epoch())
                           .count();
  }
  return p;
}

void add_raft_headers(etcdserver::server& node, http::response& resp) {
  resp.headers.push_back({"X-Raft-Index", std::to_string(node.committed_index())});
  resp.headers.push_back({"X-Raft-Term", std::to_string(node.term())});
}

http::response event_answer(etcdserver::server& node, v2store::event ev, bool no_value) {
  http::response resp;
  resp.headers.push_back({"Content-Type", "application/json"});
  resp.headers.push_back({"X-Etcd-Cluster-Id", fmt::format("{:x}", node.cluster_id())});
  resp.headers.push_back({"X-Etcd-Index", std::to_string(ev.etcd_index)});
  add_raft_headers(node, resp);
  const bool created = ev.action == "create" || (ev.action == "set" && !ev.prev_node);
  resp.status = created ? 201 : 200;
  if (no_value && (ev.action == "set" || ev.action == "compareAndSwap" || ev.action == "create" ||
                   ev.action == "update")) {
    resp.body = "{\"action\":\"" + ev.action + "\"}\n";
  } else {
    resp.body = v2store::to_json(ev) + "\n";
  }
  return resp;
}

http::response watch_answer(etcdserver::server& node, std::shared_ptr<v2store::watcher> w,
                            bool stream) {
  http::response resp;
  resp.headers.push_back({"Content-Type", "application/json"});
  resp.headers.push_back({"X-Etcd-Cluster-Id", fmt::format("{:x}", node.cluster_id())});
  resp.headers.push_back({"X-Etcd-Index", std::to_string(w->start_index())});
  add_raft_headers(node, resp);
  resp.stream = [&node, w, stream](http::stream_writer& out) {
    // The head went out already (etcd flushes it at once for long polls).
    while (true) {
      if (auto ev = w->next(std::chrono::milliseconds(250))) {
        if (!out.write(v2store::to_json(*ev) + "\n") || !stream) break;
        continue;
      }
      if (w->removed() || out.wait_closed(std::chrono::milliseconds(1))) break;
    }
    node.v2().unwatch(w);
  };
  return resp;
}

}  // namespace

void install_keys(http::router& router, etcdserver::server& node) {
  auto handler = [&node](const http::request& r) -> http::response {
    if (r.method != "GET" && r.method != "HEAD" && r.method != "PUT" && r.method != "POST" &&
        r.method != "DELETE") {
      return http::method_not_allowed("GET, HEAD, PUT, POST, DELETE");
    }
    auto p = parse(r);
    if (!p) return error_answer(node, p.error());  // etcd's request errors say index 0
    http::response resp;
    if (p->req.method == "GET" && !p->quorum) {
      if (p->wait) {
        auto w = node.v2().watch(p->req.path, p->req.recursive, p->stream, p->wait_index);
        if (!w) return error_answer(node, w.error());
        resp = watch_answer(node, std::move(*w), p->stream);
      } else {
        auto ev = node.v2().get(p->req.path, p->req.recursive, p->req.sorted);
        if (!ev) return error_answer(node, ev.error());
        resp = event_answer(node, std::move(*ev), false);
      }
    } else {
      if (p->req.method == "GET") p->req.method = "QGET";
      auto ev = node.v2(p->req);
      if (!ev) return error_answer(node, ev.error());
      resp = event_answer(node, std::move(*ev), p->no_value_on_success);
    }
    if (r.method == "HEAD") resp.body.clear();
    return resp;
  };
  router.handle(std::string(keys_prefix), handler);
  router.handle(std::string(keys_prefix) + "/", handler);
}

}  // namespace cairn::v2http
