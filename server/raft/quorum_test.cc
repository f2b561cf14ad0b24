#include "raft/quorum.h"

#include "gtest/gtest.h"

namespace cairn::raft {
namespace {

std::set<node_id> ids(std::initializer_list<std::uint64_t> v) {
  std::set<node_id> out;
  for (auto i : v) out.insert(node_id{i});
  return out;
}

TEST(quorum, majority_sizes) {
  EXPECT_EQ(majority(1), 1u);
  EXPECT_EQ(majority(2), 2u);
  EXPECT_EQ(majority(3), 2u);
  EXPECT_EQ(majority(4), 3u);
  EXPECT_EQ(majority(5), 3u);
}

TEST(quorum, committed_index_is_the_majority_acknowledged_one) {
  std::map<std::uint64_t, log_index> match{{1, 10}, {2, 7}, {3, 5}, {4, 9}, {5, 1}};
  auto acked = [&](node_id id) { return match.count(id.value()) ? match[id.value()] : 0; };
  EXPECT_EQ(committed_index(ids({1, 2, 3, 4, 5}), acked), 7u);  // 10, 9, 7 acknowledged 7
  EXPECT_EQ(committed_index(ids({1, 2, 3}), acked), 7u);
  EXPECT_EQ(committed_index(ids({1, 3}), acked), 5u);  // both must have it
  EXPECT_EQ(committed_index(ids({1}), acked), 10u);
  EXPECT_EQ(committed_index(ids({1, 6, 7}), acked), 0u);  // unknown voters count as 0
  EXPECT_EQ(committed_index({}, acked), no_limit);
}

TEST(quorum, tally_counts_only_voters) {
  const auto voters = ids({1, 2, 3});
  EXPECT_EQ(tally(voters, {}), vote_result::pending);
  EXPECT_EQ(tally(voters, {{node_id{1}, true}}), vote_result::pending);
  EXPECT_EQ(tally(voters, {{node_id{1}, true}, {node_id{2}, true}}), vote_result::won);
  EXPECT_EQ(tally(voters, {{node_id{1}, true}, {node_id{2}, false}}), vote_result::pending);
  EXPECT_EQ(tally(voters, {{node_id{1}, true}, {node_id{2}, false}, {node_id{3}, false}}),
            vote_result::lost);
  // A learner's (or any non-voter's) grant never counts towards winning.
  EXPECT_EQ(tally(voters, {{node_id{1}, true}, {node_id{4}, true}, {node_id{5}, true}}),
            vote_result::pending);
  EXPECT_EQ(tally(ids({1, 2, 3, 4}), {{node_id{1}, true}, {node_id{2}, true}}),
            vote_result::pending);
  EXPECT_EQ(tally(ids({1, 2, 3, 4}), {{node_id{1}, false}, {node_id{2}, false}}),
            vote_result::lost);
}

}  // namespace
}  // namespace cairn::raft
