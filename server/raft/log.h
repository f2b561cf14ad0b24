// The raft log as one node sees it: the persisted part (read through `storage`) followed by the
// not-yet-persisted tail (`unstable`), plus the commit and apply cursors. Owned by one raft
// instance; not thread-safe (the core is single-threaded).
//
//   storage: [first_index .. stable last]  unstable: [offset .. last_index]
//   committed: highest index known committed (§3.5); applied: highest index handed to the
//   application and acknowledged by advance().
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

// Entries (and possibly a snapshot) raft has accepted but the application has not yet persisted.
// entries[k] has index offset + k. When a snapshot is present, offset = snapshot index + 1.
class unstable {
 public:
  explicit unstable(log_index offset = 1) : offset_(offset) {}

  std::optional<log_index> maybe_first_index() const;
  std::optional<log_index> maybe_last_index() const;
  std::optional<raft_term> maybe_term(log_index i) const;

  // The application persisted everything up to (i, t): drop it. Ignored when the entry at i was
  // since replaced by one of another term (the persisted copy is stale; the new one is pending).
  void stable_to(log_index i, raft_term t);
  void stable_snap_to(log_index i);
  void restore(const raftpb::Snapshot& snap);
  // Appends, truncating whatever the new entries overlap (§3.5: a conflicting suffix goes).
  // Takes the entries by value: callers move them in, so each entry is copied once on its way
  // into the log (the throughput benchmark showed copies dominating).
  void truncate_and_append(std::vector<raftpb::Entry> ents);
  std::vector<raftpb::Entry> slice(log_index lo, log_index hi) const;

  log_index offset() const { return offset_; }
  const std::vector<raftpb::Entry>& entries() const { return entries_; }
  const std::optional<raftpb::Snapshot>& snapshot() const { return snapshot_; }

 private:
  std::optional<raftpb::Snapshot> snapshot_;
  std::vector<raftpb::Entry> entries_;
  log_index offset_;
};

// A (index, term) pair, printed as index@term in transcripts.
struct entry_id {
  log_index index = 0;
  raft_term term;
  friend bool operator==(const entry_id&, const entry_id&) = default;
};

class raft_log {
 public:
  // Reads the persisted state from storage; everything in it counts as stable. Commit and applied
  // start at the snapshot index; the caller then loads the hard state's commit.
  raft_log(const storage& s, std::uint64_t max_committed_bytes_per_ready);

  log_index first_index() const;
  log_index last_index() const;
  raft_term last_term() const;
  // Term of entry i: 0 past last_index() (callers treat that as "no such entry"); an error before
  // first_index()-1 (compacted).
  std::expected<raft_term, storage_error> term(log_index i) const;
  // term(), with "compacted" read as term 0: for places where a compacted entry simply does not
  // match anything.
  raft_term term_or_zero(log_index i) const;
  bool match_term(log_index i, raft_term t) const {
    auto got = term(i);
    return got.has_value() && *got == t;
  }

  // Follower side of AppendEntries (§3.5): when (index, log_term) matches, appends the entries
  // (dropping a conflicting suffix), advances commit to min(committed, last new) and returns the
  // last new index; otherwise nullopt.
  std::optional<log_index> maybe_append(log_index index, raft_term log_term, log_index committed,
                                        std::vector<raftpb::Entry> ents);
  // Leader side: appends at the end. Returns the new last index.
  log_index append(std::vector<raftpb::Entry> ents);
  // Index of the first entry of `ents` whose term differs from ours (or which we lack); 0 if all
  // match.
  log_index find_conflict(std::span<const raftpb::Entry> ents) const;
  // Fast log backtracking (§5.3 of the thesis' discussion of rejections): the largest index <= i
  // whose term is <= t, with its term. Both sides use it to skip a whole term per round trip.
  entry_id find_conflict_by_term(log_index i, raft_term t) const;

  // §3.6.1: a voter grants only to a candidate whose log is at least as up to date as its own.
  bool is_up_to_date(log_index last_index, raft_term last_term) const;

  void commit_to(log_index i);  // aborts when i > last_index(): a leader never sends that
  // Advances commit to max_index if that entry is of `term` (§3.6.2: only entries of the current
  // term are committed by counting replicas). Returns true when commit moved.
  bool maybe_commit(log_index max_index, raft_term term);
  void applied_to(log_index i);

  void stable_to(log_index i, raft_term t) { unstable_.stable_to(i, t); }
  void stable_snap_to(log_index i) { unstable_.stable_snap_to(i); }
  // Highest index that is both stable and ours (a leader counts itself only up to here, §10.2.1).
  log_index last_stable_index() const;

  void restore(const raftpb::Snapshot& snap);

  // Entries [lo, hi) limited to max_bytes, from storage and/or unstable.
  std::expected<std::vector<raftpb::Entry>, storage_error> slice(log_index lo, log_index hi,
                                                                 std::uint64_t max_bytes) const;
  std::expected<std::vector<raftpb::Entry>, storage_error> entries_from(
      log_index i, std::uint64_t max_bytes) const;
  std::expected<raftpb::Snapshot, storage_error> snapshot() const;

  const std::vector<raftpb::Entry>& unstable_entries() const { return unstable_.entries(); }
  const std::optional<raftpb::Snapshot>& unstable_snapshot() const { return unstable_.snapshot(); }
  bool has_next_committed_entries() const;
  std::vector<raftpb::Entry> next_committed_entries() const;

  log_index committed() const { return committed_; }
  log_index applied() const { return applied_; }
  // Only for loading a persisted hard state at startup.
  void set_committed(log_index c) { committed_ = c; }

 private:
  const storage& storage_;
  unstable unstable_;
  log_index committed_ = 0;
  log_index applied_ = 0;
  std::uint64_t max_committed_bytes_;
};

}  // namespace cairn::raft
