// mvcc/store.h: the multi-version key-value store over the backend (etcd's mvcc store).
//
// It owns the revision counter, the in-memory key index (rebuilt from the key bucket at open),
// the key bucket's contents (format in record.h), compaction (index, then disk, in batches)
// and HashKV. It never knows raft: the caller hands it the consistent index to persist.
//
// Threads. Writes (put, delete_range, txn, compact, compaction_step, set_consistent_index) come
// from the backend's writer thread only. Reads (range, hash_kv, rev, compact_rev) come from any
// thread, concurrently with writes: a read sees the store as of one revision, whatever the
// writer does meanwhile.
//
// Batching and the consistent index. Each write transaction ends with `backend.commit_if_due()`
// (unless `options::commit_at_write_end` is off), and the consistent index set last is written
// by a pre-commit hook, so every commit carries the index of the last entry applied. An entry
// applied as more than one write transaction must hold commits (`backend.hold_commits()`) so
// that no commit separates its parts: call set_consistent_index(i) before applying entry i.
//
// Revisions: an empty store is at revision 1; each write transaction that changes something
// takes the next main revision, its changes take sub revisions 0, 1, ...
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/expected.h"
#include "base/stats.h"
#include "mvcc/key_index.h"
#include "mvcc/kv.h"
#include "schema/schema.h"

namespace cairn::mvcc {

// One change of a write transaction, as watchers need it.
struct change {
  event_type type = event_type::put;
  key_value kv;   // put: the new key-value; del: key and mod_revision only
  revision rev;   // the change's own revision
  revision prev;  // the key's previous change in its generation (main 0: the key did not exist)
};

// Told about every write transaction that changed something, on the writer thread, before the
// batch may commit. It must call `publish` exactly once: that makes `rev` the store's revision
// for readers. Doing so while holding its own lock lets the observer order notifications with
// the revision readers see.
class write_observer {
 public:
  virtual ~write_observer() = default;
  virtual void on_write(std::int64_t rev, const std::vector<change>& changes,
                        const std::function<void()>& publish) = 0;
};

// How keys move between leases, told on the writer thread as each change is made (etcd's mvcc
// calls its lessor the same way). mvcc never knows the lessor itself: lease/ implements this.
class lease_hook {
 public:
  virtual ~lease_hook() = default;
  // A put (alone or in a txn) naming a lease that does not exist fails with
  // errc::lease_not_found before anything is written.
  virtual bool lease_exists(std::int64_t lease) = 0;
  // `key` now carries `lease` (0: none); the hook detaches it from its previous lease.
  virtual void on_put(std::string_view key, std::int64_t lease) = 0;
  virtual void on_delete(std::string_view key) = 0;
};

struct store_options {
  // Entries one compaction step examines (etcd's compaction batch limit).
  std::int64_t compaction_batch_limit = 1000;
  // Keys of the index one compaction step compacts.
  std::size_t index_compaction_chunk = 10000;
  bool commit_at_write_end = true;
};

// What the store counts for the metrics (etcd_mvcc_*_total, etcd_debugging_mvcc_db_compaction_*).
// As etcd: a txn counts its ranges, puts and deletes one by one, and counts as a txn when it
// ran more than one operation.
struct mvcc_stats {
  base::counter ranges{0};
  base::counter puts{0};
  base::counter deletes{0};
  base::counter txns{0};
  base::counter compaction_keys{0};  // entries removed from disk by compaction
  // Milliseconds, etcd's buckets.
  base::histogram index_compaction_pause_ms{base::exponential_buckets(0.5, 2, 12)};
  base::histogram db_compaction_pause_ms{base::exponential_buckets(1, 2, 12)};
  base::histogram db_compaction_total_ms{base::exponential_buckets(100, 2, 14)};
};

class store {
 public:
  // Rebuilds the index from the backend and resumes a compaction a crash interrupted.
  static std::unique_ptr<store> open(backend::backend& b, store_options opts = {});
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // --- any thread ---
  std::int64_t rev() const { return current_.load(std::memory_order_acquire); }
  const mvcc_stats& stats() const { return stats_; }
  // The last compaction's revision, -1 if none.
  std::int64_t compact_rev() const { return compact_.load(std::memory_order_acquire); }
  cairn::expected<range_response, errc> range(const range_request& r) const;
  // Every live key that names a lease, with its lease, in key order: one pass over the index
  // (a paged range counts every key after the page, quadratic over the whole key space).
  void for_each_leased(
      const std::function<void(std::string_view key, std::int64_t lease)>& fn) const;
  // A transaction without puts or deletes in any branch at any depth (is_read_only's txns, and
  // nested txns that only read), answered from a read view at the current revision, on any
  // thread, as `txn` would answer it then.
  cairn::expected<txn_response, errc> read_txn(const txn_request& r) const;
  // CRC-32C over the key bucket's entries up to `rev` (0: current) that the last compaction
  // keeps, seeded with the bucket name; the same history gives the same hash on every member,
  // whether or not its compaction has finished on disk. Our entries are not etcd's, so the
  // value is comparable only between Cairn members.
  cairn::expected<hash_kv_result, errc> hash_kv(std::int64_t rev) const;
  const tree_index& index() const { return index_; }
  backend::backend& backend() const { return be_; }

  // --- the writer thread ---
  cairn::expected<put_response, errc> put(const put_request& r);
  cairn::expected<delete_range_response, errc> delete_range(const delete_range_request& r);
  cairn::expected<txn_response, errc> txn(const txn_request& r);
  // Makes reads below `rev` fail from now on and schedules the work, which compaction_step does
  // in batches so that writes go on in between: first the index (`index_compaction_chunk` keys
  // a step), then the removal from disk.
  cairn::expected<void, errc> compact(std::int64_t rev);
  bool compaction_pending() const { return job_.has_value(); }
  // One batch: up to `index_compaction_chunk` keys of the index, or once the index is done, up
  // to `compaction_batch_limit` entries on disk; true while more remains.
  bool compaction_step();
  void finish_compaction();
  void set_consistent_index(schema::consistent_index ci);
  // The backend's contents were replaced (a snapshot from the leader was installed): rebuilds
  // the index and the revisions from it, as open() does. Reads wait meanwhile.
  void reload();
  schema::consistent_index consistent_index() const { return ci_; }
  void set_observer(write_observer* o) { observer_ = o; }
  void set_lease_hook(lease_hook* h) { lease_hook_ = h; }
  // The key-value stored at `rev` (a put), read inside the batch. For observers (prev_kv).
  std::optional<key_value> read_put(revision rev);

 private:
  struct write_ctx;
  struct compaction_job {
    std::int64_t rev;
    revision_set kept;                      // complete once the index is done
    std::optional<std::string> index_next;  // the key of the index to resume at; nullopt: done
    std::string next;                       // the revision key to resume at on disk
  };

  store(backend::backend& b, store_options opts);
  void restore();
  void end_write(write_ctx& ctx);
  key_value put_in(write_ctx& ctx, const put_request& r, std::optional<key_value>* prev);
  std::int64_t delete_in(write_ctx& ctx, std::string_view key, std::string_view end,
                         std::vector<key_value>* prevs);
  range_response range_in(write_ctx& ctx, const range_request& r);
  bool lease_known(const put_request& r) const;
  void count_txn(const txn_response& t) const;
  // The stored entry at a revision the index names (the writer's batch, or a read view).
  using bytes_fn = std::function<std::string_view(revision)>;
  bool compare_holds(const compare& c, std::int64_t at, const bytes_fn& bytes_at) const;
  void txn_path(const txn_request& r, std::int64_t at, const bytes_fn& bytes_at,
                std::vector<bool>& path) const;
  cairn::expected<void, errc> txn_check(const txn_request& r, const std::vector<bool>& path,
                                        std::size_t& pos, std::int64_t at) const;
  txn_response txn_apply(write_ctx& ctx, const txn_request& r, const std::vector<bool>& path,
                         std::size_t& pos);

  backend::backend& be_;
  store_options opts_;
  tree_index index_;
  // Reads hold it shared; reload() exclusively (a read never meets a half-built index).
  mutable std::shared_mutex reload_mu_;
  std::atomic<std::int64_t> current_{1};
  std::atomic<std::int64_t> compact_{-1};
  std::optional<compaction_job> job_;
  std::chrono::steady_clock::time_point job_start_;  // the running compaction's start
  mutable mvcc_stats stats_;
  schema::consistent_index ci_;
  bool ci_dirty_ = false;
  int hook_id_ = -1;
  write_observer* observer_ = nullptr;
  lease_hook* lease_hook_ = nullptr;
};

}  // namespace cairn::mvcc
