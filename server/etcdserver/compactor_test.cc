#include "etcdserver/compactor.h"

#include <gtest/gtest.h>

namespace cairn::etcdserver {
namespace {

using namespace std::chrono_literals;
using tp = std::chrono::steady_clock::time_point;

TEST(PeriodicPolicyTest, WaitsOneRetentionThenCompactsTheRevisionOfThen) {
  tp t0{};
  periodic_policy p(10min, t0);
  EXPECT_EQ(p.sample_interval(), 1min);
  // The runner records, waits a sample interval, asks; revisions grow by 10 a minute.
  std::int64_t rev = 1;
  p.record(rev);
  for (int m = 1; m < 10; ++m) {
    rev += 10;
    EXPECT_FALSE(p.due(t0 + m * 1min).has_value()) << m;
    p.record(rev);
  }
  rev += 10;
  auto first = p.due(t0 + 10min);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, 1);  // the sample of ten minutes ago
  p.succeeded(t0 + 10min);
  p.record(rev);
  // Next one a compact interval (= retention, below an hour) later.
  for (int m = 11; m < 20; ++m) {
    rev += 10;
    EXPECT_FALSE(p.due(t0 + m * 1min).has_value()) << m;
    p.record(rev);
  }
  auto second = p.due(t0 + 20min);
  ASSERT_TRUE(second.has_value());
  // The oldest of the 11 samples kept: minute 9 (rev 91), one retention before the last sample
  // (minute 19), as etcd's window works.
  EXPECT_EQ(*second, 91);
}

TEST(PeriodicPolicyTest, LongRetentionSamplesEverySixMinutesAndCompactsHourly) {
  tp t0{};
  periodic_policy p(24h, t0);
  EXPECT_EQ(p.sample_interval(), 6min);
  p.record(5);
  EXPECT_FALSE(p.due(t0 + 23h).has_value());
  auto first = p.due(t0 + 24h);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, 5);
  p.succeeded(t0 + 24h);
  p.record(6);
  EXPECT_FALSE(p.due(t0 + 24h + 59min).has_value());
  EXPECT_TRUE(p.due(t0 + 25h).has_value());
}

TEST(PeriodicPolicyTest, FailureIsRetriedAtTheNextSample) {
  tp t0{};
  periodic_policy p(10s, t0);
  p.record(3);
  ASSERT_TRUE(p.due(t0 + 10s).has_value());
  // Not reported as succeeded: the next sample asks again.
  p.record(4);
  EXPECT_TRUE(p.due(t0 + 11s).has_value());
}

TEST(RevisionPolicyTest, KeepsTheLastNRevisions) {
  revision_policy p(100);
  EXPECT_FALSE(p.due(50).has_value());
  EXPECT_FALSE(p.due(100).has_value());
  ASSERT_EQ(p.due(130), std::optional<std::int64_t>(30));
  p.succeeded(30);
  EXPECT_FALSE(p.due(130).has_value());  // same revision again: nothing to do
  EXPECT_EQ(p.due(131), std::optional<std::int64_t>(31));
}

}  // namespace
}  // namespace cairn::etcdserver
