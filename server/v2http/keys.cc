#include "v2http/keys.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>
#include <mutex>

#include <map>
#include <optional>
#include "base/log.h"

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

http::response json_answer(int status, std::string body) {
  http::response resp;
  resp.status = status;
  resp.headers.push_back({"Content-Type", "application/json"});
  resp.body = std::move(body);
  return resp;
}

// etcd's httptypes.HTTPError.
http::response message_answer(int status, std::string_view message) {
  return json_answer(status, "{\"message\":" + http::json_quote(message) + "}");  // no newline
}

std::string urls_json(const std::vector<std::string>& urls) {
  std::string out = "[";
  for (std::size_t i = 0; i < urls.size(); ++i) {
    if (i > 0) out += ',';
    out += http::json_quote(urls[i]);
  }
  return out + "]";
}

// etcd's httptypes.Member.
std::string member_json(const etcdserver::member& m) {
  return "{\"id\":\"" + fmt::format("{:x}", m.id) + "\",\"name\":" + http::json_quote(m.name) +
         ",\"peerURLs\":" + urls_json(m.peer_urls) + ",\"clientURLs\":" + urls_json(m.client_urls) +
         "}";
}

}  // namespace

void install_stats_and_members(http::router& router, etcdserver::server& node,
                               std::function<std::string()> followers) {
  if (followers) {
    router.handle("/v2/stats/leader", [&node, followers](const http::request& r) {
      if (r.method != "GET") return http::method_not_allowed("GET");
      if (node.leader() != node.member_id()) return message_answer(403, "not current leader");
      return json_answer(200, "{\"leader\":\"" + fmt::format("{:x}", node.member_id()) +
                                  "\",\"followers\":" + followers() + "}");
    });
  }
  router.handle("/v2/stats/store", [&node](const http::request& r) {
    if (r.method != "GET") return http::method_not_allowed("GET");
    return json_answer(200, node.v2().counters().json());
  });
  // /v2/stats/self: who this member is and what it sees of the leader.
  struct seen {
    std::mutex mu;
    std::uint64_t leader = 0;
    std::chrono::system_clock::time_point since;
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  };
  auto state = std::make_shared<seen>();
  router.handle("/v2/stats/self", [&node, state](const http::request& r) {
    if (r.method != "GET") return http::method_not_allowed("GET");
    const auto now = std::chrono::system_clock::now();
    const std::uint64_t leader = node.leader();
    std::lock_guard lock(state->mu);
    if (leader != state->leader) {
      state->leader = leader;
      state->since = now;
    }
    const char* role = leader == 0                  ? "StateCandidate"
                       : leader == node.member_id() ? "StateLeader"
                                                    : "StateFollower";
    std::string name;
    if (auto m = node.members().get(node.member_id())) name = m->name;
    const auto& st = node.stats();
    std::string body =
        "{\"name\":" + http::json_quote(name) + ",\"id\":\"" +
        fmt::format("{:x}", node.member_id()) + "\",\"state\":\"" + role + "\",\"startTime\":\"" +
        v2store::rfc3339nano(state->started) + "\",\"leaderInfo\":{\"leader\":\"" +
        (leader == 0 ? std::string() : fmt::format("{:x}", leader)) + "\",\"uptime\":\"" +
        base::go_duration(now - state->since) + "\",\"startTime\":\"" +
        v2store::rfc3339nano(state->since) +
        "\"},\"recvAppendRequestCnt\":" + std::to_string(st.recv_append_requests.load()) +
        ",\"sendAppendRequestCnt\":" + std::to_string(st.send_append_requests.load()) + "}";
    return json_answer(200, std::move(body));
  });
  // /v2/members: list, add (JSON {"peerURLs": [...]}), remove (/v2/members/<hex id>), leader.
  auto members = [&node](const http::request& r) -> http::response {
    const std::string rest =
        r.path.size() > 12 ? r.path.substr(12) : std::string();  // after /v2/members/
    if (r.method == "GET") {
      if (rest.empty()) {
        std::string body = "{\"members\":[";
        const auto all = node.members().list();
        for (std::size_t i = 0; i < all.size(); ++i) {
          if (i > 0) body += ',';
          body += member_json(all[i]);
        }
        return json_answer(200, body + "]}\n");
      }
      if (rest == "leader") {
        auto m = node.leader() == 0 ? std::nullopt : node.members().get(node.leader());
        if (!m) return message_answer(503, "During election");
        return json_answer(200, member_json(*m) + "\n");
      }
      return http::method_not_allowed("GET, POST");
    }
    if (r.method == "POST" && rest.empty()) {
      const std::string* ct = http::find_header(r.headers, "Content-Type");
      if (ct == nullptr || !ct->starts_with("application/json")) {
        return message_answer(415, "Bad Content-Type");
      }
      // {"peerURLs":["http://..", ...]}: the strings of the list.
      std::vector<std::string> urls;
      const auto key = r.body.find("\"peerURLs\"");
      const auto open = key == std::string::npos ? key : r.body.find('[', key);
      const auto close = open == std::string::npos ? open : r.body.find(']', open);
      if (close == std::string::npos) return message_answer(400, "unexpected end of JSON input");
      for (std::size_t q = r.body.find('"', open); q != std::string::npos && q < close;
           q = r.body.find('"', q + 1)) {
        const auto end = r.body.find('"', q + 1);
        if (end == std::string::npos || end > close) break;
        urls.push_back(r.body.substr(q + 1, end - q - 1));
        q = end;
      }
      if (urls.empty()) return message_answer(400, "peerURLs must not be empty");
      auto added = node.add_member(urls, false);
      if (!added) {
        const auto e = added.error();
        if (e == base::errc::member_exist) return message_answer(409, "membership: ID exists");
        if (e == base::errc::peer_url_exist)
          return message_answer(409, "membership: peerURL exists");
        return message_answer(500, base::message(e));
      }
      etcdserver::member m = added->added;
      return json_answer(201, member_json(m) + "\n");
    }
    if (r.method == "DELETE" && !rest.empty()) {
      std::uint64_t id = 0;
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id, 16);
      if (ec != std::errc() || p != rest.data() + rest.size() || !node.members().get(id)) {
        return message_answer(404, "No such member: " + rest);
      }
      auto removed = node.remove_member(id);
      if (!removed) return message_answer(500, base::message(removed.error()));
      http::response resp;
      resp.status = 204;
      return resp;
    }
    return http::method_not_allowed("GET, POST, DELETE");
  };
  router.handle("/v2/members", members);
  router.handle("/v2/members/", members);
}

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
