// sim_file_system: an in-memory file system for tests that models what survives a power cut.
//
// Every file keeps two images apart: what reads see now, and what is durable (as of its last
// sync_data()). Every name change (create, rename, remove, create_dir) is queued until a
// sync_dir() of a directory it touches. crash() then throws away everything not durable:
//   - crash_mode::lose_unsynced: all unsynced data, sizes and name changes are lost;
//   - crash_mode::torn: each unsynced 512-byte sector independently keeps its new or old bytes,
//     an unsynced size change may or may not stick, and a random prefix (in order) of the
//     queued name changes survives. A rename is one queued change, so it is atomic.
// Failures on demand: inject() makes a chosen call fail with an errno (ENOSPC, EIO, ...), once
// or from then on; crash_after(n) lets n more mutating calls through and then "pulls the plug":
// that call and every later one fails with EIO until crash() is called.
// Open files from before a crash fail with EBADF afterwards.
//
// Thread-safety: every call takes one internal mutex, so it may be shared between threads.
// Deterministic: torn crashes draw from a generator seeded in the constructor.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/file.h"

namespace cairn::base {

enum class sim_op {
  open,  // any open (creating or not)
  read,
  write,
  sync,  // sync_data
  preallocate,
  truncate,
  rename,
  remove,
  create_dir,
  sync_dir,
  list_dir,
};

struct sim_fault {
  sim_op op = sim_op::write;
  int code = EIO;
  uint64_t skip = 0;          // let this many matching calls succeed first
  std::string path_contains;  // only calls whose path contains this ("" = all)
  bool sticky = false;        // once fired, keep failing every matching call (a full disk)
  size_t partial_bytes = 0;   // write only: bytes written before the failure
};

enum class crash_mode { lose_unsynced, torn };

class sim_file_system final : public file_system {
 public:
  static constexpr uint64_t sector_size = 512;

  explicit sim_file_system(uint64_t seed = 1);
  ~sim_file_system() override;

  file_result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override;
  file_result<void> rename(const std::string& from, const std::string& to) override;
  file_result<void> remove(const std::string& path) override;
  file_result<void> create_dir(const std::string& path) override;
  file_result<void> sync_dir(const std::string& path) override;
  file_result<std::vector<std::string>> list_dir(const std::string& path) override;
  file_result<uint64_t> file_size(const std::string& path) override;
  file_result<bool> exists(const std::string& path) override;
  file_result<bool> is_dir(const std::string& path) override;

  // Failure injection.
  void inject(sim_fault fault);
  void clear_faults();
  // After n more mutating calls (open-for-create, write, sync, preallocate, truncate, rename,
  // remove, create_dir, sync_dir), the next one fails with EIO and the machine stays down.
  void crash_after(uint64_t n);
  bool down() const;
  // Mutating calls so far (to pick crash points from a dry run).
  uint64_t mutating_calls() const;
  // The power cut: keeps what was durable (see the header comment), revives the machine.
  void crash(crash_mode mode = crash_mode::lose_unsynced);

  // Test access that bypasses durability, for corruption tests: the bytes reads see now, and
  // replacing them as if the disk itself changed (the new bytes are durable at once).
  std::optional<std::string> contents(const std::string& path) const;
  void set_contents(const std::string& path, std::string data);
  // Bytes of file data written but not yet synced, over all files.
  uint64_t unsynced_bytes() const;

 private:
  friend class sim_file;

  struct inode {
    bool dir = false;
    std::string data;                // file: what reads see
    std::string durable;             // file: what a crash leaves
    uint64_t dirty_lo = UINT64_MAX;  // file: [dirty_lo, dirty_hi) may differ from durable
    uint64_t dirty_hi = 0;
    std::map<std::string, uint64_t> entries;          // dir: names now
    std::map<std::string, uint64_t> durable_entries;  // dir: names a crash leaves
    int open_handles = 0;
  };
  // One queued name change: set (ino != 0) or erase (ino == 0) dir/name.
  struct link_change {
    uint64_t dir;
    std::string name;
    uint64_t ino;
  };
  // Name changes made by one call, applied atomically.
  using meta_op = std::vector<link_change>;

  struct lookup {
    uint64_t parent = 0;  // 0: the parent does not exist
    std::string name;
    uint64_t ino = 0;  // 0: no such name
  };

  lookup resolve(const std::string& path) const;
  file_error error(int code, std::string_view op, std::string_view path) const;
  // Checks down state, the crash countdown and injected faults for one call.
  std::optional<file_error> gate(sim_op op, bool mutating, std::string_view path,
                                 size_t* partial = nullptr);
  void apply_now(const meta_op& op);
  void apply_durable(const meta_op& op);
  void mark_dirty(inode& n, uint64_t lo, uint64_t hi);
  void sync_file(inode& n);
  void collect_garbage();

  mutable std::mutex mu_;
  std::map<uint64_t, inode> inodes_;
  uint64_t next_ino_ = 2;
  static constexpr uint64_t root_ = 1;
  std::deque<meta_op> pending_;
  std::vector<sim_fault> faults_;
  std::optional<uint64_t> crash_countdown_;
  bool down_ = false;
  uint64_t mutating_calls_ = 0;
  uint64_t generation_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace cairn::base
