#include "v2store/store.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/json.h"

namespace cairn::v2store {

namespace {

// Go's path.Clean(path.Join("/", p)).
std::string clean(std::string_view p) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= p.size()) {
    const std::size_t j = std::min(p.find('/', i), p.size());
    const std::string_view part = p.substr(i, j - i);
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
  for (const auto& part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

std::string base_name(const std::string& p) { return p.substr(p.rfind('/') + 1); }

bool hidden_name(const std::string& name) { return !name.empty() && name[0] == '_'; }

// etcd's isHidden(watchPath, keyPath): below the watched path, some component starts with "_".
bool hidden_below(const std::string& watch_path, const std::string& key_path) {
  if (watch_path.size() > key_path.size()) return false;
  const std::string after = clean("/" + key_path.substr(watch_path.size()));
  return after.find("/_") != std::string::npos;
}

}  // namespace

std::string rfc3339nano(clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  long long frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09lld", frac);
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

namespace {

constexpr std::uint64_t no_expiry = ~std::uint64_t{0};

}  // namespace

struct store::node {
  std::string path;
  node* parent = nullptr;
  bool dir = false;
  std::string value;
  std::map<std::string, node_ptr> children;
  std::uint64_t created = 0;
  std::uint64_t modified = 0;
  std::optional<clock::time_point> expire;
  std::multimap<clock::time_point, node*>::iterator expiry_at;
};

std::string_view error::message() const {
  switch (code) {
    case ecode::key_not_found:
      return "Key not found";
    case ecode::test_failed:
      return "Compare failed";
    case ecode::not_file:
      return "Not a file";
    case ecode::not_dir:
      return "Not a directory";
    case ecode::node_exist:
      return "Key already exists";
    case ecode::root_read_only:
      return "Root is read only";
    case ecode::dir_not_empty:
      return "Directory not empty";
    case ecode::unauthorized:
      return "The request requires user authentication";
    case ecode::value_required:
      return "Value is Required in POST form";
    case ecode::prev_value_required:
      return "PrevValue is Required in POST form";
    case ecode::ttl_nan:
      return "The given TTL in POST form is not a number";
    case ecode::index_nan:
      return "The given index in POST form is not a number";
    case ecode::invalid_field:
      return "Invalid field";
    case ecode::invalid_form:
      return "Invalid POST form";
    case ecode::refresh_value:
      return "Value provided on refresh";
    case ecode::refresh_ttl_required:
      return "A TTL must be provided on refresh";
    case ecode::raft_internal:
      return "Raft Internal Error";
    case ecode::leader_elect:
      return "During Leader Election";
    case ecode::watcher_cleared:
      return "watcher is cleared due to etcd recovery";
    case ecode::event_index_cleared:
      return "The event in requested index is outdated and cleared";
  }
  return "";
}

int error::http_status() const {
  switch (code) {
    case ecode::key_not_found:
      return 404;
    case ecode::not_file:
    case ecode::dir_not_empty:
      return 403;
    case ecode::unauthorized:
      return 401;
    case ecode::test_failed:
    case ecode::node_exist:
      return 412;
    case ecode::raft_internal:
    case ecode::leader_elect:
      return 500;
    default:
      return 400;
  }
}

std::string error::json() const {
  std::string out = "{\"errorCode\":" + std::to_string(static_cast<int>(code)) +
                    ",\"message\":" + base::json_quote(message());
  if (!cause.empty()) out += ",\"cause\":" + base::json_quote(cause);
  return out + ",\"index\":" + std::to_string(index) + "}";
}

std::string to_json(const node_view& n) {
  std::string out = "{";
  auto field = [&](std::string_view name, const std::string& v) {
    if (out.size() > 1) out += ',';
    out += '"';
    out += name;
    out += "\":";
    out += v;
  };
  if (!n.key.empty()) field("key", base::json_quote(n.key));
  if (n.value) field("value", base::json_quote(*n.value));
  if (n.dir) field("dir", "true");
  if (n.expiration) field("expiration", base::json_quote(rfc3339nano(*n.expiration)));
  if (n.ttl != 0) field("ttl", std::to_string(n.ttl));
  if (!n.nodes.empty()) {
    std::string list = "[";
    for (std::size_t i = 0; i < n.nodes.size(); ++i) {
      if (i > 0) list += ',';
      list += to_json(n.nodes[i]);
    }
    field("nodes", list + "]");
  }
  if (n.modified_index != 0) field("modifiedIndex", std::to_string(n.modified_index));
  if (n.created_index != 0) field("createdIndex", std::to_string(n.created_index));
  return out + "}";
}

std::string to_json(const event& e) {
  std::string out = "{\"action\":" + base::json_quote(e.action) + ",\"node\":" + to_json(e.node);
  if (e.prev_node) out += ",\"prevNode\":" + to_json(*e.prev_node);
  if (e.refresh) out += ",\"refresh\":true";
  return out + "}";
}

std::string stats::json() const {
  auto f = [](const char* name, std::uint64_t v) {
    return std::string("\"") + name + "\":" + std::to_string(v);
  };
  return "{" + f("getsSuccess", get_success) + "," + f("getsFail", get_fail) + "," +
         f("setsSuccess", set_success) + "," + f("setsFail", set_fail) + "," +
         f("deleteSuccess", delete_success) + "," + f("deleteFail", delete_fail) + "," +
         f("updateSuccess", update_success) + "," + f("updateFail", update_fail) + "," +
         f("createSuccess", create_success) + "," + f("createFail", create_fail) + "," +
         f("compareAndSwapSuccess", cas_success) + "," + f("compareAndSwapFail", cas_fail) + "," +
         f("compareAndDeleteSuccess", cad_success) + "," + f("compareAndDeleteFail", cad_fail) +
         "," + f("expireCount", expire_count) + "," + f("watchers", watchers) + "}";
}

std::optional<event> watcher::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || removed_; });
  if (queue_.empty()) return std::nullopt;
  event e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool watcher::removed() const {
  auto& self = const_cast<watcher&>(*this);
  std::lock_guard lock(self.mu_);
  return removed_;
}

store::store(std::function<clock::time_point()> now) : now_(std::move(now)) {
  root_ = std::make_unique<node>();
  root_->path = "/";
  root_->dir = true;
}

store::~store() = default;

std::uint64_t store::index() const {
  std::lock_guard lock(mu_);
  return index_;
}

store::node* store::find(const std::string& path) const {
  node* n = root_.get();
  if (path == "/") return n;
  std::size_t i = 1;
  while (n != nullptr && i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    if (!n->dir) return nullptr;
    auto it = n->children.find(path.substr(i, j - i));
    n = it == n->children.end() ? nullptr : it->second.get();
    i = j + 1;
  }
  return n;
}

cairn::expected<store::node*, error> store::lookup(const std::string& path) const {
  node* n = root_.get();
  if (path == "/") return n;
  std::size_t i = 1;
  while (i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    if (!n->dir) return cairn::unexpected(error{ecode::not_dir, n->path, index_});
    const std::string name = path.substr(i, j - i);
    auto it = n->children.find(name);
    if (it == n->children.end()) {
      return cairn::unexpected(
          error{ecode::key_not_found, (n->path == "/" ? "" : n->path) + "/" + name, index_});
    }
    n = it->second.get();
    i = j + 1;
  }
  return n;
}

node_view store::view(const node* n, bool recursive, bool sorted) const {
  node_view v;
  v.key = n == root_.get() ? "" : n->path;  // etcd trims its "/1" prefix to nothing
  v.modified_index = n->modified;
  v.created_index = n->created;
  if (n->expire) {
    v.expiration = *n->expire;
    const auto left = *n->expire - now_();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    if (left - secs > clock::duration::zero()) ++secs;  // rounded up, as etcd
    v.ttl = secs.count();
  }
  if (!n->dir) {
    v.value = n->value;
    return v;
  }
  v.dir = true;
  (void)sorted;  // children are always in name order here (etcd's sorted=false is map order)
  if (recursive) {
    for (const auto& [name, child] : n->children) {
      if (hidden_name(name)) continue;
      v.nodes.push_back(view(child.get(), true, sorted));
    }
  }
  return v;
}

cairn::expected<event, error> store::get(const std::string& raw, bool recursive, bool sorted) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  auto n = lookup(path);
  if (!n) {
    ++stats_.get_fail;
    return cairn::unexpected(n.error());
  }
  ++stats_.get_success;
  event e;
  e.action = "get";
  e.etcd_index = index_;
  e.node = view(*n, false, sorted);
  if ((*n)->dir) {
    // One level always; deeper only when recursive (etcd's loadInternalNode).
    for (const auto& [name, child] : (*n)->children) {
      if (hidden_name(name)) continue;
      e.node.nodes.push_back(view(child.get(), recursive, sorted));
    }
  }
  return e;
}

void store::set_expiry(node* n, std::optional<clock::time_point> expire) {
  if (n->expire) expiry_.erase(n->expiry_at);
  n->expire = expire;
  if (expire) n->expiry_at = expiry_.emplace(*expire, n);
}

cairn::expected<event, error> store::create_locked(std::string path, bool dir,
                                                   const std::string& value, bool unique,
                                                   bool replace,
                                                   std::optional<clock::time_point> expire,
                                                   const char* action) {
  const std::uint64_t current = index_, next = index_ + 1;
  if (unique) {
    char name[32];
    std::snprintf(name, sizeof name, "/%020llu", static_cast<unsigned long long>(next));
    path += name;
  }
  path = clean(path);
  if (path == "/") return cairn::unexpected(error{ecode::root_read_only, "/", current});
  const std::string parent_path = path.substr(0, path.rfind('/'));
  const std::string name = base_name(path);
  // Walk down, making the missing directories (they take the new index).
  node* parent = root_.get();
  std::vector<node*> made;
  {
    std::size_t i = 1;
    const std::string walk = parent_path.empty() ? "" : parent_path;
    while (i <= walk.size()) {
      const std::size_t j = std::min(walk.find('/', i), walk.size());
      const std::string part = walk.substr(i, j - i);
      auto it = parent->children.find(part);
      if (it == parent->children.end()) {
        auto d = std::make_unique<node>();
        d->path = (parent->path == "/" ? "" : parent->path) + "/" + part;
        d->parent = parent;
        d->dir = true;
        d->created = d->modified = next;
        node* raw = d.get();
        parent->children.emplace(part, std::move(d));
        made.push_back(raw);
        parent = raw;
      } else if (!it->second->dir) {
        // A file where a directory should be: undo what was made, 104.
        for (auto m = made.rbegin(); m != made.rend(); ++m)
          (*m)->parent->children.erase(base_name((*m)->path));
        return cairn::unexpected(error{ecode::not_dir, it->second->path, current});
      } else {
        parent = it->second.get();
      }
      i = j + 1;
    }
  }
  event e;
  e.action = action;
  if (auto it = parent->children.find(name); it != parent->children.end()) {
    node* old = it->second.get();
    if (!replace || old->dir) {
      return cairn::unexpected(error{replace ? ecode::not_file : ecode::node_exist, path, current});
    }
    e.prev_node = view(old, false, false);
    set_expiry(old, std::nullopt);
    parent->children.erase(it);
  }
  auto n = std::make_unique<node>();
  n->path = path;
  n->parent = parent;
  n->dir = dir;
  if (!dir) n->value = value;
  n->created = n->modified = next;
  node* raw = n.get();
  parent->children.emplace(name, std::move(n));
  set_expiry(raw, expire);
  index_ = next;
  e.node = view(raw, false, false);
  e.etcd_index = next;
  return e;
}

cairn::expected<event, error> store::set(const std::string& raw, bool dir, const std::string& value,
                                         const ttl_options& ttl) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  node* existing = find(path);
  if (!existing) {
    auto n = lookup(path);
    if (!n && n.error().code != ecode::key_not_found) {
      ++stats_.set_fail;
      return cairn::unexpected(n.error());
    }
  }
  std::string v = value;
  if (ttl.refresh) {
    if (existing == nullptr) {
      ++stats_.set_fail;
      return cairn::unexpected(lookup(path).error());
    }
    v = existing->value;
  }
  auto e = create_locked(path, dir, v, false, true, ttl.expire, "set");
  if (!e) {
    ++stats_.set_fail;
    return e;
  }
  ++stats_.set_success;
  e->refresh = ttl.refresh;
  notify(*e, ttl.refresh);
  return e;
}

cairn::expected<event, error> store::create(const std::string& raw, bool dir,
                                            const std::string& value, bool unique,
                                            const ttl_options& ttl) {
  std::lock_guard lock(mu_);
  auto e = create_locked(raw, dir, value, unique, false, ttl.expire, "create");
  if (!e) {
    ++stats_.create_fail;
    return e;
  }
  ++stats_.create_success;
  notify(*e);
  return e;
}

cairn::expected<event, error> store::update(const std::string& raw, const std::string& value,
                                            const ttl_options& ttl) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  const std::uint64_t current = index_, next = index_ + 1;
  auto fail = [&](error err) -> cairn::expected<event, error> {
    ++stats_.update_fail;
    return cairn::unexpected(std::move(err));
  };
  if (path == "/") return fail({ecode::root_read_only, "/", current});
  auto n = lookup(path);
  if (!n) return fail(n.error());
  node* nd = *n;
  if (nd->dir && !value.empty()) return fail({ecode::not_file, path, current});
  const std::string v = ttl.refresh ? nd->value : value;
  event e;
  e.action = "update";
  e.prev_node = view(nd, false, false);
  if (!nd->dir) {
    nd->value = v;
    nd->modified = next;  // a directory keeps its index (etcd's node.Write refuses it)
  }
  set_expiry(nd, ttl.expire);
  index_ = next;
  e.node = view(nd, false, false);
  e.node.modified_index = next;
  e.node.created_index = nd->created;
  e.etcd_index = next;
  e.refresh = ttl.refresh;
  ++stats_.update_success;
  notify(e, ttl.refresh);
  return e;
}

namespace {
// etcd's getCompareFailCause.
std::string compare_cause(bool value_ok, bool index_ok, const std::string& prev_value,
                          const std::string& value, std::uint64_t prev_index,
                          std::uint64_t modified) {
  const std::string vi = "[" + prev_value + " != " + value + "]";
  const std::string ii = "[" + std::to_string(prev_index) + " != " + std::to_string(modified) + "]";
  if (!index_ok && value_ok) return ii;
  if (!value_ok && index_ok) return vi;
  return vi + " " + ii;
}
}  // namespace

cairn::expected<store::node*, error> store::compared_file(const std::string& path,
                                                          const std::string& prev_value,
                                                          std::uint64_t prev_index) const {
  auto n = lookup(path);
  if (!n) return n;
  node* nd = *n;
  if (nd->dir) return cairn::unexpected(error{ecode::not_file, path, index_});
  const bool index_ok = prev_index == 0 || nd->modified == prev_index;
  const bool value_ok = prev_value.empty() || nd->value == prev_value;
  if (!index_ok || !value_ok) {
    return cairn::unexpected(
        error{ecode::test_failed,
              compare_cause(value_ok, index_ok, prev_value, nd->value, prev_index, nd->modified),
              index_});
  }
  return nd;
}

cairn::expected<event, error> store::compare_and_swap(const std::string& raw,
                                                      const std::string& prev_value,
                                                      std::uint64_t prev_index,
                                                      const std::string& value,
                                                      const ttl_options& ttl) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  auto fail = [&](error err) -> cairn::expected<event, error> {
    ++stats_.cas_fail;
    return cairn::unexpected(std::move(err));
  };
  if (path == "/") return fail({ecode::root_read_only, "/", index_});
#ifndef CAIRN_PLANTED_BUG_V2_CAS_IGNORES_INDEX
  auto n = compared_file(path, prev_value, prev_index);
#else
  (void)prev_index;  // planted: the index is never compared
  auto n = compared_file(path, prev_value, 0);
#endif
  if (!n) return fail(n.error());
  node* nd = *n;
  ++index_;
  event e;
  e.action = "compareAndSwap";
  e.prev_node = view(nd, false, false);
  nd->value = ttl.refresh ? nd->value : value;
  nd->modified = index_;
  set_expiry(nd, ttl.expire);
  e.node = view(nd, false, false);
  e.etcd_index = index_;
  e.refresh = ttl.refresh;
  ++stats_.cas_success;
  notify(e, ttl.refresh);
  return e;
}

cairn::expected<void, error> store::remove_node(node* n, bool dir, bool recursive, const event& e) {
  if (n->dir) {
    if (!dir) return cairn::unexpected(error{ecode::not_file, n->path, index_});
    if (!n->children.empty() && !recursive) {
      return cairn::unexpected(error{ecode::dir_not_empty, n->path, index_});
    }
    // Children first; their watchers hear the delete of the whole.
    std::vector<node*> kids;
    for (auto& [_, c] : n->children) kids.push_back(c.get());
    for (node* c : kids) (void)remove_node(c, true, true, e);
  }
  notify_path(e, n->path, true);
  set_expiry(n, std::nullopt);
  if (n->parent != nullptr) n->parent->children.erase(base_name(n->path));
  return {};
}

cairn::expected<event, error> store::remove(const std::string& raw, bool dir, bool recursive) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  auto fail = [&](error err) -> cairn::expected<event, error> {
    ++stats_.delete_fail;
    return cairn::unexpected(std::move(err));
  };
  if (path == "/") return fail({ecode::root_read_only, "/", index_});
  if (recursive) dir = true;
  auto n = lookup(path);
  if (!n) return fail(n.error());
  const std::uint64_t next = index_ + 1;
  event e;
  e.action = "delete";
  e.prev_node = view(*n, false, false);
  e.node.key = path;
  e.node.dir = (*n)->dir;
  e.node.modified_index = next;
  e.node.created_index = (*n)->created;
  e.etcd_index = next;
  if (auto r = remove_node(*n, dir, recursive, e); !r) return fail(r.error());
  index_ = next;
  ++stats_.delete_success;
  notify(e);
  return e;
}

cairn::expected<event, error> store::compare_and_delete(const std::string& raw,
                                                        const std::string& prev_value,
                                                        std::uint64_t prev_index) {
  std::lock_guard lock(mu_);
  const std::string path = clean(raw);
  auto fail = [&](error err) -> cairn::expected<event, error> {
    ++stats_.cad_fail;
    return cairn::unexpected(std::move(err));
  };
  auto n = compared_file(path, prev_value, prev_index);
  if (!n) return fail(n.error());
  node* nd = *n;
  ++index_;
  event e;
  e.action = "compareAndDelete";
  e.prev_node = view(nd, false, false);
  e.node.key = path;
  e.node.modified_index = index_;
  e.node.created_index = nd->created;
  e.etcd_index = index_;
  (void)remove_node(nd, false, false, e);
  ++stats_.cad_success;
  notify(e);
  return e;
}

void store::delete_expired(clock::time_point cutoff) {
  std::lock_guard lock(mu_);
  while (!expiry_.empty() && expiry_.begin()->first <= cutoff) {
    node* n = expiry_.begin()->second;
    ++index_;
    event e;
    e.action = "expire";
    e.prev_node = view(n, false, false);
    e.node.key = n->path;
    e.node.dir = n->dir;
    e.node.modified_index = index_;
    e.node.created_index = n->created;
    e.etcd_index = index_;
    (void)remove_node(n, true, true, e);
    ++stats_.expire_count;
    notify(e);
  }
}

std::optional<clock::time_point> store::next_expiry() const {
  std::lock_guard lock(mu_);
  if (expiry_.empty()) return std::nullopt;
  return expiry_.begin()->first;
}

stats store::counters() const {
  std::lock_guard lock(mu_);
  stats s = stats_;
  s.watchers = 0;
  for (const auto& [_, list] : watchers_) s.watchers += list.size();
  return s;
}

std::optional<event> store::scan_history(const std::string& key, bool recursive,
                                         std::uint64_t since, error* err) const {
  if (history_.empty()) return std::nullopt;
  const std::uint64_t start = history_.front().index(), last = history_.back().index();
  if (since < start) {
    *err = {ecode::event_index_cleared,
            "the requested history has been cleared [" + std::to_string(start) + "/" +
                std::to_string(since) + "]",
            index_};
    return std::nullopt;
  }
  if (since > last) return std::nullopt;
  std::string prefix = clean(key);
  if (prefix.back() != '/') prefix += '/';
  for (const auto& e : history_) {
    if (e.index() < since || e.refresh) continue;
    bool ok = e.node.key == key || (recursive && e.node.key.starts_with(prefix));
    // A deleted or expired directory above the key ends its watch too.
    if ((e.action == "delete" || e.action == "expire") && e.prev_node && e.prev_node->dir &&
        key.starts_with(e.prev_node->key)) {
      ok = true;
    }
    if (ok) return e;
  }
  return std::nullopt;
}

cairn::expected<std::shared_ptr<watcher>, error> store::watch(const std::string& raw,
                                                              bool recursive, bool stream,
                                                              std::uint64_t since) {
  std::lock_guard lock(mu_);
  const std::string key = clean(raw);
  if (since == 0) since = index_ + 1;
  auto w = std::make_shared<watcher>();
  w->recursive_ = recursive;
  w->stream_ = stream;
  w->since_ = since;
  w->start_index_ = index_;
  w->key_ = key;
  error err;
  if (auto e = scan_history(key, recursive, since, &err)) {
    e->etcd_index = index_;
    w->delivered_ = e->index();
    w->queue_.push_back(std::move(*e));
    if (!stream) return w;
  } else if (err.code == ecode::event_index_cleared) {
    return cairn::unexpected(std::move(err));
  }
  watchers_[key].push_back(w);
  return w;
}

void store::unwatch(const std::shared_ptr<watcher>& w) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(w->key_);
  if (it == watchers_.end()) return;
  it->second.remove(w);
  if (it->second.empty()) watchers_.erase(it);
}

void store::notify_path(const event& e, const std::string& path, bool deleted) {
  auto it = watchers_.find(path);
  if (it == watchers_.end()) return;
  const bool original = e.node.key == path;
  for (auto w = it->second.begin(); w != it->second.end();) {
    std::shared_ptr<watcher> wp = *w;
    bool done = false;
    if ((original || !hidden_below(path, e.node.key)) && (wp->recursive_ || original || deleted) &&
        e.index() >= wp->since_ && e.index() > wp->delivered_) {
      std::lock_guard wl(wp->mu_);
      wp->delivered_ = e.index();
      if (wp->queue_.size() >= watcher_queue) {
        wp->removed_ = true;  // too slow: dropped, as etcd drops it
        done = true;
      } else {
        wp->queue_.push_back(e);
        done = !wp->stream_;
        if (done) wp->removed_ = true;
      }
      wp->cv_.notify_all();
    }
    w = done ? it->second.erase(w) : std::next(w);
  }
  if (it->second.empty()) watchers_.erase(it);
}

void store::notify(event e, bool history_only) {
  history_.push_back(e);
  if (history_.size() > history_size) history_.pop_front();
  if (history_only) return;
  // Every path from the root down to the key (etcd's notify).
  notify_path(e, "/", false);
  std::string cur;
  std::size_t i = 1;
  while (i <= e.node.key.size()) {
    const std::size_t j = std::min(e.node.key.find('/', i), e.node.key.size());
    cur += "/" + e.node.key.substr(i, j - i);
    notify_path(e, cur, false);
    i = j + 1;
  }
}

std::string store::save() const {
  std::lock_guard lock(mu_);
  std::string out = "cairn-v2store 1\n" + std::to_string(index_) + "\n";
  std::function<void(const node*)> walk = [&](const node* n) {
    if (n != root_.get()) {
      const std::uint64_t exp =
          n->expire
              ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               n->expire->time_since_epoch())
                                               .count())
              : no_expiry;
      out += (n->dir ? "d " : "f ") + std::to_string(n->created) + " " +
             std::to_string(n->modified) + " " + std::to_string(exp) + " " +
             std::to_string(n->path.size()) + " " + std::to_string(n->value.size()) + "\n" +
             n->path + n->value + "\n";
    }
    for (const auto& [_, c] : n->children) walk(c.get());
  };
  walk(root_.get());
  return out;
}

bool store::recover(std::string_view in) {
  auto line = [&](std::string_view& s) -> std::optional<std::string_view> {
    const auto nl = s.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    auto l = s.substr(0, nl);
    s.remove_prefix(nl + 1);
    return l;
  };
  std::string_view s = in;
  auto magic = line(s);
  auto idx = line(s);
  if (!magic || *magic != "cairn-v2store 1" || !idx) return false;
  auto fresh = std::make_unique<node>();
  fresh->path = "/";
  fresh->dir = true;
  std::multimap<clock::time_point, node*> expiry;
  std::map<std::string, node*> dirs = {{"/", fresh.get()}};
  while (!s.empty()) {
    auto head = line(s);
    if (!head) return false;
    char kind = 0;
    unsigned long long created = 0, modified = 0, exp = 0, plen = 0, vlen = 0;
    const std::string h(*head);
    if (std::sscanf(h.c_str(), "%c %llu %llu %llu %llu %llu", &kind, &created, &modified, &exp,
                    &plen, &vlen) != 6 ||
        s.size() < plen + vlen + 1) {
      return false;
    }
    auto n = std::make_unique<node>();
    n->path = std::string(s.substr(0, plen));
    n->value = std::string(s.substr(plen, vlen));
    s.remove_prefix(plen + vlen + 1);
    n->dir = kind == 'd';
    n->created = created;
    n->modified = modified;
    const std::string parent = n->path.substr(0, n->path.rfind('/'));
    auto p = dirs.find(parent.empty() ? "/" : parent);
    if (p == dirs.end()) return false;
    n->parent = p->second;
    node* raw = n.get();
    if (exp != no_expiry) {
      raw->expire = clock::time_point(std::chrono::duration_cast<clock::duration>(
          std::chrono::nanoseconds(static_cast<long long>(exp))));
      raw->expiry_at = expiry.emplace(*raw->expire, raw);
    }
    if (raw->dir) dirs[raw->path] = raw;
    p->second->children.emplace(base_name(raw->path), std::move(n));
  }
  std::lock_guard lock(mu_);
  root_ = std::move(fresh);
  expiry_ = std::move(expiry);
  index_ = std::stoull(std::string(*idx));
  history_.clear();
  for (auto& [_, list] : watchers_) {
    for (auto& w : list) {
      std::lock_guard wl(w->mu_);
      w->removed_ = true;
      w->cv_.notify_all();
    }
  }
  watchers_.clear();
  return true;
}

}  // namespace cairn::v2store
