#include "raft/sim/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/describe.h"
#include "raft/raw_node.h"
#include "raft/sim/disk.h"
#include "raft/sim/history.h"
#include "raft/sim/rng.h"

namespace cairn::raft::sim {

// ======================================================================== options, coverage

std::string options::command() const {
  std::string out = absl::StrCat("raft_sim --seed ", seed, " --nodes ", nodes, " --ticks ", ticks);
  if (!protocol_checks) out += " --no-protocol-checks";
  return out;
}

void coverage::add(const coverage& c) {
  runs += c.runs;
  ticks += c.ticks;
  elections += c.elections;
  partitions += c.partitions;
  crashes += c.crashes;
  conf_changes += c.conf_changes;
  transfers += c.transfers;
  snapshots_sent += c.snapshots_sent;
  snapshots_installed += c.snapshots_installed;
  compactions += c.compactions;
  writes_acked += c.writes_acked;
  writes_failed += c.writes_failed;
  reads_served += c.reads_served;
  reads_failed += c.reads_failed;
  messages_delivered += c.messages_delivered;
  messages_lost += c.messages_lost;
}

std::string coverage::describe() const {
  return absl::StrFormat(
      "runs=%d ticks=%d elections=%d partitions=%d crashes=%d conf-changes=%d transfers=%d "
      "snapshots-sent=%d snapshots-installed=%d compactions=%d writes-acked=%d writes-failed=%d "
      "reads-served=%d reads-failed=%d messages=%d lost=%d",
      runs, ticks, elections, partitions, crashes, conf_changes, transfers, snapshots_sent,
      snapshots_installed, compactions, writes_acked, writes_failed, reads_served, reads_failed,
      messages_delivered, messages_lost);
}

// ======================================================================== abort reporter

namespace {

// Per thread: the runner may simulate several seeds at once, and abort() runs the handler on the
// thread that called it.
thread_local char g_current_run[256];

void report_abort(int) {
  static const char prefix[] = "\nraft_sim: aborted; reproduce with: ";
  ssize_t ignored = write(STDERR_FILENO, prefix, sizeof prefix - 1);
  ignored = write(STDERR_FILENO, g_current_run, strnlen(g_current_run, sizeof g_current_run));
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  std::signal(SIGABRT, SIG_DFL);
  std::raise(SIGABRT);
}

}  // namespace

void install_abort_reporter() { std::signal(SIGABRT, report_abort); }

void set_current_run(const options& o) {
  const std::string cmd = o.command();
  std::snprintf(g_current_run, sizeof g_current_run, "%s", cmd.c_str());
}

// ======================================================================== the simulation

namespace {

constexpr int election_ticks = 10;
constexpr sim_time election_time = ticks_to_time(election_ticks);
// After the final heal: a leader within this many election timeouts, and every acknowledged
// write on every voter within the second bound.
constexpr int leader_bound_elections = 10;
constexpr int converge_bound_elections = 20;

// Knobs drawn once per run, so that different seeds stress different corners (snapshots every
// few entries, pre-vote off, ...). Flow-control knobs are drawn per process start (start()).
struct parameters {
  bool pre_vote = true;
  log_index snapshot_every = 0;
  log_index snapshot_keep = 0;
  int clients = 0;
  sim_time think_max = 0;  // client pause between operations
};

enum class proc_state { running, down, stopped };

// A client keeps talking to one member (as clientv3 keeps its connection) until an error or a
// timeout makes it pick another; each has its own mix of writes and reads (some only read, like
// watchers doing consistent reads).
struct client {
  double write_share = 0;
  node_id endpoint;
  bool busy = false;
  bool is_write = false;
  std::uint64_t op = 0;  // write id or read id
  int reg = 0;
  node_id target;
  std::uint64_t incarnation = 0;
  sim_time invoked = 0;
  log_index floor = 0;  // history floor when invoked
};

struct sim_node {
  node_id id;
  proc_state state = proc_state::running;
  std::uint64_t incarnation = 0;
  disk d;
  std::unique_ptr<raw_node> rn;
  registers sm;
  log_index applied = 0;
  raftpb::ConfState conf;
  log_index seen_commit = 0;
  log_index snapshot_index = 0;
  std::map<std::uint64_t, int> pending_writes;  // write id -> client (-1: the liveness probe)
  struct pending_read {
    int client = 0;
    std::optional<log_index> index;  // known once the read state arrives
  };
  std::map<std::string, pending_read> pending_reads;  // by context
  std::set<log_index> conf_entries;                   // where membership changes sit in its log
  // Membership as the operator sees it.
  bool was_member = false;
  bool joining = false;
  sim_time join_deadline = 0;
  raft_term churn_term;  // the term in which leader churn last cut it off
  sim_time tick_interval = units_per_tick;
};

enum class ev_kind {
  tick,
  deliver,
  snap_report,
  unreachable_report,
  client_op,
  client_timeout,
  nemesis,
  heal,
  crash,
  restart,
  operator_step,
  churn,
  final_heal,
  liveness,
};

struct event {
  sim_time at = 0;
  std::uint64_t seq = 0;
  ev_kind kind = ev_kind::tick;
  std::uint64_t node = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t arg = 0;
  raftpb::Message msg;
};

struct event_later {
  bool operator()(const event& a, const event& b) const {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};

// Forced nemesis actions, so every run has at least one of each.
enum nemesis_action : std::uint64_t {
  nemesis_random = 0,
  nemesis_crash = 1,
  nemesis_partition = 2,
};

class cluster {
 public:
  explicit cluster(const options& o) : opts_(o), rng_(o.seed * 0x2545f4914f6cdd1dULL + 1) {}

  result run();

 private:
  // --- events
  void schedule(sim_time delay, ev_kind kind, std::uint64_t node = 0, std::uint64_t inc = 0,
                std::uint64_t arg = 0, raftpb::Message msg = {});
  void dispatch(event& ev);

  // --- nodes
  sim_node* find(node_id id);
  sim_node* find(std::uint64_t id) { return find(node_id{id}); }
  sim_node& create_node(node_id id);
  void start(sim_node& n);
  void crash(sim_node& n, const char* why);
  void restart(sim_node& n);
  void stop(sim_node& n, const char* why);
  void pump(sim_node& n);
  void handle_ready(sim_node& n);
  void send(sim_node& n, raftpb::Message m);
  void apply_entry(sim_node& n, const raftpb::Entry& e);
  void serve_reads(sim_node& n);
  void maybe_compact(sim_node& n);
  void deliver(event& ev);
  sim_node* leader();

  // --- the world
  void client_op(int c);
  void client_done(int c, bool ok);
  void client_timeout(int c, std::uint64_t op);
  void fail_clients_of(sim_node& n);
  void nemesis(std::uint64_t forced);
  void partition();
  void crash_some();
  void change_weather();
  void operator_step();
  void observe_membership(sim_node& l);
  void final_heal();
  void liveness();

  // --- checks
  void fail(std::string what);
  void check(const verdict& v) {
    if (v) fail(*v);
  }
  void check_leader_completeness(sim_node& n);
  void check_durable_before_send(sim_node& n, const raftpb::Message& m);
  void check_one_conf_change_in_flight(sim_node& n);
  void check_commit_rule(sim_node& n, log_index commit);

  template <class... A>
  void trace(const absl::FormatSpec<A...>& fmt, const A&... args) {
    if (!opts_.verbose) return;
    std::fprintf(stderr, "[%6.1f] %s\n", static_cast<double>(now_) / units_per_tick,
                 absl::StrFormat(fmt, args...).c_str());
  }
  std::vector<node_id> live_ids(bool include_down) const;

  options opts_;
  rng rng_;
  parameters params_;
  network net_;
  history hist_;
  coverage cov_;
  std::vector<event> queue_;
  std::uint64_t seq_ = 0;
  sim_time now_ = 0;
  sim_time chaos_end_ = 0;
  bool chaos_over_ = false;
  bool done_ = false;
  bool failed_ = false;
  std::string failure_;

  std::map<node_id, std::unique_ptr<sim_node>> nodes_;
  std::uint64_t next_node_id_ = 1;
  std::vector<client> clients_;
  std::uint64_t next_write_ = 1;
  std::uint64_t next_read_ = 1;
  std::uint64_t next_conf_change_ = 1;
  std::set<log_index> conf_changes_counted_;
  log_index observed_applied_ = 0;
  bool vote_crash_armed_ = false;
  sim_time churn_until_ = 0;

  // Liveness phase.
  sim_time healed_at_ = 0;
  bool leader_seen_ = false;
  std::optional<log_index> probe_index_;
  std::uint64_t probe_write_ = 0;
  sim_time probe_sent_at_ = 0;
};

// ------------------------------------------------------------------------ events

void cluster::schedule(sim_time delay, ev_kind kind, std::uint64_t node, std::uint64_t inc,
                       std::uint64_t arg, raftpb::Message msg) {
  event ev;
  ev.at = now_ + delay;
  ev.seq = seq_++;
  ev.kind = kind;
  ev.node = node;
  ev.incarnation = inc;
  ev.arg = arg;
  ev.msg = std::move(msg);
  queue_.push_back(std::move(ev));
  std::push_heap(queue_.begin(), queue_.end(), event_later{});
}

result cluster::run() {
  params_.pre_vote = !rng_.chance(0.15);
  params_.snapshot_every = rng_.pick<log_index>({8, 30, 100, 400});
  params_.snapshot_keep = rng_.pick<log_index>({0, 2, 10});
  params_.clients = static_cast<int>(rng_.between(2, 5));
  params_.think_max = rng_.pick<sim_time>({5, 20, 60});
  trace("seed %d: %d nodes, pre-vote=%s, snapshot every %d keep %d, %d clients", opts_.seed,
        opts_.nodes, params_.pre_vote ? "on" : "off", params_.snapshot_every, params_.snapshot_keep,
        params_.clients);

  // Bootstrap: every initial member starts from the same snapshot holding the membership.
  raftpb::Snapshot boot;
  boot.mutable_metadata()->set_index(1);
  boot.mutable_metadata()->set_term(1);
  for (int i = 1; i <= opts_.nodes; ++i)
    boot.mutable_metadata()->mutable_conf_state()->add_voters(i);
  boot.set_data(registers{}.encode());
  for (int i = 1; i <= opts_.nodes; ++i) {
    sim_node& n = create_node(node_id{next_node_id_++});
    n.d.apply_snapshot(boot);
    raftpb::HardState hs;
    hs.set_term(1);
    hs.set_commit(1);
    n.d.set_hard_state(hs);
    n.d.sync();
    n.was_member = true;
    start(n);
  }
  net_.weather = weather::perfect();
  chaos_end_ = ticks_to_time(static_cast<std::uint64_t>(opts_.ticks));

  clients_.resize(static_cast<std::size_t>(params_.clients));
  for (int c = 0; c < params_.clients; ++c) {
    clients_[static_cast<std::size_t>(c)].write_share = rng_.pick<double>({0, 0.3, 0.6, 1});
    schedule(rng_.below(ticks_to_time(5)), ev_kind::client_op, 0, 0, static_cast<std::uint64_t>(c));
  }
  // The fault schedule: random actions all along, plus one crash, one partition and one
  // membership change forced into the first half so no run goes without them.
  schedule(ticks_to_time(rng_.between(5, 30)), ev_kind::nemesis, 0, 0, nemesis_random);
  const auto in_first_half = [&] {
    return static_cast<sim_time>(rng_.between(static_cast<std::int64_t>(chaos_end_ / 10),
                                              static_cast<std::int64_t>(chaos_end_ / 2)));
  };
  schedule(in_first_half(), ev_kind::nemesis, 0, 0, nemesis_crash);
  schedule(in_first_half(), ev_kind::nemesis, 0, 0, nemesis_partition);
  schedule(ticks_to_time(rng_.between(20, 60)), ev_kind::operator_step);
  schedule(chaos_end_, ev_kind::final_heal);

  const sim_time hard_end =
      chaos_end_ + ticks_to_time(converge_bound_elections * election_ticks * 2);
  while (!failed_ && !done_ && !queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), event_later{});
    event ev = std::move(queue_.back());
    queue_.pop_back();
    now_ = ev.at;
    if (now_ > hard_end) {
      fail("simulation ran past its end without finishing the liveness check");
      break;
    }
    dispatch(ev);
  }
  if (!failed_ && !done_) fail("event queue ran dry before the liveness check finished");

  result r;
  r.ok = !failed_;
  r.failure = failure_;
  r.at = now_;
  cov_.runs = 1;
  cov_.ticks = now_ / units_per_tick;
  r.cov = cov_;
  return r;
}

void cluster::dispatch(event& ev) {
  switch (ev.kind) {
    case ev_kind::tick: {
      sim_node* n = find(ev.node);
      if (n == nullptr || n->state != proc_state::running || n->incarnation != ev.incarnation)
        return;
      n->rn->tick();
      pump(*n);
      schedule(n->tick_interval, ev_kind::tick, ev.node, ev.incarnation);
      return;
    }
    case ev_kind::deliver:
      deliver(ev);
      return;
    case ev_kind::snap_report:
    case ev_kind::unreachable_report: {
      sim_node* n = find(ev.node);
      if (n == nullptr || n->state != proc_state::running || n->incarnation != ev.incarnation)
        return;
      if (ev.kind == ev_kind::snap_report) {
        n->rn->report_snapshot(node_id{ev.arg & 0xffffffffULL}, (ev.arg >> 32) != 0
                                                                    ? snapshot_status::failure
                                                                    : snapshot_status::finished);
      } else {
        n->rn->report_unreachable(node_id{ev.arg});
      }
      pump(*n);
      return;
    }
    case ev_kind::client_op:
      client_op(static_cast<int>(ev.arg));
      return;
    case ev_kind::client_timeout:
      client_timeout(static_cast<int>(ev.node), ev.arg);
      return;
    case ev_kind::nemesis:
      if (chaos_over_) return;
      nemesis(ev.arg);
      if (ev.arg == nemesis_random) {
        schedule(ticks_to_time(rng_.between(10, 60)), ev_kind::nemesis, 0, 0, nemesis_random);
      }
      return;
    case ev_kind::heal:
      if (chaos_over_ || !net_.partitioned()) return;
      net_.heal();
      trace("nemesis: heal the network");
      return;
    case ev_kind::crash: {
      sim_node* n = find(ev.node);
      if (chaos_over_ || n == nullptr || n->state != proc_state::running ||
          n->incarnation != ev.incarnation)
        return;
      crash(*n, "right after granting a vote");
      schedule(ticks_to_time(rng_.between(1, 60)), ev_kind::restart, n->id.value());
      return;
    }
    case ev_kind::restart: {
      sim_node* n = find(ev.node);
      if (n != nullptr && n->state == proc_state::down) restart(*n);
      return;
    }
    case ev_kind::churn: {
      sim_node* n = find(ev.node);
      if (chaos_over_ || n == nullptr || n->state != proc_state::running ||
          n->incarnation != ev.incarnation)
        return;
      if (ev.arg == 0 && rng_.chance(0.5)) {
        crash(*n, "leader churn");
        schedule(ticks_to_time(rng_.between(1, 40)), ev_kind::restart, n->id.value());
      } else {
        std::vector<node_id> others = live_ids(/*include_down=*/true);
        std::erase(others, n->id);
        net_.split({{n->id}, others});
        trace("nemesis: leader churn cuts off %d", n->id.value());
        schedule(ticks_to_time(rng_.between(5, 60)), ev_kind::heal);
      }
      return;
    }
    case ev_kind::operator_step:
      if (chaos_over_) return;
      operator_step();
      schedule(ticks_to_time(rng_.between(20, 120)), ev_kind::operator_step);
      return;
    case ev_kind::final_heal:
      final_heal();
      return;
    case ev_kind::liveness:
      liveness();
      if (!done_ && !failed_) schedule(units_per_tick, ev_kind::liveness);
      return;
  }
}

// ------------------------------------------------------------------------ nodes

sim_node* cluster::find(node_id id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

sim_node& cluster::create_node(node_id id) {
  auto n = std::make_unique<sim_node>();
  n->id = id;
  n->state = proc_state::down;
  sim_node& ref = *n;
  nodes_[id] = std::move(n);
  return ref;
}

std::vector<node_id> cluster::live_ids(bool include_down) const {
  std::vector<node_id> out;
  for (const auto& [id, n] : nodes_) {
    if (n->state == proc_state::running || (include_down && n->state == proc_state::down))
      out.push_back(id);
  }
  return out;
}

// Starts (or restarts) the node's process from what its disk holds.
void cluster::start(sim_node& n) {
  ++n.incarnation;
  config c;
  c.id = n.id;
  c.election_tick = election_ticks;
  c.heartbeat_tick = 1;
  c.pre_vote = params_.pre_vote;
  c.check_quorum = true;
  // Flow-control knobs differ between members and restarts (as during a rolling config change):
  // one entry per append, a window of one message, one committed entry per Ready, ...
  c.max_size_per_msg = rng_.pick<std::uint64_t>({1, 200, 4096, 1024 * 1024});
  c.max_inflight_msgs = rng_.pick<std::size_t>({1, 3, 16, 256});
  c.max_committed_size_per_ready = rng_.pick<std::uint64_t>({0, 1, 500});
  c.seed = opts_.seed ^ (n.incarnation << 40);
  if (opts_.verbose) {
    c.logger = [this, id = n.id.value()](std::string_view line) {
      trace("  %d: %s", id, std::string(line));
    };
  }
  const memory_storage& st = n.d.live();
  auto snap = st.snapshot();
  n.sm = {};
  n.applied = 0;
  n.conf = {};
  if (snap && snap->metadata().index() > 0) {
    auto regs = registers::decode(snap->data());
    if (!regs) {
      fail(absl::StrFormat("node %d: unreadable snapshot data", n.id.value()));
      return;
    }
    n.sm = *regs;
    n.applied = snap->metadata().index();
    n.conf = snap->metadata().conf_state();
  }
  // The state machine restarts at its snapshot; the log may keep entries from before it.
  c.applied = n.applied;
  n.snapshot_index = n.applied;
  n.seen_commit = std::max(n.applied, st.initial().hard_state.commit());
  n.conf_entries.clear();
  if (st.last_index() >= st.first_index()) {
    auto ents = st.entries(st.first_index(), st.last_index() + 1, no_limit);
    for (const auto& e : *ents) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) n.conf_entries.insert(e.index());
    }
  }
  n.pending_writes.clear();
  n.pending_reads.clear();
  n.rn = std::make_unique<raw_node>(std::move(c), st);
  n.state = proc_state::running;
  trace("node %d starts (incarnation %d): %s", n.id.value(), n.incarnation,
        describe_hard_state(st.initial().hard_state));
  // Clock skew: most processes tick at the nominal rate, some faster or slower (a slow clock
  // makes a leader notice late that it lost its quorum; ReadIndex must not depend on clocks).
  n.tick_interval =
      chaos_over_ || rng_.chance(0.7) ? units_per_tick : static_cast<sim_time>(rng_.between(6, 20));
  schedule(rng_.between(1, static_cast<std::int64_t>(units_per_tick)), ev_kind::tick, n.id.value(),
           n.incarnation);
  pump(n);
}

void cluster::crash(sim_node& n, const char* why) {
  trace("node %d crashes (%s); unsynced writes are lost", n.id.value(), why);
  n.rn.reset();
  n.d.crash();
  n.state = proc_state::down;
  fail_clients_of(n);
  ++cov_.crashes;
}

void cluster::restart(sim_node& n) { start(n); }

void cluster::stop(sim_node& n, const char* why) {
  trace("node %d is shut down for good (%s)", n.id.value(), why);
  if (n.state == proc_state::running) {
    n.rn.reset();
    fail_clients_of(n);
  }
  n.state = proc_state::stopped;
}

void cluster::fail_clients_of(sim_node& n) {
  std::vector<int> lost;
  for (auto& [w, c] : n.pending_writes) {
    if (c >= 0) lost.push_back(c);
  }
  for (auto& [ctx, r] : n.pending_reads) lost.push_back(r.client);
  n.pending_writes.clear();
  n.pending_reads.clear();
  for (int c : lost) client_done(c, false);
}

void cluster::pump(sim_node& n) {
  while (!failed_ && n.state == proc_state::running && n.rn->has_ready()) handle_ready(n);
}

// The server's loop for one Ready (raw_node.h): persist, fsync if asked, send, apply, advance.
// The checks run at the points where each property becomes observable.
void cluster::handle_ready(sim_node& n) {
  ready rd = n.rn->ready();
  const raft& core = n.rn->core();
  const raft_log& log = core.log();

  // Commitment the node just learned.
  if (rd.hard_state && rd.hard_state->commit() > n.seen_commit) {
    const log_index commit = rd.hard_state->commit();
    if (core.role() == role_kind::leader) {
      if (opts_.protocol_checks) check_commit_rule(n, commit);
      if (now_ < churn_until_ && n.churn_term != core.term()) {
        // Cut off right after its first commit: its appends in flight are lost with the links.
        n.churn_term = core.term();
        schedule(rng_.below(3), ev_kind::churn, n.id.value(), n.incarnation, 1);
      }
    }
    for (log_index i = n.seen_commit + 1; i <= commit; ++i) {
      auto t = log.term(i);
      if (t) check(hist_.on_committed(n.id, i, *t, core.term()));
    }
    n.seen_commit = commit;
  }
  if (rd.soft) {
    trace("node %d: %s, leader %d, term %d", n.id.value(), std::string(to_string(rd.soft->role)),
          rd.soft->lead.value(), core.term().value());
    if (rd.soft->role == role_kind::leader) {
      ++cov_.elections;
      check(hist_.on_leader(core.term(), n.id));
      check_leader_completeness(n);
      if (now_ < churn_until_ && rng_.chance(0.5)) {
        // Leader churn: the new leader is cut off or crashes before it has replicated much,
        // leaving entries of many short terms half replicated (the thesis' Figure 3.7 setting).
        schedule(rng_.below(30), ev_kind::churn, n.id.value(), n.incarnation, 0);
      }
    }
  }
  for (std::size_t k = 0; k < rd.entries.size(); ++k) {
    const raftpb::Entry& e = rd.entries[k];
    std::optional<raft_term> prev;
    if (k > 0) {
      prev = raft_term{rd.entries[k - 1].term()};
    } else if (auto t = log.term(e.index() - 1)) {
      prev = *t;
    }
    check(hist_.on_log_entry(n.id, e, prev));
  }

  // 1. persist, and fsync when the core says so.
  if (rd.snapshot) {
    n.d.apply_snapshot(*rd.snapshot);
    n.conf_entries.clear();
  }
  if (!rd.entries.empty()) {
    n.d.append(rd.entries);
    n.conf_entries.erase(n.conf_entries.lower_bound(rd.entries.front().index()),
                         n.conf_entries.end());
    for (const auto& e : rd.entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) n.conf_entries.insert(e.index());
    }
  }
  if (rd.hard_state) n.d.set_hard_state(*rd.hard_state);
  if (rd.must_sync) n.d.sync();
  if (opts_.protocol_checks && !rd.entries.empty() && core.role() == role_kind::leader) {
    check_one_conf_change_in_flight(n);
  }

  // 2. send.
  for (auto& m : rd.messages) {
    if (opts_.protocol_checks) check_durable_before_send(n, m);
    send(n, std::move(m));
  }

  // 3. apply.
  if (rd.snapshot) {
    const auto& md = rd.snapshot->metadata();
    auto regs = registers::decode(rd.snapshot->data());
    if (!regs) {
      fail(absl::StrFormat("node %d received an unreadable snapshot", n.id.value()));
      return;
    }
    const registers expected = hist_.state_at(md.index());
    if (*regs != expected) {
      fail(absl::StrFormat(
          "snapshot %d@%d installed on node %d holds %s, but the committed log "
          "up to there gives %s",
          md.index(), md.term(), n.id.value(), regs->describe(), expected.describe()));
      return;
    }
    n.sm = *regs;
    n.applied = md.index();
    n.snapshot_index = md.index();
    n.conf = md.conf_state();
    ++cov_.snapshots_installed;
    trace("node %d installed snapshot %s", n.id.value(), describe_snapshot(*rd.snapshot));
  }
  for (const auto& e : rd.committed_entries) {
    apply_entry(n, e);
    if (failed_) return;
  }

  // 4. reads.
  for (const auto& rs : rd.read_states) {
    auto it = n.pending_reads.find(rs.context);
    if (it != n.pending_reads.end()) it->second.index = rs.index;
  }
  for (const auto& ctx : rd.dropped_reads) {
    auto it = n.pending_reads.find(ctx);
    if (it == n.pending_reads.end()) continue;
    const int c = it->second.client;
    n.pending_reads.erase(it);
    client_done(c, false);
  }
  n.rn->advance();
  serve_reads(n);
  maybe_compact(n);
}

void cluster::send(sim_node& n, raftpb::Message m) {
  if (m.type() == raftpb::MSG_SNAP) {
    // As etcd's server does (createMergedSnapshotMessage), the snapshot that travels is the
    // sender's applied state now, not the possibly older one in its raft storage: a member added
    // after that one was taken would refuse it (it is not in its membership) forever.
    auto term = n.rn->core().log().term(n.applied);
    if (term && n.applied >= m.snapshot().metadata().index()) {
      raftpb::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
      md->set_index(n.applied);
      md->set_term(term->value());
      *md->mutable_conf_state() = n.conf;
      m.mutable_snapshot()->set_data(n.sm.encode());
    }
    ++cov_.snapshots_sent;
  }
  if (vote_crash_armed_ && m.type() == raftpb::MSG_VOTE_RESP && !m.reject()) {
    // The moment a vote is promised is when losing the disk's cache hurts most.
    vote_crash_armed_ = false;
    schedule(rng_.below(4), ev_kind::crash, n.id.value(), n.incarnation);
  }
  const std::vector<sim_time> delays = fate(net_.weather, rng_);
  if (delays.empty()) {
    ++cov_.messages_lost;
    if (opts_.verbose) trace("lost: %s", describe_message(m));
    if (m.type() == raftpb::MSG_SNAP) {
      schedule(1, ev_kind::snap_report, n.id.value(), n.incarnation, m.to() | (1ULL << 32));
    }
    return;
  }
  for (std::size_t i = 0; i < delays.size(); ++i) {
    if (i + 1 < delays.size()) {
      schedule(delays[i], ev_kind::deliver, n.id.value(), n.incarnation, 0, m);
    } else {
      schedule(delays[i], ev_kind::deliver, n.id.value(), n.incarnation, 0, std::move(m));
    }
  }
}

void cluster::deliver(event& ev) {
  const raftpb::Message& m = ev.msg;
  sim_node* to = find(m.to());
  const bool reachable = to != nullptr && to->state == proc_state::running &&
                         net_.connected(node_id{m.from()}, node_id{m.to()});
  if (!reachable) {
    ++cov_.messages_lost;
    if (opts_.verbose) trace("undeliverable: %s", describe_message(m));
    // The sender's transport notices a broken stream: a snapshot failed, a peer is unreachable.
    if (m.type() == raftpb::MSG_SNAP) {
      schedule(1, ev_kind::snap_report, m.from(), ev.incarnation, m.to() | (1ULL << 32));
    } else if (m.type() == raftpb::MSG_APP && rng_.chance(0.5)) {
      schedule(1, ev_kind::unreachable_report, m.from(), ev.incarnation, m.to());
    }
    return;
  }
  ++cov_.messages_delivered;
  if (opts_.verbose) trace("deliver: %s", describe_message(m));
  const bool snap = m.type() == raftpb::MSG_SNAP;
  const std::uint64_t from = m.from();
  // The message is ours to give (raft may move its entries); a stale response from a removed
  // member is refused: fine.
  (void)to->rn->step(std::move(ev.msg));
  pump(*to);
  if (snap) schedule(1, ev_kind::snap_report, from, ev.incarnation, to->id.value());
}

void cluster::apply_entry(sim_node& n, const raftpb::Entry& e) {
  if (e.index() != n.applied + 1) {
    fail(absl::StrFormat("node %d applies %s after %d: entries must be applied in order",
                         n.id.value(), describe_entry(e), n.applied));
    return;
  }
  check(hist_.on_applied(n.id, e, n.rn->core().term()));
  if (failed_) return;
  n.applied = e.index();
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    raftpb::ConfChange cc;
    if (!cc.ParseFromString(e.data())) {
      fail(absl::StrFormat("node %d: unparsable conf change at %d", n.id.value(), e.index()));
      return;
    }
    n.conf = n.rn->apply_conf_change(cc);
    if (conf_changes_counted_.insert(e.index()).second) {
      ++cov_.conf_changes;
      trace("membership change %s committed at %d: %s", describe_conf_change(cc), e.index(),
            describe_conf_state(n.conf));
    }
    return;
  }
  auto w = decode_write(e.data());
  if (!w) return;  // a new leader's empty entry
  n.sm.values[static_cast<std::size_t>(w->reg)] = {w->write_id, e.index()};
  auto it = n.pending_writes.find(w->write_id);
  if (it == n.pending_writes.end()) return;
  const int c = it->second;
  n.pending_writes.erase(it);
  hist_.on_acknowledged(e.index());
  if (c < 0) {
    probe_index_ = e.index();
    trace("liveness probe acknowledged at %d", e.index());
    return;
  }
  trace("client %d: write w%d acknowledged by node %d at %d", c, w->write_id, n.id.value(),
        e.index());
  ++cov_.writes_acked;
  client_done(c, true);
}

// A read is served once its node has applied up to its read index.
void cluster::serve_reads(sim_node& n) {
  for (auto it = n.pending_reads.begin(); it != n.pending_reads.end() && !failed_;) {
    if (!it->second.index || *it->second.index > n.applied) {
      ++it;
      continue;
    }
    const int c = it->second.client;
    const log_index read_index = *it->second.index;
    it = n.pending_reads.erase(it);
    client& cl = clients_[static_cast<std::size_t>(c)];
    const registers expected = hist_.state_at(n.applied);
    if (n.sm != expected) {
      fail(
          absl::StrFormat("node %d serves a read from state %s at applied index %d, but the "
                          "committed log gives %s there",
                          n.id.value(), n.sm.describe(), n.applied, expected.describe()));
      return;
    }
    if (n.applied < cl.floor) {
      fail(absl::StrFormat(
          "linearizability: read r%d of register %d, issued at %.1f on node %d, was served at "
          "read index %d from applied index %d, but a write at index %d was acknowledged (or "
          "observed) before the read was issued",
          cl.op, cl.reg, static_cast<double>(cl.invoked) / units_per_tick, n.id.value(), read_index,
          n.applied, cl.floor));
      return;
    }
    const register_value v = n.sm.values[static_cast<std::size_t>(cl.reg)];
    hist_.on_observed(v.index);
    ++cov_.reads_served;
    trace("client %d: read r%d of r%d on node %d at read index %d (applied %d): w%d@%d", c, cl.op,
          cl.reg, n.id.value(), read_index, n.applied, v.write_id, v.index);
    client_done(c, true);
  }
}

void cluster::maybe_compact(sim_node& n) {
  if (n.applied < n.snapshot_index + params_.snapshot_every) return;
  const log_index compact_to =
      n.applied > params_.snapshot_keep ? n.applied - params_.snapshot_keep : 0;
  n.d.save_snapshot(n.applied, n.conf, n.sm.encode(), compact_to);
  n.snapshot_index = n.applied;
  n.conf_entries.erase(n.conf_entries.begin(), n.conf_entries.lower_bound(compact_to + 1));
  ++cov_.compactions;
}

// The leader clients and the operator talk to: the running leader of the highest term.
sim_node* cluster::leader() {
  sim_node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (n->state != proc_state::running || n->rn->core().role() != role_kind::leader) continue;
    if (best == nullptr || n->rn->core().term() > best->rn->core().term()) best = n.get();
  }
  return best;
}

// ------------------------------------------------------------------------ checks

void cluster::fail(std::string what) {
  if (failed_) return;
  failed_ = true;
  failure_ = absl::StrFormat("at tick %.1f: %s", static_cast<double>(now_) / units_per_tick, what);
  trace("VIOLATION: %s", what);
}

// Leader Completeness (§3.6.3): a new leader's log holds every entry committed in an earlier term.
void cluster::check_leader_completeness(sim_node& n) {
  const raft_log& log = n.rn->core().log();
  const raft_term term = n.rn->core().term();
  const log_index from = std::max<log_index>(log.first_index() - 1, 1);
  for (log_index i = from; i <= hist_.max_committed(); ++i) {
    auto want = hist_.committed_term(i);
    if (!want || *hist_.committed_in(i) >= term) continue;
    auto got = log.term(i);
    if (!got || *got != *want) {
      fail(absl::StrFormat(
          "leader completeness: node %d became leader of term %d without the "
          "committed entry %d@%d (its log has term %d there)",
          n.id.value(), n.rn->core().term().value(), i, want->value(), got ? got->value() : 0));
      return;
    }
  }
}

// Votes and acknowledgements are promises about the disk (§3.8): nothing leaves a node before
// its term, vote and log are on stable storage.
void cluster::check_durable_before_send(sim_node& n, const raftpb::Message& m) {
  const raftpb::HardState live = n.d.live().initial().hard_state;
  const raftpb::HardState durable = n.d.durable().initial().hard_state;
  if (live.term() != durable.term() || live.vote() != durable.vote()) {
    fail(
        absl::StrFormat("durability: node %d sends %s while its hard state %s is not on stable "
                        "storage (stable: %s)",
                        n.id.value(), describe_message(m), describe_hard_state(live),
                        describe_hard_state(durable)));
    return;
  }
  if (n.d.live_last() != n.d.durable_last()) {
    fail(absl::StrFormat(
        "durability: node %d sends %s while its log up to %d@%d is not on stable "
        "storage (stable up to %d@%d)",
        n.id.value(), describe_message(m), n.d.live_last().index, n.d.live_last().term.value(),
        n.d.durable_last().index, n.d.durable_last().term.value()));
  }
}

// §3.6.2 (Figure 3.7): a leader commits by counting replicas only entries of its own term; older
// ones become committed with them. Its commit index therefore only ever lands on an entry of its
// term.
void cluster::check_commit_rule(sim_node& n, log_index commit) {
  const raft& core = n.rn->core();
  auto t = core.log().term(commit);
  if (t && *t == core.term()) return;
  fail(
      absl::StrFormat("commitment: leader %d of term %d moved its commit index to %d, an entry of "
                      "term %d, by counting replicas",
                      n.id.value(), core.term().value(), commit, t ? t->value() : 0));
}

// §4.1: one membership change at a time. Entries up to the highest commit index any node has
// seen are committed (a leader holds them all); above it, a leader's log may hold at most one
// membership change, or two configurations without a common majority could both act.
void cluster::check_one_conf_change_in_flight(sim_node& n) {
  auto it = n.conf_entries.upper_bound(hist_.max_committed());
  if (it == n.conf_entries.end()) return;
  auto second = std::next(it);
  if (second == n.conf_entries.end()) return;
  fail(absl::StrFormat(
      "membership: leader %d of term %d has two uncommitted membership changes "
      "in its log, at %d and %d (commit %d)",
      n.id.value(), n.rn->core().term().value(), *it, *second, hist_.max_committed()));
}

// ------------------------------------------------------------------------ clients

void cluster::client_op(int c) {
  client& cl = clients_[static_cast<std::size_t>(c)];
  if (chaos_over_ || cl.busy) return;
  sim_node* pinned = find(cl.endpoint);
  if (pinned == nullptr || pinned->state == proc_state::stopped) {
    std::vector<node_id> targets = live_ids(/*include_down=*/true);
    if (targets.empty()) return;
    pinned = find(rng_.pick(targets));
    cl.endpoint = pinned->id;
  }
  sim_node& n = *pinned;
  cl.busy = true;
  cl.is_write = rng_.chance(cl.write_share);
  cl.reg = static_cast<int>(rng_.below(register_count));
  cl.target = n.id;
  cl.incarnation = n.incarnation;
  cl.invoked = now_;
  cl.floor = hist_.floor();
  if (n.state != proc_state::running) {
    client_done(c, false);  // connection refused
    return;
  }
  std::expected<void, propose_error> r;
  if (cl.is_write) {
    cl.op = next_write_++;
    r = n.rn->propose(encode_write({cl.op, cl.reg}));
    if (r) n.pending_writes[cl.op] = c;
    trace("client %d: write w%d to r%d via node %d%s", c, cl.op, cl.reg, n.id.value(),
          r ? "" : absl::StrCat(": ", std::string(to_string(r.error()))));
  } else {
    cl.op = next_read_++;
    const std::string ctx = absl::StrCat("r", cl.op);
    r = n.rn->read_index(ctx);
    if (r) n.pending_reads[ctx] = {c, std::nullopt};
    trace("client %d: read r%d of r%d via node %d%s", c, cl.op, cl.reg, n.id.value(),
          r ? "" : absl::StrCat(": ", std::string(to_string(r.error()))));
  }
  if (!r) {
    client_done(c, false);
    return;
  }
  schedule(ticks_to_time(4 * election_ticks), ev_kind::client_timeout,
           static_cast<std::uint64_t>(c), 0, cl.op);
  pump(n);
}

void cluster::client_done(int c, bool ok) {
  client& cl = clients_[static_cast<std::size_t>(c)];
  if (!cl.busy) return;
  cl.busy = false;
  if (!ok) {
    ++(cl.is_write ? cov_.writes_failed : cov_.reads_failed);
    cl.endpoint = no_node;  // try another member next time
  }
  // After an error a client backs off for a few ticks, as real clients do.
  const sim_time pause =
      ok ? static_cast<sim_time>(rng_.between(0, static_cast<std::int64_t>(params_.think_max)))
         : ticks_to_time(rng_.between(1, 5));
  schedule(pause, ev_kind::client_op, 0, 0, static_cast<std::uint64_t>(c));
}

void cluster::client_timeout(int c, std::uint64_t op) {
  client& cl = clients_[static_cast<std::size_t>(c)];
  if (!cl.busy || cl.op != op) return;
  sim_node* n = find(cl.target);
  if (n != nullptr && n->incarnation == cl.incarnation) {
    if (cl.is_write) {
      n->pending_writes.erase(op);
    } else {
      n->pending_reads.erase(absl::StrCat("r", op));
    }
  }
  trace("client %d: %s %d timed out", c, cl.is_write ? "write" : "read", op);
  client_done(c, false);
}

// ------------------------------------------------------------------------ faults

void cluster::nemesis(std::uint64_t forced) {
  if (forced == nemesis_crash) return crash_some();
  if (forced == nemesis_partition) {
    if (net_.partitioned()) net_.heal();
    return partition();
  }
  const std::uint64_t roll = rng_.below(100);
  if (roll < 24) {
    crash_some();
  } else if (roll < 42) {
    if (net_.partitioned()) {
      net_.heal();
      trace("nemesis: heal the network");
    } else {
      partition();
    }
  } else if (roll < 58) {
    change_weather();
  } else if (roll < 72) {
    sim_node* l = leader();
    if (l == nullptr) return;
    std::vector<node_id> voters;
    for (auto v : l->conf.voters()) {
      sim_node* t = find(v);
      if (v != l->id.value() && t != nullptr && t->state == proc_state::running)
        voters.push_back(node_id{v});
    }
    if (voters.empty()) return;
    const node_id target = rng_.pick(voters);
    trace("nemesis: leader %d, transfer leadership to %d", l->id.value(), target.value());
    ++cov_.transfers;
    l->rn->transfer_leader(target);
    pump(*l);
  } else if (roll < 78) {
    trace("nemesis: the next node to grant a vote crashes");
    vote_crash_armed_ = true;
  } else if (roll < 86) {
    // Partition plus clock skew: the leader's clock slows down and it is cut off with a
    // minority; the majority elects a new leader while the old one, counting its election
    // timeout slowly, still believes it leads. Only a real quorum round keeps its reads honest.
    sim_node* l = leader();
    if (l == nullptr) return;
    l->tick_interval = units_per_tick * static_cast<sim_time>(rng_.between(2, 4));
    std::vector<node_id> ids = live_ids(/*include_down=*/true);
    std::erase(ids, l->id);
    for (std::size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng_.below(i + 1)]);
    std::vector<node_id> minority{l->id};
    const std::size_t with = rng_.below((ids.size() + 1) / 2);  // keeps the far side a majority
    minority.insert(minority.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(with));
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(with));
    net_.heal();
    net_.split({minority, ids});
    ++cov_.partitions;
    trace("nemesis: leader %d's clock slows to one tick per %d units, and it is cut off: %s",
          l->id.value(), l->tick_interval, net_.describe());
    schedule(ticks_to_time(rng_.between(30, 120)), ev_kind::heal);
  } else if (roll < 93) {
    churn_until_ = now_ + ticks_to_time(rng_.between(50, 300));
    trace("nemesis: leader churn until %.1f", static_cast<double>(churn_until_) / units_per_tick);
  } else {
    operator_step();
  }
}

void cluster::crash_some() {
  std::vector<node_id> up = live_ids(false);
  if (up.empty()) return;
  const int count = (rng_.chance(0.2) && up.size() > 2) ? 2 : 1;
  for (int k = 0; k < count && !up.empty(); ++k) {
    sim_node* victim = nullptr;
    sim_node* l = leader();
    if (k == 0 && l != nullptr && rng_.chance(0.4)) {
      victim = l;
    } else {
      victim = find(rng_.pick(up));
    }
    std::erase(up, victim->id);
    crash(*victim, "nemesis");
    schedule(ticks_to_time(rng_.between(1, 150)), ev_kind::restart, victim->id.value());
  }
}

void cluster::partition() {
  std::vector<node_id> ids = live_ids(/*include_down=*/true);
  if (ids.size() < 2) return;
  // Shuffle deterministically.
  for (std::size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng_.below(i + 1)]);
  sim_node* l = leader();
  if (l != nullptr) {
    // The leader goes first, so cutting the front of the list decides which side it is on.
    std::erase(ids, l->id);
    ids.insert(ids.begin(), l->id);
  }
  const std::size_t n = ids.size();
  const std::uint64_t kind = rng_.below(l != nullptr ? 5 : 3);
  std::vector<node_id> a, b;
  const char* name = "";
  std::size_t cut = 1;
  switch (kind) {
    case 0: {  // two random sides
      name = "split";
      cut = 1 + rng_.below(n - 1);
      for (std::size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng_.below(i + 1)]);
      break;
    }
    case 1: {  // a bridge: one node talks to both sides, which cannot talk to each other
      if (n < 3) return partition();
      name = "bridge";
      const node_id bridge = ids.back();
      ids.pop_back();
      cut = 1 + rng_.below(ids.size() - 1);
      a.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
      b.assign(ids.begin() + static_cast<std::ptrdiff_t>(cut), ids.end());
      net_.bridge(a, b);
      ++cov_.partitions;
      trace("nemesis: partition (bridge through %d) %s", bridge.value(), net_.describe());
      schedule(ticks_to_time(rng_.between(10, 150)), ev_kind::heal);
      return;
    }
    case 2:  // three sides (no majority anywhere with five)
      if (n < 4) return partition();
      {
        name = "three-way";
        const std::size_t c1 = 1 + rng_.below(n - 2);
        const std::size_t c2 = c1 + 1 + rng_.below(n - c1 - 1);
        std::vector<node_id> g1(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(c1));
        std::vector<node_id> g2(ids.begin() + static_cast<std::ptrdiff_t>(c1),
                                ids.begin() + static_cast<std::ptrdiff_t>(c2));
        std::vector<node_id> g3(ids.begin() + static_cast<std::ptrdiff_t>(c2), ids.end());
        net_.split({g1, g2, g3});
        ++cov_.partitions;
        trace("nemesis: partition (%s) %s", name, net_.describe());
        schedule(ticks_to_time(rng_.between(10, 150)), ev_kind::heal);
        return;
      }
    case 3:  // the leader alone
      name = "isolated leader";
      cut = 1;
      break;
    case 4:  // the leader with a minority, or with a majority
      if (rng_.chance(0.5)) {
        name = "leader in minority";
        cut = std::max<std::size_t>(1, (n - 1) / 2);
      } else {
        name = "leader in majority";
        cut = n / 2 + 1;
        if (cut >= n) cut = n - 1;
      }
      break;
    default:
      break;
  }
  a.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
  b.assign(ids.begin() + static_cast<std::ptrdiff_t>(cut), ids.end());
  net_.split({a, b});
  ++cov_.partitions;
  trace("nemesis: partition (%s) %s", name, net_.describe());
  schedule(ticks_to_time(rng_.between(10, 150)), ev_kind::heal);
}

void cluster::change_weather() {
  weather w;
  w.drop = rng_.pick<double>({0, 0, 0.01, 0.05, 0.2});
  w.duplicate = rng_.pick<double>({0, 0.02, 0.1});
  w.min_delay = rng_.pick<sim_time>({1, 1, 5});
  w.max_delay = w.min_delay + rng_.pick<sim_time>({4, 20, 60});
  w.slow = rng_.pick<double>({0, 0.01, 0.05});
  w.slow_delay = ticks_to_time(30);
  net_.weather = w;
  trace("nemesis: weather %s", w.describe());
}

// A naive cluster operator: one membership step per pass, as etcd-operator does (add a learner,
// promote it, remove a member), but sometimes two at once (a "replace" done in one go) — which
// the leader must refuse until the first has been applied.
void cluster::operator_step() {
  sim_node* l = leader();
  if (l == nullptr) return;
  observe_membership(*l);
  if (l->state != proc_state::running) return;
  int steps = rng_.chance(0.3) ? 2 : 1;
  std::set<std::uint64_t> voters(l->conf.voters().begin(), l->conf.voters().end());
  std::set<std::uint64_t> learners(l->conf.learners().begin(), l->conf.learners().end());
  // "Replace a member" in one go: remove a voter and add its successor as a learner.
  const bool replace = rng_.chance(0.15);
  if (replace) steps = 2;
  for (int s = 0; s < steps; ++s) {
    bool joining = false;
    for (auto& [id, n] : nodes_)
      joining = joining || (n->joining && n->state != proc_state::stopped);
    // A learner whose process is gone (it joined after the operator gave up on it) can only be
    // removed; promoting it would make a voter that never votes.
    std::vector<std::uint64_t> promotable, dead;
    for (std::uint64_t id : learners) {
      sim_node* n = find(id);
      (n != nullptr && n->state != proc_state::stopped ? promotable : dead).push_back(id);
    }
    std::vector<int> choices;
    const std::size_t want = static_cast<std::size_t>(opts_.nodes);
    if (!dead.empty()) {
      choices.push_back(3);  // clean up first
    } else {
      if (learners.empty() && !joining) choices.push_back(0);                     // add a learner
      if (!promotable.empty() && voters.size() < want + 1) choices.push_back(1);  // promote
      if (voters.size() > want - 1) choices.push_back(2);                         // remove a voter
      if (!learners.empty()) choices.push_back(3);  // remove a learner
    }
    if (choices.empty()) return;
    int choice = rng_.pick(choices);
    const int planned = s == 0 ? 2 : 0;
    if (replace && std::find(choices.begin(), choices.end(), planned) != choices.end()) {
      choice = planned;
    }
    raftpb::ConfChange cc;
    cc.set_id(next_conf_change_++);
    switch (choice) {
      case 0: {
        sim_node& fresh = create_node(node_id{next_node_id_++});
        fresh.joining = true;
        fresh.join_deadline = now_ + ticks_to_time(100);
        start(fresh);
        cc.set_type(raftpb::CONF_ADD_LEARNER_NODE);
        cc.set_node_id(fresh.id.value());
        learners.insert(fresh.id.value());
        break;
      }
      case 1: {
        const std::uint64_t id = rng_.pick(promotable);
        cc.set_type(raftpb::CONF_ADD_NODE);
        cc.set_node_id(id);
        learners.erase(id);
        voters.insert(id);
        break;
      }
      case 2: {
        std::vector<std::uint64_t> vs(voters.begin(), voters.end());
        const std::uint64_t id = rng_.pick(vs);
        cc.set_type(raftpb::CONF_REMOVE_NODE);
        cc.set_node_id(id);
        voters.erase(id);
        break;
      }
      case 3: {
        const std::uint64_t id = dead.empty() ? *learners.begin() : dead.front();
        cc.set_type(raftpb::CONF_REMOVE_NODE);
        cc.set_node_id(id);
        learners.erase(id);
        break;
      }
      default:
        return;
    }
    auto r = l->rn->propose_conf_change(cc);
    trace("operator: propose %s on leader %d%s", describe_conf_change(cc), l->id.value(),
          r ? "" : absl::StrCat(": ", std::string(to_string(r.error()))));
    pump(*l);
    if (l->state != proc_state::running || failed_) return;
  }
}

// Shuts down members the committed configuration no longer has, and joiners that never made it.
// Only configurations at a higher applied index than the last one seen count (a new leader may not
// have applied its predecessor's changes yet).
void cluster::observe_membership(sim_node& l) {
  if (l.applied < observed_applied_) return;
  observed_applied_ = l.applied;
  std::set<std::uint64_t> members(l.conf.voters().begin(), l.conf.voters().end());
  members.insert(l.conf.learners().begin(), l.conf.learners().end());
  for (auto& [id, n] : nodes_) {
    if (n->state == proc_state::stopped) continue;
    if (members.contains(id.value())) {
      n->was_member = true;
      n->joining = false;
    } else if (n->was_member) {
      stop(*n, "removed from the cluster");
    } else if (n->joining && now_ > n->join_deadline) {
      stop(*n, "never added");
    }
  }
}

// ------------------------------------------------------------------------ liveness

void cluster::final_heal() {
  chaos_over_ = true;
  healed_at_ = now_;
  net_.heal();
  net_.weather = weather::perfect();
  vote_crash_armed_ = false;
  trace("final heal: the network is healed and perfect, clocks agree, every node comes back");
  for (auto& [id, n] : nodes_) {
    n->tick_interval = units_per_tick;  // the liveness bound is counted in nominal ticks
    if (n->state == proc_state::down) restart(*n);
  }
  schedule(units_per_tick, ev_kind::liveness);
}

void cluster::liveness() {
  sim_node* l = leader();
  const sim_time since = now_ - healed_at_;
  if (l != nullptr) observe_membership(*l);  // removed members are shut down now
  if (!leader_seen_) {
    // A leader no voter of its configuration has moved past. (A removed member that has not
    // learned of its removal may campaign alone at higher terms; nobody listens to it.)
    bool ok = l != nullptr;
    if (ok) {
      for (auto v : l->conf.voters()) {
        sim_node* n = find(v);
        if (n != nullptr && n->state == proc_state::running &&
            n->rn->core().term() > l->rn->core().term())
          ok = false;
      }
    }
    if (!ok) {
      if (since > ticks_to_time(leader_bound_elections * election_ticks)) {
        fail(
            absl::StrFormat("liveness: no leader %d ticks after the network healed with every "
                            "node up",
                            since / units_per_tick));
      }
      return;
    }
    leader_seen_ = true;
    trace("liveness: node %d leads term %d, %d ticks after the heal", l->id.value(),
          l->rn->core().term().value(), since / units_per_tick);
  }
  // One more write, proposed on the leader, must commit too.
  if (!probe_index_ && l != nullptr &&
      (probe_write_ == 0 || now_ >= probe_sent_at_ + election_time)) {
    for (auto& [id, n] : nodes_) {
      if (n->state == proc_state::running) n->pending_writes.erase(probe_write_);
    }
    probe_write_ = next_write_++;
    probe_sent_at_ = now_;
    if (l->rn->propose(encode_write({probe_write_, 0}))) {
      l->pending_writes[probe_write_] = -1;
      trace("liveness: probe write w%d on leader %d", probe_write_, l->id.value());
      pump(*l);
    }
  }
  std::string lagging;
  if (!probe_index_) {
    lagging = "the probe write is not acknowledged";
  } else if (l == nullptr) {
    lagging = "no leader";
  } else {
    const log_index need = std::max(*probe_index_, hist_.floor());
    for (auto v : l->conf.voters()) {
      sim_node* n = find(v);
      if (n == nullptr || n->state != proc_state::running) {
        lagging = absl::StrFormat("voter %d is not running", v);
        break;
      }
      if (n->applied < need) {
        lagging = absl::StrFormat("voter %d applied %d of %d", v, n->applied, need);
        break;
      }
    }
  }
  if (lagging.empty()) {
    trace("liveness: every voter applied every acknowledged write, %d ticks after the heal",
          since / units_per_tick);
    done_ = true;
    return;
  }
  if (since > ticks_to_time(converge_bound_elections * election_ticks)) {
    fail(absl::StrFormat("liveness: %d ticks after the heal, %s", since / units_per_tick, lagging));
  }
}

}  // namespace

result run(const options& o) {
  cluster c(o);
  return c.run();
}

}  // namespace cairn::raft::sim
