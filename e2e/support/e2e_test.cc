// The test support itself: a checker of processes must see failures, exit codes and time-outs.
#include "support/e2e.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace cairn::e2e {
namespace {

TEST(E2eSupport, RunCapturesOutputAndExitCode) {
  const auto r = run({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(E2eSupport, RunTimesOutAndKills) {
  const auto r = run({"/bin/sleep", "30"}, {}, std::chrono::milliseconds(200));
  EXPECT_EQ(r.exit_code, -1);
}

TEST(E2eSupport, ChildEnvironmentDropsEtcdVariables) {
  setenv("ETCD_NAME", "leak", 1);
  setenv("ETCDCTL_API", "2", 1);
  const auto r = run({"/usr/bin/env"}, {{"ETCD_DATA_DIR", "/x"}, {"HOME", std::nullopt}});
  unsetenv("ETCD_NAME");
  unsetenv("ETCDCTL_API");
  EXPECT_EQ(r.out.find("ETCD_NAME="), std::string::npos);
  EXPECT_EQ(r.out.find("ETCDCTL_API="), std::string::npos);
  EXPECT_EQ(r.out.find("\nHOME="), std::string::npos);
  EXPECT_NE(r.out.find("ETCD_DATA_DIR=/x"), std::string::npos);
}

TEST(E2eSupport, FreePortsAreDistinctAndNotEtcds) {
  const int a = free_port();
  const int b = free_port();
  EXPECT_NE(a, b);
  EXPECT_NE(a, 2379);
  EXPECT_GT(a, 0);
  int ephemeral_low = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  EXPECT_LT(a, ephemeral_low);
  EXPECT_LT(b, ephemeral_low);
}

TEST(E2eSupport, AnotherProcessDoesNotGetAPortThisOneHolds) {
  const int mine = free_port();
  // The claim is a lock another process cannot take while this one lives.
  const std::string lock =
      (std::filesystem::temp_directory_path() / "cairn-test-ports" / std::to_string(mine)).string();
  const auto r = run({"/usr/bin/flock", "--nonblock", lock, "true"});
  EXPECT_NE(r.exit_code, 0) << "the claim on port " << mine << " is not held";
}

TEST(E2eSupport, WaitForPortSeesAnExitedChild) {
  temp_dir dir;
  process p({"/bin/sh", "-c", "exit 0"}, dir.path() / "log");
  EXPECT_FALSE(p.wait_for_port(free_port(), std::chrono::seconds(5)));
}

}  // namespace
}  // namespace cairn::e2e
