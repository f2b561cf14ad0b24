#include "raft/raw_node.h"

#include <set>

#include "gtest/gtest.h"

namespace cairn::raft {
namespace {

std::unique_ptr<memory_storage> bootstrap(std::initializer_list<std::uint64_t> voters) {
  auto s = std::make_unique<memory_storage>();
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(1);
  snap.mutable_metadata()->set_term(1);
  for (auto v : voters) snap.mutable_metadata()->mutable_conf_state()->add_voters(v);
  (void)s->apply_snapshot(snap);
  raftpb::HardState hs;  // a bootstrapped member has seen the term of its snapshot
  hs.set_term(1);
  hs.set_commit(1);
  s->set_hard_state(hs);
  return s;
}

config cfg(std::uint64_t id, std::uint64_t seed = 0) {
  config c;
  c.id = node_id{id};
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.seed = seed;
  return c;
}

TEST(config, validate_names_the_problem) {
  config c = cfg(1);
  EXPECT_FALSE(c.validate());
  c.id = no_node;
  EXPECT_EQ(c.validate(), "id must not be 0");
  c = cfg(1);
  c.election_tick = 1;
  EXPECT_TRUE(c.validate());
  c = cfg(1);
  c.max_inflight_msgs = 0;
  EXPECT_TRUE(c.validate());
}

TEST(raw_node, randomized_election_timeouts_cover_the_range_and_depend_on_the_seed) {
  auto s = bootstrap({1, 2, 3});
  std::set<int> seen;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    raw_node n(cfg(1, seed), *s);
    const int t = n.status().randomized_election_timeout;
    EXPECT_GE(t, 10);
    EXPECT_LT(t, 20);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 10u);  // every value in [10, 20) shows up
  // Same seed and id: same draw (deterministic simulation); another id: independent draw.
  raw_node a(cfg(1, 42), *s), b(cfg(1, 42), *s);
  EXPECT_EQ(a.status().randomized_election_timeout, b.status().randomized_election_timeout);
}

TEST(raw_node, campaigns_after_its_randomized_timeout_exactly) {
  auto s = bootstrap({1, 2, 3});
  raw_node n(cfg(2, 9), *s);
  const int timeout = n.status().randomized_election_timeout;
  for (int i = 0; i < timeout - 1; ++i) n.tick();
  EXPECT_EQ(n.status().role, role_kind::follower);
  n.tick();
  EXPECT_EQ(n.status().role, role_kind::pre_candidate);
}

TEST(raw_node, proposals_without_a_leader_are_refused) {
  auto s = bootstrap({1, 2, 3});
  raw_node n(cfg(1), *s);
  EXPECT_EQ(n.propose("x").error(), propose_error::no_leader);
  EXPECT_EQ(n.read_index("r").error(), propose_error::no_leader);
}

TEST(raw_node, single_node_ready_cycle) {
  auto s = bootstrap({1});
  raw_node n(cfg(1), *s);
  n.campaign();
  EXPECT_EQ(n.status().role, role_kind::leader);
  ASSERT_TRUE(n.has_ready());
  ready rd = n.ready();
  ASSERT_TRUE(rd.soft);
  EXPECT_EQ(rd.soft->role, role_kind::leader);
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->term(), 2u);
  ASSERT_EQ(rd.entries.size(), 1u);  // the leader's empty entry
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.committed_entries.empty());  // not persisted yet: not counted
  s->append(rd.entries);
  s->set_hard_state(*rd.hard_state);
  n.advance();
  ASSERT_TRUE(n.has_ready());
  rd = n.ready();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_FALSE(rd.must_sync);  // only the commit index moved
  n.advance();
  EXPECT_FALSE(n.has_ready());
  EXPECT_EQ(n.status().applied, 2u);
}

TEST(raw_node, ready_twice_without_advance_aborts) {
  auto s = bootstrap({1});
  raw_node n(cfg(1), *s);
  n.campaign();
  (void)n.ready();
  EXPECT_DEATH((void)n.ready(), "before advance");
}

TEST(raw_node, step_refuses_local_messages_and_unknown_responders) {
  auto s = bootstrap({1, 2, 3});
  raw_node n(cfg(1), *s);
  raftpb::Message m;
  m.set_type(raftpb::MSG_HUP);
  m.set_from(2);
  EXPECT_EQ(n.step(m).error(), step_error::local_message);
  m.set_type(raftpb::MSG_APP_RESP);
  m.set_from(9);
  m.set_term(1);
  EXPECT_EQ(n.step(m).error(), step_error::unknown_peer);
}

TEST(raw_node, restart_restores_term_vote_and_commit) {
  auto s = bootstrap({1});
  {
    raw_node n(cfg(1), *s);
    n.campaign();
    for (int i = 0; i < 2; ++i) {
      ready rd = n.ready();
      s->append(rd.entries);
      if (rd.hard_state) s->set_hard_state(*rd.hard_state);
      n.advance();
    }
  }
  raw_node again(cfg(1), *s);
  const status st = again.status();
  EXPECT_EQ(st.term, raft_term{2});
  EXPECT_EQ(st.vote, node_id{1});
  EXPECT_EQ(st.commit, 2u);
  EXPECT_EQ(st.role, role_kind::follower);
}

}  // namespace
}  // namespace cairn::raft
