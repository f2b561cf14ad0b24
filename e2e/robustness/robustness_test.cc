// Robustness scenarios against real `cairn` clusters (harness.h): traffic under one fault at a
// time, then the linearizability, watch, durability and convergence checks. Each prints its
// summary (operations, faults with recovery times, anomalies); a failure saves the history and
// member logs under <build>/robustness-failures/<scenario>-<seed> and says how to rerun it.
//
// CAIRN_TEST_SEED=<n> reruns a seed (timing still differs run to run);
// CAIRN_TEST_ROBUSTNESS_SECONDS=<s> sets a longer traffic time (8 s by default; the
// `robustness-soak` target loops every scenario with longer runs).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>

#include "robustness/harness.h"
#include "support/e2e.h"

namespace cairn::robustness {
namespace {

std::uint64_t seed() {
  if (const char* s = std::getenv("CAIRN_TEST_SEED"); s != nullptr && *s != '\0')
    return std::strtoull(s, nullptr, 10);
  return std::random_device{}() % 1000000 + 1;
}

// The scenario's own time (8 s unless it says) or CAIRN_TEST_ROBUSTNESS_SECONDS, the longer.
std::chrono::milliseconds duration(std::chrono::milliseconds own) {
  if (const char* s = std::getenv("CAIRN_TEST_ROBUSTNESS_SECONDS"); s != nullptr && *s != '\0')
    return std::max(own, std::chrono::milliseconds(std::chrono::seconds(std::atoi(s))));
  return own;
}

std::filesystem::path artifacts() {
  const char* b = std::getenv("CAIRN_TEST_BINARY_DIR");
  return std::filesystem::path(b != nullptr ? b : ".") / "robustness-failures";
}

void run_scenario(scenario s) {
  s.seed = seed();
  s.duration = duration(s.duration);
  e2e::temp_dir dir("cairn-robustness");
  const run_report rep = run(s, dir.path(), artifacts());
  std::cout << rep.summary() << std::endl;
  EXPECT_TRUE(rep.ok()) << rep.summary() << "\nrerun: CAIRN_TEST_SEED=" << s.seed
                        << " ctest --test-dir <build> -R " << s.name;
  EXPECT_GT(rep.kv.acknowledged, 100) << "too little traffic to judge";
  if (!s.faults.empty()) {
    EXPECT_FALSE(rep.faults.empty()) << "no fault was injected";
  }
}

TEST(Robustness, OneMemberKilled) {
  run_scenario({"OneMemberKilled", 1, traffic_profile::etcd, {fault::kill_random}});
}

TEST(Robustness, OneMemberPaused) {
  run_scenario({"OneMemberPaused", 1, traffic_profile::etcd, {fault::pause_random}});
}

TEST(Robustness, OneMemberKubernetesTrafficKilled) {
  run_scenario(
      {"OneMemberKubernetesTrafficKilled", 1, traffic_profile::kubernetes, {fault::kill_random}});
}

TEST(Robustness, ThreeMembersKilled) {
  run_scenario(
      {"ThreeMembersKilled", 3, traffic_profile::etcd, {fault::kill_leader, fault::kill_random}});
}

TEST(Robustness, ThreeMembersPaused) {
  run_scenario(
      {"ThreeMembersPaused", 3, traffic_profile::etcd, {fault::pause_leader, fault::pause_random}});
}

TEST(Robustness, ThreeMembersPartitionedAndDelayed) {
  run_scenario({"ThreeMembersPartitionedAndDelayed",
                3,
                traffic_profile::etcd,
                {fault::isolate_leader, fault::isolate_random, fault::delay_peers}});
}

TEST(Robustness, ThreeMembersKubernetesTraffic) {
  run_scenario({"ThreeMembersKubernetesTraffic",
                3,
                traffic_profile::kubernetes,
                {fault::kill_leader, fault::isolate_leader, fault::pause_leader}});
}

// Crashes at failpoints of the WAL, raft, the backend, compaction, defragmentation and snapshots
// (the `cairn-failpoints` build), snapshots every 300 writes so that they happen.
const std::vector<std::string> crash_points = {
    "walBeforeFsync",   "walAfterFsync",      "raftBeforeSave",     "raftAfterSave",
    "beforeCommit",     "afterCommit",        "compactBeforeBatch", "compactAfterBatch",
    "defragBeforeCopy", "defragBeforeRename", "raftBeforeSaveSnap", "raftAfterSaveSnap"};

TEST(Robustness, OneMemberCrashesAtFailpoints) {
  scenario s{"OneMemberCrashesAtFailpoints", 1, traffic_profile::etcd, {fault::failpoint_crash}};
  s.failpoints = crash_points;
  s.flags = {"--snapshot-count=300"};
  run_scenario(s);
}

TEST(Robustness, ThreeMembersCrashAtFailpoints) {
  scenario s{"ThreeMembersCrashAtFailpoints", 3, traffic_profile::etcd, {fault::failpoint_crash}};
  s.failpoints = crash_points;
  s.failpoints.push_back("raftBeforeApplySnap");
  s.failpoints.push_back("raftAfterApplySnap");
  s.flags = {"--snapshot-count=300", "--experimental-snapshot-catchup-entries=100"};
  run_scenario(s);
}

TEST(Robustness, ThreeMembersSlowedAtFailpoints) {
  scenario s{
      "ThreeMembersSlowedAtFailpoints", 3, traffic_profile::kubernetes, {fault::failpoint_sleep}};
  s.failpoints = {"raftBeforeSave", "raftAfterSave", "beforeCommit", "beforeSyncWatchers",
                  "beforeSendWatchResponse"};
  run_scenario(s);
}

// Members replaced under load, one at a time (etcd's MemberReplace), between kills: each
// replacement waits out the 5 s health interval that strict reconfiguration checks ask for.
TEST(Robustness, ThreeMembersReplaced) {
  scenario s{"ThreeMembersReplaced",
             3,
             traffic_profile::etcd,
             {fault::replace_member, fault::replace_member, fault::kill_random}};
  s.duration = std::chrono::seconds(20);
  run_scenario(s);
}

TEST(Robustness, FiveMembersPartitioned) {
  run_scenario({"FiveMembersPartitioned",
                5,
                traffic_profile::etcd,
                {fault::minority_leader, fault::majority_leader, fault::bridge}});
}

}  // namespace
}  // namespace cairn::robustness
