// raw_node: the raft core as the server (and the simulator) drive it. No I/O, no threads, no
// clocks: the caller feeds it ticks, peer messages and requests, and collects `ready` batches.
// Not thread-safe: one thread (the server's raft loop) makes every call.
//
// The loop, for each batch (thesis §3.8, §10.2.1):
//
//   while (node.has_ready()) {
//     ready rd = node.ready();
//     1. persist rd.hard_state, rd.entries and rd.snapshot (fsync if rd.must_sync);
//     2. send rd.messages (only now: votes and acknowledgements promise what step 1 persisted);
//     3. apply rd.committed_entries in order; for a conf change entry call apply_conf_change();
//        install rd.snapshot into the state machine;
//     4. serve rd.read_states once the applied index reaches their index; fail rd.dropped_reads;
//     node.advance();
//   }
//
// A follower forwards proposals and reads to its leader; when there is none, propose() and
// read_index() return propose_error::no_leader, which the server reports as
// "etcdserver: no leader".
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "raft/invariants.h"
#include "raft/progress.h"
#include "raft/raft.h"
#include "raft/read_only.h"
#include "raft/storage.h"
#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

// One batch of work for the application. Empty fields mean "nothing of that kind".
struct ready {
  std::optional<soft_state> soft;                // role/leader changed (informational)
  std::optional<raftpb::HardState> hard_state;   // persist
  std::vector<raftpb::Entry> entries;            // append to storage (may replace a suffix)
  std::optional<raftpb::Snapshot> snapshot;      // install into storage and the state machine
  std::vector<raftpb::Entry> committed_entries;  // apply, in order
  std::vector<raftpb::Message> messages;         // send after persisting
  std::vector<read_state> read_states;           // reads that may be served at their index
  std::vector<std::string> dropped_reads;        // contexts of local reads lost with leadership
  bool must_sync = false;                        // term, vote or entries changed: fsync first
};

enum class step_error {
  local_message,  // a message type only the node itself may generate came from the network
  unknown_peer,   // a response from a node that is not a member
};
std::string_view to_string(step_error e);

// A snapshot of the node's state, for the server's status endpoints and for tests.
struct status {
  node_id id;
  raft_term term;
  node_id vote;
  node_id lead;
  role_kind role = role_kind::follower;
  log_index commit = 0;
  log_index applied = 0;
  log_index first_index = 0;
  log_index last_index = 0;
  raftpb::ConfState conf;
  std::map<node_id, ::cairn::raft::progress>
      peers;  // the leader's view of each member; empty otherwise
  node_id lead_transferee;
  int election_elapsed = 0;
  int randomized_election_timeout = 0;
};

class raw_node {
 public:
  // Aborts when cfg.validate() fails (check it first for a friendly error).
  raw_node(config cfg, const storage& s);

  // One unit of logical time: followers count towards an election, leaders towards heartbeats
  // and the CheckQuorum/transfer timeouts.
  void tick();
  // Starts an election now (with a pre-vote first when configured).
  void campaign();
  std::expected<void, propose_error> propose(std::string data);
  // One change at a time (§4.1); the leader refuses a second while the first is not applied.
  std::expected<void, propose_error> propose_conf_change(const raftpb::ConfChange& cc);
  // Requests a linearizable read point (§6.4). The answer comes back as a read_state carrying
  // `context` in some later Ready (or as a dropped read if leadership is lost meanwhile).
  std::expected<void, propose_error> read_index(std::string context);
  // On the leader: hand leadership to `target` (§3.10). On a follower: ask the leader to hand it
  // to this node (target must be this node's id).
  void transfer_leader(node_id target);
  // A message from a peer.
  std::expected<void, step_error> step(const raftpb::Message& m);
  // The same for a message the caller no longer needs: its entries are moved, not copied.
  std::expected<void, step_error> step(raftpb::Message&& m);
  // Call while applying a committed ConfChange entry; returns the resulting membership.
  raftpb::ConfState apply_conf_change(const raftpb::ConfChange& cc);
  void report_unreachable(node_id peer);
  void report_snapshot(node_id peer, snapshot_status st);

  bool has_ready() const;
  // The next batch. Must be followed by advance() before the next call.
  ::cairn::raft::ready ready();
  // The application finished with the last batch (persisted, sent, applied).
  void advance();

  ::cairn::raft::status status() const;
  // The engine, for tests and tools that need to look deeper.
  const raft& core() const { return raft_; }

 private:
  void checked(std::string_view after);

  raft raft_;
  soft_state prev_soft_;
  raftpb::HardState prev_hard_;
  // What the outstanding Ready handed out, for advance().
  struct outstanding {
    std::optional<entry_id> last_entry;
    log_index snapshot_index = 0;
    log_index applied_to = 0;
    std::vector<raftpb::Entry> entries;  // only kept for the invariant checker
    std::optional<raftpb::Snapshot> snapshot;
  };
  std::optional<outstanding> outstanding_;
  invariant_checker checker_;
};

}  // namespace cairn::raft
