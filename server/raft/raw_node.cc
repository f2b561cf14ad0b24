#include "raft/raw_node.h"

#include <cstdio>
#include <cstdlib>

#include "raft/describe.h"

namespace cairn::raft {

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "raft raw_node: %s\n", what);
  std::abort();
}

bool is_local_only(raftpb::MessageType t) {
  return t == raftpb::MSG_HUP || t == raftpb::MSG_BEAT || t == raftpb::MSG_UNREACHABLE ||
         t == raftpb::MSG_SNAP_STATUS || t == raftpb::MSG_CHECK_QUORUM;
}

bool is_response(raftpb::MessageType t) {
  return t == raftpb::MSG_APP_RESP || t == raftpb::MSG_VOTE_RESP ||
         t == raftpb::MSG_HEARTBEAT_RESP || t == raftpb::MSG_PRE_VOTE_RESP ||
         t == raftpb::MSG_READ_INDEX_RESP;
}

bool same_hard_state(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

}  // namespace

std::string_view to_string(step_error e) {
  switch (e) {
    case step_error::local_message:
      return "raft: cannot step raft local message";
    case step_error::unknown_peer:
      return "raft: cannot step as peer not found";
  }
  return "?";
}

raw_node::raw_node(config cfg, const storage& s) : raft_(std::move(cfg), s) {
  prev_soft_ = raft_.soft();
  prev_hard_ = raft_.hard_state();
  checked("start");
}

void raw_node::checked([[maybe_unused]] std::string_view after) {
#ifdef CAIRN_RAFT_INVARIANTS
  checker_.check(invariant_checker::of(raft_), after);
#endif
}

void raw_node::tick() {
  raft_.tick();
  checked("tick");
}

void raw_node::campaign() {
  raftpb::Message m;
  m.set_type(raftpb::MSG_HUP);
  m.set_from(raft_.id().value());
  (void)raft_.step(m);
  checked("campaign");
}

std::expected<void, propose_error> raw_node::propose(std::string data) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_.id().value());
  m.add_entries()->set_data(std::move(data));
  auto r = raft_.step(std::move(m));
  checked("propose");
  return r;
}

std::expected<void, propose_error> raw_node::propose_conf_change(const raftpb::ConfChange& cc) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_.id().value());
  raftpb::Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE);
  e->set_data(cc.SerializeAsString());
  auto r = raft_.step(std::move(m));
  checked("propose_conf_change");
  return r;
}

std::expected<void, propose_error> raw_node::read_index(std::string context) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.set_from(raft_.id().value());
  m.set_context(std::move(context));
  auto r = raft_.step(m);
  checked("read_index");
  return r;
}

void raw_node::transfer_leader(node_id target) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(target.value());  // the transfer target travels in `from`
  m.set_to(raft_.id().value());
  (void)raft_.step(m);
  checked("transfer_leader");
}

std::expected<void, step_error> raw_node::step(const raftpb::Message& m) {
  if (is_local_only(m.type())) return std::unexpected(step_error::local_message);
  if (is_response(m.type()) && !raft_.members().is_member(node_id{m.from()})) {
    return std::unexpected(step_error::unknown_peer);
  }
  (void)raft_.step(m);
  checked(message_type_name(m.type()));
  return {};
}

std::expected<void, step_error> raw_node::step(raftpb::Message&& m) {
  if (is_local_only(m.type())) return std::unexpected(step_error::local_message);
  if (is_response(m.type()) && !raft_.members().is_member(node_id{m.from()})) {
    return std::unexpected(step_error::unknown_peer);
  }
  const raftpb::MessageType type = m.type();
  (void)raft_.step(std::move(m));
  checked(message_type_name(type));
  return {};
}

raftpb::ConfState raw_node::apply_conf_change(const raftpb::ConfChange& cc) {
  auto cs = raft_.apply_conf_change(cc);
  checked("apply_conf_change");
  return cs;
}

void raw_node::report_unreachable(node_id peer) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(peer.value());
  (void)raft_.step(m);
  checked("report_unreachable");
}

void raw_node::report_snapshot(node_id peer, snapshot_status st) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(peer.value());
  m.set_reject(st == snapshot_status::failure);
  (void)raft_.step(m);
  checked("report_snapshot");
}

bool raw_node::has_ready() const {
  if (raft_.soft() != prev_soft_) return true;
  const raftpb::HardState hs = raft_.hard_state();
  if (!same_hard_state(hs, prev_hard_)) return true;
  const raft_log& log = raft_.log();
  return log.unstable_snapshot().has_value() || !log.unstable_entries().empty() ||
         log.has_next_committed_entries() || raft_.has_outbox();
}

::cairn::raft::ready raw_node::ready() {
  if (outstanding_) die("ready() called again before advance()");
  raft_.flush();
  ::cairn::raft::ready rd;
  const soft_state ss = raft_.soft();
  if (ss != prev_soft_) rd.soft = ss;
  const raftpb::HardState hs = raft_.hard_state();
  if (!same_hard_state(hs, prev_hard_)) rd.hard_state = hs;
  const raft_log& log = raft_.log();
  rd.entries = log.unstable_entries();
  if (log.unstable_snapshot()) rd.snapshot = *log.unstable_snapshot();
  rd.committed_entries = log.next_committed_entries();
  rd.messages = raft_.take_messages();
  rd.read_states = raft_.take_read_states();
  rd.dropped_reads = raft_.take_dropped_reads();
#ifdef CAIRN_PLANTED_BUG_RAFT_VOTE_BEFORE_PERSIST
  // Planted bug: a new term or vote is written but not fsynced, so the vote reply sent next leaves
  // before the vote is on stable storage (a crash lets the node vote again in that term).
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value();
#else
  rd.must_sync =
      !rd.entries.empty() || rd.snapshot.has_value() ||
      (rd.hard_state && (hs.term() != prev_hard_.term() || hs.vote() != prev_hard_.vote()));
#endif

  outstanding o;
  if (!rd.entries.empty())
    o.last_entry = entry_id{rd.entries.back().index(), raft_term{rd.entries.back().term()}};
  if (rd.snapshot) o.snapshot_index = rd.snapshot->metadata().index();
  if (!rd.committed_entries.empty()) o.applied_to = rd.committed_entries.back().index();
  o.applied_to = std::max(o.applied_to, o.snapshot_index);
#ifdef CAIRN_RAFT_INVARIANTS
  o.entries = rd.entries;
  o.snapshot = rd.snapshot;
#endif
  outstanding_ = std::move(o);
  if (rd.soft) prev_soft_ = *rd.soft;
  if (rd.hard_state) prev_hard_ = *rd.hard_state;
  checked("ready");
  return rd;
}

void raw_node::advance() {
  if (!outstanding_) die("advance() without an outstanding ready()");
  outstanding o = std::move(*outstanding_);
  outstanding_.reset();
  raft_log& log = raft_.mutable_log();
  if (o.snapshot_index > 0) log.stable_snap_to(o.snapshot_index);
  if (o.last_entry) log.stable_to(o.last_entry->index, o.last_entry->term);
  if (o.applied_to > log.applied()) log.applied_to(o.applied_to);
#ifdef CAIRN_RAFT_INVARIANTS
  checker_.on_persisted(o.entries, o.snapshot ? &*o.snapshot : nullptr);
#endif
  raft_.on_persisted();
  checked("advance");
}

::cairn::raft::status raw_node::status() const {
  ::cairn::raft::status s;
  s.id = raft_.id();
  s.term = raft_.term();
  s.vote = raft_.vote();
  s.lead = raft_.lead();
  s.role = raft_.role();
  s.commit = raft_.log().committed();
  s.applied = raft_.log().applied();
  s.first_index = raft_.log().first_index();
  s.last_index = raft_.log().last_index();
  s.conf = raft_.members().conf_state();
  if (s.role == role_kind::leader) s.peers = raft_.members().all();
  s.lead_transferee = raft_.lead_transferee();
  s.election_elapsed = raft_.election_elapsed();
  s.randomized_election_timeout = raft_.randomized_election_timeout();
  return s;
}

}  // namespace cairn::raft
