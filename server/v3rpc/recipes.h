// v3rpc/recipes.h: the lock and election recipes that etcd's v3lock and v3election services run
// on the server (etcd builds them from clientv3/concurrency), here directly over the node.
//
// Keys. A lock or an election `name` owns the prefix "name/"; each contender holds one key in it,
// "name/<lease id in lowercase hex>", attached to its lease. The contender whose key has the
// lowest create revision holds the lock (leads). Everyone else waits for the key created just
// before its own to be deleted (not for the holder's: no thundering herd), then looks again.
//
//   lock      put the key if it does not exist (else reuse it); wait for every older key to go;
//             then check that the own key still exists, because the lease may have expired while
//             waiting (etcd #11456: granting a lock whose key is gone lets two holders in).
//   campaign  the same, with the value; a contender that already had a key with another value
//             proclaims the new one first.
//   proclaim  put the new value if the key still has the create revision the leader won with.
//   resign    delete the key under the same guard.
//   leader    the key with the lowest create revision, if any.
//   observe   the leader's key and each new value it proclaims, then the next leader's, ...
//
// Waiting reads the node's watchable store (one watch stream per wait) and polls `cancelled`
// every 100 ms, so a waiter whose client went away stops within that time; lock and campaign
// then delete their key, as etcd's do. A lease of 0 means "a new lease of 60 s" (etcd's session
// default), which nobody keeps alive.
//
// Errors are grpc::Status values with code Unknown, as etcd sends them (its recipes run through
// its own client, and the services return that client's errors as plain errors): the KV errors'
// texts (etcd's table, e.g. "etcdserver: requested lease not found"), or the recipes' own,
// "mutex: session is expired", "election: not leader", "election: no leader", "election:
// session expired". Cancellation is Cancelled.
//
// Thread-safety: stateless; every function may run on any thread, blocking only the caller.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/expected.h"
#include "etcdserver/server.h"
#include "mvcc/kv.h"

namespace cairn::v3rpc::recipes {

// Polled while waiting; true when the caller no longer wants the answer.
using cancelled_fn = std::function<bool()>;

template <typename T>
using result = cairn::expected<T, grpc::Status>;

// The contender key of `lease` under `name`.
std::string contender_key(std::string_view name, std::int64_t lease);

struct held {
  std::string key;
  std::int64_t create_revision = 0;  // the key's create revision (LeaderKey.rev)
  std::int64_t lease = 0;
  std::int64_t revision = 0;  // the header's revision
};

result<held> lock(etcdserver::server& node, std::string_view name, std::int64_t lease,
                  const cancelled_fn& cancelled);
// Deletes `key`; returns the header's revision.
result<std::int64_t> unlock(etcdserver::server& node, std::string_view key);

result<held> campaign(etcdserver::server& node, std::string_view name, std::int64_t lease,
                      std::string_view value, const cancelled_fn& cancelled);
result<std::int64_t> proclaim(etcdserver::server& node, std::string_view key,
                              std::int64_t create_revision, std::int64_t lease,
                              std::string_view value);
result<std::int64_t> resign(etcdserver::server& node, std::string_view key,
                            std::int64_t create_revision);

struct leader_state {
  mvcc::key_value kv;
  std::int64_t revision = 0;  // the header's revision
};
result<leader_state> leader(etcdserver::server& node, std::string_view name);

// Calls `emit` with the current leader (waiting for one if there is none) and with each value
// it proclaims; when its key goes, moves on to the next leader. Returns when `emit` returns
// false, when cancelled, or on an error.
grpc::Status observe(etcdserver::server& node, std::string_view name,
                     const std::function<bool(const leader_state&)>& emit,
                     const cancelled_fn& cancelled);

}  // namespace cairn::v3rpc::recipes
