// The write-ahead log: raft's entries and hard state, made durable before anything that depends
// on them is sent or applied. Owns the segment files of one directory (<data-dir>/member/wal):
// creating the log, appending batches (one fdatasync per batch), cutting a new segment when the
// current one is full, replaying everything after a snapshot on open (cutting off a torn tail,
// refusing real corruption with the file and offset), and releasing segments a snapshot covers.
// The byte format is specified at the top of segment.cc.
//
// Every write goes through base::file_system. A write that fails (ENOSPC, EIO) before its
// fdatasync, once the file is cut back to the last durable batch and that cut is synced, leaves
// the log as it was: the call fails, nothing changed, and the same save can be tried again (a
// full disk that gets space back). So does a new segment that cannot be made (the current one
// then grows past its preallocated size). Any other failure (a failed fdatasync above all: what
// reached the disk is unknown) poisons the log: every later call returns the same error, and
// the node is expected to stop (etcd does the same).
//
// Thread-safety: none; one owner (the raft loop) calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "base/file.h"
#include "base/stats.h"
#include "raftpb/raft.pb.h"
#include "walpb/record.pb.h"

namespace cairn::wal {

inline constexpr uint64_t default_segment_size = 64 * 1024 * 1024;

struct options {
  // A segment is preallocated to this size and a new one is started once a batch ends past it
  // (a batch never spans segments, so a segment can grow beyond it).
  uint64_t segment_size = default_segment_size;
  // Seeds the per-segment salts; 0 draws from std::random_device.
  uint64_t seed = 0;
  // Where fsync durations and bytes written are recorded (the disk metrics); may be null.
  base::disk_stats* stats = nullptr;
};

enum class errc {
  not_found,           // no log in that directory
  already_exists,      // create() on a directory that exists
  corrupt,             // damage that is not a torn tail; message names file and offset
  snapshot_not_found,  // the log has no mark for the snapshot asked for
  io,                  // a file-layer call failed (sys_errno says how)
};

struct error {
  errc code = errc::io;
  std::string message;
  int sys_errno = 0;
};

template <class T>
using result = cairn::expected<T, error>;

struct snapshot_mark {
  uint64_t index = 0;
  uint64_t term = 0;
};

// What open() read back.
struct replay {
  std::string metadata;
  raftpb::HardState state;
  // Entries after the snapshot index, contiguous, as the last write of each index left them.
  std::vector<raftpb::Entry> entries;
};

class wal {
 public:
  // Creates a new log in `dir`, which must not exist (its parent is created if missing).
  // Atomic: the directory appears only once its first segment is durable.
  static result<std::unique_ptr<wal>> create(base::file_system& fs, const std::string& dir,
                                             std::string_view metadata, const options& opts = {});
  struct opened;
  // Opens an existing log and reads every record after the snapshot `from` ({0, 0} for none),
  // whose mark must be in the log. A torn tail is cut off (and logged); appending continues at
  // the end.
  static result<opened> open(base::file_system& fs, const std::string& dir, snapshot_mark from,
                             const options& opts = {});
  static result<bool> exists(base::file_system& fs, const std::string& dir);

  ~wal();
  wal(const wal&) = delete;
  wal& operator=(const wal&) = delete;

  // Appends entries, then the hard state if it changed, as one batch with one fdatasync.
  // Entries must be contiguous and start at most one past the last index (an earlier start
  // overwrites the tail, as raft does on a conflict). Does nothing if there is nothing new.
  result<void> save(const raftpb::HardState& state, std::span<const raftpb::Entry> entries);
  // Records that a raft snapshot at mark was saved; synced.
  result<void> save_snapshot(snapshot_mark mark);
  // Removes the segments whose entries are all at or below index (a saved snapshot's index).
  result<void> release_to(uint64_t index);
  result<void> close();

  uint64_t last_index() const { return last_index_; }
  // True after a failure the log cannot come back from (see the top of this file).
  bool poisoned() const { return failed_.has_value(); }
  // The segment files in use, oldest first (names only).
  std::vector<std::string> segment_names() const;

 private:
  struct segment {
    uint64_t seq;
    uint64_t first_index;
  };

  wal(base::file_system& fs, std::string dir, const options& opts);
  walpb::Record chained(walpb::RecordType type, std::string data);
  // Writes a new segment (via a .tmp name, synced, renamed, directory synced) and makes it the
  // one appended to.
  result<void> start_segment(const std::string& dir, uint64_t seq, uint64_t first_index);
  result<void> append_batch(std::span<const walpb::Record> records);
  result<void> fail(const base::file_error& e);

  base::file_system& fs_;
  std::string dir_;
  options opts_;
  std::mt19937_64 rng_;
  std::string metadata_;
  std::vector<segment> segments_;
  std::unique_ptr<base::file> file_;  // the newest segment, appended to
  uint32_t salt_ = 0;
  uint64_t offset_ = 0;
  uint64_t next_batch_ = 1;
  uint32_t chain_ = 0;
  uint64_t last_index_ = 0;
  raftpb::HardState state_;
  snapshot_mark mark_;
  std::optional<error> failed_;
};

struct wal::opened {
  std::unique_ptr<wal> log;
  replay data;
};

// <seq>-<index>.wal, 16 hex digits each.
std::string segment_file_name(uint64_t seq, uint64_t first_index);
bool parse_segment_file_name(std::string_view name, uint64_t* seq, uint64_t* first_index);

}  // namespace cairn::wal
