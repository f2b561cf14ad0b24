#include "raft/progress.h"

#include "gtest/gtest.h"
#include "raft/read_only.h"

namespace cairn::raft {
namespace {

TEST(inflights, fills_wraps_and_frees_in_order) {
  inflights in(3);
  EXPECT_FALSE(in.full());
  in.add(5);
  in.add(7);
  in.add(9);
  EXPECT_TRUE(in.full());
  in.free_le(6);  // acknowledges the message ending at 5 only
  EXPECT_EQ(in.count(), 2u);
  in.add(11);  // wraps around the ring
  EXPECT_TRUE(in.full());
  in.free_le(9);
  EXPECT_EQ(in.count(), 1u);
  in.free_first_one();
  EXPECT_EQ(in.count(), 0u);
  in.free_le(100);  // nothing left: a no-op
  EXPECT_EQ(in.count(), 0u);
}

TEST(inflights, add_on_full_window_aborts) {
  inflights in(1);
  in.add(1);
  EXPECT_DEATH(in.add(2), "full window");
}

TEST(progress, probe_sends_one_at_a_time) {
  progress pr(5, 4, false);
  EXPECT_FALSE(pr.is_paused());
  pr.probe_sent = true;
  EXPECT_TRUE(pr.is_paused());
  // An acknowledgement resumes it.
  EXPECT_TRUE(pr.maybe_update(4));
  EXPECT_FALSE(pr.is_paused());
  EXPECT_EQ(pr.match, 4u);
  EXPECT_EQ(pr.next, 5u);
  EXPECT_FALSE(pr.maybe_update(3));  // stale
}

TEST(progress, replicate_pauses_on_a_full_window) {
  progress pr(1, 2, false);
  pr.become_replicate();
  pr.optimistic_update(3);
  pr.window.add(3);
  EXPECT_FALSE(pr.is_paused());
  pr.optimistic_update(6);
  pr.window.add(6);
  EXPECT_TRUE(pr.is_paused());
  EXPECT_EQ(pr.next, 7u);
  pr.maybe_update(3);
  pr.window.free_le(3);
  EXPECT_FALSE(pr.is_paused());
}

TEST(progress, decrement_in_probe_uses_the_hint_and_ignores_stale_rejections) {
  progress pr(10, 4, false);
  pr.match = 2;
  // Rejection of an append after index 9 (the one in flight): jump to the hint + 1.
  EXPECT_TRUE(pr.maybe_decr_to(9, 5));
  EXPECT_EQ(pr.next, 6u);
  // A rejection about index 9 again is stale now.
  EXPECT_FALSE(pr.maybe_decr_to(9, 5));
  // Never below match + 1.
  EXPECT_TRUE(pr.maybe_decr_to(5, 0));
  EXPECT_EQ(pr.next, 3u);
}

TEST(progress, decrement_in_replicate_falls_back_to_match) {
  progress pr(1, 4, false);
  pr.maybe_update(5);
  pr.become_replicate();
  pr.optimistic_update(9);
  EXPECT_FALSE(pr.maybe_decr_to(4, 4));  // at or below match: old news
  EXPECT_TRUE(pr.maybe_decr_to(8, 6));
  EXPECT_EQ(pr.next, 6u);
}

TEST(progress, snapshot_state_pauses_until_done_then_probes_after_it) {
  progress pr(1, 4, false);
  pr.become_snapshot(20);
  EXPECT_TRUE(pr.is_paused());
  pr.become_probe();
  EXPECT_EQ(pr.next, 21u);
  EXPECT_FALSE(pr.is_paused());
}

TEST(tracker, single_changes_and_their_refusals) {
  tracker t(8);
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  t.restore(cs, 10);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_LEARNER_NODE);
  cc.set_node_id(3);
  EXPECT_EQ(t.apply(cc, 10), "");
  EXPECT_TRUE(t.find(node_id{3})->is_learner);
  EXPECT_EQ(t.apply(cc, 10), "already a learner");
  cc.set_type(raftpb::CONF_ADD_NODE);
  EXPECT_EQ(t.apply(cc, 10), "");  // promotion
  EXPECT_TRUE(t.is_voter(node_id{3}));
  EXPECT_FALSE(t.find(node_id{3})->is_learner);
  cc.set_type(raftpb::CONF_ADD_LEARNER_NODE);
  EXPECT_NE(t.apply(cc, 10), "");  // demotion is refused
  cc.set_type(raftpb::CONF_REMOVE_NODE);
  cc.set_node_id(9);
  EXPECT_EQ(t.apply(cc, 10), "not a member");
  for (std::uint64_t id : {1, 2}) {
    cc.set_node_id(id);
    EXPECT_EQ(t.apply(cc, 10), "");
  }
  cc.set_node_id(3);
  EXPECT_EQ(t.apply(cc, 10), "cannot remove the last voter");
  EXPECT_EQ(t.conf_state().voters_size(), 1);
}

TEST(tracker, quorum_active_counts_self_and_recent_voters) {
  tracker t(8);
  raftpb::ConfState cs;
  for (std::uint64_t id : {1, 2, 3}) cs.add_voters(id);
  cs.add_learners(4);
  t.restore(cs, 0);
  for (auto& [id, pr] : t.all()) pr.recent_active = false;
  EXPECT_FALSE(t.quorum_active(node_id{1}));
  t.find(node_id{4})->recent_active = true;  // a learner does not help
  EXPECT_FALSE(t.quorum_active(node_id{1}));
  t.find(node_id{3})->recent_active = true;
  EXPECT_TRUE(t.quorum_active(node_id{1}));
}

TEST(read_only, one_round_at_a_time_and_later_reads_wait) {
  read_only ro;
  const std::set<node_id> voters{node_id{1}, node_id{2}, node_id{3}};
  ro.enqueue({node_id{1}, "a"});
  ro.enqueue({node_id{2}, "b"});
  const auto* r = ro.maybe_start(7, node_id{1});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->requests.size(), 2u);
  const std::uint64_t first = r->id;
  ro.enqueue({node_id{1}, "c"});
  EXPECT_EQ(ro.maybe_start(8, node_id{1}), nullptr);    // one in flight
  EXPECT_FALSE(ro.ack(first + 1, node_id{2}, voters));  // unknown round
  auto done = ro.ack(first, node_id{3}, voters);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->index, 7u);
  EXPECT_EQ(done->requests.size(), 2u);
  const auto* next = ro.maybe_start(8, node_id{1});
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->requests.size(), 1u);
  EXPECT_EQ(ro.drain().size(), 1u);
  EXPECT_EQ(ro.waiting(), 0u);
}

TEST(read_only, context_round_trip) {
  for (std::uint64_t v : {0ull, 1ull, 0x0102030405060708ull, ~0ull}) {
    EXPECT_EQ(read_only::decode_context(read_only::encode_context(v)), v);
  }
  EXPECT_FALSE(read_only::decode_context("short"));
}

}  // namespace
}  // namespace cairn::raft
