// lease/lessor.h: the lessor (etcd's lease.Lessor). Owns every lease: its id, granted TTL,
// checkpointed remaining TTL, expiry time and attached keys; the lease bucket of the backend
// (format at the top of lessor.cc); the expiry order; and the checkpoint schedule.
//
// It knows neither raft nor gRPC. The node drives it:
//   - the apply thread (the backend's writer) grants, revokes and checkpoints, as raft entries
//     say, and tells it how keys move between leases (mvcc::lease_hook, called by the store
//     inside the same write transaction). Those calls write the lease bucket in the open batch,
//     so a lease change commits together with the entry's consistent index;
//   - the leader's lease loop asks which leases have expired (`expired`) and which checkpoints
//     are due (`due_checkpoints`), and proposes revokes and checkpoints for them;
//   - gRPC threads renew (KeepAlive, primary only) and read (time_to_live, leases).
//
// Primary and expiry, as etcd: only the primary (the leader's lessor) has finite expiry times.
// A lessor starts as secondary (every lease lives for ever). `promote(extend)` gives every
// lease expiry = now + extend + (checkpointed remaining TTL, or the granted TTL if none); a new
// leader thus never revokes a lease before a client had a chance to renew it. `demote` makes
// every lease live for ever again. Promotion also spreads expiries so that no more than 3/4 of
// the revoke rate fall in one second (etcd does the same). A renewal sets expiry = now + TTL
// and forgets the checkpointed remaining TTL (the node proposes a checkpoint of 0 so followers
// and the disk forget it too, as etcd 3.5 does).
//
// Checkpoints (--experimental-enable-lease-checkpoint): the primary schedules, every
// `checkpoint_interval`, a checkpoint of each lease whose remaining TTL exceeds the interval;
// applying one records the remaining TTL (in memory; also in the lease bucket with
// --experimental-enable-lease-checkpoint-persist, etcd 3.5's LeaseCheckpointPersist). A lease
// that was checkpointed and then recovered (restart, or promotion of another member) counts down
// from the checkpointed remaining TTL instead of starting over at its full TTL.
//
// Time comes from an injectable clock (tests use a fake one). TTLs are whole seconds.
//
// Thread-safety: one mutex guards all state; it is a leaf lock (never held across a backend
// call or a call into another module), so any thread may call any method. Methods that write the
// backend must be called on the backend's writer thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "backend/backend.h"
#include "base/errors.h"
#include "base/expected.h"
#include "base/strong_id.h"
#include "mvcc/store.h"

namespace cairn::lease {

// A lease id as clients see it (etcdserverpb's int64). 0 is "no lease".
using lease_id = base::strong_id<struct lease_id_tag, std::int64_t>;

using clock = std::chrono::steady_clock;
using clock_fn = std::function<clock::time_point()>;

// etcd's MaxLeaseTTL.
inline constexpr std::int64_t max_ttl_seconds = 9000000000;

// etcd's minimum TTL for a given election timeout and heartbeat: 1.5 × the election timeout in
// whole ticks ((3 × election ticks) / 2 heartbeats), rounded up to a whole second.
std::int64_t min_ttl_seconds(std::chrono::milliseconds election,
                             std::chrono::milliseconds heartbeat);

struct lessor_config {
  std::int64_t min_ttl = 2;  // seconds; grants below it are raised to it (etcd's minLeaseTTL)
  bool checkpoint = false;   // LeaseCheckpoint
  bool checkpoint_persist = false;  // LeaseCheckpointPersist
  std::chrono::milliseconds checkpoint_interval{std::chrono::minutes(5)};
  // An expired lease is reported again if it was not revoked this long after it was reported
  // (etcd's expiredLeaseRetryInterval).
  std::chrono::milliseconds expired_retry{3000};
  // The node's revoke rate (etcd's leaseRevokeRate): promotion spreads expiries so that at most
  // three quarters of it fall in any one second.
  std::int64_t revoke_per_second = 1000;
  clock_fn now = [] { return clock::now(); };
};

struct lease_status {
  lease_id id;
  std::int64_t granted_ttl = 0;  // seconds
  // Seconds left, truncated as etcd does (int64 of a float). A secondary's leases never expire:
  // it answers etcd's value for that case, 9223372036 (MaxInt64 nanoseconds in seconds).
  std::int64_t ttl = 0;
  std::vector<std::string> keys;  // sorted; only when asked for
};

struct checkpoint {
  lease_id id;
  std::int64_t remaining_ttl = 0;  // seconds; 0 forgets the checkpointed value
  friend bool operator==(const checkpoint&, const checkpoint&) = default;
};

struct renew_result {
  std::int64_t ttl = 0;  // the granted TTL: the lease lives that long from now
  // The lease carried a checkpointed remaining TTL: propose checkpoint{id, 0} so every member
  // (and, with persistence, the disk) forgets it.
  bool clear_checkpoint = false;
};

class lessor final : public mvcc::lease_hook {
 public:
  // `be` may be null (no persistence; tests).
  lessor(backend::backend* be, lessor_config cfg);
  lessor(const lessor&) = delete;
  lessor& operator=(const lessor&) = delete;

  // Loads the lease bucket (at start-up, before anything else touches the lessor). Leases come
  // back as secondary (no expiry) with their TTL and persisted remaining TTL.
  void recover();

  // --- the writer thread (raft apply) ---
  // `ttl` below the minimum is raised to it. Errors: lease_not_found (id 0), lease_exist,
  // lease_ttl_too_large.
  cairn::expected<lease_status, base::errc> grant(lease_id id, std::int64_t ttl);
  // Forgets the lease and deletes it from the bucket. The caller deletes the attached keys
  // first (`keys`), in the same write transaction. Error: lease_not_found.
  cairn::expected<void, base::errc> revoke(lease_id id);
  // Records checkpointed remaining TTLs (unknown ids are skipped) and, on the primary,
  // schedules the next checkpoint of each.
  void apply_checkpoints(const std::vector<checkpoint>& cps);

  // mvcc::lease_hook (the store calls these on the writer thread).
  bool lease_exists(std::int64_t lease) override;
  void on_put(std::string_view key, std::int64_t lease) override;
  void on_delete(std::string_view key) override;

  // --- any thread ---
  // Primary only (not_leader otherwise). Errors: lease_not_found (unknown or already expired).
  cairn::expected<renew_result, base::errc> renew(lease_id id);
  std::optional<lease_status> time_to_live(lease_id id, bool with_keys) const;
  // Every lease, soonest expiry first (etcd's order; ties by id).
  std::vector<lease_id> leases() const;
  // The keys attached to `id`, sorted (empty if none or unknown).
  std::vector<std::string> keys(lease_id id) const;
  bool exists(lease_id id) const;

  void promote(std::chrono::milliseconds extend);
  void demote();
  bool is_primary() const;

  // Primary only: up to `limit` expired leases, each reported once per `expired_retry`.
  std::vector<lease_id> expired(std::size_t limit);
  // Primary with checkpoints on: up to `limit` checkpoints now due, with the remaining TTL
  // rounded up (etcd's math.Ceil).
  std::vector<checkpoint> due_checkpoints(std::size_t limit);

 private:
  struct entry {
    std::int64_t ttl = 0;
    std::int64_t remaining_ttl = 0;  // checkpointed; 0: none
    clock::time_point expiry = clock::time_point::max();
    clock::time_point reported{};  // last time `expired` reported it
    std::set<std::string> keys;
  };

  // The remaining TTL a refresh counts from (etcd's getRemainingTTL).
  static std::int64_t refresh_ttl(const entry& e) {
    return e.remaining_ttl > 0 ? e.remaining_ttl : e.ttl;
  }
  // Lock held.
  void set_expiry(lease_id id, entry& e, clock::time_point t);
  void schedule_checkpoint(lease_id id, const entry& e, clock::time_point now);
  void spread_expiries();
  void persist(lease_id id, std::int64_t ttl, std::int64_t remaining);

  backend::backend* be_;
  const lessor_config cfg_;

  mutable std::mutex mu_;
  std::map<lease_id, entry> leases_;                         // guarded by mu_
  absl::flat_hash_map<std::string, lease_id> key_lease_;     // guarded by mu_
  std::set<std::pair<clock::time_point, lease_id>> expiry_;  // guarded by mu_; finite only
  std::multimap<clock::time_point, lease_id> checkpoints_;   // guarded by mu_
  bool primary_ = false;                                     // guarded by mu_
};

// The lease bucket's codec (exposed for tests).
std::string encode_lease_key(lease_id id);
std::string encode_lease_value(std::int64_t ttl, std::int64_t remaining_ttl);
struct persisted_lease {
  lease_id id;
  std::int64_t ttl = 0;
  std::int64_t remaining_ttl = 0;
};
std::optional<persisted_lease> decode_lease(std::string_view key, std::string_view value);

}  // namespace cairn::lease
