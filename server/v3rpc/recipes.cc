#include "v3rpc/recipes.h"

#include <chrono>
#include <memory>
#include <utility>

#include "fmt/format.h"
#include "v3rpc/errors.h"

namespace cairn::v3rpc::recipes {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t default_session_ttl = 60;  // etcd's concurrency.NewSession default
constexpr auto poll_interval = 100ms;

grpc::Status unknown(std::string_view message) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, std::string(message));
}
// etcd runs the recipes through its own client, which hands the KV error back as a plain Go
// error: the server then sends its text with code Unknown.
grpc::Status fail(base::errc e) { return unknown(to_grpc_status(e).error_message()); }
grpc::Status canceled() { return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"); }

std::string prefix_of(std::string_view name) { return std::string(name) + "/"; }

mvcc::range_request over_prefix(const std::string& prefix) {
  mvcc::range_request r;
  r.key = prefix;
  r.range_end = mvcc::prefix_range_end(prefix);
  return r;
}

// The key of `prefix` created first (etcd's WithFirstCreate), at the answer's revision.
result<mvcc::range_response> first_created(etcdserver::server& node, const std::string& prefix) {
  mvcc::range_request r = over_prefix(prefix);
  r.limit = 1;
  r.order = mvcc::sort_order::ascend;
  r.target = mvcc::sort_target::create;
  auto resp = node.range(r);
  if (!resp) return cairn::unexpected(fail(resp.error()));
  return std::move(*resp);
}

// Waits until `key` is deleted at or after revision `from`. Returns early (with success) if the
// watch is compacted away: the caller looks again.
result<void> wait_delete(etcdserver::server& node, const std::string& key, std::int64_t from,
                         const cancelled_fn& cancelled) {
  auto stream = node.watchable().new_stream();
  mvcc::watch_request w;
  w.key = key;
  w.start_revision = from;
  w.no_put = true;
  if (auto id = stream->watch(w); !id) return {};
  for (;;) {
    if (cancelled()) return cairn::unexpected(canceled());
    auto resp = stream->next(poll_interval);
    if (!resp) continue;
    if (resp->compact_revision != 0) return {};
    for (const auto& ev : resp->events) {
      if (ev.type == mvcc::event_type::del) return {};
    }
  }
}

// etcd's waitDeletes: until no key of `prefix` has a create revision at or below
// `max_create_revision`, waits for the newest such key to go. Returns the header's revision of
// the last look.
result<std::int64_t> wait_deletes(etcdserver::server& node, const std::string& prefix,
                                  std::int64_t max_create_revision, const cancelled_fn& cancelled) {
  for (;;) {
    mvcc::range_request r = over_prefix(prefix);
    r.limit = 1;
    r.order = mvcc::sort_order::descend;
    r.target = mvcc::sort_target::create;
    r.max_create_revision = max_create_revision;
    auto resp = node.range(r);
    if (!resp) return cairn::unexpected(fail(resp.error()));
    if (resp->kvs.empty()) return resp->revision;
    if (auto w = wait_delete(node, resp->kvs[0].key, resp->revision, cancelled); !w) {
      return cairn::unexpected(w.error());
    }
  }
}

result<std::int64_t> session_lease(etcdserver::server& node, std::int64_t lease) {
  if (lease != 0) return lease;
  auto g = node.lease_grant(0, default_session_ttl);
  if (!g) return cairn::unexpected(fail(g.error()));
  return g->id;
}

mvcc::compare create_revision_is(const std::string& key, std::int64_t rev) {
  mvcc::compare c;
  c.key = key;
  c.target = mvcc::compare_target::create;
  c.result = mvcc::compare_result::equal;
  c.number = rev;
  return c;
}

mvcc::request_op put_op(const std::string& key, std::string_view value, std::int64_t lease) {
  mvcc::put_request p;
  p.key = key;
  p.value = std::string(value);
  p.lease = lease;
  return {p};
}

mvcc::request_op get_op(const std::string& key) {
  mvcc::range_request g;
  g.key = key;
  return {g};
}

// Puts `key` with `value` unless it exists (etcd's Txn If(create == 0) Then(put) Else(get)).
// Returns the key's create revision and whether this call made it, plus the txn's revision.
struct entered {
  std::int64_t create_revision = 0;
  std::int64_t revision = 0;
  bool created = false;
  std::string existing_value;
};
result<entered> enter(etcdserver::server& node, const std::string& key, std::string_view value,
                      std::int64_t lease) {
  mvcc::txn_request t;
  t.compares.push_back(create_revision_is(key, 0));
  t.success.push_back(put_op(key, value, lease));
  t.failure.push_back(get_op(key));
  auto r = node.txn(t);
  if (!r) return cairn::unexpected(fail(r.error()));
  entered out;
  out.revision = r->revision;
  out.created = r->succeeded;
  out.create_revision = r->revision;
  if (!r->succeeded) {
    const auto& got = std::get<mvcc::range_response>(r->responses.at(0).op);
    if (got.kvs.empty()) {
      // Deleted between the compare and the read: impossible within one txn.
      return cairn::unexpected(unknown("lost the key while entering"));
    }
    out.create_revision = got.kvs[0].create_revision;
    out.existing_value = got.kvs[0].value;
  }
  return out;
}

// Deletes `key` if its create revision is still `rev`; the txn's revision.
result<std::int64_t> delete_if_created_at(etcdserver::server& node, const std::string& key,
                                          std::int64_t rev) {
  mvcc::txn_request t;
  t.compares.push_back(create_revision_is(key, rev));
  mvcc::delete_range_request d;
  d.key = key;
  t.success.push_back({d});
  auto r = node.txn(t);
  if (!r) return cairn::unexpected(fail(r.error()));
  return r->revision;
}

// Whether `key` still exists (a linearizable read).
result<bool> exists(etcdserver::server& node, const std::string& key) {
  mvcc::range_request r;
  r.key = key;
  r.count_only = true;
  auto resp = node.range(r);
  if (!resp) return cairn::unexpected(fail(resp.error()));
  return resp->count > 0;
}

}  // namespace

std::string contender_key(std::string_view name, std::int64_t lease) {
  return fmt::format("{}/{:x}", name, lease);
}

result<held> lock(etcdserver::server& node, std::string_view name, std::int64_t lease,
                  const cancelled_fn& cancelled) {
  auto l = session_lease(node, lease);
  if (!l) return cairn::unexpected(l.error());
  const std::string prefix = prefix_of(name);
  const std::string key = contender_key(name, *l);
  auto e = enter(node, key, "", *l);
  if (!e) return cairn::unexpected(e.error());
  held h{key, e->create_revision, *l, e->revision};
  auto owner = first_created(node, prefix);
  if (!owner) return cairn::unexpected(owner.error());
  if (owner->kvs.empty() || owner->kvs[0].create_revision == e->create_revision) {
    return h;
  }
  auto waited = wait_deletes(node, prefix, e->create_revision - 1, cancelled);
  if (!waited) {
    (void)node.delete_range({.key = key});
    return cairn::unexpected(waited.error());
  }
  // etcd #11456: the lease may have run out while we waited; then the key is gone and the lock
  // must not be granted.
  auto still = exists(node, key);
  if (!still) {
    (void)node.delete_range({.key = key});
    return cairn::unexpected(still.error());
  }
  if (!*still) return cairn::unexpected(unknown("mutex: session is expired"));
  h.revision = *waited;
  return h;
}

result<std::int64_t> unlock(etcdserver::server& node, std::string_view key) {
  auto r = node.delete_range({.key = std::string(key)});
  if (!r) return cairn::unexpected(fail(r.error()));
  return r->revision;
}

result<held> campaign(etcdserver::server& node, std::string_view name, std::int64_t lease,
                      std::string_view value, const cancelled_fn& cancelled) {
  auto l = session_lease(node, lease);
  if (!l) return cairn::unexpected(l.error());
  const std::string prefix = prefix_of(name);
  const std::string key = contender_key(name, *l);
  auto e = enter(node, key, value, *l);
  if (!e) return cairn::unexpected(e.error());
  held h{key, e->create_revision, *l, e->revision};
  if (!e->created && e->existing_value != value) {
    auto p = proclaim(node, key, e->create_revision, *l, value);
    if (!p) {
      (void)resign(node, key, e->create_revision);
      return cairn::unexpected(p.error());
    }
  }
  auto waited = wait_deletes(node, prefix, e->create_revision - 1, cancelled);
  if (!waited) {
    if (cancelled()) (void)resign(node, key, e->create_revision);
    return cairn::unexpected(waited.error());
  }
  // As for locks: a lease that ran out while we waited took the key with it.
  auto still = exists(node, key);
  if (!still) return cairn::unexpected(still.error());
  if (!*still) return cairn::unexpected(unknown("election: session expired"));
  return h;
}

result<std::int64_t> proclaim(etcdserver::server& node, std::string_view key,
                              std::int64_t create_revision, std::int64_t lease,
                              std::string_view value) {
  const std::string k(key);
  mvcc::txn_request t;
  t.compares.push_back(create_revision_is(k, create_revision));
  t.success.push_back(put_op(k, value, lease));
  auto r = node.txn(t);
  if (!r) return cairn::unexpected(fail(r.error()));
  if (!r->succeeded) return cairn::unexpected(unknown("election: not leader"));
  return r->revision;
}

result<std::int64_t> resign(etcdserver::server& node, std::string_view key,
                            std::int64_t create_revision) {
  return delete_if_created_at(node, std::string(key), create_revision);
}

result<leader_state> leader(etcdserver::server& node, std::string_view name) {
  auto r = first_created(node, prefix_of(name));
  if (!r) return cairn::unexpected(r.error());
  if (r->kvs.empty()) return cairn::unexpected(unknown("election: no leader"));
  return leader_state{r->kvs[0], r->revision};
}

grpc::Status observe(etcdserver::server& node, std::string_view name,
                     const std::function<bool(const leader_state&)>& emit,
                     const cancelled_fn& cancelled) {
  const std::string prefix = prefix_of(name);
  for (;;) {
    auto first = first_created(node, prefix);
    if (!first) return first.error();
    leader_state current;
    if (!first->kvs.empty()) {
      current = {first->kvs[0], first->revision};
    } else {
      // No leader yet: wait for the first put under the prefix.
      auto stream = node.watchable().new_stream();
      mvcc::watch_request w;
      w.key = prefix;
      w.range_end = mvcc::prefix_range_end(prefix);
      w.start_revision = first->revision;
      w.no_delete = true;
      if (!stream->watch(w)) continue;
      bool found = false;
      while (!found) {
        if (cancelled()) return canceled();
        auto resp = stream->next(poll_interval);
        if (!resp) continue;
        if (resp->compact_revision != 0) break;  // look again
        if (!resp->events.empty()) {
          current = {resp->events[0].kv, resp->events[0].kv.mod_revision};
          found = true;
        }
      }
      if (!found) continue;
    }
    if (!emit(current)) return grpc::Status::OK;
    // Follow this leader's key: every put is a proclamation, a delete ends its term.
    auto stream = node.watchable().new_stream();
    mvcc::watch_request w;
    w.key = current.kv.key;
    w.start_revision = current.revision + 1;
    if (!stream->watch(w)) continue;
    bool gone = false;
    while (!gone) {
      if (cancelled()) return canceled();
      auto resp = stream->next(poll_interval);
      if (!resp) continue;
      if (resp->compact_revision != 0) break;  // look again from the start
      for (const auto& ev : resp->events) {
        if (ev.type == mvcc::event_type::del) {
          gone = true;
          break;
        }
        if (!emit({ev.kv, resp->revision})) return grpc::Status::OK;
      }
    }
  }
}

}  // namespace cairn::v3rpc::recipes
