#include "mvcc/key_index.h"

#include <gtest/gtest.h>

namespace cairn::mvcc {
namespace {

revision r(std::int64_t main, std::int64_t sub = 0) { return revision{main, sub}; }

std::vector<std::vector<revision>> revs_of(const key_index& ki) {
  std::vector<std::vector<revision>> out;
  for (const auto& g : ki.generations()) out.push_back(g.revs);
  return out;
}

// put 2, put 4, del 6 | put 8, put 10, del 12 | put 14
key_index sample() {
  key_index ki;
  ki.put(r(2));
  ki.put(r(4));
  EXPECT_TRUE(ki.tombstone(r(6)));
  ki.put(r(8));
  ki.put(r(10));
  EXPECT_TRUE(ki.tombstone(r(12)));
  ki.put(r(14));
  return ki;
}

TEST(key_index, get_follows_generations_and_versions) {
  key_index ki = sample();
  EXPECT_FALSE(ki.get(1));
  auto s = ki.get(5);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->modified, r(4));
  EXPECT_EQ(s->created, r(2));
  EXPECT_EQ(s->version, 2);
  EXPECT_FALSE(ki.get(6));
  EXPECT_FALSE(ki.get(7));
  s = ki.get(9);
  EXPECT_EQ(s->modified, r(8));
  EXPECT_EQ(s->created, r(8));
  EXPECT_EQ(s->version, 1);
  EXPECT_FALSE(ki.get(12));
  EXPECT_EQ(ki.get(100)->modified, r(14));
}

TEST(key_index, tombstone_of_a_deleted_key_is_refused) {
  key_index ki;
  ki.put(r(2));
  EXPECT_TRUE(ki.tombstone(r(3)));
  EXPECT_FALSE(ki.tombstone(r(4)));
  EXPECT_EQ(ki.modified(), r(3));
}

TEST(key_index, compaction_keeps_the_latest_revision_at_or_below_it) {
  struct tc {
    std::int64_t at;
    std::vector<std::vector<revision>> left;
    std::vector<revision> kept;
  };
  std::vector<tc> cases = {
      {1, {{r(2), r(4), r(6)}, {r(8), r(10), r(12)}, {r(14)}}, {}},
      {3, {{r(2), r(4), r(6)}, {r(8), r(10), r(12)}, {r(14)}}, {r(2)}},
      {4, {{r(4), r(6)}, {r(8), r(10), r(12)}, {r(14)}}, {r(4)}},
      {5, {{r(4), r(6)}, {r(8), r(10), r(12)}, {r(14)}}, {r(4)}},
      // The tombstone at exactly the compaction revision stays (etcd #18089).
      {6, {{r(6)}, {r(8), r(10), r(12)}, {r(14)}}, {r(6)}},
      {7, {{r(8), r(10), r(12)}, {r(14)}}, {}},
      {10, {{r(10), r(12)}, {r(14)}}, {r(10)}},
      {12, {{r(12)}, {r(14)}}, {r(12)}},
      {13, {{r(14)}}, {}},
      {14, {{r(14)}}, {r(14)}},
      {20, {{r(14)}}, {r(14)}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at);
    key_index ki = sample();
    revision_set kept, would;
    ki.keep(c.at, would);
    ki.compact(c.at, &kept);
    EXPECT_EQ(revs_of(ki), c.left);
    EXPECT_EQ(kept, revision_set(c.kept.begin(), c.kept.end()));
    EXPECT_EQ(would, kept);
    // What is left answers every read at or above the compaction like before.
    key_index full = sample();
    for (std::int64_t at = c.at; at < 20; ++at) {
      auto a = ki.get(at);
      auto b = full.get(at);
      ASSERT_EQ(a.has_value(), b.has_value()) << at;
      if (a) {
        EXPECT_EQ(a->modified, b->modified);
        EXPECT_EQ(a->created, b->created);
        EXPECT_EQ(a->version, b->version);
      }
    }
  }
}

TEST(key_index, a_deleted_key_empties_after_a_compaction_past_its_tombstone) {
  key_index ki;
  ki.put(r(2));
  ki.tombstone(r(3));
  ki.compact(3, nullptr);
  EXPECT_FALSE(ki.empty());  // the tombstone at 3 is kept
  ki.compact(4, nullptr);
  EXPECT_TRUE(ki.empty());
}

TEST(key_index, several_changes_in_one_revision_keep_only_the_last) {
  key_index ki;
  ki.put(r(2, 0));
  ki.put(r(2, 1));
  revision_set kept;
  ki.compact(2, &kept);
  EXPECT_EQ(revs_of(ki), (std::vector<std::vector<revision>>{{r(2, 1)}}));
  EXPECT_EQ(ki.get(2)->version, 2);
}

TEST(key_index, restoring_what_compaction_left_rebuilds_the_same_index) {
  key_index live = sample();
  live.compact(6, nullptr);
  key_index rebuilt;
  rebuilt.restore_tombstone(r(6));
  rebuilt.put(r(8));
  rebuilt.put(r(10));
  rebuilt.tombstone(r(12));
  rebuilt.put(r(14));
  EXPECT_EQ(rebuilt, live);
}

TEST(tree_index, visit_single_range_and_from_key_at_a_revision) {
  tree_index t;
  t.put("a", r(2));
  t.put("b", r(3));
  t.put("c", r(4));
  t.tombstone("b", r(5));
  std::vector<std::string> seen;
  auto collect = [&](std::string_view k, const key_index::state&) {
    seen.emplace_back(k);
    return true;
  };
  EXPECT_TRUE(t.visit({"a", std::string_view("\0", 1)}, 4, collect));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
  seen.clear();
  t.visit({"a", std::string_view("\0", 1)}, 5, collect);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "c"}));
  seen.clear();
  t.visit({"b", {}}, 4, collect);
  EXPECT_EQ(seen, (std::vector<std::string>{"b"}));
  EXPECT_EQ(t.count({"a", "c"}, 3), 2);
  t.compact(4);
  EXPECT_FALSE(t.count({"a", "c"}, 3));  // below the compaction
  EXPECT_EQ(t.count({"a", "c"}, 4), 2);
  t.compact(5);
  EXPECT_EQ(t.size(), 3u);  // b's tombstone at 5 stays
  t.compact(6);
  EXPECT_EQ(t.size(), 2u);
}

}  // namespace
}  // namespace cairn::mvcc
