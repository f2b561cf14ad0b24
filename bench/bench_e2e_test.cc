// cairn-bench's workloads against `cairn` and the real etcd 3.4.23, a few hundred requests
// each: every request must succeed, and the JSON must report them. This proves the tool drives
// both servers; speed is measured by scripts/bench-vs-etcd.sh, never asserted here.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

std::filesystem::path bench_binary() {
  return e2e::cairn_binary().parent_path().parent_path().parent_path() / "bench" / "cairn-bench";
}

double field(const std::string& json, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + name + "\":([0-9.e+-]+)"))) return -1;
  return std::stod(m[1]);
}

void run_all(const std::string& endpoint) {
  const std::vector<std::vector<std::string>> runs = {
      {"--total=300", "--clients=8", "--conns=2", "put", "--key-space-size=100", "--val-size=64"},
      {"--total=300", "--clients=8", "put", "--sequential-keys", "--key-space-size=1000"},
      {"--total=200", "--clients=4", "range", "--key-space-size=100"},
      {"--total=200", "--clients=4", "range", "--consistency=s", "--prefix=0"},
      {"--total=100", "--clients=4", "txn-put", "--txn-ops=3", "--key-space-size=50"},
      {"--total=200", "--clients=4", "mixed", "--read-ratio=0.8"},
      {"--total=100", "--clients=2", "--rate=500", "put"},
      {"--total=100", "--clients=2", "lease-keepalive"},
  };
  for (auto args : runs) {
    std::vector<std::string> argv = {bench_binary().string(), "--endpoints=" + endpoint, "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = e2e::run(argv, {}, std::chrono::seconds(60));
    std::string what;
    for (const auto& a : args) what += a + " ";
    ASSERT_EQ(r.exit_code, 0) << what << r.out << r.err;
    const double total = std::stod(args[0].substr(8));
    EXPECT_EQ(field(r.out, "requests"), total) << what << r.out;
    EXPECT_NE(r.out.find("\"errors\":{}"), std::string::npos) << what << r.out;
    EXPECT_GT(field(r.out, "throughput"), 0) << what;
    EXPECT_GT(field(r.out, "p99"), 0) << what;
  }
  // Watch: 40 watchers on 10 keys over 4 streams, 50 puts: each put reaches 4 watchers.
  auto w = e2e::run({bench_binary().string(), "--endpoints=" + endpoint, "--json", "--total=50",
                     "watch", "--watchers=40", "--streams=4", "--key-space-size=10"},
                    {}, std::chrono::seconds(60));
  ASSERT_EQ(w.exit_code, 0) << w.out << w.err;
  EXPECT_EQ(field(w.out, "puts"), 50) << w.out;
  EXPECT_EQ(field(w.out, "events"), 200) << w.out;
}

TEST(CairnBench, DrivesCairn) {
  e2e::temp_dir dir("cairn-bench");
  e2e::cairn_server cairn(dir.path() / "data");
  run_all(cairn.endpoint());
}

TEST(CairnBench, DrivesEtcd) {
  e2e::etcd_server etcd;
  run_all(etcd.endpoint());
}

}  // namespace
}  // namespace cairn
