#include "base/stats.h"

#include <gtest/gtest.h>

#include <thread>

namespace cairn::base {
namespace {

TEST(stats, exponential_buckets_as_prometheus) {
  auto b = exponential_buckets(0.001, 2, 14);
  ASSERT_EQ(b.size(), 14u);
  EXPECT_DOUBLE_EQ(b.front(), 0.001);
  EXPECT_DOUBLE_EQ(b.back(), 8.192);
}

TEST(stats, histogram_buckets_are_cumulative_and_le_inclusive) {
  histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 100.0}) h.observe(v);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 106.0);
}

TEST(stats, concurrent_observations_are_all_counted) {
  histogram h(exponential_buckets(1, 2, 8));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) h.observe(static_cast<double>(i % 300));
    });
  }
  for (auto& t : ts) t.join();
  auto s = h.snapshot();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.cumulative.back(), 40000u);
}

}  // namespace
}  // namespace cairn::base
