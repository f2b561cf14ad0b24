// etcdserver/server.h: the node. Owns the data directory (<data-dir>/member/{wal,snap,db} and a
// format-version file), the raft node, the WAL and snapshot files, the backend, the mvcc store
// and the watchable store, and the two threads that move requests through them:
//
//   raft loop:  ticks every heartbeat; takes proposals, reads and peer messages from one queue;
//               for each Ready: WAL save (one fdatasync per Ready, however many proposals it
//               carries: group commit), then send messages, then hand committed entries to the
//               apply thread, then resolve ReadIndex answers, then advance. Also saves raft
//               snapshots, releases WAL segments and compacts the in-memory raft log.
//   apply:      the backend's writer thread. Applies committed entries in order, exactly once
//               (entries at or below the backend's consistent index are skipped), answers the
//               waiting caller through the wait registry, runs compaction steps and batch
//               commits, and every `snapshot_count` entries syncs the backend and asks the raft
//               loop for a snapshot.
//
// Callers (the gRPC services) use the request functions below from any thread; each blocks until
// the request is applied, fails, or times out (`request_timeout`). Errors are base::errc values
// with etcd's messages.
//
// Identity: a new member's id is FNV-1a-64 of "name\0initial_cluster\0token" and the cluster id
// FNV-1a-64 of the member id bytes (big-endian) followed by the token (etcd also hashes URLs and
// token; only the determinism matters here). Both are written in the WAL metadata and read back
// on restart, so changing the flags later does not change the ids.
//
// Single member for now: membership comes from the bootstrap snapshot; messages for other
// members go to the `transport` interface (clustering is a later step).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "auth/store.h"
#include "backend/backend.h"
#include "base/errors.h"
#include "base/expected.h"
#include "base/file.h"
#include "base/stats.h"
#include "etcdserver/compactor.h"
#include "etcdserver/membership.h"
#include "etcdserver/request.h"
#include "lease/lessor.h"
#include "mvcc/kv.h"
#include "mvcc/store.h"
#include "mvcc/watchable_store.h"
#include "raft/raw_node.h"
#include "raftpb/raft.pb.h"
#include "v2store/store.h"

namespace cairn::snap {
class snapshotter;
}
namespace cairn::wal {
class wal;
}

namespace cairn::raftpb {
class MemberRecord;
}  // namespace cairn::raftpb

namespace cairn::etcdserver {

// What a member answers to a corruption check's HashKV.
struct peer_hash {
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;  // its current revision
  std::uint32_t hash = 0;
  std::int64_t compact_revision = 0;
};

// Where raft messages for other members go. Called on the raft loop thread, after the entries
// and hard state they depend on are durable; must not block for long.
class transport {
 public:
  virtual ~transport() = default;
  virtual void send(std::vector<raftpb::Message> msgs) = 0;
  // Renews a lease on the leader (a follower's KeepAlive forwards there). Blocks up to the
  // request timeout; any thread.
  virtual cairn::expected<std::int64_t, base::errc> lease_renew(std::uint64_t leader,
                                                                std::int64_t id) = 0;
  // Asks the leader's lessor for a lease's time to live (nullopt: no such lease). Blocks up to
  // the request timeout; any thread.
  virtual cairn::expected<std::optional<lease::lease_status>, base::errc> lease_time_to_live(
      std::uint64_t leader, std::int64_t id, bool keys) = 0;
  // A member's HashKV at `rev` (0: its current revision), for the corruption checks. Blocks up
  // to the request timeout; any thread.
  virtual cairn::expected<peer_hash, base::errc> hash_kv(std::uint64_t peer, std::int64_t rev) = 0;
  // When a stream to `peer` last became active; nullopt while it is not (etcd's ActiveSince).
  virtual std::optional<std::chrono::steady_clock::time_point> active_since(std::uint64_t peer) = 0;
  // Asks the leader to promote a learner (only it knows whether the learner is in sync).
  virtual cairn::expected<void, base::errc> promote_on_leader(std::uint64_t leader,
                                                              std::uint64_t id) = 0;
};

struct server_config {
  std::string name = "default";
  std::string data_dir;
  // "name=url,..." as --initial-cluster gives it (empty: this member alone, on
  // advertise_peer_urls). A new data directory bootstraps a cluster of these members, with
  // etcd's member and cluster ids (membership.h).
  std::string initial_cluster;
  std::string initial_cluster_token = "etcd-cluster";
  // --initial-advertise-peer-urls and --advertise-client-urls of this member. When given, the
  // first must be this member's URLs in initial_cluster; the second is published to the
  // cluster when the member starts.
  std::vector<std::string> advertise_peer_urls;
  std::vector<std::string> advertise_client_urls;
  // --initial-cluster-state=existing on a new data directory: the cluster as its members told it
  // (the caller asked them); this member joins it instead of bootstrapping a new one.
  struct existing_cluster {
    std::uint64_t cluster_id = 0;
    std::vector<member> members;
  };
  std::optional<existing_cluster> join;
  std::chrono::milliseconds heartbeat{100};
  std::chrono::milliseconds election{1000};
  std::uint64_t snapshot_count = 100000;
  // Raft entries kept in memory behind a snapshot for slow followers (etcd: 5000).
  std::uint64_t snapshot_catch_up_entries = 5000;
  std::uint64_t quota_bytes = std::uint64_t{2} << 30;
  // A request whose encoding is larger is refused (etcd: --max-request-bytes, 1.5 MiB).
  std::uint64_t max_request_bytes = 1572864;
  // Committed but unapplied entries beyond which new requests are refused (etcd: 5000).
  std::uint64_t max_pending_applies = 5000;
  // 0: 5 s + 2 × election, as etcd.
  std::chrono::milliseconds request_timeout{0};
  bool strict_reconfig_check = true;  // --strict-reconfig-check
  std::optional<compactor_options> auto_compaction;
  // WAL and snapshot files go through this (tests put a sim_file_system here); the LMDB file is
  // always a real file under data_dir. nullptr: the real file system.
  base::file_system* fs = nullptr;
  std::uint64_t wal_segment_size = 64 * 1024 * 1024;
  // Backend batching (tests lengthen it to keep writes in the open batch).
  std::chrono::milliseconds backend_batch_interval{100};
  std::uint32_t backend_batch_limit = 10000;
  transport* peers = nullptr;
  // Leases: --experimental-enable-lease-checkpoint[-persist] (LeaseCheckpoint[Persist]) and the
  // checkpoint interval (etcd: 5 min); the lease loop's period (etcd: 500 ms) and the revoke
  // rate (etcd: 1000 a second, half of it per 500 ms round).
  bool lease_checkpoint = false;
  bool lease_checkpoint_persist = false;
  std::chrono::milliseconds lease_checkpoint_interval{std::chrono::minutes(5)};
  // bcrypt slots, token TTL (--auth-token-ttl).
  auth::store_options auth;
  std::chrono::milliseconds lease_loop_interval{500};
  std::uint32_t lease_revoke_rate = 1000;
  // --experimental-initial-corrupt-check: a restarted member compares its HashKV with its
  // peers' before it serves (check_initial_hash_kv). --experimental-corrupt-check-time: the
  // leader's period for the cluster-wide check (0: off).
  bool initial_corrupt_check = false;
  std::chrono::milliseconds corrupt_check_interval{0};
};

// What the node counts for the metrics (etcd_server_*, etcd_disk_*), read at scrape time.
struct server_stats {
  base::disk_stats disk;  // handed to the WAL and the backend
  base::counter leader_changes{0};
  std::atomic<std::int64_t> proposals_pending{0};
  base::counter proposals_failed{0};
  base::counter slow_applies{0};  // entries whose apply took over 100 ms
  base::counter read_indexes_failed{0};
  base::counter slow_read_indexes{0};  // ReadIndex rounds that timed out (etcd: slow)
  base::counter heartbeat_send_failures{0};
  // Raft append messages received and sent (etcd's v2 /v2/stats/self counters).
  base::counter recv_append_requests{0};
  base::counter send_append_requests{0};
};

struct lease_grant_result {
  std::int64_t id = 0;
  std::int64_t ttl = 0;
  std::int64_t revision = 0;  // the store's revision when applied (header)
};

struct server_error {
  std::string message;
};

struct compact_response {
  std::int64_t revision = 0;  // the store's revision when applied (header)
};

struct status_info {
  std::uint64_t member_id = 0;
  std::uint64_t cluster_id = 0;
  std::uint64_t leader = 0;
  std::uint64_t raft_index = 0;  // last log index
  std::uint64_t raft_term = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t db_size = 0;
  std::uint64_t db_size_in_use = 0;
  std::int64_t revision = 0;
  std::vector<alarm_member> alarms;
};

// The backend hash (Maintenance.Hash): CRC-32C (base/crc32c.h, seed 0) over this byte stream,
// built from the committed backend:
//   for each bucket, in ascending byte order of its name:
//     u32 length of the name, the name;
//     for each key in ascending byte order, except meta's `consistent_index` and `term` (they
//     differ between members holding the same data, as in etcd's hash):
//       u32 length of the key, the key, u32 length of the value, the value;
//     u32 0xffffffff (no key is that long: it ends the bucket);
// every u32 big-endian. The lengths make the stream decodable, so different contents give
// different streams (and, but for CRC collisions, different hashes). etcd hashes its bbolt file
// the same way in spirit (CRC-32C over bucket names, keys and values, no lengths), so the numbers
// of the two servers never match; they only compare Cairn members with each other.
struct backend_hash {
  std::uint32_t hash = 0;
  std::int64_t revision = 0;  // the store's revision at the hashed commit
};

// A consistent copy of the backend for Maintenance.Snapshot.
struct db_snapshot {
  std::unique_ptr<backend::snapshot_file> file;
  // Every write up to this revision is in the copy (writes applied while the copy started may
  // be too).
  std::int64_t revision = 0;
};

// The permissions a txn needs as `who` (etcd's checkTxnAuth, nested txns included): read on
// every compare and range, write on every put and delete, read too for prev_kv.
cairn::expected<void, base::errc> check_txn_auth(const auth::store& st, const auth::auth_info& who,
                                                 const mvcc::txn_request& t);

class server {
 public:
  // Opens or creates the data directory, recovers (snapshot + WAL replay), starts the threads
  // and, for a single-member cluster, waits until this member leads.
  static cairn::expected<std::unique_ptr<server>, server_error> start(server_config cfg);
  // Opens or creates the data directory and recovers, but starts no thread: for tools that
  // prepare a data directory (snapshot restore) or read one. Only the status accessors are
  // meaningful on it.
  static cairn::expected<std::unique_ptr<server>, server_error> open_stopped(server_config cfg);
  // Starts the threads of a member opened with open_stopped (start = open_stopped + launch);
  // between the two, a caller attaches the transport and runs check_initial_hash_kv.
  cairn::expected<void, server_error> launch();
  // etcd's CheckInitialHashKV, for a member whose data directory existed before this start
  // (a new member has nothing to compare; this returns at once): its HashKV at its current
  // revision beside each peer's at the same revision. A peer with the same compact revision
  // and another hash is an inconsistency: the error "<id> found data inconsistency with
  // peers", and the member must not serve. A peer behind, compacted past it, or unreachable
  // is logged and skipped. Before launch only.
  cairn::expected<void, server_error> check_initial_hash_kv();
  // One round of etcd's periodic check (checkHashKV), on the leader: this member's HashKV,
  // each peer's at the same revision, a ReadIndex round, this member's again. Raises CORRUPT
  // (through raft) for this member if its own hash moved without a write, or for the first peer
  // that is ahead of it, compacted further, or hashes the same compaction differently. Returns
  // the member alarmed, if any.
  std::optional<std::uint64_t> check_hash_kv();
  // Stops the threads, commits the backend and closes the WAL.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint64_t member_id() const { return member_id_; }
  std::uint64_t cluster_id() const { return cluster_id_; }
  std::uint64_t term() const { return term_.load(); }
  std::uint64_t leader() const { return leader_.load(); }
  // Whether the membership has this member as a learner (false before it knows itself).
  bool is_learner() const { return members_.is_learner(member_id_); }
  std::uint64_t applied_index() const { return applied_.load(); }
  // True while the WAL or the db cannot take writes (proposals answer NOSPACE's error).
  bool disk_full() const { return disk_full_.load() || db_full_.load(); }
  std::uint64_t committed_index() const { return committed_.load(); }

  // --- requests, any thread ---
  // Linearizable unless `serializable`: one ReadIndex round through raft, then a local read
  // once the applied index has caught up.
  //
  // Every request takes `who`: the caller as the auth store knows it (v3rpc::caller). A
  // default auth_info (revision 0) is an internal caller and is never checked; any other is
  // checked as etcd does: reads here, writes when applied (with the auth revision it carries).
  cairn::expected<mvcc::range_response, base::errc> range(const mvcc::range_request& r,
                                                          bool serializable = false,
                                                          const auth::auth_info& who = {});
  cairn::expected<mvcc::put_response, base::errc> put(const mvcc::put_request& r,
                                                      const auth::auth_info& who = {});
  cairn::expected<mvcc::delete_range_response, base::errc> delete_range(
      const mvcc::delete_range_request& r, const auth::auth_info& who = {});
  // Calls `ready` once this member may serve a linearizable read: a ReadIndex round confirmed
  // the read point and the apply thread has reached it (or with why not: no leader, leader
  // changed, timeout, stopped). Called from the raft loop or the apply thread: it must be quick
  // (hand the read itself to another thread).
  void read_index_async(std::function<void(cairn::expected<void, base::errc>)> ready);
  // A read-only txn (mvcc::is_read_only) is read like a range: after a ReadIndex round unless
  // `serializable` (every range in it serializable), without raft. Others go through raft.
  cairn::expected<mvcc::txn_response, base::errc> txn(const mvcc::txn_request& r,
                                                      bool serializable = false,
                                                      const auth::auth_info& who = {});
  cairn::expected<compact_response, base::errc> compact(std::int64_t revision, bool physical);

  // The same writes without a thread waiting: `done` is called once, with the outcome, on
  // whichever thread learns it (the apply thread, the raft loop for a refused proposal or a
  // timeout, or the caller's for a check that fails at once). It must be quick and never block:
  // the gRPC services finish their reactor there.
  template <typename T>
  using callback = std::function<void(cairn::expected<T, base::errc>)>;
  void put_async(const mvcc::put_request& r, callback<mvcc::put_response> done,
                 const auth::auth_info& who = {});
  void delete_range_async(const mvcc::delete_range_request& r,
                          callback<mvcc::delete_range_response> done,
                          const auth::auth_info& who = {});
  // A txn with writes (mvcc::is_read_only false); read-only txns go through txn().
  void txn_async(const mvcc::txn_request& r, callback<mvcc::txn_response> done,
                 const auth::auth_info& who = {});
  // Alarm get/activate/deactivate, through raft; answers the alarms it concerns (get: all).
  cairn::expected<std::vector<alarm_member>, base::errc> alarm(const alarm_request& r);
  std::vector<alarm_member> alarms() const;
  status_info status();
  // Rewrites the db compactly (backend::defrag) on the apply thread; allowed under NOSPACE.
  // Blocks writes while it runs.
  cairn::expected<void, server_error> defrag();
  // Commits the open batch on the apply thread, then hashes the committed backend as of that
  // commit (format above) on the caller's thread; writes go on meanwhile.
  cairn::expected<backend_hash, base::errc> hash();
  // Commits the open batch on the apply thread, then copies the backend into an unnamed file
  // (backend::snapshot_to_file) on the caller's thread; writes go on meanwhile.
  cairn::expected<db_snapshot, server_error> snapshot();

  // Leases. Grant, revoke and checkpoints go through raft; renew (KeepAlive) runs on the leader's
  // lessor (not_leader elsewhere); time-to-live and the list read the local lessor.
  // `id` 0: the server picks one. Returns the store's revision after the revoke (header).
  cairn::expected<lease_grant_result, base::errc> lease_grant(std::int64_t id, std::int64_t ttl);
  cairn::expected<std::int64_t, base::errc> lease_revoke(std::int64_t id,
                                                         const auth::auth_info& who = {});
  cairn::expected<std::int64_t, base::errc> lease_renew(std::int64_t id);
  // The local lessor's view (on a follower, leases never expire: etcd's 9223372036 s).
  std::optional<lease::lease_status> lease_time_to_live(std::int64_t id, bool keys) const;
  // What LeaseTimeToLive answers: the leader's lessor, asked over the peer URL from a follower
  // as etcd does (no_leader without one).
  cairn::expected<std::optional<lease::lease_status>, base::errc> leader_lease_time_to_live(
      std::int64_t id, bool keys) const;
  std::vector<std::int64_t> lease_ids() const;
  lease::lessor& lessor() { return *lessor_; }

  // A raft message from a peer (the transport calls this).
  void step(raftpb::Message m);

  const server_stats& stats() const { return stats_; }
  const membership& members() const { return members_; }

  // Membership changes (etcd's AddMember, RemoveMember, UpdateMember, PromoteMember): checked
  // as etcd does (--strict-reconfig-check: enough started members, a healthy cluster), then
  // proposed as raft conf changes; each answers the membership after the change. Any thread.
  struct member_added {
    member added;
    std::vector<member> members;
  };
  cairn::expected<member_added, base::errc> add_member(std::vector<std::string> peer_urls,
                                                       bool learner);
  cairn::expected<std::vector<member>, base::errc> remove_member(std::uint64_t id);
  cairn::expected<std::vector<member>, base::errc> update_member(
      std::uint64_t id, std::vector<std::string> peer_urls);
  // Promotes on this member if it leads, else asks the leader (promote_on_leader).
  cairn::expected<std::vector<member>, base::errc> promote_member(std::uint64_t id);
  // The leader's part of a promotion: the learner must be in sync (90% of the leader's match).
  cairn::expected<std::vector<member>, base::errc> promote_member_here(std::uint64_t id);
  // Hands leadership to `target` (a voter) and waits until it leads (etcd's MoveLeader), up to
  // the request timeout.
  cairn::expected<void, base::errc> move_leader(std::uint64_t target);
  // True once this member has been removed from the cluster (it must stop, as etcd's does).
  bool removed() const { return removed_.load(); }
  void mark_removed();
  // The raft transport tells the node that a peer could not be reached.
  void report_unreachable(std::uint64_t peer);
  // ... and how sending it a snapshot ended.
  void report_snapshot(std::uint64_t peer, bool ok);

  // Snapshots to followers (etcd's merged snapshot message): `m` is raft's MSG_SNAP; the answer
  // carries a copy of the db and the message with the metadata of what the copy holds (the
  // applied index and term, the membership then). Blocks the apply thread for the copy.
  struct outgoing_snapshot {
    raftpb::Message msg;
    std::unique_ptr<backend::snapshot_file> db;
  };
  cairn::expected<outgoing_snapshot, std::string> snapshot_for(raftpb::Message m);
  // Where the transport puts a received snapshot's db before stepping its message (etcd's
  // <index>.snap.db); the apply thread installs it from there.
  std::string received_snapshot_path(std::uint64_t index) const;
  std::uint64_t quota_bytes() const { return cfg_.quota_bytes; }

  mvcc::store& store() { return *store_; }
  auth::store& auth() { return *auth_; }
  // The v2 key space: read and watched locally; changed only through v2().
  v2store::store& v2() { return *v2_; }
  // A v2 change (or a quorum read) through raft; raft trouble answers etcd's 300/301 errors.
  cairn::expected<v2store::event, v2store::error> v2(const v2_request& r);
  // An auth change through raft (admin rights checked when applied, as `who`). Answers the
  // token for authenticate (the request's secret + "." + the entry's index), else "".
  cairn::expected<std::string, base::errc> auth_change(auth_request r,
                                                       const auth::auth_info& who = {});
  mvcc::watchable_store& watchable() { return *watchable_; }
  backend::backend& backend() { return *backend_; }

  // --- tests ---
  // Stops the threads without committing the backend's open batch, as a process crash would
  // leave the db (the WAL keeps what it synced; crash the file layer afterwards).
  void simulate_crash();
  // Holds the apply thread before its next entry until resumed (to build an apply backlog).
  void pause_apply(bool paused);
  std::uint64_t snapshot_index() const { return snapshot_index_.load(); }

 private:
  struct apply_result;
  struct waiter;
  struct read_waiter;
  struct applied_waiter;
  struct loop_input;

  explicit server(server_config cfg);
  cairn::expected<void, server_error> open();
  cairn::expected<apply_result, base::errc> propose(request r);
  // etcd's authApplierV3: the permissions a write needs, as the request's user at its auth
  // revision (internal requests, auth revision 0, pass).
  cairn::expected<void, base::errc> check_apply_auth(const request& r) const;
  apply_result apply_auth(const request& r, const auth_request& a);
  apply_result apply_v2(const v2_request& v);
  // The v2 store from the db's meta bucket (empty if none), after open and snapshot installs.
  void load_v2();
  void propose_async(request r, std::function<void(apply_result)> done);
  // Registers a waiter for `id` (answered with `stopped` if the server stopped) and queues `in`
  // for the raft loop.
  void submit(std::uint64_t id, loop_input in, std::function<void(apply_result)> done);
  // Removes and returns the waiter of `id`, if any.
  std::shared_ptr<waiter> take_waiter(std::uint64_t id);
  // Apply thread: the applied index and term move, and whoever waits for them hears it.
  void publish_applied(std::uint64_t index, std::uint64_t term);
  // Raft loop, every tick: fails the waiters whose request timeout has passed.
  void expire_waiters();
  void expire_reads();
  // Apply thread, after each batch: linearizable reads whose index is now applied.
  void release_applied_waiters();
  // Proposes without waiting for (or hearing of) the outcome: the lease loop's revokes and
  // checkpoints, which it retries if they never apply.
  void propose_no_wait(request r);
  void lease_loop();
  // Every corrupt_check_interval, while this member leads: check_hash_kv.
  void corrupt_check_loop();
  std::thread corrupt_thread_;
  bool restarted_ = false;  // open() found an existing data directory
  // After a ReadIndex round: whether this member still leads (etcd's ensureLeadership).
  bool still_leads();
  void restore_lease_keys();
  cairn::expected<void, base::errc> wait_read_index();
  cairn::expected<void, base::errc> check_quota(std::int64_t cost);
  void raft_loop();
  void handle_ready();
  // Saves the Ready's entries and hard state; when the WAL refuses them without harm (a full
  // disk), refuses proposals and tries again every 100 ms. False: stopping before it went in.
  bool save_or_wait_for_disk(std::span<const raftpb::Entry> entries);

  void take_snapshot(std::uint64_t index, std::uint64_t term, raftpb::ConfState conf);
  // Apply thread: replaces the backend's contents with a snapshot's db received from the leader.
  void install_snapshot(const raftpb::Snapshot& snap);
  void apply_loop();
  void apply_entry(const raftpb::Entry& e);
  apply_result apply_request(const request& r);
  void load_alarms();
  // Runs `fn` on the apply thread (the backend's writer) between two entries and waits for it;
  // false if the server stopped first.
  bool run_on_writer(std::function<void()> fn);
  void shutdown(bool crash);

  server_config cfg_;
  server_stats stats_;
  membership members_;
  // Publishes this member's name and client URLs through raft, retrying until it succeeds.
  void publish_attributes();
  std::thread publisher_;
  // --initial-cluster read into members with etcd's ids; checked against this member's name
  // and advertised peer URLs with etcd's errors.
  cairn::expected<std::vector<member>, std::string> initial_members() const;
  std::vector<member> bootstrap_members_;  // a new data directory's members (open() only)
  base::file_system* fs_;
  std::uint64_t member_id_ = 0;
  std::uint64_t cluster_id_ = 0;

  std::unique_ptr<wal::wal> wal_;
  std::unique_ptr<snap::snapshotter> snapshotter_;
  // Declared before backend_ so that it outlives it: the backend's last commit may still run
  // the hook that saves it.
  std::unique_ptr<v2store::store> v2_;
  std::atomic<bool> v2_dirty_{false};
  std::unique_ptr<backend::backend> backend_;
  std::unique_ptr<mvcc::store> store_;
  std::unique_ptr<mvcc::watchable_store> watchable_;
  raft::memory_storage storage_;
  std::unique_ptr<raft::raw_node> node_;
  raftpb::HardState hard_state_;
  raftpb::ConfState conf_;  // apply thread writes (conf changes, installs); guarded by conf_mu_
  mutable std::mutex conf_mu_;
  std::unique_ptr<compactor> compactor_;
  std::unique_ptr<lease::lessor> lessor_;
  std::unique_ptr<auth::store> auth_;
  std::atomic<std::uint64_t> lease_counter_{0};
  // The lease loop (leader: expired leases → revokes, due checkpoints → checkpoint proposals).
  std::mutex lease_mu_;
  std::condition_variable lease_cv_;
  bool stop_lease_ = false;  // guarded by lease_mu_
  std::thread lease_thread_;
  bool lessor_primary_ = false;  // raft thread: whether the lessor was last promoted

  std::atomic<std::uint64_t> term_{0};
  std::atomic<std::uint64_t> leader_{0};
  std::atomic<std::uint64_t> committed_{0};
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> last_index_{0};
  std::atomic<std::uint64_t> snapshot_index_{0};
  std::atomic<std::uint64_t> next_id_{0};
  std::atomic<bool> removed_{false};
  // The WAL could not take a Ready (a full disk): proposals are refused until it does.
  std::atomic<bool> disk_full_{false};
  // A db commit failed (a full disk, a failed write): the apply thread tries it again every
  // 100 ms and proposals are refused until it goes in.
  std::atomic<bool> db_full_{false};
  bool strict_reconfig_check() const { return cfg_.strict_reconfig_check; }
  cairn::expected<std::vector<member>, base::errc> configure(raftpb::ConfChange cc);
  // Apply thread: a committed conf change (replay: only raft's configuration, not the bucket).
  void apply_conf_change(const raftpb::Entry& e, bool replay);
  std::optional<base::errc> validate_conf_change(const raftpb::ConfChange& cc,
                                                 const raftpb::MemberRecord& ctx,
                                                 const std::optional<member>& existing) const;
  // Runs `fn` on the raft thread (the node's owner) and waits for it; false if stopped.
  bool run_on_raft(std::function<void(raft::raw_node&)> fn);

  // Raft loop input.
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  std::deque<loop_input> inbox_;  // guarded by loop_mu_
  bool stop_loop_ = false;        // guarded by loop_mu_
  std::thread raft_thread_;
  // ReadIndex rounds in flight: context → the readers it answers (raft thread only).
  std::map<std::string, std::vector<std::shared_ptr<read_waiter>>> reads_;
  std::uint64_t next_read_ = 0;

  // Apply input.
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  // Committed entries in order; a batch may instead carry a snapshot from the leader to install.
  struct apply_batch {
    std::vector<raftpb::Entry> entries;
    std::optional<raftpb::Snapshot> install;
  };
  std::deque<apply_batch> apply_queue_;  // guarded by apply_mu_
  bool stop_apply_ = false;              // guarded by apply_mu_
  bool apply_paused_ = false;            // guarded by apply_mu_
  bool crash_ = false;                   // guarded by apply_mu_
  // Work for the writer thread (defrag); called with false when it will never run (crash).
  std::deque<std::function<void(bool)>> tasks_;  // guarded by apply_mu_
  std::thread apply_thread_;
  std::uint64_t applied_term_ = 0;  // apply thread
  // apply thread: when the running compaction was scheduled (for its "finished" log line)
  std::optional<std::chrono::steady_clock::time_point> compaction_started_;
  std::uint64_t last_snapshot_ = 0;  // apply thread: index of the last snapshot asked for

  // Applied-index watchers (linearizable reads).
  std::mutex applied_mu_;
  std::condition_variable applied_cv_;
  // Reads waiting for the applied index, by the index they need; guarded by applied_mu_.
  std::multimap<std::uint64_t, applied_waiter> applied_waiters_;

  // Wait registry: request id → the caller waiting for its result.
  std::mutex wait_mu_;
  std::map<std::uint64_t, std::shared_ptr<waiter>> waiters_;  // guarded by wait_mu_

  mutable std::mutex alarm_mu_;
  std::set<alarm_member> alarms_;  // guarded by alarm_mu_; written by the apply thread

  bool stopped_ = false;  // guarded by wait_mu_
};

}  // namespace cairn::etcdserver
