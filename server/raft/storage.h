// The log as the raft core reads it (`storage`), and an in-memory implementation
// (`memory_storage`) that tests, the simulator and the server's startup path use.
//
// raft only ever reads storage. The application writes what each Ready hands it (entries, hard
// state, snapshot) into its storage *before* calling advance(), so that storage always holds what
// raft believes is stable. memory_storage guards its state with one mutex: every method is
// thread-safe (the server's apply thread creates snapshots while the raft thread reads).
#pragma once

#include <cstdint>
#include <expected>
#include <mutex>
#include <span>
#include <vector>

#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

enum class storage_error {
  compacted,                         // the index lies before the first kept entry
  unavailable,                       // the index lies after the last entry
  snapshot_out_of_date,              // a snapshot older than the one held was offered
  snapshot_temporarily_unavailable,  // no snapshot can be produced right now; try later
};
std::string_view to_string(storage_error e);

// What a node restarts from.
struct initial_state {
  raftpb::HardState hard_state;
  raftpb::ConfState conf_state;
};

// Read-only view of the persisted log. Indexes: entries exist in [first_index(), last_index()];
// first_index() - 1 is the index of the last snapshot (or 0), whose term term() must still report.
class storage {
 public:
  virtual ~storage() = default;

  [[nodiscard]] virtual initial_state initial() const = 0;
  // Entries [lo, hi), cut after the first entry that brings the total (protobuf size) over
  // max_bytes; at least one entry is returned when lo < hi.
  [[nodiscard]] virtual std::expected<std::vector<raftpb::Entry>, storage_error> entries(
      log_index lo, log_index hi, std::uint64_t max_bytes) const = 0;
  [[nodiscard]] virtual std::expected<raft_term, storage_error> term(log_index i) const = 0;
  [[nodiscard]] virtual log_index first_index() const = 0;
  [[nodiscard]] virtual log_index last_index() const = 0;
  // The most recent snapshot, to send to a follower that is too far behind.
  [[nodiscard]] virtual std::expected<raftpb::Snapshot, storage_error> snapshot() const = 0;
};

// Keeps the whole log in memory. Index 0 of `entries_` is a placeholder carrying the index and
// term of the last snapshot, so term(first_index() - 1) always answers.
class memory_storage final : public storage {
 public:
  memory_storage();

  initial_state initial() const override;
  std::expected<std::vector<raftpb::Entry>, storage_error> entries(
      log_index lo, log_index hi, std::uint64_t max_bytes) const override;
  std::expected<raft_term, storage_error> term(log_index i) const override;
  log_index first_index() const override;
  log_index last_index() const override;
  std::expected<raftpb::Snapshot, storage_error> snapshot() const override;

  // --- writes, done by the application while handling a Ready ---
  void set_hard_state(const raftpb::HardState& hs);
  // Appends entries, replacing any existing suffix they overlap (a follower's conflicting tail).
  // Entries older than the snapshot are skipped. A gap after last_index() aborts: that is a bug.
  void append(std::span<const raftpb::Entry> ents);
  // The same, taking ownership (the application moves a Ready's entries in once persisted).
  void append(std::vector<raftpb::Entry>&& ents);
  // Replaces everything with the snapshot (a follower installing one from its leader).
  std::expected<void, storage_error> apply_snapshot(const raftpb::Snapshot& snap);
  // Records a snapshot of the applied state at index i (<= last_index) with the given membership.
  std::expected<raftpb::Snapshot, storage_error> create_snapshot(log_index i,
                                                                 const raftpb::ConfState& cs,
                                                                 std::string data);
  // Drops entries before compact_index (it becomes the placeholder). compact_index must be
  // <= last_index(); compacting below the current first index is `compacted`.
  std::expected<void, storage_error> compact(log_index compact_index);

 private:
  log_index offset_locked() const { return entries_.front().index(); }
  log_index last_locked() const { return offset_locked() + entries_.size() - 1; }

  mutable std::mutex mu_;
  raftpb::HardState hard_state_;        // guarded by mu_
  raftpb::Snapshot snapshot_;           // guarded by mu_
  std::vector<raftpb::Entry> entries_;  // guarded by mu_; never empty (placeholder first)
};

// Cuts `ents` after the first entry that brings the running size over max_bytes (always keeping
// one). Used for storage reads, append messages and committed-entry batches alike.
void limit_size(std::vector<raftpb::Entry>& ents, std::uint64_t max_bytes);

}  // namespace cairn::raft
