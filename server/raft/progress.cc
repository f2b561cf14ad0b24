#include "raft/progress.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace cairn::raft {

std::string_view to_string(progress_state s) {
  switch (s) {
    case progress_state::probe:
      return "probe";
    case progress_state::replicate:
      return "replicate";
    case progress_state::snapshot:
      return "snapshot";
  }
  return "?";
}

// ---------------------------------------------------------------- inflights

void inflights::add(log_index last) {
  if (full()) {
    std::fprintf(stderr, "raft inflights: add(%llu) on a full window of %zu\n",
                 static_cast<unsigned long long>(last), buffer_.size());
    std::abort();
  }
  buffer_[(start_ + count_) % buffer_.size()] = last;
  ++count_;
}

void inflights::free_le(log_index to) {
  while (count_ > 0 && buffer_[start_] <= to) {
    start_ = (start_ + 1) % buffer_.size();
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

void inflights::free_first_one() {
  if (count_ > 0) free_le(buffer_[start_]);
}

// ---------------------------------------------------------------- progress

void progress::become_probe() {
  // Coming back from a snapshot, continue after it: the follower has at least that much.
  if (state == progress_state::snapshot) {
    const log_index after = std::max(match + 1, pending_snapshot + 1);
    state = progress_state::probe;
    next = after;
  } else {
    state = progress_state::probe;
    next = match + 1;
  }
  pending_snapshot = 0;
  probe_sent = false;
  window.reset();
}

void progress::become_replicate() {
  state = progress_state::replicate;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  window.reset();
}

void progress::become_snapshot(log_index snapshot_index) {
  state = progress_state::snapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  window.reset();
}

bool progress::maybe_update(log_index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool progress::maybe_decr_to(log_index rejected, log_index hint) {
  if (state == progress_state::replicate) {
    // Only a rejection above what is known to match is news; otherwise it is an old message.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe state only the answer to the one append that is out matters.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max<log_index>(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool progress::is_paused() const {
  switch (state) {
    case progress_state::probe:
      return probe_sent;
    case progress_state::replicate:
      return window.full();
    case progress_state::snapshot:
      return true;
  }
  return true;
}

std::string progress::describe() const {
  std::ostringstream out;
  out << to_string(state) << " match=" << match << " next=" << next;
  if (is_learner) out << " learner";
  if (state == progress_state::snapshot) out << " pending-snapshot=" << pending_snapshot;
  if (probe_sent) out << " paused";
  if (window.count() > 0) out << " inflight=" << window.count() << (window.full() ? "[full]" : "");
  if (recent_active) out << " active";
  return out.str();
}

// ---------------------------------------------------------------- tracker

progress* tracker::find(node_id id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const progress* tracker::find(node_id id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void tracker::restore(const raftpb::ConfState& cs, log_index last_index) {
  voters_.clear();
  learners_.clear();
  progress_.clear();
  for (auto v : cs.voters()) {
    voters_.insert(node_id{v});
    auto [it, _] = progress_.try_emplace(node_id{v}, last_index + 1, max_inflight_, false);
    it->second.recent_active = true;
  }
  for (auto l : cs.learners()) {
    if (voters_.contains(node_id{l})) {
      std::fprintf(stderr, "raft tracker: %llu is both voter and learner in a ConfState\n",
                   static_cast<unsigned long long>(l));
      std::abort();
    }
    learners_.insert(node_id{l});
    auto [it, _] = progress_.try_emplace(node_id{l}, last_index + 1, max_inflight_, true);
    it->second.recent_active = true;
  }
}

std::string tracker::apply(const raftpb::ConfChange& cc, log_index last_index) {
  const node_id id{cc.node_id()};
  if (id.is_zero()) return "node id 0 is not a valid member";
  auto add = [&](bool learner) {
    // A fresh member counts as active so a snapshot can be sent to it right away.
    // next = last index, so that the first probe carries one entry and answers at once.
    auto [it, _] =
        progress_.try_emplace(id, std::max<log_index>(last_index, 1), max_inflight_, learner);
    it->second.recent_active = true;
    it->second.is_learner = learner;
  };
  switch (cc.type()) {
    case raftpb::CONF_ADD_NODE:
      if (voters_.contains(id)) return "already a voter";
      if (learners_.erase(id) > 0) {
        // Promotion keeps the learner's progress: it has been replicating all along.
        voters_.insert(id);
        progress_.at(id).is_learner = false;
        return "";
      }
      voters_.insert(id);
      add(false);
      return "";
    case raftpb::CONF_ADD_LEARNER_NODE:
      if (learners_.contains(id)) return "already a learner";
      if (voters_.contains(id)) return "demoting a voter to a learner is not supported";
      learners_.insert(id);
      add(true);
      return "";
    case raftpb::CONF_REMOVE_NODE:
      if (!progress_.contains(id)) return "not a member";
      if (voters_.contains(id) && voters_.size() == 1) return "cannot remove the last voter";
      voters_.erase(id);
      learners_.erase(id);
      progress_.erase(id);
      return "";
    case raftpb::CONF_UPDATE_NODE:
      return "";  // attributes only; membership unchanged
    default:
      return "unknown conf change type";
  }
}

raftpb::ConfState tracker::conf_state() const {
  raftpb::ConfState cs;
  for (node_id v : voters_) cs.add_voters(v.value());
  for (node_id l : learners_) cs.add_learners(l.value());
  return cs;
}

std::string tracker::describe_config() const {
  std::ostringstream out;
  out << "voters=(";
  bool first = true;
  for (node_id v : voters_) {
    out << (first ? "" : ",") << v.value();
    first = false;
  }
  out << ")";
  if (!learners_.empty()) {
    out << " learners=(";
    first = true;
    for (node_id l : learners_) {
      out << (first ? "" : ",") << l.value();
      first = false;
    }
    out << ")";
  }
  return out.str();
}

log_index tracker::committed() const {
  return committed_index(voters_, [this](node_id id) {
    auto it = progress_.find(id);
#ifdef CAIRN_PLANTED_BUG_RAFT_COMMIT_UNPERSISTED
    // Planted bug: counts what was sent to a follower, not what it acknowledged having persisted,
    // so entries are committed and applied before a quorum has them on disk.
    if (it != progress_.end()) return std::max(it->second.match, it->second.next - 1);
#endif
    return it == progress_.end() ? log_index{0} : it->second.match;
  });
}

bool tracker::quorum_active(node_id self) const {
  std::map<node_id, bool> active;
  for (const auto& [id, pr] : progress_) {
    if (id == self || pr.recent_active) active[id] = true;
  }
  return tally(voters_, active) == vote_result::won;
}

}  // namespace cairn::raft
