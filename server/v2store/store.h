// v2store/store.h: etcd's v2 key space (the store behind /v2/keys): a tree whose directories
// hold files and directories and whose files hold values; every change moves the store's index
// and is an event; TTLs on files and directories, expired by whoever drives
// delete_expired (the leader, through raft, so every member expires alike); watchers on a key
// or a subtree, answered from a history of the last 1000 events or by the next matching one.
//
// Semantics are etcd 3.4's v2store, rule for rule (the unit tests name the cases):
//   - paths are cleaned as Go's path.Clean("/" + p); "/" is read only (107);
//   - set replaces a file (prevNode in the answer) but never a directory (102); create refuses an
//     existing key (105); update needs one (100), and on a directory only moves its TTL; missing
//     parent directories are made on the way, with the new index; a file on the way is 104;
//   - unique create (POST) names the key by the new index, zero-padded to 20 digits;
//   - compareAndSwap / compareAndDelete compare value and/or modifiedIndex (an empty value or a 0
//     index means "any"), and fail with 101 and etcd's cause ("[old != new]");
//   - delete of a directory needs dir (102) and, if it has children, recursive (108); watchers
//     of every deleted node hear the delete;
//   - names starting with "_" are hidden: left out of listings and of recursive watches from
//     above, but readable and watchable by name;
//   - a refresh (refresh=true) moves a TTL without notifying watchers (the event still enters
//     the history, flagged);
//   - watch(since) answers from the history when an event at or after `since` matches, else
//     waits; an index older than the history is 401 with cause
//     "the requested history has been cleared [start/since]".
//
// JSON (to_json) is etcd's: event {"action","node","prevNode"}, node fields in NodeExtern's
// order (key, value, dir, expiration, ttl, nodes, modifiedIndex, createdIndex) with Go's
// omitempty, expiration as RFC 3339 with nanoseconds in UTC, ttl rounded up to whole seconds.
//
// Thread-safety: one mutex around everything; watchers are delivered to under it and must not
// block (they queue).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/expected.h"

namespace cairn::v2store {

using clock = std::chrono::system_clock;

// etcd's v2 error codes (v2error).
enum class ecode : int {
  key_not_found = 100,
  test_failed = 101,
  not_file = 102,
  not_dir = 104,
  node_exist = 105,
  root_read_only = 107,
  dir_not_empty = 108,
  unauthorized = 110,
  value_required = 200,
  prev_value_required = 201,
  ttl_nan = 202,
  index_nan = 203,
  invalid_field = 209,
  invalid_form = 210,
  refresh_value = 211,
  refresh_ttl_required = 212,
  raft_internal = 300,
  leader_elect = 301,
  watcher_cleared = 400,
  event_index_cleared = 401,
};

struct error {
  ecode code = ecode::key_not_found;
  std::string cause;
  std::uint64_t index = 0;
  std::string_view message() const;  // etcd's text for the code
  int http_status() const;           // etcd's status (400 unless listed)
  // {"errorCode":100,"message":"Key not found","cause":"/a","index":3}
  std::string json() const;
};

// A node as answers show it (etcd's NodeExtern).
struct node_view {
  std::string key;
  std::optional<std::string> value;  // files
  bool dir = false;
  std::optional<clock::time_point> expiration;
  std::int64_t ttl = 0;
  std::vector<node_view> nodes;  // directories, when listed
  std::uint64_t modified_index = 0;
  std::uint64_t created_index = 0;
};

struct event {
  std::string action;  // get set create update compareAndSwap delete compareAndDelete expire
  node_view node;
  std::optional<node_view> prev_node;
  std::uint64_t etcd_index = 0;  // the store's index when answered (X-Etcd-Index)
  bool refresh = false;
  std::uint64_t index() const { return node.modified_index; }
};

// Go's time.RFC3339Nano in UTC ("2026-12-04T20:40:00.123456789Z", trailing zeros of the
// fraction dropped), as etcd prints expirations and start times.
std::string rfc3339nano(clock::time_point t);

std::string to_json(const node_view& n);
std::string to_json(const event& e);

// When a node expires: nullopt for never; `refresh` moves only the TTL.
struct ttl_options {
  std::optional<clock::time_point> expire;
  bool refresh = false;
};

// Counters for /v2/stats/store (etcd's names).
struct stats {
  std::uint64_t get_success = 0, get_fail = 0;
  std::uint64_t set_success = 0, set_fail = 0;
  std::uint64_t delete_success = 0, delete_fail = 0;
  std::uint64_t update_success = 0, update_fail = 0;
  std::uint64_t create_success = 0, create_fail = 0;
  std::uint64_t cas_success = 0, cas_fail = 0;
  std::uint64_t cad_success = 0, cad_fail = 0;
  std::uint64_t expire_count = 0;
  std::uint64_t watchers = 0;
  std::string json() const;
};

// A watcher: events come in order; a non-stream watcher gets one and is done. `next` waits up
// to `timeout`; nullopt on timeout, or once removed (too slow, or the store dropped it).
class watcher {
 public:
  std::optional<event> next(std::chrono::milliseconds timeout);
  bool removed() const;
  std::uint64_t start_index() const { return start_index_; }

 private:
  friend class store;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<event> queue_;  // guarded by mu_
  bool removed_ = false;     // guarded by mu_
  bool recursive_ = false;
  bool stream_ = false;
  std::uint64_t since_ = 0;
  std::uint64_t delivered_ = 0;  // the last event's index: a delete reaches a watcher once
  std::uint64_t start_index_ = 0;
  std::string key_;
};

class store {
 public:
  static constexpr std::size_t history_size = 1000;
  static constexpr std::size_t watcher_queue = 100;  // events a slow watcher may lag

  // `now` is the clock TTLs are shown against (tests pass a fake one).
  explicit store(std::function<clock::time_point()> now = [] { return clock::now(); });
  ~store();

  std::uint64_t index() const;

  cairn::expected<event, error> get(const std::string& path, bool recursive, bool sorted);
  cairn::expected<event, error> set(const std::string& path, bool dir, const std::string& value,
                                    const ttl_options& ttl);
  cairn::expected<event, error> create(const std::string& path, bool dir, const std::string& value,
                                       bool unique, const ttl_options& ttl);
  cairn::expected<event, error> update(const std::string& path, const std::string& value,
                                       const ttl_options& ttl);
  cairn::expected<event, error> compare_and_swap(const std::string& path,
                                                 const std::string& prev_value,
                                                 std::uint64_t prev_index, const std::string& value,
                                                 const ttl_options& ttl);
  cairn::expected<event, error> remove(const std::string& path, bool dir, bool recursive);
  cairn::expected<event, error> compare_and_delete(const std::string& path,
                                                   const std::string& prev_value,
                                                   std::uint64_t prev_index);
  // since 0: from the next index.
  cairn::expected<std::shared_ptr<watcher>, error> watch(const std::string& key, bool recursive,
                                                         bool stream, std::uint64_t since);
  void unwatch(const std::shared_ptr<watcher>& w);
  // Expires every node whose time is at or before `cutoff` (etcd's DeleteExpiredKeys).
  void delete_expired(clock::time_point cutoff);
  // The earliest expiry time, if any node has a TTL.
  std::optional<clock::time_point> next_expiry() const;

  stats counters() const;

  // The whole tree and index (not the history or watchers), and back; recover drops watchers.
  std::string save() const;
  bool recover(std::string_view saved);

 private:
  struct node;
  using node_ptr = std::unique_ptr<node>;

  node* find(const std::string& path) const;                            // mu_ held
  cairn::expected<node*, error> lookup(const std::string& path) const;  // mu_ held
  // The file at `path` if its value and modified index match (empty / 0: any); else 100, 102
  // or 101 with etcd's cause. mu_ held.
  cairn::expected<node*, error> compared_file(const std::string& path,
                                              const std::string& prev_value,
                                              std::uint64_t prev_index) const;
  cairn::expected<event, error> create_locked(std::string path, bool dir, const std::string& value,
                                              bool unique, bool replace,
                                              std::optional<clock::time_point> expire,
                                              const char* action);
  cairn::expected<void, error> remove_node(node* n, bool dir, bool recursive, const event& e);
  node_view view(const node* n, bool recursive, bool sorted) const;
  void set_expiry(node* n, std::optional<clock::time_point> expire);
  void notify(event e, bool history_only = false);
  void notify_path(const event& e, const std::string& path, bool deleted);
  std::optional<event> scan_history(const std::string& key, bool recursive, std::uint64_t since,
                                    error* err) const;

  std::function<clock::time_point()> now_;
  mutable std::mutex mu_;
  node_ptr root_;
  std::uint64_t index_ = 0;
  std::multimap<clock::time_point, node*> expiry_;  // every node with a TTL
  std::deque<event> history_;
  std::map<std::string, std::list<std::shared_ptr<watcher>>> watchers_;
  stats stats_;
};

}  // namespace cairn::v2store
