// The storage of one simulated node, with the crash model of a real disk: a write lands in the
// page cache at once (`live()`, what raft reads and what the node serves from) and reaches stable
// storage only at the next sync(). A crash throws every unsynced write away; the node restarts
// from what was durable. Snapshot saves are synced at once, as a snapshot file plus the WAL fsync
// that etcd does before compacting. Owned by one simulated node; not thread-safe.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "raft/log.h"
#include "raft/storage.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft::sim {

class disk {
 public:
  disk();

  // What the running node sees (written, synced or not). The reference changes at crash().
  const memory_storage& live() const { return *live_; }
  const memory_storage& durable() const { return *durable_; }

  void append(std::span<const raftpb::Entry> ents);
  void set_hard_state(const raftpb::HardState& hs);
  void apply_snapshot(const raftpb::Snapshot& snap);
  // Everything written so far becomes durable.
  void sync();
  bool has_unsynced() const { return !unsynced_.empty(); }

  // The application snapshots its state at `index` (with the membership in force there) and
  // drops the log up to `compact_to` (<= index). Synced, with every earlier write.
  void save_snapshot(log_index index, const raftpb::ConfState& cs, const std::string& data,
                     log_index compact_to);

  // Power loss: unsynced writes are gone and the page cache is rebuilt from stable storage.
  void crash();

  // The last entry on stable storage (the snapshot's when the log is empty).
  entry_id durable_last() const;
  entry_id live_last() const;

 private:
  struct write {
    enum class kind { append, hard_state, snapshot } what;
    std::vector<raftpb::Entry> entries;
    raftpb::HardState hard_state;
    raftpb::Snapshot snapshot;
  };

  std::unique_ptr<memory_storage> live_;
  std::unique_ptr<memory_storage> durable_;
  std::vector<write> unsynced_;
};

}  // namespace cairn::raft::sim
