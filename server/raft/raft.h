// The consensus state machine itself: roles, terms, votes, replication, commitment, reads,
// transfers and membership. Pure: no I/O, no threads, no clocks (time is tick()). Everything it
// wants done goes into its outbox (messages, read states) and its log's unstable part, which
// raw_node packages into Ready batches. Single-threaded; callers serialize all calls.
//
// Most callers want raw_node (raw_node.h); this class is the engine behind it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/str_format.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/read_only.h"
#include "raft/storage.h"
#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft {

struct config {
  node_id id;  // must not be zero
  // Ticks a follower waits without hearing from a leader before campaigning. The actual timeout
  // is drawn anew, uniformly from [election_tick, 2*election_tick), every time it is reset
  // (§3.4: randomized timeouts make split votes rare).
  int election_tick = 10;
  // Ticks between a leader's heartbeats. Must be less than election_tick.
  int heartbeat_tick = 1;
  // §9.6: ask for a pre-vote (without raising the term) before a real election, so a node
  // rejoining from a partition does not depose a healthy leader.
  bool pre_vote = true;
  // §6.2: a leader that has not heard from a majority for an election timeout steps down, and a
  // follower that heard from a leader within the election timeout ignores vote requests.
  bool check_quorum = true;
  // Bytes of entries per append message (the first entry always goes, however large).
  std::uint64_t max_size_per_msg = 1024 * 1024;
  // Bytes of committed entries per Ready (0 = same as max_size_per_msg).
  std::uint64_t max_committed_size_per_ready = 0;
  // Unacknowledged append messages per follower in replicate state (the inflight window).
  std::size_t max_inflight_msgs = 256;
  // Last index the application applied before a restart (0: replay from the snapshot on).
  log_index applied = 0;
  // A follower refuses proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // Seed of the election-timeout randomness; the node's id is mixed in, so nodes of one
  // simulation may share a seed and still draw different timeouts.
  std::uint64_t seed = 0;
  // Optional narration of decisions ("became candidate at term 3", "rejected vote ..."), for
  // tests and debugging. Not called when empty; formatting costs nothing then.
  std::function<void(std::string_view)> logger;

  // Why this config cannot be used, or nullopt.
  std::optional<std::string> validate() const;
};

// What changed in role or leader since the last Ready. Not persisted.
struct soft_state {
  node_id lead;
  role_kind role = role_kind::follower;
  friend bool operator==(const soft_state&, const soft_state&) = default;
};

class raft {
 public:
  // Aborts when cfg.validate() fails or storage holds an inconsistent hard state.
  raft(config cfg, const storage& s);

  // Feeds one message: from a peer (term set) or local (term 0: MsgHup, MsgProp, MsgReadIndex,
  // MsgTransferLeader). Only local proposals and reads can fail.
  std::expected<void, propose_error> step(const raftpb::Message& m);
  // The same, for a message the caller gives up: its entries are moved into the log instead of
  // copied (proposals on a leader, appends on a follower).
  std::expected<void, propose_error> step(raftpb::Message&& m);
  void tick();
  // Membership change taking effect now (the application calls this when applying a committed
  // ConfChange entry). Returns the resulting membership.
  raftpb::ConfState apply_conf_change(const raftpb::ConfChange& cc);
  // The application persisted everything handed out so far; a leader may now count itself
  // towards commitment of those entries (§10.2.1).
  void on_persisted();
  // Sends what proposals queued since the last Ready (batching: one append per follower carries
  // every proposal made between two Readys).
  void flush();

  // --- outbox, drained by raw_node ---
  std::vector<raftpb::Message> take_messages() { return std::exchange(msgs_, {}); }
  std::vector<read_state> take_read_states() { return std::exchange(read_states_, {}); }
  std::vector<std::string> take_dropped_reads() { return std::exchange(dropped_reads_, {}); }
  bool has_outbox() const;

  // --- state, for raw_node, status and the invariant checker ---
  node_id id() const { return id_; }
  raft_term term() const { return term_; }
  node_id vote() const { return vote_; }
  node_id lead() const { return lead_; }
  role_kind role() const;
  raftpb::HardState hard_state() const;
  soft_state soft() const { return {lead_, role()}; }
  const raft_log& log() const { return log_; }
  raft_log& mutable_log() { return log_; }
  const tracker& members() const { return trk_; }
  bool promotable() const;
  node_id lead_transferee() const;
  int election_elapsed() const { return election_elapsed_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  const config& cfg() const { return cfg_; }

 private:
  struct follower_role {};
  struct candidate_role {
    bool pre = false;  // pre-candidate (§9.6): has not raised its term
    std::map<node_id, bool> votes;
  };
  struct leader_role {
    int heartbeat_elapsed = 0;
    node_id transferee;                // leadership transfer target (§3.10), or none
    log_index pending_conf_index = 0;  // no new conf change until applied >= this (§4.1)
    read_only reads;
    // Reads that arrived before this leader committed an entry of its own term (§6.4 step 1).
    std::vector<read_request> awaiting_term_commit;
    bool broadcast_pending = false;  // proposals appended since the last flush
  };
  enum class campaign_kind { pre_election, election, transfer };

  template <class... A>
  void note(const absl::FormatSpec<A...>& fmt, const A&... args) const {
    if (cfg_.logger) cfg_.logger(absl::StrFormat(fmt, args...));
  }

  leader_role* as_leader() { return std::get_if<leader_role>(&role_); }
  const leader_role* as_leader() const { return std::get_if<leader_role>(&role_); }

  // The entries of m: moved out when m is the message step(Message&&) was given, else copied.
  std::vector<raftpb::Entry> take_entries(const raftpb::Message& m);
  void send(raftpb::Message m);
  bool maybe_send_append(node_id to, bool send_if_empty);
  void send_append(node_id to) { maybe_send_append(to, true); }
  void send_heartbeat(node_id to, const std::string& ctx);
  void bcast_append();
  void bcast_heartbeat(const std::string& ctx);
  void send_timeout_now(node_id to);

  void reset(raft_term t);
  void become_follower(raft_term t, node_id lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(campaign_kind kind);
  void leave_leadership();
  void reset_randomized_election_timeout();

  void tick_election();
  void tick_heartbeat();

  std::expected<void, propose_error> step_leader(const raftpb::Message& m);
  std::expected<void, propose_error> step_candidate(const raftpb::Message& m);
  std::expected<void, propose_error> step_follower(const raftpb::Message& m);
  void handle_vote_request(const raftpb::Message& m);
  void handle_append(const raftpb::Message& m);
  void handle_heartbeat(const raftpb::Message& m);
  void handle_snapshot(const raftpb::Message& m);
  bool restore(const raftpb::Snapshot& snap);
  std::expected<void, propose_error> leader_propose(const raftpb::Message& m);
  void leader_read_index(const raftpb::Message& m);
  void leader_transfer(node_id target);
  void handle_app_resp(const raftpb::Message& m, progress& pr);
  void handle_heartbeat_resp(const raftpb::Message& m, progress& pr);

  bool maybe_commit();
  void on_commit_advanced();
  bool committed_entry_in_current_term() const;
  bool voters_are_only_me() const;
  void serve_read(read_request req, bool start_round);
  void answer_read(const read_request& req, log_index index);
  void start_read_round_if_idle();
  std::size_t unapplied_conf_changes() const;

  config cfg_;
  node_id id_;
  raft_term term_;
  node_id vote_;
  node_id lead_;
  raft_log log_;
  tracker trk_;
  std::variant<follower_role, candidate_role, leader_role> role_;
  bool is_learner_ = false;

  int election_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::mt19937_64 rng_;

  raftpb::Message* owned_ = nullptr;  // the message step(Message&&) is handling, if any
  std::vector<raftpb::Message> msgs_;
  std::vector<read_state> read_states_;
  std::vector<std::string> dropped_reads_;
};

}  // namespace cairn::raft
