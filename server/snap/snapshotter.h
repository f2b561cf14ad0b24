// Raft snapshot files: saving a snapshot (membership and metadata, plus whatever data the
// server puts in it) atomically, loading the newest one that is intact, and keeping only the
// newest few. Owns the directory <data-dir>/member/snap (its *.snap and *.snap.tmp files).
// The file format and the save protocol are specified at the top of snapshotter.cc.
//
// Thread-safety: none; one owner (the raft loop) calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "base/file.h"
#include "raftpb/raft.pb.h"

namespace cairn::snap {

enum class errc {
  no_snapshot,  // no intact snapshot file (broken ones are logged and skipped)
  corrupt,      // a file that is not an intact snapshot (decode only; load skips these)
  io,           // a file-layer call failed (sys_errno says how)
};

struct error {
  errc code = errc::io;
  std::string message;
  int sys_errno = 0;
};

template <class T>
using result = cairn::expected<T, error>;

// The bytes of a snapshot file, and back. Decoding checks the CRC and that the snapshot has an
// index; it is what the fuzz target drives.
std::string encode_snapshot_file(const raftpb::Snapshot& s);
result<raftpb::Snapshot> decode_snapshot_file(std::string_view bytes);

// <term>-<index>.snap, 16 hex digits each.
std::string snapshot_file_name(uint64_t term, uint64_t index);
bool parse_snapshot_file_name(std::string_view name, uint64_t* term, uint64_t* index);

class snapshotter {
 public:
  static constexpr size_t default_keep = 5;

  snapshotter(base::file_system& fs, std::string dir, size_t keep = default_keep);

  // Writes the snapshot durably (temp file, fdatasync, rename, directory fsync), then removes
  // all but the newest `keep` snapshot files. A snapshot with index 0 is empty: nothing is
  // written. On error the newer file may or may not exist; older ones are untouched.
  result<void> save(const raftpb::Snapshot& s);
  // The newest intact snapshot. Broken files are skipped, each with a warning in the log.
  result<raftpb::Snapshot> load();
  // The newest intact snapshot for which acceptable(index, term) holds (e.g. one the WAL has a
  // mark for).
  result<raftpb::Snapshot> load_newest(
      const std::function<bool(uint64_t index, uint64_t term)>& acceptable);
  // Snapshot file names, newest first.
  result<std::vector<std::string>> names();

 private:
  base::file_system& fs_;
  std::string dir_;
  size_t keep_;
};

}  // namespace cairn::snap
