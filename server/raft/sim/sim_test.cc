// The simulation's own tests: its pieces (crash-model disk, network, history checks) on small
// hand-made cases, then the seed sweep CI runs, split into shards so ctest can spread them over
// the cores. A failing seed prints its violation and the raft_sim command that reproduces it.
#include <cstdio>
#include <ostream>

#include "gtest/gtest.h"
#include "raft/sim/cluster.h"
#include "raft/sim/disk.h"
#include "raft/sim/history.h"
#include "raft/sim/network.h"

namespace cairn::raft::sim {
namespace {

raftpb::Entry entry(log_index i, std::uint64_t t, std::string data = "") {
  raftpb::Entry e;
  e.set_index(i);
  e.set_term(t);
  e.set_data(std::move(data));
  return e;
}

raftpb::HardState hard_state(std::uint64_t term, std::uint64_t vote, std::uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

// ---------------------------------------------------------------- disk

TEST(sim_disk, a_crash_loses_exactly_the_unsynced_writes) {
  disk d;
  std::vector<raftpb::Entry> first{entry(1, 1), entry(2, 1)};
  d.append(first);
  d.set_hard_state(hard_state(1, 2, 1));
  d.sync();
  std::vector<raftpb::Entry> second{entry(3, 2)};
  d.append(second);
  d.set_hard_state(hard_state(2, 3, 2));
  EXPECT_TRUE(d.has_unsynced());
  EXPECT_EQ(d.live().last_index(), 3u);
  EXPECT_EQ(d.durable().last_index(), 2u);

  d.crash();
  EXPECT_FALSE(d.has_unsynced());
  EXPECT_EQ(d.live().last_index(), 2u);
  const auto hs = d.live().initial().hard_state;
  EXPECT_EQ(hs.term(), 1u);
  EXPECT_EQ(hs.vote(), 2u);
}

TEST(sim_disk, a_saved_snapshot_is_durable_and_compacts_both_copies) {
  disk d;
  std::vector<raftpb::Entry> ents{entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)};
  d.append(ents);
  d.set_hard_state(hard_state(1, 0, 4));
  raftpb::ConfState cs;
  cs.add_voters(1);
  d.save_snapshot(3, cs, "state", 2);
  d.crash();
  EXPECT_EQ(d.live().first_index(), 3u);
  EXPECT_EQ(d.live().last_index(), 4u);
  auto snap = d.live().snapshot();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->metadata().index(), 3u);
  EXPECT_EQ(snap->data(), "state");
}

// ---------------------------------------------------------------- network

TEST(sim_network, split_and_bridge_cut_exactly_the_links_between_sides) {
  network net;
  const node_id n1{1}, n2{2}, n3{3}, n4{4}, n5{5};
  net.split({{n1, n2}, {n3, n4, n5}});
  EXPECT_TRUE(net.connected(n1, n2));
  EXPECT_TRUE(net.connected(n4, n5));
  EXPECT_FALSE(net.connected(n2, n3));
  EXPECT_FALSE(net.connected(n5, n1));
  net.heal();
  EXPECT_TRUE(net.connected(n2, n3));

  net.bridge({n1, n2}, {n4, n5});  // 3 is the bridge
  EXPECT_TRUE(net.connected(n1, n3));
  EXPECT_TRUE(net.connected(n3, n5));
  EXPECT_FALSE(net.connected(n1, n4));
}

TEST(sim_network, a_perfect_network_delivers_every_message_once) {
  rng r(7);
  const weather w = weather::perfect();
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(fate(w, r).size(), 1u);
  weather lossy;
  lossy.drop = 1;
  EXPECT_TRUE(fate(lossy, r).empty());
}

// ---------------------------------------------------------------- history

TEST(sim_history, two_leaders_in_one_term_are_caught) {
  history h;
  EXPECT_FALSE(h.on_leader(raft_term{2}, node_id{1}));
  EXPECT_FALSE(h.on_leader(raft_term{2}, node_id{1}));
  EXPECT_FALSE(h.on_leader(raft_term{3}, node_id{2}));
  auto v = h.on_leader(raft_term{2}, node_id{3});
  ASSERT_TRUE(v);
  EXPECT_NE(v->find("election safety"), std::string::npos);
}

TEST(sim_history, log_matching_compares_content_and_predecessor) {
  history h;
  EXPECT_FALSE(h.on_log_entry(node_id{1}, entry(5, 2, "a"), raft_term{1}));
  EXPECT_FALSE(h.on_log_entry(node_id{2}, entry(5, 2, "a"), raft_term{1}));
  EXPECT_FALSE(h.on_log_entry(node_id{3}, entry(5, 2, "a"), std::nullopt));  // compacted before
  EXPECT_TRUE(h.on_log_entry(node_id{2}, entry(5, 2, "b"), raft_term{1}));
  EXPECT_TRUE(h.on_log_entry(node_id{2}, entry(5, 2, "a"), raft_term{2}));
}

TEST(sim_history, a_committed_entry_never_changes) {
  history h;
  EXPECT_FALSE(h.on_committed(node_id{1}, 4, raft_term{2}, raft_term{2}));
  EXPECT_FALSE(h.on_applied(node_id{1}, entry(4, 2, encode_write({7, 1})), raft_term{1}));
  EXPECT_TRUE(h.on_committed(node_id{2}, 4, raft_term{3}, raft_term{3}));
  EXPECT_TRUE(h.on_applied(node_id{2}, entry(4, 2, encode_write({8, 1})), raft_term{1}));
  EXPECT_EQ(h.max_committed(), 4u);
}

TEST(sim_history, remembers_the_earliest_term_an_entry_was_known_committed) {
  // Leader Completeness is owed to leaders of later terms than the one that committed an entry;
  // followers learn of the commitment later, at higher terms.
  history h;
  EXPECT_FALSE(h.on_committed(node_id{2}, 7, raft_term{3}, raft_term{5}));
  EXPECT_FALSE(h.on_committed(node_id{1}, 7, raft_term{3}, raft_term{4}));
  EXPECT_FALSE(h.on_committed(node_id{3}, 7, raft_term{3}, raft_term{6}));
  EXPECT_EQ(h.committed_in(7), raft_term{4});
  EXPECT_EQ(h.committed_term(7), raft_term{3});
  EXPECT_FALSE(h.committed_in(8));
}

TEST(sim_history, state_at_replays_the_committed_writes) {
  history h;
  EXPECT_FALSE(h.on_applied(node_id{1}, entry(2, 1, encode_write({10, 0})), raft_term{1}));
  EXPECT_FALSE(h.on_applied(node_id{1}, entry(3, 1, encode_write({11, 2})), raft_term{1}));
  EXPECT_FALSE(h.on_applied(node_id{1}, entry(4, 1, encode_write({12, 0})), raft_term{1}));
  registers at3 = h.state_at(3);
  EXPECT_EQ(at3.values[0], (register_value{10, 2}));
  EXPECT_EQ(at3.values[2], (register_value{11, 3}));
  EXPECT_EQ(h.state_at(4).values[0], (register_value{12, 4}));
  EXPECT_EQ(h.state_at(1), registers{});
}

TEST(sim_history, registers_and_writes_round_trip) {
  registers r;
  r.values[1] = {42, 17};
  r.values[3] = {7, 9};
  auto back = registers::decode(r.encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(registers::decode("9:1:1;"));
  auto w = decode_write(encode_write({99, 3}));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->write_id, 99u);
  EXPECT_EQ(w->reg, 3);
  EXPECT_FALSE(decode_write(""));
  EXPECT_FALSE(decode_write("w0 r1"));
}

// ---------------------------------------------------------------- whole runs

TEST(sim_run, a_seed_always_plays_out_the_same_way) {
  options o;
  o.seed = 12345;
  o.ticks = 500;
  const result a = run(o);
  const result b = run(o);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.cov.describe(), b.cov.describe());
}

struct shard {
  int nodes;
  std::uint64_t first_seed;
  std::uint64_t seeds;
};

void PrintTo(const shard& s, std::ostream* out) {
  *out << s.nodes << " nodes, seeds " << s.first_seed << ".." << s.first_seed + s.seeds - 1;
}

class sim_seeds : public ::testing::TestWithParam<shard> {};

// Every run must be substantial (the whole fault phase, at least one crash, one partition and one
// committed membership change) and must pass every check.
TEST_P(sim_seeds, every_seed_passes) {
  const shard s = GetParam();
  install_abort_reporter();
  coverage total;
  for (std::uint64_t seed = s.first_seed; seed < s.first_seed + s.seeds; ++seed) {
    options o;
    o.seed = seed;
    o.nodes = s.nodes;
    set_current_run(o);
    const result r = run(o);
    total.add(r.cov);
    if (!r.ok) {
      ADD_FAILURE() << "seed " << seed << " failed " << r.failure
                    << "\n  reproduce: " << o.command();
      break;
    }
    if (r.cov.ticks < static_cast<std::uint64_t>(o.ticks) || r.cov.crashes == 0 ||
        r.cov.partitions == 0 || r.cov.conf_changes == 0) {
      ADD_FAILURE() << "seed " << seed << " was not substantial: " << r.cov.describe()
                    << "\n  reproduce: " << o.command();
      break;
    }
  }
  std::printf("coverage (%d nodes, seeds %llu..%llu): %s\n", s.nodes,
              static_cast<unsigned long long>(s.first_seed),
              static_cast<unsigned long long>(s.first_seed + s.seeds - 1),
              total.describe().c_str());
}

// A sanitizer build runs the checked core about ten times slower: it sweeps a fifth of the seeds,
// so that each shard stays well inside the unit-test timeout on a 2-core CI machine.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t seeds_per_shard = 100;
#else
constexpr std::uint64_t seeds_per_shard = 500;
#endif

INSTANTIATE_TEST_SUITE_P(ci, sim_seeds,
                         ::testing::Values(shard{3, 1, seeds_per_shard},
                                           shard{3, 1 + seeds_per_shard, seeds_per_shard},
                                           shard{5, 1, seeds_per_shard},
                                           shard{5, 1 + seeds_per_shard, seeds_per_shard}),
                         [](const ::testing::TestParamInfo<shard>& p) {
                           return "nodes" + std::to_string(p.param.nodes) + "_seeds" +
                                  std::to_string(p.param.first_seed) + "_" +
                                  std::to_string(p.param.first_seed + p.param.seeds - 1);
                         });

}  // namespace
}  // namespace cairn::raft::sim
