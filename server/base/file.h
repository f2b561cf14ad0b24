// The file layer: every byte Cairn must find again after a crash (WAL segments, snapshot files,
// backend copies and swaps) is written, synced, renamed and removed through `file_system`, so
// that tests can put `sim_file_system` (sim_file.h) underneath and crash it.
//
// The contract is POSIX's, read strictly, because that is what the simulation enforces:
//   - write_at() data survives a crash only after sync_data() on that file returns;
//   - a new name (create, rename, create_dir) or a removal survives only after sync_dir() on
//     the directory that holds it returns;
//   - after a failed sync_data() nothing is known about the unsynced data: callers must stop
//     writing (the WAL poisons itself, the node then aborts), never retry the sync.
// Errors are values (`file_error`, carrying errno) so a caller can tell ENOSPC from EIO.
//
// Thread-safety: a file_system may be shared by threads working on different files (both
// implementations lock or are stateless); one `file` object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"

namespace cairn::base {

struct file_error {
  int code = 0;         // an errno value: ENOSPC, EIO, ENOENT, EEXIST, ...
  std::string message;  // "<operation> <path>: <description>"
};

template <class T>
using file_result = cairn::expected<T, file_error>;

enum class open_mode {
  read_only,         // an existing file; writes fail
  read_write,        // an existing file
  create_exclusive,  // a new file; EEXIST if the name is taken
  create_truncate,   // a new file, or an existing one emptied
};

// An open file. Offsets are explicit (pread/pwrite style): there is no file position.
class file {
 public:
  virtual ~file() = default;

  virtual const std::string& path() const = 0;
  // Reads up to out.size() bytes at offset; fewer only at end of file.
  virtual file_result<size_t> read_at(uint64_t offset, std::span<char> out) = 0;
  // Writes all of data at offset, growing the file if needed. On error a prefix may be written.
  virtual file_result<void> write_at(uint64_t offset, std::string_view data) = 0;
  // fdatasync: the data and the size become durable.
  virtual file_result<void> sync_data() = 0;
  // Reserves [0, length) so later writes there cannot fail for space; grows the size to length
  // (zero-filled) if it is smaller, never shrinks. Durable with the next sync_data().
  virtual file_result<void> preallocate(uint64_t length) = 0;
  // Sets the size to length (cutting or zero-extending). Durable with the next sync_data().
  virtual file_result<void> truncate(uint64_t length) = 0;
  virtual file_result<uint64_t> size() = 0;
  // Closing twice is harmless; every other call on a closed file fails with EBADF.
  virtual file_result<void> close() = 0;
};

class file_system {
 public:
  virtual ~file_system() = default;

  virtual file_result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) = 0;
  // Atomically replaces `to` if it exists. Durable after sync_dir() of both directories.
  virtual file_result<void> rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or an empty directory. Durable after sync_dir() of its directory.
  virtual file_result<void> remove(const std::string& path) = 0;
  // Creates one directory level (EEXIST if present). Durable after sync_dir() of its parent.
  virtual file_result<void> create_dir(const std::string& path) = 0;
  // fsync on a directory: makes the names created, renamed or removed in it durable.
  virtual file_result<void> sync_dir(const std::string& path) = 0;
  // The names in a directory (no "." or ".."), sorted.
  virtual file_result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual file_result<uint64_t> file_size(const std::string& path) = 0;
  // False only when the path does not exist; other failures are errors.
  virtual file_result<bool> exists(const std::string& path) = 0;
  virtual file_result<bool> is_dir(const std::string& path) = 0;
};

// The real file system (POSIX calls). Stateless; one shared instance is enough.
file_system& posix_file_system();

// Path helpers; paths are '/'-separated strings.
std::string join_path(std::string_view dir, std::string_view name);
// "a/b/c" → "a/b"; "c" → "."; "/c" → "/".
std::string parent_dir(std::string_view path);
// "a/b/c" → "c".
std::string_view base_name(std::string_view path);

// Reads a whole file.
file_result<std::string> read_file(file_system& fs, const std::string& path);
// Writes a whole file so that after a crash `path` holds either its old content or all of
// `data`: write to path + ".tmp", sync it, rename over path, sync the directory.
file_result<void> write_file_atomically(file_system& fs, const std::string& path,
                                        std::string_view data);
// Creates path and any missing parents, syncing each parent so the new directories survive.
file_result<void> create_dirs(file_system& fs, const std::string& path);

}  // namespace cairn::base
