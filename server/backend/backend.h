// backend: Cairn's storage engine, LMDB in the role bbolt plays for etcd. This module is the only
// code that includes lmdb.h. It owns:
//   - one LMDB environment in one file (`<path>`, lock file `<path>-lock`), with a fixed set of
//     named databases ("buckets") that the caller declares at open (schema/ declares Cairn's);
//   - batched writes: one LMDB write transaction collects the writes of many callers' operations
//     and is committed when it holds `batch_limit` writes or `batch_bytes` bytes, when it is
//     `batch_interval` old (all checked by `commit_if_due`), or on demand (`force_commit`);
//   - read views: short read transactions usable from any thread, which also see the writes of
//     the batch not yet committed for buckets declared `read_buffered` (below);
//   - sizes (file size, size in use), a compacting defragmentation with a crash-safe swap, and a
//     consistent stream of the whole database (snapshots), or a consistent copy of it in an
//     unnamed temporary file whose size is known before anyone reads it (`snapshot_to_file`).
//
// Threads. Exactly one thread at a time is the *writer*: every write call, `commit_if_due`,
// `force_commit`, `sync` and `defrag` come from it (LMDB requires that a write transaction is
// committed by the thread that began it; the backend aborts if a second thread touches an open
// batch). In Cairn the writer is the apply thread. `read()`, `size()`, `size_in_use()` and
// `open_snapshot()` may be called from any thread at any time.
//
// Durability. The write-ahead log is the source of truth; the consistent index is written in the
// same batch as the data it covers, so losing the last batches in a crash only means replaying
// them from the WAL. The environment is therefore opened with MDB_NOMETASYNC: every commit
// fdatasyncs the data pages it wrote but not the meta page, which reaches the disk with the next
// commit's sync or `sync()`. That keeps the file consistent across a power loss (LMDB's
// guarantee for NOMETASYNC) and costs one fdatasync per batch (10/s at the 100 ms interval), not
// one per write. A crash can lose the last committed batch; `sync()` (call it before the WAL
// releases segments after a raft snapshot) makes everything committed so far durable.
// `options::unsafe_no_fsync` selects MDB_NOSYNC (etcd's --unsafe-no-fsync): no fsync at all,
// and a power loss may corrupt the file.
//
// Read buffer. A read view is an LMDB snapshot of the last commit plus, for `read_buffered`
// buckets, every put the writer made to them since that commit (including puts made after the
// view opened). Deletes in the open batch are not visible through the buffer until commit. This
// is exactly what an append-only, revision-keyed bucket (mvcc's key bucket) needs: readers see
// each revision as soon as it is written, without a commit per write. A key of a read-buffered
// bucket may be put at most once per batch (the backend aborts otherwise), which is what lets
// views hand out stable views of buffered values without copying.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/expected.h"
#include "base/file.h"
#include "base/stats.h"

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace cairn::backend {

enum class errc {
  io_error,          // an I/O or system call failed
  corrupt,           // the file is not a valid LMDB database (for example a bbolt file)
  invalid_argument,  // bad options or bucket list
  interrupted,       // a defrag hook asked to stop (crash tests)
};

struct error {
  errc code;
  std::string message;
};

std::string_view to_string(errc e);

struct bucket_spec {
  std::string name;
  bool read_buffered = false;
};

// A bucket is named by its position in the list given to `backend::open`.
using bucket_id = std::uint32_t;

// The steps of `defrag`, in order, for crash tests (`options::defrag_hook`).
enum class defrag_step {
  copied,      // the compacting copy is written to `<path>.defrag` and synced
  closed,      // the old environment is closed
  renamed,     // `<path>.defrag` was renamed over `<path>`
  dir_synced,  // the directory holding `<path>` was fsynced: the swap is durable
  reopened,    // the new environment is open
};

struct options {
  // The most the data may take; Cairn's quota check (not LMDB) enforces it.
  std::uint64_t quota_bytes = std::uint64_t{2} << 30;
  // LMDB's map size is quota + headroom, fixed at open, so deletes, compaction and defrag done
  // at the quota still have room. 0 means max(quota / 4, 256 MiB).
  std::uint64_t headroom_bytes = 0;
  std::chrono::milliseconds batch_interval{100};
  std::uint32_t batch_limit = 10000;
  // Bytes put in one batch before it is due: bounds the read buffer and LMDB's dirty pages when
  // values are large (10,000 values of 1.5 MiB would be 15 GB).
  std::uint64_t batch_bytes = std::uint64_t{64} << 20;
  bool unsafe_no_fsync = false;
  // Concurrent read views (LMDB reader slots).
  std::uint32_t max_readers = 1024;
  // Time source for the batch interval (tests drive it); steady_clock when empty.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // Called after each defrag step; returning false stops defrag there, as a crash would (the
  // backend is then unusable until destroyed). Tests only.
  std::function<bool(defrag_step)> defrag_hook;
  // The file layer defrag writes its copy and makes its swap through (the compacted copy is
  // written through it byte by byte, so a simulated crash can lose what was not synced).
  // nullptr: base::posix_file_system().
  base::file_system* fs = nullptr;
  // Where commit, defrag and snapshot durations are recorded (the disk metrics); may be null.
  base::disk_stats* stats = nullptr;
  // A commit that fails because the disk is full or a write failed (ENOSPC, EDQUOT, EFBIG, EIO)
  // stops the process unless this is set. When set, the backend also keeps the open batch's
  // writes in memory; on such a failure it calls this on the writer with LMDB's error, and a
  // true answer (given after waiting a while) tries the same batch again in a new transaction.
  // False leaves the batch pending: reads still see it as before, the next write or commit
  // starts again from it, and `sync` reports that not everything is committed.
  std::function<bool(std::string_view error)> commit_failed;
  // Called on the writer when a commit succeeds after `commit_failed` was called.
  std::function<void()> commit_resumed;
};

class backend;

// A consistent read of the database: see the file comment for what it sees. Move-only; end it
// soon (it pins an LMDB snapshot and holds off a defrag's swap). Usable from any thread, but
// from one thread at a time.
class read_view {
 public:
  read_view(read_view&& other) noexcept;
  read_view& operator=(read_view&& other) noexcept;
  read_view(const read_view&) = delete;
  read_view& operator=(const read_view&) = delete;
  ~read_view();

  // The value of `key`, valid until the view ends.
  std::optional<std::string_view> get(bucket_id bucket, std::string_view key) const;

  // Calls fn(key, value) for every key in [from, to) in ascending order (`to` empty: to the end
  // of the bucket) until fn returns false. The views passed are valid until the view ends.
  void scan(bucket_id bucket, std::string_view from, std::string_view to,
            const std::function<bool(std::string_view, std::string_view)>& fn) const;

 private:
  friend class backend;
  struct buffer;
  read_view(backend* b, MDB_txn* txn, std::shared_ptr<buffer> buf);
  void release();

  backend* backend_ = nullptr;
  MDB_txn* txn_ = nullptr;
  std::shared_ptr<buffer> buffer_;
};

// A cursor over one bucket inside the open batch (the writer's view: it sees the batch's own
// puts and deletes). Valid until the next write call that is not through this cursor, or the
// next commit.
class write_cursor {
 public:
  write_cursor(write_cursor&& other) noexcept;
  write_cursor& operator=(write_cursor&&) = delete;
  write_cursor(const write_cursor&) = delete;
  ~write_cursor();

  // Positions at the first key >= key.
  void seek(std::string_view key);
  bool valid() const { return valid_; }
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  void next();
  // Deletes the current entry and moves to the one after it.
  void erase();

 private:
  friend class backend;
  write_cursor(backend* b, bucket_id bucket, MDB_cursor* cursor);
  void load(int op);

  backend* backend_;
  bucket_id bucket_;
  MDB_cursor* cursor_;
  std::uint64_t batch_;  // the batch the cursor belongs to (a commit frees its cursors)
  bool valid_ = false;
  std::string_view key_;
  std::string_view value_;
};

// Streams a compacted copy of the whole database as of the last commit (call `force_commit`
// first to include the open batch). Any thread; holds off a defrag's swap until destroyed.
class snapshot_reader {
 public:
  ~snapshot_reader();
  snapshot_reader(const snapshot_reader&) = delete;
  snapshot_reader& operator=(const snapshot_reader&) = delete;

  // Fills up to `size` bytes; 0 means the end of the stream.
  cairn::expected<std::size_t, error> read(char* data, std::size_t size);

 private:
  friend class backend;
  explicit snapshot_reader(backend* b);

  backend* backend_;
  int fd_ = -1;
  std::thread copier_;
  std::atomic<int> copy_result_{0};
  bool done_ = false;
};

// A compacted copy of the whole database as of one commit, in an unnamed file in the database's
// directory (see backend::snapshot_to_file); the file goes away with this object. Its bytes are
// a complete LMDB environment file (open it with MDB_NOSUBDIR). Immutable after creation:
// read_at may be called from any thread, even concurrently.
class snapshot_file {
 public:
  ~snapshot_file();
  snapshot_file(const snapshot_file&) = delete;
  snapshot_file& operator=(const snapshot_file&) = delete;

  std::uint64_t size() const { return size_; }
  // Fills up to `size` bytes from `offset`; fewer only at the end of the file.
  cairn::expected<std::size_t, error> read_at(std::uint64_t offset, char* data,
                                              std::size_t size) const;

 private:
  friend class backend;
  explicit snapshot_file(int fd) : fd_(fd) {}
  int fd_;
  std::uint64_t size_ = 0;
};

// A snapshot copy that crashed between being created and unlinked is named `<path>` + this +
// six random characters; `backend::open` removes such files.
inline constexpr std::string_view snapshot_temp_infix = ".snapshot-";

class backend {
 public:
  // Opens (creating if needed) the database file at `path`, with `buckets` as its named
  // databases. Removes a leftover `<path>.defrag` from a defrag interrupted by a crash.
  static cairn::expected<std::unique_ptr<backend>, error> open(std::string path, options opts,
                                                               std::vector<bucket_spec> buckets);
  // Commits the open batch and closes the environment. Every read view and snapshot reader
  // must have ended.
  ~backend();
  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<bucket_spec>& buckets() const { return buckets_; }

  // --- any thread ---
  read_view read();
  // A view of the last commit only: unlike `read`, it never sees the open batch's buffered puts
  // (hashes of the committed state use it).
  read_view read_committed();
  std::unique_ptr<snapshot_reader> open_snapshot();
  // Copies the database as of the last commit (call `force_commit` first to include the open
  // batch) into an unnamed file beside it. The copy is one LMDB read transaction: writers go on
  // meanwhile, a defrag's swap waits until the copy is done (not until the file is read). Takes
  // as much disk as the data in use.
  cairn::expected<std::unique_ptr<snapshot_file>, error> snapshot_to_file();
  // Size of the database file.
  std::uint64_t size();
  // Bytes of pages in use (the file size minus free pages, as of the last commit).
  std::uint64_t size_in_use();
  std::uint64_t map_size() const { return map_size_; }
  std::uint64_t quota() const { return opts_.quota_bytes; }
  // Commits so far (tests and metrics).
  std::uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  // Bytes of the file's pages that are resident in memory, sampled with mincore(2) over the
  // memory map up to the file's size: when it falls well below size(), reads fault pages in
  // from disk (the major page faults metric shows the same from the other side).
  std::uint64_t resident_bytes();
  // Touches every page of the file through the map once, so that the first reads do not fault
  // (etcd maps its db with MAP_POPULATE for the same reason). Returns the bytes touched.
  std::uint64_t warm();
  // Tests: drops this process's mappings of the file's pages and asks the kernel to evict them
  // from the page cache (madvise MADV_DONTNEED, posix_fadvise POSIX_FADV_DONTNEED).
  void drop_cached_pages();

  // --- the writer thread ---
  void put(bucket_id bucket, std::string_view key, std::string_view value);
  // True if the key existed.
  bool del(bucket_id bucket, std::string_view key);
  // Removes every key of the bucket, in the open batch.
  void clear(bucket_id bucket);
  // Reads inside the open batch; the value is valid until the next write call or commit.
  std::optional<std::string_view> get(bucket_id bucket, std::string_view key);
  write_cursor cursor(bucket_id bucket);
  // Writes in the open batch.
  std::uint32_t pending() const { return pending_; }

  // Commits the batch if it holds `batch_limit` writes or `batch_bytes` bytes or is
  // `batch_interval` old, unless commits are held. Returns true if it committed.
  bool commit_if_due();
  // Commits the batch now (if anything is pending), even while commits are held.
  void force_commit();
  // force_commit, then makes every commit durable (fsyncs the meta page too). False when the
  // batch could not be committed (only with `commit_failed` set, after it answered false).
  [[nodiscard]] bool sync();

  // While a hold is alive, commit_if_due does nothing: an operation that spans several write
  // calls (one raft entry applied as several mvcc transactions) keeps them in one commit.
  class commit_hold {
   public:
    explicit commit_hold(backend* b) : b_(b) { ++b_->holds_; }
    commit_hold(commit_hold&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    commit_hold& operator=(commit_hold&&) = delete;
    ~commit_hold() {
      if (b_ != nullptr) --b_->holds_;
    }

   private:
    backend* b_;
  };
  commit_hold hold_commits() { return commit_hold(this); }

  // Runs right before every commit, inside the batch, on the writer thread (the consistent
  // index is written there). Returns an id for remove_pre_commit_hook.
  int add_pre_commit_hook(std::function<void()> hook);
  void remove_pre_commit_hook(int id);

  // Rewrites the database into a compact copy and swaps it in. Blocks writes (it runs on the
  // writer) for the whole copy, and reads only for the swap itself. A crash at any point leaves
  // either the old or the new file, both complete.
  cairn::expected<void, error> defrag();

  // Tests: drops the open batch and closes the environment as a process crash would (nothing
  // uncommitted reaches the file). The backend is unusable afterwards except for destruction.
  void simulate_crash();

 private:
  friend class read_view;
  friend class write_cursor;
  friend class snapshot_reader;
  struct buffer_deleter;

  backend(std::string path, options opts, std::vector<bucket_spec> buckets);
  cairn::expected<void, error> open_env();
  void close_env();
  MDB_txn* write_txn();
  void check_writer() const;
  void commit();
  void count_write();
  void log_write(char op, bucket_id bucket, std::string_view key, std::string_view value = {});
  void replay_log();
  void enter_reader();
  void leave_reader(MDB_txn* txn);
  read_view open_view(bool buffered);
  std::chrono::steady_clock::time_point now() const;
  base::file_system& fs() const;
  cairn::expected<void, error> remove_file(const std::string& path);
  cairn::expected<void, error> write_copy(const std::string& to);

  std::string path_;
  options opts_;
  std::vector<bucket_spec> buckets_;
  std::uint64_t map_size_ = 0;
  MDB_env* env_ = nullptr;
  std::vector<unsigned> dbis_;
  bool dead_ = false;

  // Writer state (writer thread only).
  MDB_txn* txn_ = nullptr;
  std::uint64_t batch_ = 0;  // counts write transactions ended
  std::thread::id writer_;
  std::uint32_t pending_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::chrono::steady_clock::time_point batch_start_;
  int holds_ = 0;
  // The open batch's writes (only with `commit_failed` set), to do them again in a new
  // transaction after a failed commit; non-empty with no transaction open while a failed
  // batch waits to be tried again.
  std::string log_;
  bool refused_ = false;  // a commit failed since the last that succeeded
  std::vector<std::pair<int, std::function<void()>>> pre_commit_hooks_;
  int next_hook_id_ = 0;
  std::atomic<std::uint64_t> commits_{0};

  // Reader gate, buffer and pooled read transactions. `view_mu_` guards the fields below it.
  std::mutex view_mu_;
  std::condition_variable view_cv_;
  int active_readers_ = 0;
  bool swapping_ = false;
  std::shared_ptr<read_view::buffer> buffer_;
  std::vector<MDB_txn*> txn_pool_;
};

}  // namespace cairn::backend
