#include "raft/sim/disk.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::raft::sim {

namespace {

entry_id last_of(const memory_storage& s) {
  const log_index last = s.last_index();
  auto t = s.term(last);
  return {last, t ? *t : raft_term{0}};
}

void copy_into(const memory_storage& from, memory_storage& to) {
  auto snap = from.snapshot();
  const log_index first = from.first_index();
  const log_index snap_index = snap ? snap->metadata().index() : 0;
  // The log may keep entries from before its snapshot (compaction kept a tail behind it): start
  // from the log's own first entry, then put the snapshot back on top.
  if (first - 1 > 0 && first - 1 < snap_index) {
    raftpb::Snapshot base;
    base.mutable_metadata()->set_index(first - 1);
    base.mutable_metadata()->set_term(from.term(first - 1)->value());
    (void)to.apply_snapshot(base);
  } else if (snap_index > 0) {
    (void)to.apply_snapshot(*snap);
  }
  if (from.last_index() >= first) {
    auto ents = from.entries(first, from.last_index() + 1, no_limit);
    if (!ents) {
      std::fprintf(stderr, "sim disk: cannot read back durable entries\n");
      std::abort();
    }
    to.append(*ents);
  }
  if (first - 1 > 0 && first - 1 < snap_index) {
    (void)to.create_snapshot(snap_index, snap->metadata().conf_state(), snap->data());
  }
  to.set_hard_state(from.initial().hard_state);
}

}  // namespace

disk::disk()
    : live_(std::make_unique<memory_storage>()), durable_(std::make_unique<memory_storage>()) {}

void disk::append(std::span<const raftpb::Entry> ents) {
  if (ents.empty()) return;
  live_->append(ents);
  unsynced_.push_back({write::kind::append, {ents.begin(), ents.end()}, {}, {}});
}

void disk::set_hard_state(const raftpb::HardState& hs) {
  live_->set_hard_state(hs);
  unsynced_.push_back({write::kind::hard_state, {}, hs, {}});
}

void disk::apply_snapshot(const raftpb::Snapshot& snap) {
  (void)live_->apply_snapshot(snap);
  unsynced_.push_back({write::kind::snapshot, {}, {}, snap});
}

void disk::sync() {
  for (write& w : unsynced_) {
    switch (w.what) {
      case write::kind::append:
        durable_->append(w.entries);
        break;
      case write::kind::hard_state:
        durable_->set_hard_state(w.hard_state);
        break;
      case write::kind::snapshot:
        (void)durable_->apply_snapshot(w.snapshot);
        break;
    }
  }
  unsynced_.clear();
}

void disk::save_snapshot(log_index index, const raftpb::ConfState& cs, const std::string& data,
                         log_index compact_to) {
  sync();
  for (memory_storage* s : {live_.get(), durable_.get()}) {
    if (index <= s->first_index() - 1 || index > s->last_index()) continue;
    (void)s->create_snapshot(index, cs, data);
    if (compact_to > s->first_index() - 1) (void)s->compact(compact_to);
  }
}

void disk::crash() {
  unsynced_.clear();
  live_ = std::make_unique<memory_storage>();
  copy_into(*durable_, *live_);
}

entry_id disk::durable_last() const { return last_of(*durable_); }
entry_id disk::live_last() const { return last_of(*live_); }

}  // namespace cairn::raft::sim
