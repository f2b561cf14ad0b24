#include "bench/stats.h"

#include <gtest/gtest.h>

namespace cairn::bench {
namespace {

using namespace std::chrono_literals;

TEST(bench_stats, quantiles_by_nearest_rank) {
  recorder r;
  for (int i = 1; i <= 100; ++i) r.ok(std::chrono::milliseconds(i));
  EXPECT_DOUBLE_EQ(r.quantile(0.5), 0.050);
  EXPECT_DOUBLE_EQ(r.quantile(0.99), 0.099);
  EXPECT_DOUBLE_EQ(r.quantile(0.999), 0.100);
  EXPECT_DOUBLE_EQ(r.quantile(0), 0.001);
  EXPECT_DOUBLE_EQ(r.slowest(), 0.100);
  EXPECT_DOUBLE_EQ(r.fastest(), 0.001);
  EXPECT_NEAR(r.mean(), 0.0505, 1e-12);
}

TEST(bench_stats, merge_keeps_everything_and_errors_by_code) {
  recorder a, b;
  a.ok(1ms);
  b.ok(3ms);
  b.error(14);
  b.error(14);
  a.error(8);
  a.merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.errors().at(14), 2u);
  EXPECT_EQ(a.errors().at(8), 1u);
  EXPECT_DOUBLE_EQ(a.quantile(1), 0.003);
}

TEST(bench_stats, histogram_counts_every_sample_once) {
  recorder r;
  for (int i = 0; i < 50; ++i) r.ok(15us);
  for (int i = 0; i < 30; ++i) r.ok(3ms);
  r.ok(1s);
  std::uint64_t total = 0;
  for (const auto& [bound, n] : r.histogram()) total += n;
  EXPECT_EQ(total, 81u);
}

TEST(bench_stats, report_json_has_the_numbers) {
  report rep;
  rep.workload = "put";
  rep.seconds = 2;
  for (int i = 0; i < 10; ++i) rep.rec.ok(10ms);
  rep.rec.error(14);
  const std::string j = rep.json();
  EXPECT_NE(j.find("\"workload\":\"put\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"requests\":10"), std::string::npos) << j;
  EXPECT_NE(j.find("\"throughput\":5"), std::string::npos) << j;
  EXPECT_NE(j.find("\"Unavailable\":1"), std::string::npos) << j;
  EXPECT_NE(rep.text().find("Requests/sec:\t5.0000"), std::string::npos);
}

}  // namespace
}  // namespace cairn::bench
