// mvcc/kv.h: the values mvcc speaks in: revisions, key-values, events, and the requests and
// answers of Range, Put, DeleteRange, Txn and HashKV. Plain values (no locking); the gRPC layer
// converts between these and etcdserverpb/mvccpb messages.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cairn::mvcc {

// Expected failures. The gRPC layer maps them to etcd's strings (to_string gives the mvcc part).
enum class errc {
  compacted,        // etcdserver: mvcc: required revision has been compacted (OutOfRange)
  future_rev,       // etcdserver: mvcc: required revision is a future revision (OutOfRange)
  key_not_found,    // etcdserver: key not found (put with ignore_value/ignore_lease)
  lease_not_found,  // etcdserver: requested lease not found (put with an unknown lease)
  watch_id_exists,  // mvcc: duplicate watch ID provided on the WatchStream
  watch_not_found,  // mvcc: watcher does not exist
  closed,           // the watch stream was closed
};

std::string_view to_string(errc e);

// A point in the store's history: `main` counts write transactions (starting at 2 for the first
// write, as in etcd: an empty store is at revision 1), `sub` counts changes inside one.
struct revision {
  std::int64_t main = 0;
  std::int64_t sub = 0;
  friend constexpr auto operator<=>(const revision&, const revision&) = default;
};

struct key_value {
  std::string key;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::string value;
  std::int64_t lease = 0;
  friend bool operator==(const key_value&, const key_value&) = default;
};

enum class event_type { put, del };

struct event {
  event_type type = event_type::put;
  // put: the key after the write. del: only key and mod_revision (the delete's revision).
  key_value kv;
  std::optional<key_value> prev_kv;  // set for watchers that asked for it, if the key existed
  friend bool operator==(const event&, const event&) = default;
};

// A value-semantics box for the recursive txn types.
template <class T>
class box {
 public:
  box() : p_(std::make_unique<T>()) {}
  box(T v) : p_(std::make_unique<T>(std::move(v))) {}  // NOLINT: implicit by design
  box(const box& o) : p_(std::make_unique<T>(*o.p_)) {}
  box(box&&) noexcept = default;
  box& operator=(const box& o) {
    if (this != &o) p_ = std::make_unique<T>(*o.p_);
    return *this;
  }
  box& operator=(box&&) noexcept = default;
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  friend bool operator==(const box& a, const box& b) { return *a.p_ == *b.p_; }

 private:
  std::unique_ptr<T> p_;
};

// Key ranges follow etcd's API: `range_end` empty means the single key `key`; "\0" means every
// key >= `key`; otherwise [key, range_end).
enum class sort_order { none, ascend, descend };
enum class sort_target { key, version, create, mod, value };

struct range_request {
  std::string key;
  std::string range_end;
  std::int64_t limit = 0;     // 0: no limit
  std::int64_t revision = 0;  // <= 0: the current revision
  sort_order order = sort_order::none;
  sort_target target = sort_target::key;
  bool keys_only = false;
  bool count_only = false;
  std::int64_t min_mod_revision = 0;  // filters; 0: off
  std::int64_t max_mod_revision = 0;
  std::int64_t min_create_revision = 0;
  std::int64_t max_create_revision = 0;
  friend bool operator==(const range_request&, const range_request&) = default;
};

struct range_response {
  std::vector<key_value> kvs;
  bool more = false;          // keys were left out by `limit`
  std::int64_t count = 0;     // keys in the range at the revision, whatever limit and filters say
  std::int64_t revision = 0;  // the store's revision the answer was read at (header)
  friend bool operator==(const range_response&, const range_response&) = default;
};

struct put_request {
  std::string key;
  std::string value;
  std::int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;  // keep the current value (the key must exist)
  bool ignore_lease = false;  // keep the current lease (the key must exist)
  friend bool operator==(const put_request&, const put_request&) = default;
};

struct put_response {
  std::int64_t revision = 0;
  std::optional<key_value> prev_kv;
  friend bool operator==(const put_response&, const put_response&) = default;
};

struct delete_range_request {
  std::string key;
  std::string range_end;
  bool prev_kv = false;
  friend bool operator==(const delete_range_request&, const delete_range_request&) = default;
};

struct delete_range_response {
  std::int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
  std::int64_t revision = 0;
  friend bool operator==(const delete_range_response&, const delete_range_response&) = default;
};

enum class compare_target { version, create, mod, value, lease };
enum class compare_result { equal, greater, less, not_equal };

// Holds for every key in [key, range_end) (etcd's rules: a missing key compares as zeros,
// except that a VALUE compare on no key at all fails).
struct compare {
  std::string key;
  std::string range_end;
  compare_target target = compare_target::version;
  compare_result result = compare_result::equal;
  std::int64_t number = 0;  // version, create/mod revision or lease
  std::string value;        // for target value
  friend bool operator==(const compare&, const compare&) = default;
};

struct txn_request;
struct txn_response;

struct request_op {
  std::variant<range_request, put_request, delete_range_request, box<txn_request>> op;
  friend bool operator==(const request_op&, const request_op&) = default;
};

struct txn_request {
  std::vector<compare> compares;
  std::vector<request_op> success;
  std::vector<request_op> failure;
  friend bool operator==(const txn_request&, const txn_request&) = default;
};

struct response_op {
  std::variant<range_response, put_response, delete_range_response, box<txn_response>> op;
  friend bool operator==(const response_op&, const response_op&) = default;
};

struct txn_response {
  bool succeeded = false;
  std::vector<response_op> responses;
  std::int64_t revision = 0;
  friend bool operator==(const txn_response&, const txn_response&) = default;
};

struct hash_kv_result {
  std::uint32_t hash = 0;
  std::int64_t revision = 0;          // the store's current revision
  std::int64_t compact_revision = 0;  // the compaction the hash reflects
  std::int64_t hash_revision = 0;     // the revision hashed up to
  friend bool operator==(const hash_kv_result&, const hash_kv_result&) = default;
};

// The range end for "every key with this prefix" (etcd's GetPrefixRangeEnd): the prefix with its
// last byte below 0xff incremented and the rest cut; "\0" (every key) if there is none.
std::string prefix_range_end(std::string_view prefix);

// Whether a txn only reads: every operation of both branches is a range (etcd's isTxnReadonly;
// a nested txn counts as a write, as there). Such a txn is answered without raft.
bool is_read_only(const txn_request& r);

}  // namespace cairn::mvcc
