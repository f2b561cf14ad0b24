#include "raft/raft.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "raft/describe.h"

namespace cairn::raft {

namespace {

using raftpb::Message;
using raftpb::MessageType;

// The context of a vote request sent because the leader asked us to take over (§3.10): it
// bypasses the lease checks, since the current leader itself wants this election.
constexpr std::string_view transfer_context = "transfer";

[[noreturn]] void die(std::string_view what) {
  std::fprintf(stderr, "raft: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

bool is_vote_request(MessageType t) { return t == raftpb::MSG_VOTE || t == raftpb::MSG_PRE_VOTE; }

MessageType vote_response_type(MessageType t) {
  return t == raftpb::MSG_VOTE ? raftpb::MSG_VOTE_RESP : raftpb::MSG_PRE_VOTE_RESP;
}

}  // namespace

std::string_view to_string(role_kind r) {
  switch (r) {
    case role_kind::follower:
      return "follower";
    case role_kind::pre_candidate:
      return "pre-candidate";
    case role_kind::candidate:
      return "candidate";
    case role_kind::leader:
      return "leader";
  }
  return "?";
}

std::string_view to_string(propose_error e) {
  switch (e) {
    case propose_error::no_leader:
      return "no leader";
    case propose_error::forwarding_disabled:
      return "proposal forwarding disabled";
    case propose_error::leader_transfer_in_progress:
      return "leadership transfer in progress";
    case propose_error::not_a_member:
      return "not a member of the cluster";
    case propose_error::conf_change_pending:
      return "a membership change is still pending";
  }
  return "?";
}

std::optional<std::string> config::validate() const {
  if (id.is_zero()) return "id must not be 0";
  if (heartbeat_tick <= 0) return "heartbeat_tick must be greater than 0";
  if (election_tick <= heartbeat_tick) return "election_tick must be greater than heartbeat_tick";
  if (max_inflight_msgs == 0) return "max_inflight_msgs must be greater than 0";
  return std::nullopt;
}

// ======================================================================== construction

raft::raft(config cfg, const storage& s)
    : cfg_(std::move(cfg)),
      id_(cfg_.id),
      log_(s, cfg_.max_committed_size_per_ready == 0 ? cfg_.max_size_per_msg
                                                     : cfg_.max_committed_size_per_ready),
      trk_(cfg_.max_inflight_msgs),
      rng_(cfg_.seed ^ (cfg_.id.value() * 0x9e3779b97f4a7c15ULL)) {
  if (auto err = cfg_.validate()) die("invalid config: " + *err);
  const initial_state init = s.initial();
  trk_.restore(init.conf_state, log_.last_index());
  const raftpb::HardState& hs = init.hard_state;
  if (hs.term() != 0 || hs.vote() != 0 || hs.commit() != 0) {
    if (hs.commit() < log_.committed() || hs.commit() > log_.last_index()) {
      die(absl::StrFormat("persisted commit %d is outside the log [%d, %d]", hs.commit(),
                          log_.committed(), log_.last_index()));
    }
    log_.set_committed(hs.commit());
    term_ = raft_term{hs.term()};
    vote_ = node_id{hs.vote()};
  }
  if (cfg_.applied > 0) log_.applied_to(cfg_.applied);
  const progress* self = trk_.find(id_);
  is_learner_ = self != nullptr && self->is_learner;
  become_follower(term_, no_node);
  note("started: %s term=%d commit=%d applied=%d last=%d@%d", trk_.describe_config(), term_.value(),
       log_.committed(), log_.applied(), log_.last_index(), log_.last_term().value());
}

role_kind raft::role() const {
  if (std::holds_alternative<leader_role>(role_)) return role_kind::leader;
  if (auto* c = std::get_if<candidate_role>(&role_))
    return c->pre ? role_kind::pre_candidate : role_kind::candidate;
  return role_kind::follower;
}

raftpb::HardState raft::hard_state() const {
  raftpb::HardState hs;
  hs.set_term(term_.value());
  hs.set_vote(vote_.value());
  hs.set_commit(log_.committed());
  return hs;
}

bool raft::promotable() const {
  const progress* pr = trk_.find(id_);
  return pr != nullptr && !pr->is_learner;
}

node_id raft::lead_transferee() const {
  const leader_role* l = as_leader();
  return l ? l->transferee : no_node;
}

bool raft::has_outbox() const {
  const leader_role* l = as_leader();
  return !msgs_.empty() || !read_states_.empty() || !dropped_reads_.empty() ||
         (l && l->broadcast_pending);
}

// ======================================================================== sending

void raft::send(Message m) {
  m.set_from(id_.value());
  const auto t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    // Election messages carry the term they are about (a pre-vote's is the one it would start).
    if (m.term() == 0) die("election message sent without a term");
  } else if (t != raftpb::MSG_PROP && t != raftpb::MSG_READ_INDEX &&
             t != raftpb::MSG_TRANSFER_LEADER) {
    // Forwarded proposals, reads and transfer requests travel termless, like local requests.
    m.set_term(term_.value());
  }
  msgs_.push_back(std::move(m));
}

bool raft::maybe_send_append(node_id to, bool send_if_empty) {
  progress* pr = trk_.find(to);
  if (pr == nullptr || pr->is_paused()) return false;
  Message m;
  m.set_to(to.value());
  const log_index prev = pr->next - 1;
  auto prev_term = log_.term(prev);
  auto ents = log_.entries_from(pr->next, cfg_.max_size_per_msg);
  if (ents && ents->empty() && !send_if_empty) return false;

  if (!prev_term || !ents) {
    // The entries it needs are compacted away: only a snapshot can help (§5.1 of the thesis'
    // log compaction chapter). Sending one to a peer we have not heard from is wasted work.
    if (!pr->recent_active) {
      note("not sending a snapshot to %d: not recently active", to.value());
      return false;
    }
    auto snap = log_.snapshot();
    if (!snap) {
      if (snap.error() == storage_error::snapshot_temporarily_unavailable) {
        note("snapshot for %d temporarily unavailable", to.value());
        return false;
      }
      die(absl::StrFormat("cannot read snapshot: %s", to_string(snap.error())));
    }
    if (snap->metadata().index() == 0) die("need a snapshot to send but storage has none");
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = std::move(*snap);
    pr->become_snapshot(m.snapshot().metadata().index());
    note("sending snapshot %d@%d to %d (first index %d); pausing appends to it",
         m.snapshot().metadata().index(), m.snapshot().metadata().term(), to.value(),
         log_.first_index());
    send(std::move(m));
    return true;
  }

  m.set_type(raftpb::MSG_APP);
  m.set_index(prev);
  m.set_log_term(prev_term->value());
  m.set_commit(log_.committed());
  for (auto& e : *ents) *m.add_entries() = std::move(e);
  if (const int n = m.entries_size(); n > 0) {
    const log_index last = m.entries(n - 1).index();
    switch (pr->state) {
      case progress_state::replicate:
        pr->optimistic_update(last);
        pr->window.add(last);
        break;
      case progress_state::probe:
        pr->probe_sent = true;
        break;
      case progress_state::snapshot:
        die("sending append to a follower in snapshot state");
    }
  }
  send(std::move(m));
  return true;
}

void raft::send_heartbeat(node_id to, const std::string& ctx) {
  // Never tell a follower to commit beyond what it is known to hold: it might hold a different,
  // uncommitted suffix there.
  const progress* pr = trk_.find(to);
  const log_index commit = std::min(pr ? pr->match : 0, log_.committed());
  // A heartbeat to the same follower still in the outbox says less than this one (an older
  // commit, and the same read round or one already finished): replace it instead of sending both.
  for (auto it = msgs_.rbegin(); it != msgs_.rend(); ++it) {
    if (it->type() == raftpb::MSG_HEARTBEAT && it->to() == to.value()) {
      it->set_commit(commit);
      it->set_context(ctx);
      return;
    }
  }
  Message m;
  m.set_to(to.value());
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(commit);
  m.set_context(ctx);
  send(std::move(m));
}

void raft::bcast_append() {
  for (auto& [id, _] : trk_.all()) {
    if (id != id_) send_append(id);
  }
}

void raft::bcast_heartbeat(const std::string& ctx) {
  for (auto& [id, _] : trk_.all()) {
    if (id != id_) send_heartbeat(id, ctx);
  }
}

void raft::send_timeout_now(node_id to) {
  Message m;
  m.set_to(to.value());
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  send(std::move(m));
}

void raft::flush() {
  leader_role* l = as_leader();
  if (l == nullptr || !l->broadcast_pending) return;
  l->broadcast_pending = false;
  for (auto& [id, _] : trk_.all()) {
    if (id == id_) continue;
    // Appends already in the outbox carry the new commit index too (a follower commits only up
    // to what the message proves it holds), so no extra empty append is needed for them.
    bool queued = false;
    for (Message& m : msgs_) {
      if (m.type() == raftpb::MSG_APP && m.to() == id.value()) {
        m.set_commit(log_.committed());
        queued = true;
      }
    }
    if (!maybe_send_append(id, false) && !queued) send_append(id);
  }
}

// ======================================================================== role changes

void raft::reset_randomized_election_timeout() {
  std::uniform_int_distribution<int> dist(cfg_.election_tick, 2 * cfg_.election_tick - 1);
  randomized_election_timeout_ = dist(rng_);
}

void raft::leave_leadership() {
  leader_role* l = as_leader();
  if (l == nullptr) return;
  // Reads this node was serving can no longer be confirmed by it; local callers are told at once
  // (remote ones learn by their own timeout, as their messages might be lost anyway).
  std::vector<read_request> pending = l->reads.drain();
  pending.insert(pending.end(), l->awaiting_term_commit.begin(), l->awaiting_term_commit.end());
  for (auto& r : pending) {
    if (r.from == id_) dropped_reads_.push_back(std::move(r.context));
  }
}

void raft::reset(raft_term t) {
  if (term_ != t) {
    term_ = t;
    vote_ = no_node;
  }
  lead_ = no_node;
  election_elapsed_ = 0;
  reset_randomized_election_timeout();
  const log_index last = log_.last_index();
  for (auto& [id, pr] : trk_.all()) {
    const bool learner = pr.is_learner;
    pr = progress(last + 1, trk_.max_inflight(), learner);
    if (id == id_) pr.match = log_.last_stable_index();
  }
}

void raft::become_follower(raft_term t, node_id lead) {
  leave_leadership();
  reset(t);
  role_ = follower_role{};
  lead_ = lead;
  note("became follower at term %d%s", term_.value(),
       lead.is_zero() ? std::string() : absl::StrFormat(" (leader %d)", lead.value()));
}

void raft::become_pre_candidate() {
  if (std::holds_alternative<leader_role>(role_)) die("invalid transition leader -> pre-candidate");
  // Neither the term nor the vote changes: that is the point of a pre-vote (§9.6).
  role_ = candidate_role{.pre = true, .votes = {}};
  lead_ = no_node;
  election_elapsed_ = 0;
  reset_randomized_election_timeout();
  note("became pre-candidate at term %d", term_.value());
}

void raft::become_candidate() {
  if (std::holds_alternative<leader_role>(role_)) die("invalid transition leader -> candidate");
  reset(raft_term{term_.value() + 1});
  role_ = candidate_role{.pre = false, .votes = {}};
  vote_ = id_;
  note("became candidate at term %d", term_.value());
}

void raft::become_leader() {
  if (std::holds_alternative<follower_role>(role_)) die("invalid transition follower -> leader");
  reset(term_);
  role_ = leader_role{};
  lead_ = id_;
  leader_role& l = *as_leader();
  if (progress* self = trk_.find(id_)) self->become_replicate();
  // §8 / §6.4: a new leader appends an empty entry of its term; committing it tells the leader
  // which entries are committed. Until then it serves no reads and accepts no conf change: the
  // single-server change rule needs an entry of the current term committed first (the fix to the
  // membership bug reported on raft-dev in 2015, §4.1).
  raftpb::Entry empty;
  empty.set_term(term_.value());
  empty.set_index(log_.last_index() + 1);
  l.pending_conf_index = empty.index();
  std::vector<raftpb::Entry> first;
  first.push_back(std::move(empty));
  log_.append(std::move(first));
  l.broadcast_pending = true;
  note("became leader at term %d", term_.value());
}

void raft::campaign(campaign_kind kind) {
  MessageType request;
  raft_term request_term;
  if (kind == campaign_kind::pre_election) {
    become_pre_candidate();
    request = raftpb::MSG_PRE_VOTE;
    request_term = raft_term{term_.value() + 1};  // the term we would campaign for
  } else {
    become_candidate();
    request = raftpb::MSG_VOTE;
    request_term = term_;
  }
  auto& c = std::get<candidate_role>(role_);
  c.votes[id_] = true;
  if (tally(trk_.voters(), c.votes) == vote_result::won) {
    // The only voter: no one to ask.
    if (kind == campaign_kind::pre_election) {
      campaign(campaign_kind::election);
    } else {
      become_leader();
    }
    return;
  }
  for (node_id v : trk_.voters()) {
    if (v == id_) continue;
    Message m;
    m.set_to(v.value());
    m.set_type(request);
    m.set_term(request_term.value());
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term().value());
    if (kind == campaign_kind::transfer) m.set_context(std::string(transfer_context));
    send(std::move(m));
  }
}

// ======================================================================== ticks

void raft::tick() {
  if (std::holds_alternative<leader_role>(role_)) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void raft::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Message hup;
    hup.set_type(raftpb::MSG_HUP);
    hup.set_from(id_.value());
    (void)step(hup);
  }
}

void raft::tick_heartbeat() {
  leader_role* l = as_leader();
  ++l->heartbeat_elapsed;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      // §6.2: a leader cut off from a majority steps down after an election timeout, so clients
      // stop waiting on it and reads cannot be served from a stale leader.
      if (progress* self = trk_.find(id_)) self->recent_active = true;
      if (!trk_.quorum_active(id_)) {
        note("stepping down: a quorum was not active in the last election timeout");
        become_follower(term_, no_node);
        return;
      }
      for (auto& [id, pr] : trk_.all()) {
        if (id != id_) pr.recent_active = false;
      }
    }
    // §3.10: a transfer that did not finish within an election timeout is abandoned and the
    // leader takes proposals again.
    if (!l->transferee.is_zero()) {
      note("leadership transfer to %d timed out; resuming", l->transferee.value());
      l->transferee = no_node;
    }
  }
  if (l->heartbeat_elapsed >= cfg_.heartbeat_tick) {
    l->heartbeat_elapsed = 0;
    // A read round in flight rides along, so a lost heartbeat does not stall it forever.
    auto round = l->reads.in_flight_id();
    bcast_heartbeat(round ? read_only::encode_context(*round) : std::string());
  }
}

// ======================================================================== step

std::expected<void, propose_error> raft::step(Message&& m) {
  owned_ = &m;
  auto r = step(static_cast<const Message&>(m));
  owned_ = nullptr;
  return r;
}

std::vector<raftpb::Entry> raft::take_entries(const Message& m) {
  std::vector<raftpb::Entry> ents;
  ents.reserve(static_cast<std::size_t>(m.entries_size()));
  if (&m == owned_) {
    for (raftpb::Entry& e : *owned_->mutable_entries()) ents.push_back(std::move(e));
  } else {
    ents.assign(m.entries().begin(), m.entries().end());
  }
  return ents;
}

std::expected<void, propose_error> raft::step(const Message& m) {
  const raft_term mt{m.term()};
  if (m.term() == 0) {
    // Local message (or a forwarded proposal/read/transfer): no term to compare.
  } else if (mt > term_) {
    if (is_vote_request(m.type())) {
      const bool force = m.context() == transfer_context;
      const bool in_lease = !lead_.is_zero() && election_elapsed_ < cfg_.election_tick;
      if (!force && in_lease) {
        if (m.type() == raftpb::MSG_PRE_VOTE) {
          // §9.6: we heard from a leader within the election timeout, so no election is needed.
          if (lead_ == id_) {
            note("rejected pre-vote from %d for term %d: we lead term %d", m.from(), m.term(),
                 term_.value());
          } else {
            note("rejected pre-vote from %d for term %d: leader %d was heard from %d ticks ago",
                 m.from(), m.term(), lead_.value(), election_elapsed_);
          }
          Message r;
          r.set_to(m.from());
          r.set_type(raftpb::MSG_PRE_VOTE_RESP);
          r.set_term(term_.value());
          r.set_reject(true);
          send(std::move(r));
          return {};
        }
        if (cfg_.check_quorum) {
          // §4.2.3: within the lease of a current leader, vote requests are disregarded entirely
          // (no term change), so a removed or partitioned server cannot depose it.
          if (lead_ == id_) {
            note("ignored vote from %d for term %d: we lead term %d", m.from(), m.term(),
                 term_.value());
          } else {
            note("ignored vote from %d for term %d: leader %d was heard from %d ticks ago",
                 m.from(), m.term(), lead_.value(), election_elapsed_);
          }
          return {};
        }
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // A pre-vote never changes our term.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // Granted pre-votes carry the term the pre-candidate proposes; it raises its term only
      // once it has a quorum of them.
    } else {
      note("saw term %d from %d (ours %d)", m.term(), m.from(), term_.value());
      const bool from_leader = m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
                               m.type() == raftpb::MSG_SNAP;
      const int elapsed = election_elapsed_;
      become_follower(mt, from_leader ? node_id{m.from()} : no_node);
      // Figure 3.1: the election timer restarts on hearing from a leader or on granting a vote
      // (handle_vote_request), not because a candidate has a newer term. Otherwise a candidate
      // whose log can never win keeps the voter with the best log from ever campaigning: every
      // request restarts its timer, and without pre-vote each one comes with a newer term.
      if (m.type() == raftpb::MSG_VOTE) election_elapsed_ = elapsed;
    }
  } else if (mt < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A leader of an older term is still talking to us. With check-quorum or pre-vote we may
      // have moved on to a term it will never reach by itself (our vote requests do not reach
      // it, or are ignored), so tell it our term and let it step down.
      note("stale %s from %d at term %d: answering with our term %d", message_type_name(m.type()),
           m.from(), m.term(), term_.value());
      Message r;
      r.set_to(m.from());
      r.set_type(raftpb::MSG_APP_RESP);
      send(std::move(r));
    } else if (is_vote_request(m.type())) {
      // §3.4 (Figure 3.1): a vote request of an older term is answered "no" with our term, so the
      // candidate catches up. Ignoring it can deadlock: a candidate with the only electable log
      // would keep campaigning below the term of a voter that never writes to it on its own (one
      // whose stale configuration does not list it), each raising its term at the same pace.
      note("rejected %s from %d for stale term %d (ours %d)", message_type_name(m.type()), m.from(),
           m.term(), term_.value());
      Message r;
      r.set_to(m.from());
      r.set_type(vote_response_type(m.type()));
      r.set_term(term_.value());
      r.set_reject(true);
      send(std::move(r));
    } else {
      note("ignored stale %s from %d at term %d (ours %d)", message_type_name(m.type()), m.from(),
           m.term(), term_.value());
    }
    return {};
  }

  switch (m.type()) {
    case raftpb::MSG_HUP: {
      if (std::holds_alternative<leader_role>(role_)) {
        note("already leader; not campaigning");
        return {};
      }
      if (!promotable()) {
        note("not campaigning: %s", is_learner_ ? "a learner never campaigns" : "not a voter");
        return {};
      }
      // §4.1: a node that has committed but not applied a membership change does not yet know the
      // configuration it would lead; wait until the application caught up.
      if (const std::size_t n = unapplied_conf_changes(); n > 0) {
        note("not campaigning: %d committed conf change(s) not applied yet", n);
        return {};
      }
      note("starting %s at term %d", cfg_.pre_vote ? "pre-election" : "election", term_.value());
      campaign(cfg_.pre_vote ? campaign_kind::pre_election : campaign_kind::election);
      return {};
    }
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      handle_vote_request(m);
      return {};
    default:
      break;
  }
  if (std::holds_alternative<leader_role>(role_)) return step_leader(m);
  if (std::holds_alternative<candidate_role>(role_)) return step_candidate(m);
  return step_follower(m);
}

void raft::handle_vote_request(const Message& m) {
  const node_id from{m.from()};
  const bool pre = m.type() == raftpb::MSG_PRE_VOTE;
#ifdef CAIRN_PLANTED_BUG_RAFT_DOUBLE_VOTE
  // Planted bug: grants a second vote in the same term (breaks Election Safety, §3.6.3).
  const bool can_vote = true;
#else
  // §3.4: at most one vote per term: repeat it for the same candidate, or cast it when we have
  // neither voted nor seen a leader this term. A pre-vote is hypothetical and may always be given
  // for a future term.
  const bool can_vote =
      vote_ == from || (vote_.is_zero() && lead_.is_zero()) || (pre && raft_term{m.term()} > term_);
#endif
  // §3.6.1: only for a candidate whose log is at least as up to date as ours.
  const bool up_to_date = log_.is_up_to_date(m.index(), raft_term{m.log_term()});
  Message r;
  r.set_to(m.from());
  r.set_type(vote_response_type(m.type()));
  if (can_vote && up_to_date) {
    note("granted %s to %d for term %d (its last %d@%d, ours %d@%d)", message_type_name(m.type()),
         m.from(), m.term(), m.index(), m.log_term(), log_.last_index(), log_.last_term().value());
    // Answer with the request's term: a pre-candidate ignores answers of other terms.
    r.set_term(m.term());
    send(std::move(r));
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = from;
    }
  } else {
    if (!can_vote && !vote_.is_zero()) {
      note("rejected %s from %d for term %d: already voted for %d in term %d",
           message_type_name(m.type()), m.from(), m.term(), vote_.value(), term_.value());
    } else if (!can_vote) {
      note("rejected %s from %d for term %d: following leader %d", message_type_name(m.type()),
           m.from(), m.term(), lead_.value());
    } else {
      note("rejected %s from %d for term %d: its log %d@%d is behind ours %d@%d",
           message_type_name(m.type()), m.from(), m.term(), m.index(), m.log_term(),
           log_.last_index(), log_.last_term().value());
    }
    r.set_term(term_.value());
    r.set_reject(true);
    send(std::move(r));
  }
}

// ------------------------------------------------------------------------ leader

std::expected<void, propose_error> raft::step_leader(const Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT: {
      auto round = as_leader()->reads.in_flight_id();
      bcast_heartbeat(round ? read_only::encode_context(*round) : std::string());
      return {};
    }
    case raftpb::MSG_PROP:
      return leader_propose(m);
    case raftpb::MSG_READ_INDEX:
      leader_read_index(m);
      return {};
    default:
      break;
  }
  progress* pr = trk_.find(node_id{m.from()});
  if (pr == nullptr) {
    note("ignored %s from %d: not a member", message_type_name(m.type()), m.from());
    return {};
  }
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      handle_app_resp(m, *pr);
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      handle_heartbeat_resp(m, *pr);
      break;
    case raftpb::MSG_SNAP_STATUS:
      if (pr->state != progress_state::snapshot) break;
      if (m.reject()) {
        note("snapshot to %d failed; probing again", m.from());
        pr->pending_snapshot = 0;
      } else {
        note("snapshot to %d finished; probing after it", m.from());
      }
      pr->become_probe();
      // Wait for its answer to the snapshot (or the next heartbeat) before appending again.
      pr->probe_sent = true;
      break;
    case raftpb::MSG_UNREACHABLE:
      // Appends sent optimistically were probably lost: go back to one at a time.
      if (pr->state == progress_state::replicate) {
        pr->become_probe();
        note("%d unreachable: back to probing", m.from());
      }
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      leader_transfer(node_id{m.from()});
      break;
    default:
      break;
  }
  return {};
}

std::expected<void, propose_error> raft::leader_propose(const Message& m) {
  leader_role& l = *as_leader();
  const bool local = m.from() == id_.value() || m.from() == 0;
  if (m.entries_size() == 0) die("empty proposal");
  if (!trk_.is_member(id_)) {
    note("dropped proposal: this leader was removed from the configuration");
    return std::unexpected(propose_error::not_a_member);
  }
  if (!l.transferee.is_zero()) {
    note("dropped proposal: transferring leadership to %d", l.transferee.value());
    return std::unexpected(propose_error::leader_transfer_in_progress);
  }
  std::vector<raftpb::Entry> ents = take_entries(m);
  std::size_t kept = 0;
  log_index next = log_.last_index() + 1;
  for (raftpb::Entry& e : ents) {
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      // §4.1: one membership change at a time; the next may start only once the previous one is
      // applied (and a new leader's first entry is applied, see become_leader).
#ifdef CAIRN_PLANTED_BUG_RAFT_TWO_CONF_CHANGES
      // Planted bug: a second change is accepted while the first is still in flight.
      if (false) {
#else
      if (l.pending_conf_index > log_.applied()) {
#endif
        note("refused conf change: index %d not applied yet (applied %d)", l.pending_conf_index,
             log_.applied());
        if (local && m.entries_size() == 1)
          return std::unexpected(propose_error::conf_change_pending);
        continue;  // forwarded batches lose only the refused change
      }
      l.pending_conf_index = next;
    }
    e.set_term(term_.value());
    e.set_index(next++);
    if (&ents[kept] != &e) ents[kept] = std::move(e);
    ++kept;
  }
  ents.resize(kept);
  if (ents.empty()) return {};
  log_.append(std::move(ents));
  // Sent at the next flush(), together with whatever else is proposed until then.
  l.broadcast_pending = true;
  return {};
}

void raft::leader_read_index(const Message& m) {
  leader_role& l = *as_leader();
  read_request req{node_id{m.from() == 0 ? id_.value() : m.from()}, m.context()};
  if (!committed_entry_in_current_term()) {
    // §6.4 step 1: until an entry of this term is committed, this leader may not know the
    // latest commit index; hold the read until its empty entry commits.
    note("read %s waits: no entry of term %d committed yet", describe_bytes(req.context),
         term_.value());
    l.awaiting_term_commit.push_back(std::move(req));
    return;
  }
  serve_read(std::move(req), /*start_round=*/true);
}

void raft::serve_read(read_request req, bool start_round) {
  leader_role& l = *as_leader();
#ifdef CAIRN_PLANTED_BUG_RAFT_READ_INDEX_NO_HEARTBEAT
  // Planted bug: every read is answered at once at the commit index, without the heartbeat round
  // that proves this node still leads (a deposed leader that does not know it serves stale data).
  if (true) {
#else
  if (voters_are_only_me()) {
#endif
    // No one else can have been elected: the commit index is current as it is.
    answer_read(req, log_.committed());
    return;
  }
  l.reads.enqueue(std::move(req));
  if (start_round) start_read_round_if_idle();
}

void raft::start_read_round_if_idle() {
  leader_role& l = *as_leader();
  const read_only::round* r = l.reads.maybe_start(log_.committed(), id_);
  if (r == nullptr) return;
  note("read round %d started at commit %d for %d read(s)", r->id, r->index, r->requests.size());
  bcast_heartbeat(read_only::encode_context(r->id));
}

void raft::answer_read(const read_request& req, log_index index) {
  if (req.from == id_) {
    read_states_.push_back({index, req.context});
    return;
  }
  Message r;
  r.set_to(req.from.value());
  r.set_type(raftpb::MSG_READ_INDEX_RESP);
  r.set_index(index);
  r.set_context(req.context);
  send(std::move(r));
}

void raft::leader_transfer(node_id target) {
  leader_role& l = *as_leader();
  const progress* pr = trk_.find(target);
  if (pr->is_learner) {
    note("ignored transfer to %d: a learner cannot lead", target.value());
    return;
  }
  if (!l.transferee.is_zero()) {
    if (l.transferee == target) {
      note("transfer to %d already in progress", target.value());
      return;
    }
    note("abandoning transfer to %d for %d", l.transferee.value(), target.value());
    l.transferee = no_node;
  }
  if (target == id_) {
    note("ignored transfer to self: already leader");
    return;
  }
  // §3.10: stop taking proposals, bring the target up to date, then tell it to campaign at once.
  // The transfer gets one election timeout to complete (see tick_heartbeat).
  election_elapsed_ = 0;
  l.transferee = target;
  if (pr->match == log_.last_index()) {
    note("transferring leadership to %d: its log is up to date", target.value());
    send_timeout_now(target);
  } else {
    note("transferring leadership to %d: catching it up from %d to %d first", target.value(),
         pr->match, log_.last_index());
    send_append(target);
  }
}

void raft::handle_app_resp(const Message& m, progress& pr) {
  pr.recent_active = true;
  const node_id from{m.from()};
  if (m.reject()) {
    // Fast backtracking: the follower told us the last index at or below the rejected one whose
    // term is no newer than the one we sent; jump to the last entry of ours not newer than that
    // term, skipping a whole conflicting term per round trip instead of one entry.
    log_index hint = m.reject_hint();
    if (m.log_term() > 0)
      hint = log_.find_conflict_by_term(m.reject_hint(), raft_term{m.log_term()}).index;
    if (pr.maybe_decr_to(m.index(), hint)) {
      note("%d rejected append after %d; probing from %d", m.from(), m.index(), pr.next);
      if (pr.state == progress_state::replicate) pr.become_probe();
      send_append(from);
    }
    return;
  }
  const bool was_paused = pr.is_paused();
  if (!pr.maybe_update(m.index())) return;
  switch (pr.state) {
    case progress_state::probe:
      pr.become_replicate();
      break;
    case progress_state::snapshot:
      if (pr.match >= pr.pending_snapshot) {
        note("%d caught up through the snapshot; replicating", m.from());
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case progress_state::replicate:
      pr.window.free_le(m.index());
      break;
  }
  if (maybe_commit()) {
    on_commit_advanced();
  } else if (was_paused && !as_leader()->broadcast_pending) {
    // It may have missed the latest commit index while paused (unless a broadcast is due anyway).
    send_append(from);
  }
  // The window may have room for several messages now (probe → replicate, or a batch freed).
  while (maybe_send_append(from, false)) {
  }
  leader_role& l = *as_leader();
  if (from == l.transferee && pr.match == log_.last_index()) {
    note("%d caught up; telling it to campaign now", m.from());
    send_timeout_now(from);
  }
}

void raft::handle_heartbeat_resp(const Message& m, progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  // A full window with a live follower: free one slot so replication cannot wedge on lost acks.
  if (pr.state == progress_state::replicate && pr.window.full()) pr.window.free_first_one();
  if (pr.match < log_.last_index()) send_append(node_id{m.from()});

  auto round_id = read_only::decode_context(m.context());
  if (!round_id) return;
  leader_role& l = *as_leader();
  auto done = l.reads.ack(*round_id, node_id{m.from()}, trk_.voters());
  if (!done) return;
  note("read round %d confirmed by a quorum: serving %d read(s) at index %d", done->id,
       done->requests.size(), done->index);
  for (const read_request& req : done->requests) answer_read(req, done->index);
  start_read_round_if_idle();
}

bool raft::maybe_commit() {
  // §3.6.2: commitment by counting replicas applies to entries of the current term only;
  // earlier entries are committed indirectly by the Log Matching Property.
  return log_.maybe_commit(trk_.committed(), term_);
}

void raft::on_commit_advanced() {
  leader_role* l = as_leader();
  if (l == nullptr) return;
  l->broadcast_pending = true;  // followers learn the new commit index with the next flush
  if (committed_entry_in_current_term() && !l->awaiting_term_commit.empty()) {
    std::vector<read_request> waiting = std::exchange(l->awaiting_term_commit, {});
    note("entry of term %d committed: %d held read(s) proceed", term_.value(), waiting.size());
    // All of them join one round (serve_read only queues while they are added).
    for (auto& r : waiting) serve_read(std::move(r), /*start_round=*/false);
    start_read_round_if_idle();
  }
}

bool raft::committed_entry_in_current_term() const {
  return log_.term_or_zero(log_.committed()) == term_;
}

bool raft::voters_are_only_me() const { return trk_.voters().size() == 1 && trk_.is_voter(id_); }

void raft::on_persisted() {
  if (!std::holds_alternative<leader_role>(role_)) return;
  progress* self = trk_.find(id_);
  if (self == nullptr) return;
  // §10.2.1: the leader's own copy counts towards a majority once it is on its disk.
  if (self->maybe_update(log_.last_stable_index()) && maybe_commit()) on_commit_advanced();
}

// ------------------------------------------------------------------------ candidate

std::expected<void, propose_error> raft::step_candidate(const Message& m) {
  auto& c = std::get<candidate_role>(role_);
  const MessageType my_response = c.pre ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      note("dropped proposal: no leader at term %d", term_.value());
      return std::unexpected(propose_error::no_leader);
    case raftpb::MSG_READ_INDEX:
      note("dropped read: no leader at term %d", term_.value());
      return std::unexpected(propose_error::no_leader);
    case raftpb::MSG_APP:
      become_follower(raft_term{m.term()}, node_id{m.from()});  // a leader of our term exists
      handle_append(m);
      return {};
    case raftpb::MSG_HEARTBEAT:
      become_follower(raft_term{m.term()}, node_id{m.from()});
      handle_heartbeat(m);
      return {};
    case raftpb::MSG_SNAP:
      become_follower(raft_term{m.term()}, node_id{m.from()});
      handle_snapshot(m);
      return {};
    case raftpb::MSG_TIMEOUT_NOW:
      note("ignored timeout-now from %d: already campaigning", m.from());
      return {};
    default:
      break;
  }
  if (m.type() != my_response) return {};  // e.g. late pre-vote answers once a real candidate
  c.votes[node_id{m.from()}] = !m.reject();
  const vote_result res = tally(trk_.voters(), c.votes);
  std::size_t granted = 0, rejected = 0;
  for (auto& [id, v] : c.votes) (v ? granted : rejected)++;
  note("%s from %d: %s; %d granted, %d rejected -> %s", message_type_name(m.type()), m.from(),
       m.reject() ? "rejected" : "granted", granted, rejected, to_string(res));
  if (res == vote_result::won) {
    if (c.pre) {
      campaign(campaign_kind::election);
    } else {
      become_leader();
    }
  } else if (res == vote_result::lost) {
    // A rejected pre-vote may carry a higher term than ours; our own term is the one to keep.
    become_follower(term_, no_node);
  }
  return {};
}

// ------------------------------------------------------------------------ follower

std::expected<void, propose_error> raft::step_follower(const Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP: {
      if (lead_.is_zero()) {
        note("dropped proposal: no leader at term %d", term_.value());
        return std::unexpected(propose_error::no_leader);
      }
      if (cfg_.disable_proposal_forwarding) {
        note("dropped proposal: forwarding to leader %d disabled", lead_.value());
        return std::unexpected(propose_error::forwarding_disabled);
      }
      // Proposals made between two Readys travel to the leader in one message.
      if (!msgs_.empty() && msgs_.back().type() == raftpb::MSG_PROP &&
          msgs_.back().to() == lead_.value()) {
        for (auto& e : take_entries(m)) *msgs_.back().add_entries() = std::move(e);
        return {};
      }
      Message f = &m == owned_ ? std::move(*owned_) : m;
      f.set_to(lead_.value());
      send(std::move(f));
      return {};
    }
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = node_id{m.from()};
      handle_append(m);
      return {};
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = node_id{m.from()};
      handle_heartbeat(m);
      return {};
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = node_id{m.from()};
      handle_snapshot(m);
      return {};
    case raftpb::MSG_TRANSFER_LEADER:
      // Local transfer requests name their target in `from`; a follower can only ask the leader
      // to hand over to itself (the server sends other requests to the leader directly).
      if (lead_.is_zero()) {
        note("dropped transfer request: no leader at term %d", term_.value());
        return std::unexpected(propose_error::no_leader);
      }
      if (m.from() != id_.value()) {
        note("dropped transfer request to %d: only the leader can transfer to another node",
             m.from());
        return {};
      }
      {
        Message f = m;
        f.set_to(lead_.value());
        send(std::move(f));
      }
      return {};
    case raftpb::MSG_TIMEOUT_NOW:
      if (!promotable()) {
        note("ignored timeout-now from %d: not a voter", m.from());
        return {};
      }
      // §3.10: the leader handed over; campaign at once, skipping the pre-vote (we know the
      // leader is alive and wants this) and the lease check on the voters' side.
      note("timeout-now from %d: campaigning for term %d", m.from(), term_.value() + 1);
      campaign(campaign_kind::transfer);
      return {};
    case raftpb::MSG_READ_INDEX: {
      if (lead_.is_zero()) {
        note("dropped read: no leader at term %d", term_.value());
        return std::unexpected(propose_error::no_leader);
      }
      Message f = m;
      f.set_to(lead_.value());
      send(std::move(f));
      return {};
    }
    case raftpb::MSG_READ_INDEX_RESP:
      read_states_.push_back({m.index(), m.context()});
      return {};
    default:
      return {};
  }
}

void raft::handle_append(const Message& m) {
  if (m.index() < log_.committed()) {
    // Everything up to our commit index matches the leader's log already (§3.6).
    Message r;
    r.set_to(m.from());
    r.set_type(raftpb::MSG_APP_RESP);
    r.set_index(log_.committed());
    send(std::move(r));
    return;
  }
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (auto last_new =
          log_.maybe_append(m.index(), raft_term{m.log_term()}, m.commit(), take_entries(m))) {
    r.set_index(*last_new);
    send(std::move(r));
    return;
  }
  // §3.5 consistency check failed. Point the leader at the last entry we have that could match:
  // at or below the rejected index, of a term no newer than the leader's entry there.
  const entry_id hint =
      log_.find_conflict_by_term(std::min(m.index(), log_.last_index()), raft_term{m.log_term()});
  note("rejected append after %d@%d: our entry there is %d@%d, hint %d@%d", m.index(), m.log_term(),
       std::min(m.index(), log_.last_index()),
       log_.term_or_zero(std::min(m.index(), log_.last_index())).value(), hint.index,
       hint.term.value());
  r.set_index(m.index());
  r.set_reject(true);
  r.set_reject_hint(hint.index);
  r.set_log_term(hint.term.value());
  send(std::move(r));
}

void raft::handle_heartbeat(const Message& m) {
  log_.commit_to(m.commit());
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_HEARTBEAT_RESP);
  r.set_context(m.context());
  send(std::move(r));
}

void raft::handle_snapshot(const Message& m) {
  const auto& md = m.snapshot().metadata();
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (restore(m.snapshot())) {
    note("installed snapshot %d@%d", md.index(), md.term());
    r.set_index(log_.last_index());
  } else {
    note("ignored snapshot %d@%d (commit %d)", md.index(), md.term(), log_.committed());
    r.set_index(log_.committed());
  }
  send(std::move(r));
}

bool raft::restore(const raftpb::Snapshot& snap) {
  const auto& md = snap.metadata();
  if (md.index() <= log_.committed()) return false;
  if (!std::holds_alternative<follower_role>(role_))
    die("restoring a snapshot while not a follower");
  const auto& cs = md.conf_state();
  const bool member =
      std::find(cs.voters().begin(), cs.voters().end(), id_.value()) != cs.voters().end() ||
      std::find(cs.learners().begin(), cs.learners().end(), id_.value()) != cs.learners().end();
  if (!member) {
    note("refused snapshot %d@%d: this node is not in its configuration", md.index(), md.term());
    return false;
  }
  if (log_.match_term(md.index(), raft_term{md.term()})) {
    // We already hold the entry it ends at: the snapshot only tells us it is committed.
    note("snapshot %d@%d matches our log: fast-forwarding commit", md.index(), md.term());
    log_.commit_to(md.index());
    return false;
  }
  log_.restore(snap);
  trk_.restore(cs, log_.last_index());
  const progress* self = trk_.find(id_);
  is_learner_ = self != nullptr && self->is_learner;
  return true;
}

// ======================================================================== membership

std::size_t raft::unapplied_conf_changes() const {
  if (log_.committed() <= log_.applied()) return 0;
  auto ents = log_.slice(log_.applied() + 1, log_.committed() + 1, no_limit);
  if (!ents) die("cannot read committed but unapplied entries");
  return static_cast<std::size_t>(
      std::count_if(ents->begin(), ents->end(),
                    [](const raftpb::Entry& e) { return e.type() == raftpb::ENTRY_CONF_CHANGE; }));
}

raftpb::ConfState raft::apply_conf_change(const raftpb::ConfChange& cc) {
  const std::string refused = trk_.apply(cc, log_.last_index());
  if (!refused.empty()) {
    note("conf change %s refused: %s", describe_conf_change(cc), refused);
  } else {
    note("applied conf change %s: now %s", describe_conf_change(cc), trk_.describe_config());
  }
  const progress* self = trk_.find(id_);
  is_learner_ = self != nullptr && self->is_learner;

  leader_role* l = as_leader();
  if (l == nullptr || !refused.empty()) return trk_.conf_state();
  if (self == nullptr || self->is_learner) {
    // §4.2.2: a leader removed from the configuration steps down once the change is committed.
    // Hand over to the most up-to-date voter right away, so the cluster does not sit out an
    // election timeout.
    node_id best;
    log_index best_match = 0;
    for (node_id v : trk_.voters()) {
      const progress* pr = trk_.find(v);
      if (pr != nullptr && (best.is_zero() || pr->match > best_match)) {
        best = v;
        best_match = pr->match;
      }
    }
    if (!best.is_zero() && best_match == log_.last_index()) {
      note("removed from the configuration: handing leadership to %d", best.value());
      send_timeout_now(best);
    } else {
      note("removed from the configuration: stepping down");
    }
    become_follower(term_, no_node);
    return trk_.conf_state();
  }
  // The quorum may have shrunk (commit advances) or a member joined (probe it right away).
  if (maybe_commit()) {
    on_commit_advanced();
  } else {
    for (auto& [id, _] : trk_.all()) {
      if (id != id_) maybe_send_append(id, false);
    }
  }
  if (!l->transferee.is_zero() && !trk_.is_member(l->transferee)) {
    note("transfer target %d was removed; abandoning the transfer", l->transferee.value());
    l->transferee = no_node;
  }
  return trk_.conf_state();
}

}  // namespace cairn::raft
