#include "backend/backend.h"
#include "base/failpoint.h"

#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <shared_mutex>

namespace cairn::backend {

namespace {

[[noreturn]] void fatal(const char* what, int rc) {
  std::fprintf(stderr, "cairn backend: %s: %s\n", what, mdb_strerror(rc));
  std::abort();
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "cairn backend: %s\n", what);
  std::abort();
}

MDB_val to_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Failures of a commit that leave the last commit intact and may pass: the disk is full, a
// quota or file size limit was hit, or a write failed.
bool disk_error(int rc) { return rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO; }

// Entries of the batch log: op, bucket (4 bytes), key and value sizes (4 bytes each), then
// the key and the value.
constexpr char log_put = 'p', log_del = 'd', log_clear = 'c';

void append_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::uint32_t read_u32(std::string_view& in) {
  std::uint32_t v;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return v;
}

error lmdb_error(const std::string& what, int rc) {
  errc code = errc::io_error;
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
      rc == MDB_PAGE_NOTFOUND) {
    code = errc::corrupt;
  }
  return error{code, what + ": " + mdb_strerror(rc)};
}

error sys_error(const std::string& what) {
  return error{errc::io_error, what + ": " + std::strerror(errno)};
}

}  // namespace

std::string_view to_string(errc e) {
  switch (e) {
    case errc::io_error:
      return "io error";
    case errc::corrupt:
      return "corrupt database";
    case errc::invalid_argument:
      return "invalid argument";
    case errc::interrupted:
      return "interrupted";
  }
  return "unknown";
}

// The puts of the open batch to read-buffered buckets. The writer inserts under `mu` exclusive;
// views look up under `mu` shared. Nodes of std::map never move and values are never changed
// after insertion (a key is put at most once per batch), so a string_view into a node stays
// valid for as long as someone holds the buffer.
struct read_view::buffer {
  explicit buffer(std::size_t buckets) : maps(buckets) {}
  mutable std::shared_mutex mu;
  std::vector<std::map<std::string, std::string, std::less<>>> maps;
};

// ---------------------------------------------------------------------------------------------
// read_view

read_view::read_view(backend* b, MDB_txn* txn, std::shared_ptr<buffer> buf)
    : backend_(b), txn_(txn), buffer_(std::move(buf)) {}

read_view::read_view(read_view&& other) noexcept
    : backend_(std::exchange(other.backend_, nullptr)),
      txn_(std::exchange(other.txn_, nullptr)),
      buffer_(std::move(other.buffer_)) {}

read_view& read_view::operator=(read_view&& other) noexcept {
  if (this != &other) {
    release();
    backend_ = std::exchange(other.backend_, nullptr);
    txn_ = std::exchange(other.txn_, nullptr);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

read_view::~read_view() { release(); }

void read_view::release() {
  if (backend_ != nullptr) {
    backend_->leave_reader(txn_);
    backend_ = nullptr;
    txn_ = nullptr;
    buffer_.reset();
  }
}

std::optional<std::string_view> read_view::get(bucket_id bucket, std::string_view key) const {
  if (backend_->buckets_[bucket].read_buffered) {
    std::shared_lock lock(buffer_->mu);
    const auto& m = buffer_->maps[bucket];
    if (auto it = m.find(key); it != m.end()) return std::string_view(it->second);
  }
  MDB_val k = to_val(key), v;
  int rc = mdb_get(txn_, backend_->dbis_[bucket], &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) fatal("read failed", rc);
  return from_val(v);
}

void read_view::scan(bucket_id bucket, std::string_view from, std::string_view to,
                     const std::function<bool(std::string_view, std::string_view)>& fn) const {
  // Buffered entries in range, copied out as views under the lock (see `buffer`).
  std::vector<std::pair<std::string_view, std::string_view>> buffered;
  if (backend_->buckets_[bucket].read_buffered) {
    std::shared_lock lock(buffer_->mu);
    const auto& m = buffer_->maps[bucket];
    for (auto it = m.lower_bound(from); it != m.end(); ++it) {
      if (!to.empty() && std::string_view(it->first) >= to) break;
      buffered.emplace_back(it->first, it->second);
    }
  }
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, backend_->dbis_[bucket], &c);
  if (rc != 0) fatal("cursor open failed", rc);
  // LMDB refuses an empty key to seek to: the start of the bucket is MDB_FIRST.
  MDB_val k = to_val(from), v;
  rc = mdb_cursor_get(c, &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
  std::size_t bi = 0;
  bool more = true;
  while (more) {
    bool have_db = rc == 0 && (to.empty() || from_val(k) < to);
    if (rc != 0 && rc != MDB_NOTFOUND) fatal("cursor read failed", rc);
    bool have_buf = bi < buffered.size();
    if (!have_db && !have_buf) break;
    if (have_buf && (!have_db || buffered[bi].first <= from_val(k))) {
      // On equal keys the buffered value wins: it is the newer write.
      if (have_db && buffered[bi].first == from_val(k)) rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
      more = fn(buffered[bi].first, buffered[bi].second);
      ++bi;
    } else {
      more = fn(from_val(k), from_val(v));
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
  }
  mdb_cursor_close(c);
}

// ---------------------------------------------------------------------------------------------
// write_cursor

write_cursor::write_cursor(backend* b, bucket_id bucket, MDB_cursor* cursor)
    : backend_(b), bucket_(bucket), cursor_(cursor), batch_(b->batch_) {}

write_cursor::write_cursor(write_cursor&& other) noexcept
    : backend_(other.backend_),
      bucket_(other.bucket_),
      cursor_(std::exchange(other.cursor_, nullptr)),
      batch_(other.batch_),
      valid_(other.valid_),
      key_(other.key_),
      value_(other.value_) {}

write_cursor::~write_cursor() {
  // A commit frees the cursors of its transaction; close only while it is still open.
  if (cursor_ != nullptr && backend_->txn_ != nullptr && backend_->batch_ == batch_)
    mdb_cursor_close(cursor_);
}

void write_cursor::load(int op) {
  MDB_val k, v;
  if (op == MDB_SET_RANGE) k = to_val(key_);
  int rc = mdb_cursor_get(cursor_, &k, &v, static_cast<MDB_cursor_op>(op));
  if (rc == MDB_NOTFOUND) {
    valid_ = false;
    return;
  }
  if (rc != 0) fatal("cursor read failed", rc);
  valid_ = true;
  key_ = from_val(k);
  value_ = from_val(v);
}

void write_cursor::seek(std::string_view key) {
  key_ = key;
  load(key.empty() ? MDB_FIRST : MDB_SET_RANGE);
}

void write_cursor::next() { load(MDB_NEXT); }

void write_cursor::erase() {
  backend_->check_writer();
  // Re-seek after the delete instead of relying on where LMDB leaves the cursor.
  std::string at(key_);
  int rc = mdb_cursor_del(cursor_, 0);
  if (rc != 0) fatal("cursor delete failed", rc);
  backend_->log_write(log_del, bucket_, at);
  backend_->count_write();
  key_ = at;
  load(MDB_SET_RANGE);
}

// ---------------------------------------------------------------------------------------------
// snapshot_reader

snapshot_reader::snapshot_reader(backend* b) : backend_(b) {
  backend_->enter_reader();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fatal("pipe failed");
  fd_ = fds[0];
  int wfd = fds[1];
  MDB_env* env = backend_->env_;
  copier_ = std::thread([this, env, wfd] {
    // A reader that stops early closes the pipe: the copy must see EPIPE, not die of SIGPIPE.
    // Threads LMDB starts for the copy inherit this mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int rc = mdb_env_copyfd2(env, wfd, MDB_CP_COMPACT);
    ::close(wfd);
    copy_result_.store(rc);
  });
}

snapshot_reader::~snapshot_reader() {
  if (fd_ >= 0) ::close(fd_);
  if (copier_.joinable()) copier_.join();
  backend_->leave_reader(nullptr);
}

cairn::expected<std::size_t, error> snapshot_reader::read(char* data, std::size_t size) {
  if (done_) return std::size_t{0};
  for (;;) {
    ssize_t n = ::read(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cairn::unexpected(sys_error("snapshot pipe read"));
    if (n > 0) return static_cast<std::size_t>(n);
    // End of stream: the copy finished (or failed).
    copier_.join();
    done_ = true;
    if (int rc = copy_result_.load(); rc != 0)
      return cairn::unexpected(lmdb_error("snapshot copy", rc));
    return std::size_t{0};
  }
}

// ---------------------------------------------------------------------------------------------
// snapshot_file

snapshot_file::~snapshot_file() {
  if (fd_ >= 0) ::close(fd_);
}

cairn::expected<std::size_t, error> snapshot_file::read_at(std::uint64_t offset, char* data,
                                                           std::size_t size) const {
  std::size_t done = 0;
  while (done < size && offset + done < size_) {
    ssize_t n = ::pread(fd_, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cairn::unexpected(sys_error("snapshot temp file read"));
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// backend

backend::backend(std::string path, options opts, std::vector<bucket_spec> buckets)
    : path_(std::move(path)), opts_(std::move(opts)), buckets_(std::move(buckets)) {
  std::uint64_t headroom = opts_.headroom_bytes;
  if (headroom == 0) headroom = std::max<std::uint64_t>(opts_.quota_bytes / 4, 256u << 20);
  map_size_ = opts_.quota_bytes + headroom;
  buffer_ = std::make_shared<read_view::buffer>(buckets_.size());
}

cairn::expected<std::unique_ptr<backend>, error> backend::open(std::string path, options opts,
                                                               std::vector<bucket_spec> buckets) {
  if (buckets.empty() || path.empty() || opts.batch_limit == 0 || opts.max_readers == 0) {
    return cairn::unexpected(error{errc::invalid_argument, "backend: bad options"});
  }
  std::unique_ptr<backend> b(new backend(std::move(path), std::move(opts), std::move(buckets)));
  // A copy left by a defrag that crashed before its rename was never swapped in.
  if (auto r = b->remove_file(b->path_ + ".defrag"); !r) return cairn::unexpected(r.error());
  // Snapshot copies are unlinked as soon as they are created; one can be left only by a crash
  // in between, and only where the file system has no O_TMPFILE.
  {
    const std::filesystem::path p(b->path_);
    const std::string prefix = p.filename().string() + std::string(snapshot_temp_infix);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(p.parent_path(), ec)) {
      if (entry.path().filename().string().starts_with(prefix)) {
        if (auto r = b->remove_file(entry.path().string()); !r) return cairn::unexpected(r.error());
      }
    }
  }
  if (auto r = b->open_env(); !r) return cairn::unexpected(r.error());
  return b;
}

cairn::expected<void, error> backend::open_env() {
  int rc = mdb_env_create(&env_);
  if (rc != 0) return cairn::unexpected(lmdb_error("mdb_env_create", rc));
  auto fail = [&](const char* what, int code) -> cairn::expected<void, error> {
    mdb_env_close(env_);
    env_ = nullptr;
    return cairn::unexpected(lmdb_error(std::string(what) + " " + path_, code));
  };
  if ((rc = mdb_env_set_maxdbs(env_, static_cast<MDB_dbi>(buckets_.size()))) != 0)
    return fail("mdb_env_set_maxdbs", rc);
  if ((rc = mdb_env_set_mapsize(env_, map_size_)) != 0) return fail("mdb_env_set_mapsize", rc);
  if ((rc = mdb_env_set_maxreaders(env_, opts_.max_readers)) != 0)
    return fail("mdb_env_set_maxreaders", rc);
  unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
  flags |= opts_.unsafe_no_fsync ? MDB_NOSYNC : MDB_NOMETASYNC;
  if ((rc = mdb_env_open(env_, path_.c_str(), flags, 0600)) != 0) return fail("open", rc);
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) != 0) return fail("begin", rc);
  dbis_.clear();
  for (const auto& spec : buckets_) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(txn, spec.name.c_str(), MDB_CREATE, &dbi)) != 0) {
      mdb_txn_abort(txn);
      return fail("open bucket", rc);
    }
    dbis_.push_back(dbi);
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail("commit buckets", rc);
  return {};
}

void backend::close_env() {
  for (MDB_txn* t : txn_pool_) mdb_txn_abort(t);
  txn_pool_.clear();
  if (env_ != nullptr) mdb_env_close(env_);
  env_ = nullptr;
}

backend::~backend() {
  if (!dead_) {
    if (txn_ != nullptr && writer_ != std::this_thread::get_id()) {
      fatal("backend destroyed with an open batch on a thread other than its writer");
    }
    // A batch that still cannot be committed is dropped, as a crash would drop it.
    if (txn_ != nullptr || !log_.empty()) commit();
    std::unique_lock lock(view_mu_);
    if (active_readers_ != 0) fatal("backend destroyed while read views are open");
  }
  close_env();
}

std::chrono::steady_clock::time_point backend::now() const {
  return opts_.clock ? opts_.clock() : std::chrono::steady_clock::now();
}

void backend::check_writer() const {
  if (dead_) fatal("backend used after a simulated crash or an interrupted defrag");
  if (txn_ != nullptr && writer_ != std::this_thread::get_id()) {
    fatal("a second thread wrote to the backend while the writer's batch was open");
  }
}

MDB_txn* backend::write_txn() {
  check_writer();
  if (txn_ == nullptr) {
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn_);
    if (rc != 0) fatal("begin write transaction", rc);
    writer_ = std::this_thread::get_id();
    if (!log_.empty()) replay_log();
  }
  return txn_;
}

void backend::count_write() {
  if (pending_++ == 0) batch_start_ = now();
}

void backend::log_write(char op, bucket_id bucket, std::string_view key, std::string_view value) {
  if (!opts_.commit_failed) return;
  log_.push_back(op);
  append_u32(log_, bucket);
  append_u32(log_, static_cast<std::uint32_t>(key.size()));
  append_u32(log_, static_cast<std::uint32_t>(value.size()));
  log_.append(key);
  log_.append(value);
}

// Does the logged writes again in the (new, empty) transaction. They succeeded once on the
// same committed state, so any failure now is fatal. Read-buffered puts are still in the read
// buffer, which a failed commit leaves as it was.
void backend::replay_log() {
  std::string_view in = log_;
  while (!in.empty()) {
    const char op = in.front();
    in.remove_prefix(1);
    const bucket_id bucket = read_u32(in);
    const std::uint32_t klen = read_u32(in), vlen = read_u32(in);
    MDB_val k = to_val(in.substr(0, klen)), v = to_val(in.substr(klen, vlen));
    in.remove_prefix(klen + vlen);
    int rc = 0;
    if (op == log_put) rc = mdb_put(txn_, dbis_[bucket], &k, &v, 0);
    if (op == log_del) rc = mdb_del(txn_, dbis_[bucket], &k, nullptr);
    if (op == log_clear) rc = mdb_drop(txn_, dbis_[bucket], 0);
    if (rc != 0) fatal("redoing a batch after a failed commit", rc);
  }
}

void backend::put(bucket_id bucket, std::string_view key, std::string_view value) {
  MDB_txn* txn = write_txn();
  MDB_val k = to_val(key), v = to_val(value);
  int rc = mdb_put(txn, dbis_[bucket], &k, &v, 0);
  if (rc == MDB_MAP_FULL) {
    fatal(
        "the database reached its map size (quota + headroom); the quota check must stop "
        "writes before this",
        rc);
  }
  if (rc != 0) fatal("put", rc);
  log_write(log_put, bucket, key, value);
  count_write();
  pending_bytes_ += key.size() + value.size();
  if (buckets_[bucket].read_buffered) {
    std::unique_lock lock(buffer_->mu);
    auto [it, inserted] = buffer_->maps[bucket].try_emplace(std::string(key), value);
    if (!inserted) fatal("a key of a read-buffered bucket was put twice in one batch");
  }
}

bool backend::del(bucket_id bucket, std::string_view key) {
  MDB_txn* txn = write_txn();
  MDB_val k = to_val(key);
  int rc = mdb_del(txn, dbis_[bucket], &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) fatal("delete", rc);
  log_write(log_del, bucket, key);
  count_write();
  return true;
}

void backend::clear(bucket_id bucket) {
  if (int rc = mdb_drop(write_txn(), dbis_[bucket], 0); rc != 0) fatal("clear", rc);
  log_write(log_clear, bucket, {});
  count_write();
}

std::optional<std::string_view> backend::get(bucket_id bucket, std::string_view key) {
  MDB_txn* txn = write_txn();
  MDB_val k = to_val(key), v;
  int rc = mdb_get(txn, dbis_[bucket], &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) fatal("get", rc);
  return from_val(v);
}

write_cursor backend::cursor(bucket_id bucket) {
  MDB_txn* txn = write_txn();
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn, dbis_[bucket], &c);
  if (rc != 0) fatal("cursor open", rc);
  return write_cursor(this, bucket, c);
}

int backend::add_pre_commit_hook(std::function<void()> hook) {
  pre_commit_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void backend::remove_pre_commit_hook(int id) {
  std::erase_if(pre_commit_hooks_, [id](const auto& h) { return h.first == id; });
}

bool backend::commit_if_due() {
  check_writer();
  if (holds_ > 0 || pending_ == 0) return false;
  if (pending_ < opts_.batch_limit && pending_bytes_ < opts_.batch_bytes &&
      now() - batch_start_ < opts_.batch_interval) {
    return false;
  }
  commit();
  return true;
}

void backend::force_commit() {
  check_writer();
  commit();
}

void backend::commit() {
  for (auto& [id, hook] : pre_commit_hooks_) hook();
  if (txn_ == nullptr) {
    if (log_.empty()) return;
    (void)write_txn();  // a batch whose commit failed before: redo it
  }
  ++batch_;
  if (pending_ == 0) {
    mdb_txn_abort(txn_);
    txn_ = nullptr;
    return;
  }
  CAIRN_FAILPOINT("beforeCommit");
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    int rc = mdb_txn_commit(txn_);  // on failure LMDB aborts the transaction
    txn_ = nullptr;
    if (rc == 0) break;
    if (!opts_.commit_failed || !disk_error(rc)) fatal("commit", rc);
    refused_ = true;
    if (!opts_.commit_failed(mdb_strerror(rc))) return;  // pending until the next commit
    (void)write_txn();
  }
  CAIRN_FAILPOINT("afterCommit");
  log_.clear();
  if (log_.capacity() > (std::size_t{8} << 20)) std::string().swap(log_);  // a batch of big values
  if (std::exchange(refused_, false) && opts_.commit_resumed) opts_.commit_resumed();
  if (opts_.stats != nullptr) {
    opts_.stats->backend_commit.observe(std::chrono::steady_clock::now() - start);
  }
  pending_ = 0;
  pending_bytes_ = 0;
  commits_.fetch_add(1, std::memory_order_relaxed);
  // Only now may views stop looking at the batch's buffer: a view that took the old buffer
  // sees the batch there, one that takes the new buffer opens its snapshot after this commit.
  auto fresh = std::make_shared<read_view::buffer>(buckets_.size());
  std::unique_lock lock(view_mu_);
  buffer_ = std::move(fresh);
}

bool backend::sync() {
  force_commit();
  if (!log_.empty()) return false;
  int rc = mdb_env_sync(env_, 1);
  if (rc != 0) fatal("sync", rc);
  return true;
}

void backend::enter_reader() {
  std::unique_lock lock(view_mu_);
  view_cv_.wait(lock, [&] { return !swapping_; });
  if (dead_) fatal("backend read after a simulated crash or an interrupted defrag");
  ++active_readers_;
}

void backend::leave_reader(MDB_txn* txn) {
  if (txn != nullptr) mdb_txn_reset(txn);
  std::unique_lock lock(view_mu_);
  if (txn != nullptr) txn_pool_.push_back(txn);
  if (--active_readers_ == 0) view_cv_.notify_all();
}

read_view backend::read() { return open_view(true); }

read_view backend::read_committed() { return open_view(false); }

read_view backend::open_view(bool buffered) {
  std::shared_ptr<read_view::buffer> buf;
  MDB_txn* txn = nullptr;
  MDB_env* env;
  {
    std::unique_lock lock(view_mu_);
    view_cv_.wait(lock, [&] { return !swapping_; });
    if (dead_) fatal("backend read after a simulated crash or an interrupted defrag");
    ++active_readers_;
    // The buffer is taken before the snapshot begins (see commit()). A committed-only view gets
    // an empty buffer of its own, which no writer ever fills.
    buf = buffered ? buffer_ : std::make_shared<read_view::buffer>(buckets_.size());
    env = env_;
    if (!txn_pool_.empty()) {
      txn = txn_pool_.back();
      txn_pool_.pop_back();
    }
  }
  int rc = txn != nullptr ? mdb_txn_renew(txn) : mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) fatal("begin read transaction", rc);
  return read_view(this, txn, std::move(buf));
}

std::unique_ptr<snapshot_reader> backend::open_snapshot() {
  return std::unique_ptr<snapshot_reader>(new snapshot_reader(this));
}

cairn::expected<std::unique_ptr<snapshot_file>, error> backend::snapshot_to_file() {
  std::optional<base::timer> timed;
  if (opts_.stats != nullptr) timed.emplace(opts_.stats->backend_snapshot);
  // An unnamed file in the database's directory (O_TMPFILE): it never shows up in the
  // directory, so a crash leaves nothing behind. Where the file system has no O_TMPFILE, a named
  // file unlinked at once (a crash in between leaves it for `open` to remove).
  const std::string dir = base::parent_dir(path_);
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string name = path_ + std::string(snapshot_temp_infix) + "XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) return cairn::unexpected(sys_error("snapshot temp file in " + dir));
    ::unlink(name.c_str());
  }
  std::unique_ptr<snapshot_file> out(new snapshot_file(fd));
  int rc;
  {
    // The copy is a read transaction: writers go on, a defrag's swap waits for it.
    enter_reader();
    rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT);
    leave_reader(nullptr);
  }
  if (rc != 0) return cairn::unexpected(lmdb_error("snapshot copy", rc));
  struct stat st;
  if (::fstat(fd, &st) != 0) return cairn::unexpected(sys_error("snapshot temp file stat"));
  out->size_ = static_cast<std::uint64_t>(st.st_size);
  return out;
}

std::uint64_t backend::size() {
  read_view v = read();
  struct stat st;
  int fd = -1;
  if (mdb_env_get_fd(env_, &fd) != 0 || ::fstat(fd, &st) != 0) fatal("stat database file");
  return static_cast<std::uint64_t>(st.st_size);
}

namespace {

// The map's start and the length of its part that the file backs, rounded up to whole pages.
// LMDB does not tell where it mapped the file (mdb_env_info's me_mapaddr is only set with
// MDB_FIXEDMAP), so the mapping is found in /proc/self/maps by the file's device and inode.
std::pair<unsigned char*, std::size_t> mapped_file(MDB_env* env, std::uint64_t file_size) {
  int fd = -1;
  struct stat st;
  if (mdb_env_get_fd(env, &fd) != 0 || ::fstat(fd, &st) != 0) return {nullptr, 0};
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return {nullptr, 0};
  unsigned char* addr = nullptr;
  std::size_t mapped = 0;
  char line[4096];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    unsigned long lo = 0, hi = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    char perms[8];
    if (std::sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &offset, &major, &minor,
                    &inode) != 7) {
      continue;
    }
    if (inode != st.st_ino || makedev(major, minor) != st.st_dev || offset != 0) continue;
    addr = reinterpret_cast<unsigned char*>(lo);
    mapped = hi - lo;
    break;
  }
  std::fclose(maps);
  if (addr == nullptr) return {nullptr, 0};
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(file_size, mapped));
  len = (len + page - 1) / page * page;
  return {addr, std::min(len, mapped)};
}

}  // namespace

std::uint64_t backend::resident_bytes() {
  read_view v = read();  // keeps a defrag's swap from remapping meanwhile
  auto [addr, len] = mapped_file(env_, size());
  if (addr == nullptr || len == 0) return 0;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec(len / page);
  if (::mincore(addr, len, vec.data()) != 0) return 0;
  std::uint64_t resident = 0;
  for (unsigned char c : vec) resident += (c & 1) ? page : 0;
  return resident;
}

std::uint64_t backend::warm() {
  read_view v = read();
  auto [addr, len] = mapped_file(env_, size());
  if (addr == nullptr) return 0;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  volatile unsigned char sink = 0;
  for (std::size_t off = 0; off < len; off += page) sink = sink ^ addr[off];
  (void)sink;
  return len;
}

void backend::drop_cached_pages() {
  read_view v = read();
  auto [addr, len] = mapped_file(env_, size());
  if (addr != nullptr && len > 0) (void)::madvise(addr, len, MADV_DONTNEED);
  int fd = -1;
  if (mdb_env_get_fd(env_, &fd) == 0) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

std::uint64_t backend::size_in_use() {
  read_view v = read();
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &st) != 0) fatal("env info");
  // The free list (LMDB's database 0): each record lists freed page numbers, count first.
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(v.txn_, 0, &c);
  if (rc != 0) fatal("free list cursor", rc);
  std::uint64_t free_pages = 0;
  MDB_val k, val;
  for (rc = mdb_cursor_get(c, &k, &val, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &val, MDB_NEXT)) {
    std::size_t count;
    std::memcpy(&count, val.mv_data, sizeof(count));
    free_pages += count;
  }
  mdb_cursor_close(c);
  std::uint64_t pages = static_cast<std::uint64_t>(info.me_last_pgno) + 1;
  if (free_pages > pages) free_pages = pages;
  return (pages - free_pages) * st.ms_psize;
}

base::file_system& backend::fs() const {
  return opts_.fs != nullptr ? *opts_.fs : base::posix_file_system();
}

cairn::expected<void, error> backend::remove_file(const std::string& path) {
  auto r = fs().remove(path);
  if (!r && r.error().code != ENOENT)
    return cairn::unexpected(error{errc::io_error, r.error().message});
  return {};
}

cairn::expected<void, error> backend::write_copy(const std::string& to) {
  auto opened = fs().open(to, base::open_mode::create_truncate);
  if (!opened) return cairn::unexpected(error{errc::io_error, opened.error().message});
  std::unique_ptr<base::file> out = std::move(*opened);
  auto fail = [&](std::string message) -> cairn::expected<void, error> {
    out->close();
    (void)remove_file(to);
    return cairn::unexpected(error{errc::io_error, std::move(message)});
  };
  {
    // The compacting copy streams through a pipe (snapshot_reader) and is written through the
    // file layer, so it is durable exactly when the layer says so.
    auto snap = open_snapshot();
    std::vector<char> chunk(1 << 20);
    std::uint64_t offset = 0;
    for (;;) {
      auto n = snap->read(chunk.data(), chunk.size());
      if (!n) return fail(n.error().message);
      if (*n == 0) break;
      if (auto w = out->write_at(offset, std::string_view(chunk.data(), *n)); !w) {
        return fail(w.error().message);
      }
      offset += *n;
    }
  }
#ifndef CAIRN_PLANTED_BUG_BACKEND_DEFRAG_NO_SYNC
  if (auto s = out->sync_data(); !s) return fail(s.error().message);
#endif
  if (auto c = out->close(); !c) return fail(c.error().message);
  return {};
}

cairn::expected<void, error> backend::defrag() {
  check_writer();
  std::optional<base::timer> timed;
  if (opts_.stats != nullptr) {
    timed.emplace(opts_.stats->backend_defrag);
    opts_.stats->defrag_inflight.fetch_add(1);
  }
  struct inflight {
    base::disk_stats* s;
    ~inflight() {
      if (s != nullptr) s->defrag_inflight.fetch_sub(1);
    }
  } in_flight{opts_.stats};
  force_commit();
  if (!log_.empty()) {
    return cairn::unexpected(error{errc::io_error, "the open batch could not be committed"});
  }
  auto stop = [&](defrag_step step) {
    if (!opts_.defrag_hook || opts_.defrag_hook(step)) return false;
    dead_ = true;
    std::unique_lock lock(view_mu_);
    swapping_ = false;
    view_cv_.notify_all();
    return true;
  };
  const std::string tmp = path_ + ".defrag";
  if (auto r = remove_file(tmp); !r) return r;
  // 1. The compacting copy. Readers go on meanwhile; there are no writes (we are the writer).
  CAIRN_FAILPOINT("defragBeforeCopy");
  if (auto r = write_copy(tmp); !r) return r;
  if (stop(defrag_step::copied)) return cairn::unexpected(error{errc::interrupted, "copied"});

  // 2. The swap: no view may use the old environment while it closes.
  {
    std::unique_lock lock(view_mu_);
    swapping_ = true;
    view_cv_.wait(lock, [&] { return active_readers_ == 0; });
    close_env();
  }
  if (stop(defrag_step::closed)) return cairn::unexpected(error{errc::interrupted, "closed"});
  CAIRN_FAILPOINT("defragBeforeRename");
  if (auto r = fs().rename(tmp, path_); !r) {
    // The old file is still in place: go on with it.
    auto reopened = open_env();
    std::unique_lock lock(view_mu_);
    swapping_ = false;
    view_cv_.notify_all();
    if (!reopened) fatal("defrag: reopening the old database after a failed rename failed");
    (void)remove_file(tmp);
    return cairn::unexpected(error{errc::io_error, r.error().message});
  }
  if (stop(defrag_step::renamed)) return cairn::unexpected(error{errc::interrupted, "renamed"});
    // Until the directory is synced a crash may bring back the old file, which is complete too.
    // A failed directory sync leaves that unknown: stop, as after any failed sync.
#ifndef CAIRN_PLANTED_BUG_BACKEND_DEFRAG_NO_SYNC
  if (auto r = fs().sync_dir(base::parent_dir(path_)); !r) {
    std::fprintf(stderr, "cairn backend: %s\n", r.error().message.c_str());
    fatal("defrag: syncing the database directory failed");
  }
#endif
  if (stop(defrag_step::dir_synced))
    return cairn::unexpected(error{errc::interrupted, "dir_synced"});
  if (auto r = open_env(); !r) {
    std::fprintf(stderr, "cairn backend: %s\n", r.error().message.c_str());
    fatal("defrag: opening the compacted database failed");
  }
  if (stop(defrag_step::reopened)) return cairn::unexpected(error{errc::interrupted, "reopened"});
  std::unique_lock lock(view_mu_);
  swapping_ = false;
  view_cv_.notify_all();
  return {};
}

void backend::simulate_crash() {
  if (txn_ != nullptr) {
    if (writer_ != std::this_thread::get_id()) fatal("simulate_crash off the writer thread");
    mdb_txn_abort(txn_);
    txn_ = nullptr;
    ++batch_;
  }
  pending_ = 0;
  pending_bytes_ = 0;
  log_.clear();
  std::unique_lock lock(view_mu_);
  if (active_readers_ != 0) fatal("simulate_crash with read views open");
  close_env();
  dead_ = true;
}

}  // namespace cairn::backend
