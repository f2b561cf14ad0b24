// A checker of the safety properties one node can see from the inside, run after every call into
// the core when CAIRN_RAFT_INVARIANTS is defined (Debug builds, and the library variant the tests
// link; see CMakeLists.txt). A broken invariant aborts with a message naming the node, the call
// and the property. Owned by one raw_node; not thread-safe.
//
// Checked:
//   - the term never decreases, and within a term the vote never changes once cast (§3.4);
//   - at most one leader per term, among every leader this node has seen (Election Safety, §3.6.3);
//   - a leader is always the node itself when it holds the leader role;
//   - the commit index never moves back, and applied <= committed <= last index;
//   - the last log term is never beyond the current term;
//   - a committed entry never changes term (State Machine Safety as one node sees it, §3.6);
//   - what raft believes is stable (the log below its unstable tail) is what the application
//     persisted from the Readys it acknowledged (Log Matching with the disk).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

class raft;

class invariant_checker {
 public:
  // What the checker looks at; `term_at` answers the term of a log entry, nullopt if compacted.
  struct view {
    node_id id;
    raft_term term;
    node_id vote;
    node_id lead;
    role_kind role = role_kind::follower;
    log_index committed = 0;
    log_index applied = 0;
    log_index first_index = 1;
    log_index last_index = 0;
    raft_term last_term;
    log_index last_stable = 0;
    std::function<std::optional<raft_term>(log_index)> term_at;
  };
  static view of(const raft& r);

  // Aborts when a property above is broken; `after` names the call just made (for the message).
  void check(const view& v, std::string_view after);
  // The application persisted these entries (and/or this snapshot) from a Ready.
  void on_persisted(std::span<const raftpb::Entry> ents, const raftpb::Snapshot* snap);

  // How many recent entries the log checks remember (bounds memory and time per check).
  static constexpr std::size_t window = 256;
  // Walking the whole window (hundreds of term lookups) after every call made the checker most
  // of the cost of a simulated cluster. When the log only grew since the last check (same first
  // index, the old last entry still there with its term), only what is new is walked: entries
  // persisted or made stable since, and newly committed ones. In a log that keeps Log Matching
  // nothing older can have changed then. Every `full_every` checks, and whenever the log was
  // truncated or compacted, the whole window is walked, so even a change that breaks Log Matching
  // without moving the last entry is reported within that many calls.
  static constexpr unsigned full_every = 64;

 private:
  struct log_shape {
    log_index first_index = 0;
    log_index last_index = 0;
    raft_term last_term;
    log_index last_stable = 0;
  };

  [[noreturn]] void fail(const view& v, std::string_view after, const std::string& what) const;
  // Verifies the persisted and committed entries at or after `from` (0: all, dropping compacted
  // ones) and records the newly committed ones.
  void check_log(const view& v, std::string_view after, log_index from);

  bool seen_ = false;
  raft_term term_;
  node_id vote_;
  log_index committed_ = 0;
  std::map<raft_term, node_id> leaders_;
  std::map<log_index, raft_term> persisted_;
  std::map<log_index, raft_term> committed_terms_;
  log_shape last_;            // as of the last check
  log_index dirty_from_ = 0;  // lowest index persisted since the last check
  unsigned since_full_ = 0;
};

}  // namespace cairn::raft
