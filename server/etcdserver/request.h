// etcdserver/request.h: the requests the node puts into raft entries, and their byte encoding.
// A request is what one client call asks the state machine to do (put, delete, txn, compact,
// alarm), tagged with an id that the wait registry uses to hand the apply result back to the
// caller. The encoding is specified at the top of request.cc; it is an internal format (the WAL
// and raft messages carry it), versioned by its first byte.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mvcc/kv.h"

namespace cairn::etcdserver {

// etcd's AlarmType numbers (etcdserverpb.AlarmType).
enum class alarm_type : std::uint8_t { none = 0, nospace = 1, corrupt = 2 };
// etcd's AlarmRequest.AlarmAction numbers.
enum class alarm_action : std::uint8_t { get = 0, activate = 1, deactivate = 2 };

struct alarm_member {
  std::uint64_t member_id = 0;
  alarm_type alarm = alarm_type::none;
  friend auto operator<=>(const alarm_member&, const alarm_member&) = default;
};

struct compact_request {
  std::int64_t revision = 0;
  bool physical = false;  // answer only once the compaction reached the disk
  friend bool operator==(const compact_request&, const compact_request&) = default;
};

struct alarm_request {
  alarm_action action = alarm_action::get;
  std::uint64_t member_id = 0;
  alarm_type alarm = alarm_type::none;
  friend bool operator==(const alarm_request&, const alarm_request&) = default;
};

// Leases (etcd's LeaseGrantRequest, LeaseRevokeRequest, LeaseCheckpointRequest). The grant's
// id is chosen before proposing (never 0 here), so every member applies the same lease.
struct lease_grant_request {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds
  friend bool operator==(const lease_grant_request&, const lease_grant_request&) = default;
};

struct lease_revoke_request {
  std::int64_t id = 0;
  friend bool operator==(const lease_revoke_request&, const lease_revoke_request&) = default;
};

struct lease_checkpoint {
  std::int64_t id = 0;
  std::int64_t remaining_ttl = 0;  // seconds; 0 forgets the checkpointed value
  friend bool operator==(const lease_checkpoint&, const lease_checkpoint&) = default;
};

struct lease_checkpoint_request {
  std::vector<lease_checkpoint> checkpoints;
  friend bool operator==(const lease_checkpoint_request&,
                         const lease_checkpoint_request&) = default;
};

// A member's attributes as it publishes them when it starts (etcd's attributes: the name and
// the client URLs); applied to the members bucket.
struct member_attributes_request {
  std::uint64_t member_id = 0;
  std::string name;
  std::vector<std::string> client_urls;
  friend bool operator==(const member_attributes_request&,
                         const member_attributes_request&) = default;
};

// etcd's auth requests (InternalRaftRequest's Auth* fields and InternalAuthenticateRequest).
// Passwords arrive as bcrypt hashes (hashed by the API layer), never in clear.
enum class auth_op : std::uint8_t {
  enable,
  disable,
  user_add,                // name, secret = hash, no_password
  user_delete,             // name
  user_change_password,    // name, secret = hash
  user_grant_role,         // name, role
  user_revoke_role,        // name, role
  role_add,                // name
  role_delete,             // name
  role_grant_permission,   // name, perm_type, key, range_end
  role_revoke_permission,  // name, key, range_end
  authenticate,            // name, secret = the token to assign
};
struct auth_request {
  auth_op op = auth_op::enable;
  std::string name;
  std::string role;
  std::string secret;
  bool no_password = false;
  std::uint8_t perm_type = 0;  // authpb.Permission.Type
  std::string key;
  std::string range_end;
  friend bool operator==(const auth_request&, const auth_request&) = default;
};

// etcd's v2 Request as applied (apply_v2.go): PUT (set, create with prev_exist=false, update or
// compareAndSwap with prev_exist=true / prev_value / prev_index), POST (in-order create),
// DELETE (or compareAndDelete), QGET (a quorum read), SYNC (expire TTLs up to `time`).
// Expiration is absolute (Unix nanoseconds), fixed by the member that took the request.
struct v2_request {
  std::string method;
  std::string path;
  std::string value;
  bool dir = false;
  std::optional<bool> prev_exist;
  std::string prev_value;
  std::uint64_t prev_index = 0;
  bool recursive = false;
  bool sorted = false;
  bool refresh = false;
  std::int64_t expiration = 0;  // 0: no TTL
  std::int64_t time = 0;        // SYNC
  friend bool operator==(const v2_request&, const v2_request&) = default;
};

struct request {
  std::uint64_t id = 0;
  // New kinds go at the end: the kind byte on disk is the alternative's position + 1.
  std::variant<mvcc::put_request, mvcc::delete_range_request, mvcc::txn_request, compact_request,
               alarm_request, lease_grant_request, lease_revoke_request, lease_checkpoint_request,
               member_attributes_request, auth_request, v2_request>
      op;
  // Who asked (etcd's RequestHeader.Username / AuthRevision): the apply checks permissions as
  // this user at this auth revision. 0: an internal request, never checked.
  std::string user;
  std::uint64_t auth_revision = 0;
  friend bool operator==(const request&, const request&) = default;
};

std::string encode_request(const request& r);
// nullopt when the bytes are not a request this version writes.
std::optional<request> decode_request(std::string_view bytes);

// True when the txn (on either branch, nested txns included) writes: a put or a delete.
bool txn_has_writes(const mvcc::txn_request& t);
// etcd's quota cost of a write (quota.go: 256 + key + value per put; a txn costs its larger
// branch; deletes and reads cost nothing). Unlike etcd, whose costTxnReq looks only at the
// top-level puts, puts inside nested txns count too.
std::int64_t quota_cost(const mvcc::put_request& p);
std::int64_t quota_cost(const mvcc::txn_request& t);

}  // namespace cairn::etcdserver
