#include "raft/interaction_env.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "raft/describe.h"

namespace cairn::raft::testing {

// Script errors (unknown command, bad argument) are reported in the transcript, so a broken
// script shows up as a diff rather than a crash. Exceptions stay inside this file.
namespace {

struct script_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::uint64_t to_u64(const std::string& s) {
  std::uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) throw script_error("not a number: " + s);
  return v;
}

bool to_bool(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  throw script_error("not a bool: " + s);
}

// "(1,2,3)" or "1" -> {1,2,3}
std::vector<std::uint64_t> to_list(const std::string& s) {
  std::string body = s;
  if (!body.empty() && body.front() == '(') {
    if (body.back() != ')') throw script_error("unclosed list: " + s);
    body = body.substr(1, body.size() - 2);
  }
  std::vector<std::uint64_t> out;
  for (absl::string_view part : absl::StrSplit(body, ',', absl::SkipEmpty()))
    out.push_back(to_u64(std::string(part)));
  return out;
}

std::string list_text(const std::vector<std::uint64_t>& v) {
  return absl::StrCat("(", absl::StrJoin(v, ","), ")");
}

std::string str(std::string_view s) { return std::string(s); }

}  // namespace

command parse_command(const std::string& line, int line_no) {
  command c;
  c.line = line_no;
  std::istringstream in(line);
  std::string tok;
  bool first = true;
  while (in >> tok) {
    if (first) {
      c.name = tok;
      first = false;
      continue;
    }
    if (auto eq = tok.find('='); eq != std::string::npos && tok.front() != '(') {
      c.opts[tok.substr(0, eq)] = tok.substr(eq + 1);
    } else {
      c.args.push_back(tok);
    }
  }
  return c;
}

struct interaction_env::node_env {
  std::uint64_t id = 0;
  config cfg;
  std::unique_ptr<memory_storage> storage;
  std::unique_ptr<raw_node> node;
  std::vector<std::string> applied;  // the "state machine": data of applied normal entries
  log_index applied_index = 0;
  raftpb::ConfState conf;
};

interaction_env::interaction_env() = default;
interaction_env::~interaction_env() = default;

void interaction_env::emit(const std::string& line) {
  out_.append(static_cast<std::size_t>(indent_), ' ');
  out_ += line;
  out_ += '\n';
}

interaction_env::node_env& interaction_env::node(std::uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw script_error(absl::StrCat("no node ", id));
  return *it->second;
}

std::set<std::uint64_t> interaction_env::ids_or_all(const command& cmd) const {
  std::set<std::uint64_t> ids;
  for (const auto& a : cmd.args) {
    for (auto v : to_list(a)) ids.insert(v);
  }
  if (ids.empty()) {
    for (const auto& [id, _] : nodes_) ids.insert(id);
  }
  return ids;
}

bool interaction_env::connected(std::uint64_t a, std::uint64_t b) const {
  if (partition_.empty()) return true;
  for (const auto& group : partition_) {
    if (group.contains(a)) return group.contains(b);
  }
  return false;  // not in any group: isolated
}

void interaction_env::make_node(std::uint64_t id, node_env& n) {
  config cfg = n.cfg;
  cfg.logger = [this, id](std::string_view line) { emit(absl::StrCat(id, ": ", str(line))); };
  n.node = std::make_unique<raw_node>(cfg, *n.storage);
}

std::string interaction_env::handle(const command& cmd) {
  out_.clear();
  indent_ = 0;
  try {
    const auto& a = cmd.args;
    auto need = [&](std::size_t n) {
      if (a.size() < n) throw script_error(absl::StrCat(cmd.name, " needs ", n, " argument(s)"));
    };
    auto report = [&](const std::expected<void, propose_error>& r) {
      if (!r) emit(absl::StrCat("error: ", str(to_string(r.error()))));
    };
    if (cmd.name.empty()) {
      throw script_error(a.empty() ? "empty command" : a[0]);
    } else if (cmd.name == "add-nodes") {
      add_nodes(cmd);
    } else if (cmd.name == "campaign") {
      need(1);
      node(to_u64(a[0])).node->campaign();
    } else if (cmd.name == "propose") {
      need(2);
      report(node(to_u64(a[0])).node->propose(a[1]));
    } else if (cmd.name == "propose-conf-change") {
      need(3);
      raftpb::ConfChange cc;
      const std::string& kind = a[1];
      if (kind == "add") {
        cc.set_type(raftpb::CONF_ADD_NODE);
      } else if (kind == "remove") {
        cc.set_type(raftpb::CONF_REMOVE_NODE);
      } else if (kind == "add-learner") {
        cc.set_type(raftpb::CONF_ADD_LEARNER_NODE);
      } else if (kind == "update") {
        cc.set_type(raftpb::CONF_UPDATE_NODE);
      } else {
        throw script_error("unknown conf change kind " + kind);
      }
      cc.set_node_id(to_u64(a[2]));
      report(node(to_u64(a[0])).node->propose_conf_change(cc));
    } else if (cmd.name == "read-index") {
      need(2);
      report(node(to_u64(a[0])).node->read_index(a[1]));
    } else if (cmd.name == "transfer-leader") {
      need(2);
      node(to_u64(a[0])).node->transfer_leader(node_id{to_u64(a[1])});
    } else if (cmd.name == "tick") {
      need(1);
      tick(to_u64(a[0]), a.size() > 1 ? static_cast<int>(to_u64(a[1])) : 1);
    } else if (cmd.name == "tick-heartbeat") {
      need(1);
      node_env& n = node(to_u64(a[0]));
      tick(n.id, n.cfg.heartbeat_tick);
    } else if (cmd.name == "tick-election") {
      // Followers and candidates: exactly as many ticks as their randomized timeout still needs.
      // Leaders: one election timeout (CheckQuorum and transfer deadlines).
      need(1);
      node_env& n = node(to_u64(a[0]));
      const status s = n.node->status();
      int ticks = n.cfg.election_tick;
      if (s.role != role_kind::leader)
        ticks = std::max(1, s.randomized_election_timeout - s.election_elapsed);
      tick(n.id, ticks);
    } else if (cmd.name == "process-ready") {
      for (auto id : ids_or_all(cmd)) {
        if (node(id).node->has_ready()) process_ready(id);
      }
    } else if (cmd.name == "deliver-msgs") {
      for (auto id : ids_or_all(cmd)) deliver(id);
    } else if (cmd.name == "drop-msgs") {
      // drop-msgs [ID...] [type=app]: lose queued messages to those nodes.
      const auto ids = ids_or_all(cmd);
      const auto type = cmd.opts.contains("type") ? cmd.opts.at("type") : std::string();
      std::deque<raftpb::Message> keep;
      for (auto& m : network_) {
        if (ids.contains(m.to()) && (type.empty() || message_type_name(m.type()) == type)) {
          emit("dropped: " + describe_message(m));
          if (m.type() == raftpb::MSG_SNAP && nodes_.contains(m.from())) {
            node(m.from()).node->report_snapshot(node_id{m.to()}, snapshot_status::failure);
          }
        } else {
          keep.push_back(std::move(m));
        }
      }
      network_ = std::move(keep);
    } else if (cmd.name == "stabilize") {
      stabilize(ids_or_all(cmd));
    } else if (cmd.name == "partition") {
      partition_.clear();
      for (const auto& g : a) {
        auto members = to_list(g);
        partition_.emplace_back(members.begin(), members.end());
      }
      std::vector<std::string> groups;
      for (const auto& g : partition_) groups.push_back(list_text({g.begin(), g.end()}));
      emit("partitioned: " + absl::StrJoin(groups, " | "));
    } else if (cmd.name == "heal") {
      partition_.clear();
      emit("healed");
    } else if (cmd.name == "compact") {
      need(2);
      compact(to_u64(a[0]), to_u64(a[1]));
    } else if (cmd.name == "status") {
      for (auto id : ids_or_all(cmd)) print_status(id);
    } else if (cmd.name == "log") {
      for (auto id : ids_or_all(cmd)) print_log(id);
    } else if (cmd.name == "restart") {
      need(1);
      restart(to_u64(a[0]));
    } else if (cmd.name == "report-unreachable") {
      need(2);
      node(to_u64(a[0])).node->report_unreachable(node_id{to_u64(a[1])});
    } else {
      throw script_error("unknown command " + cmd.name);
    }
  } catch (const script_error& e) {
    indent_ = 0;
    emit(absl::StrCat("script error: ", e.what()));
  }
  if (out_.empty()) return "ok\n";
  return out_;
}

// add-nodes N [voters=(..)] [learners=(..)] [index=I] [pre-vote=b] [check-quorum=b] [election=N]
//   [heartbeat=N] [max-size=N] [max-inflight=N] [max-committed-size=N] [forwarding=b] [seed=N]
// New ids follow the highest existing one. With voters/learners, each node starts from a
// snapshot at `index` (term 1) holding that membership; without, it starts empty (a node about
// to be added, which learns everything from the leader).
void interaction_env::add_nodes(const command& cmd) {
  if (cmd.args.empty()) throw script_error("add-nodes needs a count");
  const std::uint64_t count = to_u64(cmd.args[0]);
  config base;
  base.election_tick = 10;
  base.heartbeat_tick = 1;
  raftpb::ConfState cs;
  log_index index = 1;
  bool bootstrap = false;
  for (const auto& [k, v] : cmd.opts) {
    if (k == "voters") {
      for (auto id : to_list(v)) cs.add_voters(id);
      bootstrap = true;
    } else if (k == "learners") {
      for (auto id : to_list(v)) cs.add_learners(id);
      bootstrap = true;
    } else if (k == "index") {
      index = to_u64(v);
    } else if (k == "pre-vote") {
      base.pre_vote = to_bool(v);
    } else if (k == "check-quorum") {
      base.check_quorum = to_bool(v);
    } else if (k == "election") {
      base.election_tick = static_cast<int>(to_u64(v));
    } else if (k == "heartbeat") {
      base.heartbeat_tick = static_cast<int>(to_u64(v));
    } else if (k == "max-size") {
      base.max_size_per_msg = to_u64(v);
    } else if (k == "max-inflight") {
      base.max_inflight_msgs = to_u64(v);
    } else if (k == "max-committed-size") {
      base.max_committed_size_per_ready = to_u64(v);
    } else if (k == "forwarding") {
      base.disable_proposal_forwarding = !to_bool(v);
    } else if (k == "seed") {
      base.seed = to_u64(v);
    } else {
      throw script_error("unknown add-nodes option " + k);
    }
  }
  std::uint64_t next = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
  for (std::uint64_t k = 0; k < count; ++k, ++next) {
    auto n = std::make_unique<node_env>();
    n->id = next;
    n->cfg = base;
    n->cfg.id = node_id{next};
    n->storage = std::make_unique<memory_storage>();
    if (bootstrap) {
      raftpb::Snapshot snap;
      snap.mutable_metadata()->set_index(index);
      snap.mutable_metadata()->set_term(1);
      *snap.mutable_metadata()->mutable_conf_state() = cs;
      (void)n->storage->apply_snapshot(snap);
      raftpb::HardState hs;
      hs.set_term(1);
      hs.set_commit(index);
      n->storage->set_hard_state(hs);
      n->conf = cs;
      n->applied_index = index;
    }
    make_node(next, *n);
    nodes_[next] = std::move(n);
  }
}

void interaction_env::tick(std::uint64_t id, int n) {
  node_env& e = node(id);
  for (int i = 0; i < n; ++i) e.node->tick();
  emit(absl::StrCat(id, " ticked ", n, n == 1 ? " time" : " times"));
}

void interaction_env::process_ready(std::uint64_t id) {
  node_env& n = node(id);
  ready rd = n.node->ready();
  emit(absl::StrCat("> ", id, " handling ready"));
  indent_ += 2;
  if (rd.soft)
    emit(absl::StrCat("soft: lead=", rd.soft->lead.value(),
                      " role=", str(to_string(rd.soft->role))));
  if (rd.hard_state) emit("hard: " + describe_hard_state(*rd.hard_state));
  if (rd.must_sync) emit("fsync");
  if (rd.snapshot) emit("install snapshot: " + describe_snapshot(*rd.snapshot));
  for (const auto& e : rd.entries) emit("append: " + describe_entry(e));
  // A message sent across a partition never arrives.
  for (const auto& m : rd.messages) {
    emit("send: " + describe_message(m) +
         (connected(m.from(), m.to()) ? "" : "  (lost: partitioned)"));
  }
  // 1. persist (the messages above leave only after this, as the real loop does).
  if (rd.snapshot) {
    (void)n.storage->apply_snapshot(*rd.snapshot);
    n.applied.clear();
    for (absl::string_view part : absl::StrSplit(rd.snapshot->data(), ',', absl::SkipEmpty())) {
      n.applied.emplace_back(part);
    }
    n.applied_index = rd.snapshot->metadata().index();
    n.conf = rd.snapshot->metadata().conf_state();
  }
  n.storage->append(rd.entries);
  if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
  // 2. send.
  for (auto& m : rd.messages) {
    if (connected(m.from(), m.to())) {
      network_.push_back(std::move(m));
    } else if (m.type() == raftpb::MSG_SNAP) {
      n.node->report_snapshot(node_id{m.to()}, snapshot_status::failure);
    }
  }
  // 3. apply.
  for (const auto& e : rd.committed_entries) {
    emit("apply: " + describe_entry(e));
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange cc;
      if (!cc.ParseFromString(e.data())) throw script_error("unparsable conf change");
      n.conf = n.node->apply_conf_change(cc);
    } else if (!e.data().empty()) {
      n.applied.push_back(e.data());
    }
    n.applied_index = e.index();
  }
  for (const auto& r : rd.read_states) {
    emit(absl::StrCat("read-state: index=", r.index, " ctx=", describe_bytes(r.context),
                      r.index <= n.applied_index ? " (servable now)" : " (wait for apply)"));
  }
  for (const auto& c : rd.dropped_reads) emit("dropped-read: ctx=" + describe_bytes(c));
  n.node->advance();
  indent_ -= 2;
}

bool interaction_env::deliver(std::uint64_t to) {
  std::vector<raftpb::Message> mine;
  std::deque<raftpb::Message> rest;
  for (auto& m : network_)
    (m.to() == to ? mine.emplace_back(std::move(m)) : rest.emplace_back(std::move(m)));
  network_ = std::move(rest);
  if (mine.empty()) return false;
  emit(absl::StrCat("> ", to, " receiving messages"));
  indent_ += 2;
  for (const auto& m : mine) {
    const bool reachable = nodes_.contains(to) && connected(m.from(), to);
    if (!reachable) {
      emit("dropped: " + describe_message(m));
      if (m.type() == raftpb::MSG_SNAP && nodes_.contains(m.from())) {
        node(m.from()).node->report_snapshot(node_id{to}, snapshot_status::failure);
        emit(absl::StrCat("reported snapshot to ", to, " failed to ", m.from()));
      }
      continue;
    }
    emit(describe_message(m));
    indent_ += 2;
    auto r = node(to).node->step(m);
    if (!r) emit(absl::StrCat("step error: ", str(to_string(r.error()))));
    indent_ -= 2;
    if (m.type() == raftpb::MSG_SNAP && nodes_.contains(m.from())) {
      // The transport reports the outcome of a snapshot send back to the sender.
      emit(absl::StrCat("reported snapshot to ", to, " finished to ", m.from()));
      indent_ += 2;
      node(m.from()).node->report_snapshot(node_id{to}, snapshot_status::finished);
      indent_ -= 2;
    }
  }
  indent_ -= 2;
  return true;
}

void interaction_env::stabilize(const std::set<std::uint64_t>& ids) {
  for (int round = 0; round < 1000; ++round) {
    bool busy = false;
    for (auto id : ids) {
      if (node(id).node->has_ready()) {
        process_ready(id);
        busy = true;
      }
    }
    for (auto id : ids) busy = deliver(id) || busy;
    if (!busy) return;
  }
  emit("stabilize: still busy after 1000 rounds");
}

void interaction_env::print_status(std::uint64_t id) {
  node_env& n = node(id);
  const status s = n.node->status();
  std::string line = absl::StrCat(
      id, ": ", str(to_string(s.role)), " term=", s.term.value(), " lead=", s.lead.value(),
      " vote=", s.vote.value(), " commit=", s.commit, " applied=", s.applied, " log=[",
      s.first_index, ",", s.last_index, "] ", describe_conf_state(s.conf));
  if (!s.lead_transferee.is_zero())
    absl::StrAppend(&line, " transferring-to=", s.lead_transferee.value());
  if (s.role != role_kind::leader) {
    absl::StrAppend(&line, " election-elapsed=", s.election_elapsed, "/",
                    s.randomized_election_timeout);
  }
  emit(line);
  for (const auto& [peer, pr] : s.peers) {
    if (peer.value() == id) continue;
    emit(absl::StrCat("  ", peer.value(), ": ", pr.describe()));
  }
}

void interaction_env::print_log(std::uint64_t id) {
  node_env& n = node(id);
  const memory_storage& st = *n.storage;
  auto snap = st.snapshot();
  emit(absl::StrCat(id, ": storage first=", st.first_index(), " last=", st.last_index(),
                    snap && snap->metadata().index() > 0 ? " snapshot=" + describe_snapshot(*snap)
                                                         : std::string()));
  if (st.last_index() >= st.first_index()) {
    auto ents = st.entries(st.first_index(), st.last_index() + 1, no_limit);
    for (const auto& e : *ents) emit("  " + describe_entry(e));
  }
  emit("  " + describe_hard_state(st.initial().hard_state));
  std::vector<std::string> applied;
  for (const auto& d : n.applied) applied.push_back(describe_bytes(d));
  emit(absl::StrCat("  applied=", n.applied_index, " state=[", absl::StrJoin(applied, ","), "] ",
                    describe_conf_state(n.conf)));
}

void interaction_env::restart(std::uint64_t id) {
  // The node and its state machine go; storage (everything persisted) stays. The state machine
  // is rebuilt from the snapshot and replay of committed entries.
  node_env& n = node(id);
  n.node.reset();
  auto snap = n.storage->snapshot();
  n.applied.clear();
  for (absl::string_view part : absl::StrSplit(snap->data(), ',', absl::SkipEmpty()))
    n.applied.emplace_back(part);
  n.applied_index = snap->metadata().index();
  n.conf = snap->metadata().conf_state();
  // Queued messages to or from it are lost with the process.
  std::erase_if(network_, [id](const raftpb::Message& m) { return m.to() == id; });
  make_node(id, n);
}

void interaction_env::compact(std::uint64_t id, log_index index) {
  node_env& n = node(id);
  if (index > n.applied_index)
    throw script_error(absl::StrCat("cannot compact past applied index ", n.applied_index));
  // The snapshot holds the state as of `index`: replay from the stored snapshot to there.
  auto snap = n.storage->snapshot();
  std::vector<std::string> state;
  for (absl::string_view part : absl::StrSplit(snap->data(), ',', absl::SkipEmpty()))
    state.emplace_back(part);
  raftpb::ConfState cs = snap->metadata().conf_state();
  auto ents = n.storage->entries(n.storage->first_index(), index + 1, no_limit);
  if (!ents) throw script_error("compact: entries unavailable");
  for (const auto& e : *ents) {
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) state.push_back(e.data());
  }
  // Membership at `index`: the node's current one (scripts compact at the applied index).
  cs = n.conf;
  auto made = n.storage->create_snapshot(index, cs, absl::StrJoin(state, ","));
  if (!made) throw script_error(absl::StrCat("create_snapshot: ", str(to_string(made.error()))));
  auto c = n.storage->compact(index);
  if (!c) throw script_error(absl::StrCat("compact: ", str(to_string(c.error()))));
  emit(absl::StrCat(id, ": snapshot ", describe_snapshot(*made), "; log now starts at ",
                    n.storage->first_index()));
}

}  // namespace cairn::raft::testing
