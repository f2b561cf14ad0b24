// What a leader knows about each member's log (thesis §3.5 nextIndex/matchIndex, plus etcd-style
// flow control), and the membership itself. Owned by one raft instance; not thread-safe.
//
// A follower's progress is in one of three states:
//   probe      the leader does not know where the logs diverge: one append per heartbeat
//              interval (or per answer) until one is accepted;
//   replicate  logs match up to `match`: appends stream optimistically, at most
//              max_inflight_msgs unacknowledged at once (the inflight window);
//   snapshot   the entries it needs are compacted: a snapshot is on its way; nothing else is sent
//              until it is reported applied or failed.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/quorum.h"
#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

enum class progress_state { probe, replicate, snapshot };
std::string_view to_string(progress_state s);

// A ring of the last index of each unacknowledged append, oldest first. Acknowledging index i
// frees every message whose last index is <= i.
class inflights {
 public:
  explicit inflights(std::size_t capacity) : buffer_(capacity) {}

  void add(log_index last);  // aborts when full: callers check full() first
  void free_le(log_index to);
  void free_first_one();
  bool full() const { return count_ == buffer_.size(); }
  std::size_t count() const { return count_; }
  std::size_t capacity() const { return buffer_.size(); }
  void reset() { start_ = count_ = 0; }

 private:
  std::vector<log_index> buffer_;
  std::size_t start_ = 0;
  std::size_t count_ = 0;
};

struct progress {
  progress(log_index next_index, std::size_t max_inflight, bool learner)
      : next(next_index), window(max_inflight), is_learner(learner) {}

  log_index match = 0;  // highest index known to be in this member's log
  log_index next = 1;   // next index to send
  progress_state state = progress_state::probe;
  log_index pending_snapshot = 0;  // in snapshot state: the index of the snapshot sent
  // Heard from since the last CheckQuorum round (§6.2).
  bool recent_active = false;
  // In probe state: an append is out; wait for its answer or the next heartbeat.
  bool probe_sent = false;
  inflights window;
  bool is_learner = false;

  void become_probe();
  void become_replicate();
  void become_snapshot(log_index snapshot_index);
  // An acknowledgement up to n. Returns false when stale (n <= match).
  bool maybe_update(log_index n);
  // After sending up to n in replicate state.
  void optimistic_update(log_index n) { next = n + 1; }
  // A rejection of the append whose previous index was `rejected`; `hint` is where the leader
  // should probe next (already narrowed by term, §5.3-style fast backtracking). Returns false
  // when the rejection is stale.
  bool maybe_decr_to(log_index rejected, log_index hint);
  bool is_paused() const;
  std::string describe() const;
};

// Membership (one change at a time, §4.1) plus one progress per member.
class tracker {
 public:
  explicit tracker(std::size_t max_inflight) : max_inflight_(max_inflight) {}

  const std::set<node_id>& voters() const { return voters_; }
  const std::set<node_id>& learners() const { return learners_; }
  bool is_voter(node_id id) const { return voters_.contains(id); }
  bool is_member(node_id id) const { return progress_.contains(id); }
  progress* find(node_id id);
  const progress* find(node_id id) const;
  std::map<node_id, progress>& all() { return progress_; }
  const std::map<node_id, progress>& all() const { return progress_; }

  // Replaces the membership with `cs` (startup or snapshot install).
  void restore(const raftpb::ConfState& cs, log_index last_index);
  // Applies one change. Returns a description of why it was refused, empty when applied. Refused
  // changes leave the membership untouched (every member refuses the same committed change).
  std::string apply(const raftpb::ConfChange& cc, log_index last_index);
  raftpb::ConfState conf_state() const;
  std::string describe_config() const;

  // Highest index acknowledged by a majority of voters.
  log_index committed() const;
  // True when a majority of voters were heard from recently (CheckQuorum, §6.2).
  bool quorum_active(node_id self) const;

  std::size_t max_inflight() const { return max_inflight_; }

 private:
  std::size_t max_inflight_;
  std::set<node_id> voters_;
  std::set<node_id> learners_;
  std::map<node_id, progress> progress_;
};

}  // namespace cairn::raft
