#include "raft/log.h"

#include "gtest/gtest.h"
#include "raft/storage.h"

namespace cairn::raft {
namespace {

raftpb::Entry ent(log_index i, std::uint64_t t, std::string data = "") {
  raftpb::Entry e;
  e.set_index(i);
  e.set_term(t);
  e.set_data(std::move(data));
  return e;
}

std::vector<raftpb::Entry> ents(std::initializer_list<std::pair<log_index, std::uint64_t>> v) {
  std::vector<raftpb::Entry> out;
  for (auto [i, t] : v) out.push_back(ent(i, t));
  return out;
}

TEST(memory_storage, append_truncates_conflicts_and_skips_compacted) {
  memory_storage s;
  s.append(ents({{1, 1}, {2, 1}, {3, 2}}));
  EXPECT_EQ(s.first_index(), 1u);
  EXPECT_EQ(s.last_index(), 3u);
  s.append(ents({{2, 3}}));  // replaces 2 and drops 3
  EXPECT_EQ(s.last_index(), 2u);
  EXPECT_EQ(s.term(2).value(), raft_term{3});
  ASSERT_TRUE(s.compact(1));
  EXPECT_EQ(s.first_index(), 2u);
  EXPECT_EQ(s.term(1).value(), raft_term{1});  // the placeholder keeps the term
  EXPECT_EQ(s.term(0).error(), storage_error::compacted);
  EXPECT_EQ(s.term(5).error(), storage_error::unavailable);
  s.append(ents({{1, 1}, {2, 3}, {3, 3}}));  // the compacted part is skipped
  EXPECT_EQ(s.last_index(), 3u);
  EXPECT_EQ(s.entries(1, 3, no_limit).error(), storage_error::compacted);
  EXPECT_EQ(s.compact(1).error(), storage_error::compacted);
}

TEST(memory_storage, append_with_a_gap_aborts) {
  memory_storage s;
  s.append(ents({{1, 1}}));
  EXPECT_DEATH(s.append(ents({{3, 1}})), "gap");
}

TEST(memory_storage, entries_are_size_limited_but_never_empty) {
  memory_storage s;
  const std::vector<raftpb::Entry> big{ent(1, 1, std::string(100, 'a')),
                                       ent(2, 1, std::string(100, 'b')), ent(3, 1, "c")};
  s.append(big);
  EXPECT_EQ(s.entries(1, 4, 0)->size(), 1u);
  EXPECT_EQ(s.entries(1, 4, 215)->size(), 2u);  // 106 + 106 fit, + 7 does not
  EXPECT_EQ(s.entries(1, 4, no_limit)->size(), 3u);
}

TEST(memory_storage, snapshots) {
  memory_storage s;
  s.append(ents({{1, 1}, {2, 1}, {3, 2}}));
  raftpb::ConfState cs;
  cs.add_voters(1);
  auto snap = s.create_snapshot(2, cs, "state");
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->metadata().term(), 1u);
  EXPECT_EQ(s.create_snapshot(1, cs, "older").error(), storage_error::snapshot_out_of_date);
  raftpb::Snapshot newer;
  newer.mutable_metadata()->set_index(10);
  newer.mutable_metadata()->set_term(4);
  ASSERT_TRUE(s.apply_snapshot(newer));
  EXPECT_EQ(s.first_index(), 11u);
  EXPECT_EQ(s.last_index(), 10u);
  EXPECT_EQ(s.apply_snapshot(*snap).error(), storage_error::snapshot_out_of_date);
}

TEST(unstable, stable_to_ignores_a_replaced_entry) {
  unstable u(5);
  u.truncate_and_append(ents({{5, 1}, {6, 1}, {7, 1}}));
  u.truncate_and_append(ents({{6, 2}}));  // replaces 6 and 7
  EXPECT_EQ(*u.maybe_last_index(), 6u);
  u.stable_to(6, raft_term{1});  // the persisted copy of 6 is the old one
  EXPECT_EQ(u.offset(), 5u);
  u.stable_to(6, raft_term{2});
  EXPECT_EQ(u.offset(), 7u);
  EXPECT_TRUE(u.entries().empty());
}

TEST(unstable, truncate_before_offset_restarts_the_tail) {
  unstable u(5);
  u.truncate_and_append(ents({{5, 1}, {6, 1}}));
  u.truncate_and_append(ents({{3, 2}}));
  EXPECT_EQ(u.offset(), 3u);
  EXPECT_EQ(u.entries().size(), 1u);
  EXPECT_EQ(u.maybe_term(3), raft_term{2});
  EXPECT_FALSE(u.maybe_term(5));
}

TEST(unstable, snapshot_restore_and_stable) {
  unstable u(5);
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(9);
  snap.mutable_metadata()->set_term(3);
  u.restore(snap);
  EXPECT_EQ(*u.maybe_first_index(), 10u);
  EXPECT_EQ(*u.maybe_last_index(), 9u);
  EXPECT_EQ(u.maybe_term(9), raft_term{3});
  u.stable_snap_to(8);
  EXPECT_TRUE(u.snapshot());
  u.stable_snap_to(9);
  EXPECT_FALSE(u.snapshot());
}

class raft_log_test : public ::testing::Test {
 protected:
  void SetUp() override { storage_.append(ents({{1, 1}, {2, 1}, {3, 2}})); }
  memory_storage storage_;
};

TEST_F(raft_log_test, reads_through_storage_and_unstable) {
  raft_log log(storage_, no_limit);
  EXPECT_EQ(log.last_index(), 3u);
  log.append(ents({{4, 3}, {5, 3}}));
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_EQ(log.last_term(), raft_term{3});
  auto all = log.slice(1, 6, no_limit);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 5u);
  EXPECT_EQ(log.term_or_zero(9), raft_term{0});
  EXPECT_EQ(log.last_stable_index(), 3u);
  storage_.append(ents({{4, 3}, {5, 3}}));  // the application persists them, then tells raft
  log.stable_to(5, raft_term{3});
  EXPECT_EQ(log.last_stable_index(), 5u);
}

TEST_F(raft_log_test, maybe_append_checks_the_previous_entry_and_truncates_conflicts) {
  raft_log log(storage_, no_limit);
  EXPECT_FALSE(log.maybe_append(3, raft_term{1}, 3, ents({{4, 3}})));        // term mismatch at 3
  EXPECT_FALSE(log.maybe_append(5, raft_term{2}, 3, ents({{6, 3}})));        // we lack 5
  auto last = log.maybe_append(2, raft_term{1}, 2, ents({{3, 3}, {4, 3}}));  // replaces 3@2
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(log.term_or_zero(3), raft_term{3});
  EXPECT_EQ(log.committed(), 2u);
  // Commit goes to min(leader commit, last new entry).
  log.maybe_append(4, raft_term{3}, 100, {});
  EXPECT_EQ(log.committed(), 4u);
}

TEST_F(raft_log_test, conflict_with_a_committed_entry_aborts) {
  raft_log log(storage_, no_limit);
  log.commit_to(3);
  EXPECT_DEATH(log.maybe_append(2, raft_term{1}, 3, ents({{3, 5}})), "committed");
}

TEST_F(raft_log_test, commit_only_for_the_given_term_and_never_back) {
  raft_log log(storage_, no_limit);
  log.append(ents({{4, 3}}));
  EXPECT_FALSE(log.maybe_commit(3, raft_term{3}));  // entry 3 is of term 2
  EXPECT_TRUE(log.maybe_commit(4, raft_term{3}));
  EXPECT_EQ(log.committed(), 4u);
  log.commit_to(2);
  EXPECT_EQ(log.committed(), 4u);
  EXPECT_DEATH(log.commit_to(9), "beyond last");
}

TEST_F(raft_log_test, up_to_date_compares_last_term_then_index) {
  raft_log log(storage_, no_limit);  // last 3@2
  EXPECT_TRUE(log.is_up_to_date(1, raft_term{3}));
  EXPECT_TRUE(log.is_up_to_date(3, raft_term{2}));
  EXPECT_FALSE(log.is_up_to_date(2, raft_term{2}));
  EXPECT_FALSE(log.is_up_to_date(9, raft_term{1}));
}

TEST_F(raft_log_test, find_conflict_by_term_skips_whole_terms) {
  raft_log log(storage_, no_limit);
  log.append(ents({{4, 4}, {5, 4}, {6, 5}}));
  EXPECT_EQ(log.find_conflict_by_term(6, raft_term{3}).index, 3u);  // skips all of terms 4 and 5
  EXPECT_EQ(log.find_conflict_by_term(6, raft_term{4}).index, 5u);
  EXPECT_EQ(log.find_conflict_by_term(6, raft_term{9}).index, 6u);
  EXPECT_EQ(log.find_conflict_by_term(2, raft_term{0}).index, 0u);
  EXPECT_EQ(log.find_conflict_by_term(20, raft_term{9}).index, 20u);  // beyond our log: unchanged
}

TEST_F(raft_log_test, committed_entries_are_handed_out_once_and_size_limited) {
  raft_log log(storage_, 1);  // one entry per batch
  log.commit_to(3);
  EXPECT_TRUE(log.has_next_committed_entries());
  auto batch = log.next_committed_entries();
  ASSERT_EQ(batch.size(), 1u);
  log.applied_to(batch.back().index());
  EXPECT_EQ(log.next_committed_entries().front().index(), 2u);
  log.applied_to(3);
  EXPECT_FALSE(log.has_next_committed_entries());
}

TEST_F(raft_log_test, compacted_reads_report_compacted) {
  ASSERT_TRUE(storage_.compact(2));
  raft_log log(storage_, no_limit);
  EXPECT_EQ(log.first_index(), 3u);
  EXPECT_EQ(log.term(1).error(), storage_error::compacted);
  EXPECT_EQ(log.term(2).value(), raft_term{1});
  EXPECT_EQ(log.slice(1, 3, no_limit).error(), storage_error::compacted);
}

}  // namespace
}  // namespace cairn::raft
