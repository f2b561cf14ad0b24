#include "raft/log.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cairn::raft {

namespace {

[[noreturn]] void die(const char* what, std::uint64_t a, std::uint64_t b) {
  std::fprintf(stderr, "raft log: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

}  // namespace

// ---------------------------------------------------------------- unstable

std::optional<log_index> unstable::maybe_first_index() const {
  if (snapshot_) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<log_index> unstable::maybe_last_index() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<raft_term> unstable::maybe_term(log_index i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata().index() == i)
      return raft_term{snapshot_->metadata().term()};
    return std::nullopt;
  }
  const auto last = maybe_last_index();
  if (!last || i > *last) return std::nullopt;
  return raft_term{entries_[i - offset_].term()};
}

void unstable::stable_to(log_index i, raft_term t) {
  const auto got = maybe_term(i);
  if (!got || *got != t || i < offset_) return;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
  offset_ = i + 1;
}

void unstable::stable_snap_to(log_index i) {
  if (snapshot_ && snapshot_->metadata().index() == i) snapshot_.reset();
}

void unstable::restore(const raftpb::Snapshot& snap) {
  offset_ = snap.metadata().index() + 1;
  entries_.clear();
  snapshot_ = snap;
}

void unstable::truncate_and_append(std::vector<raftpb::Entry> ents) {
  if (ents.empty()) return;
  const log_index after = ents.front().index();
  if (after == offset_ + entries_.size()) {
    // Directly after what we hold: plain append.
  } else if (after <= offset_) {
    // Replaces everything unstable (and, from the application's point of view, the persisted
    // suffix from `after` on: it will overwrite it when it persists these).
    offset_ = after;
    entries_.clear();
  } else {
    // Keeps [offset_, after) and replaces the rest.
    entries_.resize(after - offset_);
  }
  if (entries_.empty()) {
    entries_ = std::move(ents);
  } else {
    entries_.insert(entries_.end(), std::make_move_iterator(ents.begin()),
                    std::make_move_iterator(ents.end()));
  }
}

std::vector<raftpb::Entry> unstable::slice(log_index lo, log_index hi) const {
  if (lo > hi || lo < offset_ || hi > offset_ + entries_.size())
    die("unstable slice out of bounds (lo, hi)", lo, hi);
  return {entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset_),
          entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_)};
}

// ---------------------------------------------------------------- raft_log

raft_log::raft_log(const storage& s, std::uint64_t max_committed_bytes_per_ready)
    : storage_(s),
      unstable_(s.last_index() + 1),
      max_committed_bytes_(max_committed_bytes_per_ready) {
  committed_ = s.first_index() - 1;
  applied_ = committed_;
}

log_index raft_log::first_index() const {
  if (auto i = unstable_.maybe_first_index()) return *i;
  return storage_.first_index();
}

log_index raft_log::last_index() const {
  if (auto i = unstable_.maybe_last_index()) return *i;
  return storage_.last_index();
}

raft_term raft_log::last_term() const {
  auto t = term(last_index());
  if (!t) die("last_term: unexpected error reading term of last index", last_index(), 0);
  return *t;
}

std::expected<raft_term, storage_error> raft_log::term(log_index i) const {
  const log_index dummy = first_index() - 1;
  if (i < dummy) return std::unexpected(storage_error::compacted);
  if (i > last_index()) return raft_term{0};
  if (auto t = unstable_.maybe_term(i)) return *t;
  auto t = storage_.term(i);
  if (t) return *t;
  if (t.error() == storage_error::compacted || t.error() == storage_error::unavailable) {
    return std::unexpected(t.error());
  }
  die("term: unexpected storage error at index", i, 0);
}

raft_term raft_log::term_or_zero(log_index i) const {
  auto t = term(i);
  if (t) return *t;
  if (t.error() == storage_error::compacted) return raft_term{0};
  die("term_or_zero: unexpected storage error at index", i, 0);
}

std::optional<log_index> raft_log::maybe_append(log_index index, raft_term log_term,
                                                log_index committed,
                                                std::vector<raftpb::Entry> ents) {
  if (!match_term(index, log_term)) return std::nullopt;
  const log_index last_new = index + ents.size();
  const log_index conflict = find_conflict(ents);
  if (conflict != 0) {
    if (conflict <= committed_)
      die("maybe_append: conflict with committed entry (conflict, committed)", conflict,
          committed_);
    ents.erase(ents.begin(), ents.begin() + static_cast<std::ptrdiff_t>(conflict - (index + 1)));
    append(std::move(ents));
  }
  commit_to(std::min(committed, last_new));
  return last_new;
}

log_index raft_log::append(std::vector<raftpb::Entry> ents) {
  if (ents.empty()) return last_index();
  if (ents.front().index() - 1 < committed_)
    die("append: would overwrite committed (after, committed)", ents.front().index() - 1,
        committed_);
  unstable_.truncate_and_append(std::move(ents));
  return last_index();
}

log_index raft_log::find_conflict(std::span<const raftpb::Entry> ents) const {
  for (const auto& e : ents) {
    if (!match_term(e.index(), raft_term{e.term()})) return e.index();
  }
  return 0;
}

entry_id raft_log::find_conflict_by_term(log_index i, raft_term t) const {
  if (i > last_index()) return {i, raft_term{0}};
  for (;;) {
    auto got = term(i);
    if (!got) return {i, raft_term{0}};  // compacted: we cannot look further back
    if (*got <= t) return {i, *got};
    if (i == 0) return {0, raft_term{0}};
    --i;
  }
}

bool raft_log::is_up_to_date(log_index li, raft_term lt) const {
  return lt > last_term() || (lt == last_term() && li >= last_index());
}

void raft_log::commit_to(log_index i) {
  if (i <= committed_) return;  // commit never moves back
  if (i > last_index()) die("commit_to: index beyond last index (commit, last)", i, last_index());
  committed_ = i;
}

bool raft_log::maybe_commit(log_index max_index, raft_term t) {
#ifdef CAIRN_PLANTED_BUG_RAFT_COMMIT_OLD_TERM
  // Planted bug: counts replicas of earlier terms' entries (the thesis' Figure 3.7 hazard).
  (void)t;
  if (max_index > committed_) {
    commit_to(max_index);
    return true;
  }
  return false;
#else
  if (max_index > committed_ && term_or_zero(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
#endif
}

void raft_log::applied_to(log_index i) {
  if (i == 0) return;
  if (i > committed_ || i < applied_)
    die("applied_to out of range (applied, committed)", i, committed_);
  applied_ = i;
}

log_index raft_log::last_stable_index() const {
  if (unstable_.snapshot()) return 0;  // only followers install snapshots; nothing to count
  return std::min(unstable_.offset() - 1, last_index());
}

void raft_log::restore(const raftpb::Snapshot& snap) {
  committed_ = snap.metadata().index();
  unstable_.restore(snap);
}

std::expected<std::vector<raftpb::Entry>, storage_error> raft_log::slice(
    log_index lo, log_index hi, std::uint64_t max_bytes) const {
  if (lo > hi) die("slice: lo > hi", lo, hi);
  if (lo < first_index()) return std::unexpected(storage_error::compacted);
  if (hi > last_index() + 1) die("slice: hi beyond last index + 1", hi, last_index());
  std::vector<raftpb::Entry> out;
  if (lo == hi) return out;
  const log_index off = unstable_.offset();
  if (lo < off) {
    auto stored = storage_.entries(lo, std::min(hi, off), max_bytes);
    if (!stored) {
      if (stored.error() == storage_error::compacted) return std::unexpected(stored.error());
      die("slice: storage entries unavailable (lo, hi)", lo, std::min(hi, off));
    }
    // Storage stopped early because of the size limit: nothing from unstable may follow.
    if (stored->size() < std::min(hi, off) - lo) return std::move(*stored);
    out = std::move(*stored);
  }
  if (hi > off) {
    auto tail = unstable_.slice(std::max(lo, off), hi);
    out.insert(out.end(), tail.begin(), tail.end());
  }
  limit_size(out, max_bytes);
  return out;
}

std::expected<std::vector<raftpb::Entry>, storage_error> raft_log::entries_from(
    log_index i, std::uint64_t max_bytes) const {
  if (i > last_index()) return std::vector<raftpb::Entry>{};
  return slice(i, last_index() + 1, max_bytes);
}

std::expected<raftpb::Snapshot, storage_error> raft_log::snapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_.snapshot();
}

bool raft_log::has_next_committed_entries() const {
  return committed_ > std::max(applied_, first_index() - 1);
}

std::vector<raftpb::Entry> raft_log::next_committed_entries() const {
  const log_index lo = std::max(applied_ + 1, first_index());
  if (committed_ + 1 <= lo) return {};
  auto ents = slice(lo, committed_ + 1, max_committed_bytes_);
  if (!ents) die("next_committed_entries: unexpected compaction (lo, committed)", lo, committed_);
  return std::move(*ents);
}

}  // namespace cairn::raft
