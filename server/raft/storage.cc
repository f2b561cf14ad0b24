#include "raft/storage.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::raft {

namespace {

[[noreturn]] void die(const char* what, log_index a, log_index b) {
  std::fprintf(stderr, "raft storage: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

}  // namespace

std::string_view to_string(storage_error e) {
  switch (e) {
    case storage_error::compacted:
      return "requested index is unavailable due to compaction";
    case storage_error::unavailable:
      return "requested entry at index is unavailable";
    case storage_error::snapshot_out_of_date:
      return "requested index is older than the existing snapshot";
    case storage_error::snapshot_temporarily_unavailable:
      return "snapshot is temporarily unavailable";
  }
  return "unknown storage error";
}

void limit_size(std::vector<raftpb::Entry>& ents, std::uint64_t max_bytes) {
  if (ents.empty()) return;
  std::uint64_t size = ents[0].ByteSizeLong();
  std::size_t keep = 1;
  for (; keep < ents.size(); ++keep) {
    size += ents[keep].ByteSizeLong();
    if (size > max_bytes) break;
  }
  ents.resize(keep);
}

memory_storage::memory_storage() { entries_.emplace_back(); }

initial_state memory_storage::initial() const {
  std::lock_guard lock(mu_);
  return {hard_state_, snapshot_.metadata().conf_state()};
}

std::expected<std::vector<raftpb::Entry>, storage_error> memory_storage::entries(
    log_index lo, log_index hi, std::uint64_t max_bytes) const {
  std::lock_guard lock(mu_);
  const log_index offset = offset_locked();
  if (lo <= offset) return std::unexpected(storage_error::compacted);
  if (hi > last_locked() + 1) die("entries: hi out of bound (hi, last)", hi, last_locked());
  if (lo > hi) die("entries: lo > hi", lo, hi);
  std::vector<raftpb::Entry> out(entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset),
                                 entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset));
  limit_size(out, max_bytes);
  return out;
}

std::expected<raft_term, storage_error> memory_storage::term(log_index i) const {
  std::lock_guard lock(mu_);
  const log_index offset = offset_locked();
  if (i < offset) return std::unexpected(storage_error::compacted);
  if (i - offset >= entries_.size()) return std::unexpected(storage_error::unavailable);
  return raft_term{entries_[i - offset].term()};
}

log_index memory_storage::first_index() const {
  std::lock_guard lock(mu_);
  return offset_locked() + 1;
}

log_index memory_storage::last_index() const {
  std::lock_guard lock(mu_);
  return last_locked();
}

std::expected<raftpb::Snapshot, storage_error> memory_storage::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void memory_storage::set_hard_state(const raftpb::HardState& hs) {
  std::lock_guard lock(mu_);
  hard_state_ = hs;
}

void memory_storage::append(std::span<const raftpb::Entry> ents) {
  if (ents.empty()) return;
  std::lock_guard lock(mu_);
  const log_index first = offset_locked() + 1;
  const log_index last_new = ents.front().index() + ents.size() - 1;
  if (last_new < first) return;  // everything is already covered by the snapshot
  // Skip the part the snapshot already covers.
  if (ents.front().index() < first) ents = ents.subspan(first - ents.front().index());
  const log_index at = ents.front().index() - offset_locked();
  if (at > entries_.size())
    die("append: gap after last index (first new, last)", ents.front().index(), last_locked());
  entries_.resize(at);
  entries_.insert(entries_.end(), ents.begin(), ents.end());
}

void memory_storage::append(std::vector<raftpb::Entry>&& ents) {
  if (ents.empty()) return;
  std::lock_guard lock(mu_);
  const log_index first = offset_locked() + 1;
  if (ents.back().index() < first) return;  // everything is already covered by the snapshot
  std::size_t skip = 0;
  if (ents.front().index() < first) skip = first - ents.front().index();
  const log_index at = ents[skip].index() - offset_locked();
  if (at > entries_.size())
    die("append: gap after last index (first new, last)", ents[skip].index(), last_locked());
  entries_.resize(at);
  entries_.insert(entries_.end(),
                  std::make_move_iterator(ents.begin() + static_cast<std::ptrdiff_t>(skip)),
                  std::make_move_iterator(ents.end()));
}

std::expected<void, storage_error> memory_storage::apply_snapshot(const raftpb::Snapshot& snap) {
  std::lock_guard lock(mu_);
  if (snap.metadata().index() < snapshot_.metadata().index()) {
    return std::unexpected(storage_error::snapshot_out_of_date);
  }
  snapshot_ = snap;
  entries_.clear();
  raftpb::Entry placeholder;
  placeholder.set_index(snap.metadata().index());
  placeholder.set_term(snap.metadata().term());
  entries_.push_back(std::move(placeholder));
  return {};
}

std::expected<raftpb::Snapshot, storage_error> memory_storage::create_snapshot(
    log_index i, const raftpb::ConfState& cs, std::string data) {
  std::lock_guard lock(mu_);
  if (i <= snapshot_.metadata().index())
    return std::unexpected(storage_error::snapshot_out_of_date);
  if (i > last_locked()) die("create_snapshot: index beyond last (index, last)", i, last_locked());
  snapshot_.mutable_metadata()->set_index(i);
  snapshot_.mutable_metadata()->set_term(entries_[i - offset_locked()].term());
  *snapshot_.mutable_metadata()->mutable_conf_state() = cs;
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

std::expected<void, storage_error> memory_storage::compact(log_index compact_index) {
  std::lock_guard lock(mu_);
  const log_index offset = offset_locked();
  if (compact_index <= offset) return std::unexpected(storage_error::compacted);
  if (compact_index > last_locked())
    die("compact: index beyond last (index, last)", compact_index, last_locked());
  const auto cut = static_cast<std::ptrdiff_t>(compact_index - offset);
  entries_.erase(entries_.begin(), entries_.begin() + cut);
  entries_.front().clear_data();  // the placeholder keeps only index and term
  entries_.front().set_type(raftpb::ENTRY_NORMAL);
  return {};
}

}  // namespace cairn::raft
