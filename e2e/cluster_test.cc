// Clusters of `cairn` on loopback, driven by the real etcdctl 3.4.23 and by gRPC clients:
// etcd's member and cluster ids, writes and reads through every member, kill -9 of the leader
// under load (a new leader within 5 election timeouts, no acknowledged write lost, the old
// leader catches up when it returns), lease keep-alives through followers, refusal of a member
// from another cluster (wrong token, different initial cluster), and `endpoint status/health
// --cluster`.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "mvcc/record.h"
#include "schema/schema.h"
#include "support/e2e.h"

namespace cairn::e2e {
namespace {

using namespace std::chrono_literals;

run_result etcdctl(const std::string& endpoints, std::vector<std::string> args) {
  std::vector<std::string> argv = {etcdctl_binary().string(), "--endpoints=" + endpoints,
                                   "--dial-timeout=2s", "--command-timeout=5s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"ETCDCTL_API", "3"}});
}

// Grants a lease through `ep` with etcdctl; its id in hex ("" if refused).
std::string grant_lease(const std::string& ep, int ttl) {
  auto r = etcdctl(ep, {"lease", "grant", std::to_string(ttl)});
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex("lease ([0-9a-f]+) granted"))) return "";
  return m[1];
}

std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance(const std::string& ep) {
  return etcdserverpb::Maintenance::NewStub(
      grpc::CreateChannel(ep, grpc::InsecureChannelCredentials()));
}

// The leader as member `i` sees it (0: none, or unreachable).
std::uint64_t leader_seen_by(const std::string& ep) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 1s);
  etcdserverpb::StatusResponse resp;
  if (!maintenance(ep)->Status(&ctx, {}, &resp).ok()) return 0;
  return resp.leader();
}

std::uint64_t member_id_of(const std::string& ep) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 1s);
  etcdserverpb::StatusResponse resp;
  if (!maintenance(ep)->Status(&ctx, {}, &resp).ok()) return 0;
  return resp.header().member_id();
}

// Waits until every running member named in `members` agrees on one leader; its index.
int wait_for_leader(cairn_cluster& c, const std::vector<int>& members,
                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::set<std::uint64_t> seen;
    for (int i : members) seen.insert(leader_seen_by(c.endpoint(i)));
    if (seen.size() == 1 && *seen.begin() != 0) {
      for (int i : members) {
        if (member_id_of(c.endpoint(i)) == *seen.begin()) return i;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

std::vector<int> all_of(const cairn_cluster& c) {
  std::vector<int> v;
  for (int i = 0; i < c.size(); ++i) v.push_back(i);
  return v;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(etcdctl_binary())) GTEST_SKIP() << "no etcdctl";
  }
  temp_dir dir_{"cairn-cluster"};
};

TEST_F(ClusterTest, MemberAndClusterIdsAreEtcdsAndEveryMemberIsListed) {
  cairn_cluster c(dir_.path() / "cairn", 3);
  // The real etcd on the very same URLs and token first, for its ids.
  std::string etcd_list;
  std::string etcd_cluster_id;
  {
    std::vector<std::unique_ptr<process>> etcd;
    for (int i = 0; i < 3; ++i) {
      auto argv = c.argv(i);
      argv[0] = etcd_binary().string();
      argv[2] = "--data-dir=" + (dir_.path() / ("etcd-" + c.name(i))).string();
      etcd.push_back(std::make_unique<process>(argv, dir_.path() / ("etcd-" + c.name(i) + ".log")));
    }
    ASSERT_GE(wait_for_leader(c, all_of(c), 20s), 0);
    auto r = etcdctl(c.endpoint(0), {"member", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    etcd_list = r.out;
    r = etcdctl(c.endpoint(0), {"endpoint", "status", "-w", "fields"});
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("\"ClusterID\" : (\\d+)"))) << r.out;
    etcd_cluster_id = m[1];
  }
  c.start_all();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  // Each member publishes its name and client URLs through raft once it has a leader.
  run_result r;
  for (int attempt = 0; attempt < 100; ++attempt) {
    r = etcdctl(c.endpoint(1), {"member", "list"});
    if (r.out == etcd_list) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(r.out, etcd_list);
  r = etcdctl(c.endpoint(2), {"endpoint", "status", "-w", "fields"});
  EXPECT_NE(r.out.find("\"ClusterID\" : " + etcd_cluster_id), std::string::npos) << r.out;

  // --cluster: every member, from any one endpoint.
  r = etcdctl(c.endpoint(2), {"endpoint", "health", "--cluster"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE((r.out + r.err).find("http://" + c.endpoint(i) + " is healthy"), std::string::npos)
        << r.out << r.err;
  }
  r = etcdctl(c.endpoint(0), {"endpoint", "status", "--cluster"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  int leaders = 0;
  for (int i = 0; i < 3; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        r.out, m,
        std::regex("http://" + c.endpoint(i) + ", [0-9a-f]+, [0-9.]+, [^,]+, (true|false)")))
        << r.out;
    leaders += m[1] == "true";
  }
  EXPECT_EQ(leaders, 1) << r.out;
}

TEST_F(ClusterTest, WritesThroughEveryMemberAreReadOnEvery) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  for (int i = 0; i < 3; ++i) {
    auto r = etcdctl(c.endpoint(i), {"put", "k" + std::to_string(i), "v" + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "OK\n");
  }
  for (int i = 0; i < 3; ++i) {
    // Linearizable: whatever was acknowledged anywhere is seen.
    auto r = etcdctl(c.endpoint(i), {"get", "k", "--prefix", "-w", "simple"});
    EXPECT_EQ(r.out, "k0\nv0\nk1\nv1\nk2\nv2\n") << c.name(i);
    r = etcdctl(c.endpoint(i), {"get", "k2", "-w", "json"});
    EXPECT_NE(r.out.find("\"revision\":4"), std::string::npos) << r.out;
  }
  // A txn and a delete through a follower.
  int leader = wait_for_leader(c, all_of(c), 5s);
  int follower = (leader + 1) % 3;
  auto r = etcdctl(c.endpoint(follower), {"del", "k", "--prefix"});
  EXPECT_EQ(r.out, "3\n") << r.err;
  for (int i = 0; i < 3; ++i) {
    auto g = etcdctl(c.endpoint(i), {"get", "k", "--prefix", "--consistency=l", "-w", "fields"});
    EXPECT_NE(g.out.find("\"Count\" : 0"), std::string::npos) << g.out;
  }
  // Every member applied the same history: the same db (Hash) and the same key space (HashKV).
  std::set<std::uint32_t> hashes, kv_hashes;
  for (int i = 0; i < 3; ++i) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      grpc::ClientContext ctx;
      etcdserverpb::StatusResponse st;
      ASSERT_TRUE(maintenance(c.endpoint(i))->Status(&ctx, {}, &st).ok());
      if (st.raftappliedindex() >= st.raftindex()) break;
      std::this_thread::sleep_for(20ms);
    }
    grpc::ClientContext ctx;
    etcdserverpb::HashResponse h;
    ASSERT_TRUE(maintenance(c.endpoint(i))->Hash(&ctx, {}, &h).ok());
    hashes.insert(h.hash());
    grpc::ClientContext ctx2;
    etcdserverpb::HashKVResponse hkv;
    ASSERT_TRUE(maintenance(c.endpoint(i))->HashKV(&ctx2, {}, &hkv).ok());
    kv_hashes.insert(hkv.hash());
  }
  EXPECT_EQ(hashes.size(), 1u);
  EXPECT_EQ(kv_hashes.size(), 1u);
}

TEST_F(ClusterTest, MoveLeaderHandsLeadershipToAnotherMember) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int target = (leader + 1) % 3;
  std::ostringstream hex;
  hex << std::hex << member_id_of(c.endpoint(target));
  // etcdctl itself looks for the leader among the endpoints it is given.
  auto r = etcdctl(c.endpoint(target), {"move-leader", hex.str()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no leader endpoint given at [" + c.endpoint(target) + "]"),
            std::string::npos)
      << r.err;
  // The Maintenance call on a follower: etcd's error.
  {
    grpc::ClientContext ctx;
    etcdserverpb::MoveLeaderRequest req;
    req.set_targetid(member_id_of(c.endpoint(target)));
    etcdserverpb::MoveLeaderResponse resp;
    auto st = maintenance(c.endpoint(target))->MoveLeader(&ctx, req, &resp);
    EXPECT_EQ(st.error_message(), "etcdserver: not leader");
  }
  r = etcdctl(c.endpoint(leader), {"move-leader", hex.str()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ostringstream from;
  from << std::hex << member_id_of(c.endpoint(leader));
  EXPECT_EQ(r.out, "Leadership transferred from " + from.str() + " to " + hex.str() + "\n");
  EXPECT_EQ(wait_for_leader(c, all_of(c), 5s), target);
}

TEST_F(ClusterTest, LeaseKeepAliveThroughAFollowerReachesTheLeader) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % 3;
  auto r = etcdctl(c.endpoint(follower), {"lease", "grant", "30"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("lease ([0-9a-f]+) granted"))) << r.out;
  const std::string id = m[1];
  r = etcdctl(c.endpoint(follower), {"lease", "keep-alive", "--once", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "lease " + id + " keepalived with TTL(30)\n");
  r = etcdctl(c.endpoint(follower), {"lease", "keep-alive", "--once", "1234abcd"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("requested lease not found"), std::string::npos) << r.err;
}

TEST_F(ClusterTest, KillingTheLeaderUnderLoadLosesNoAcknowledgedWrite) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);

  // Writers on every member, each its own keys; a key is recorded once its put is acknowledged.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> acked;
  std::vector<std::thread> writers;
  for (int w = 0; w < 6; ++w) {
    writers.emplace_back([&, w] {
      auto ch = grpc::CreateChannel(c.endpoint(w % 3), grpc::InsecureChannelCredentials());
      auto kv = etcdserverpb::KV::NewStub(ch);
      for (int n = 0; !stop; ++n) {
        etcdserverpb::PutRequest req;
        req.set_key("load/" + std::to_string(w) + "/" + std::to_string(n));
        req.set_value("v" + std::to_string(n));
        etcdserverpb::PutResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 2s);
        if (kv->Put(&ctx, req, &resp).ok()) {
          std::lock_guard lock(mu);
          acked[req.key()] = req.value();
        } else {
          std::this_thread::sleep_for(10ms);
        }
      }
    });
  }
  std::this_thread::sleep_for(700ms);
  const auto killed_at = std::chrono::steady_clock::now();
  c.kill(leader);
  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) rest.push_back(i);
  }
  const int next =
      wait_for_leader(c, rest, 5 * std::chrono::milliseconds(cairn_cluster::election_ms));
  const auto elected_in = std::chrono::steady_clock::now() - killed_at;
  EXPECT_GE(next, 0) << "no new leader within 5 election timeouts";
  EXPECT_NE(next, leader);
  std::this_thread::sleep_for(700ms);  // writes through the new leader
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_GT(acked.size(), 20u);
  std::cerr << "new leader after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elected_in).count() << " ms; "
            << acked.size() << " acknowledged puts\n";

  // The killed leader comes back and catches up.
  c.start(leader);
  auto check = [&](int i, bool serializable) {
    auto ch = grpc::CreateChannel(c.endpoint(i), grpc::InsecureChannelCredentials());
    auto kv = etcdserverpb::KV::NewStub(ch);
    std::map<std::string, std::string> got;
    for (int attempt = 0; attempt < 100; ++attempt) {
      etcdserverpb::RangeRequest req;
      req.set_key("load/");
      req.set_range_end("load0");
      req.set_serializable(serializable);
      etcdserverpb::RangeResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 2s);
      got.clear();
      if (kv->Range(&ctx, req, &resp).ok()) {
        for (const auto& kv : resp.kvs()) got[kv.key()] = kv.value();
        bool all = true;
        for (const auto& [k, v] : acked) {
          auto it = got.find(k);
          if (it == got.end() || it->second != v) all = false;
        }
        if (all) return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    for (const auto& [k, v] : acked) {
      if (!got.contains(k)) ADD_FAILURE() << c.name(i) << " lost acknowledged " << k;
    }
    return false;
  };
  for (int i : rest) EXPECT_TRUE(check(i, false)) << c.name(i);
  EXPECT_TRUE(check(leader, true)) << c.name(leader) << " did not catch up";
}

TEST_F(ClusterTest, AMemberOfAnotherClusterIsRefusedNotMerged) {
  cairn_cluster c(dir_.path(), 3);
  c.start(0);
  c.start(1);
  // m3 has the same --initial-cluster but another token: other ids, another cluster.
  c.start(2, {"--initial-cluster-token=another"});
  ASSERT_GE(wait_for_leader(c, {0, 1}, 10s), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * cairn_cluster::election_ms));
  EXPECT_EQ(leader_seen_by(c.endpoint(2)), 0u);
  auto r = etcdctl(c.endpoint(2), {"endpoint", "health"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  r = etcdctl(c.endpoint(0), {"member", "list"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  // Neither side took the other's messages.
  bool refused = false;
  for (int attempt = 0; attempt < 50 && !refused; ++attempt) {
    refused = c.proc(0).log().find("request cluster ID mismatch") != std::string::npos ||
              c.proc(1).log().find("request cluster ID mismatch") != std::string::npos;
    if (!refused) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(refused) << c.proc(0).log();
  r = etcdctl(c.endpoint(0), {"put", "a", "1"});
  EXPECT_EQ(r.out, "OK\n") << r.err;
}

TEST_F(ClusterTest, BootstrapErrorsAreEtcds) {
  cairn_cluster c(dir_.path(), 2);
  auto argv = c.argv(0);
  argv.push_back("--name=stranger");
  auto r = run(argv, {}, 20s);
  EXPECT_NE(r.exit_code, 0);
  // (JSON logs, as etcd's: the quotes are escaped.)
  EXPECT_NE((r.out + r.err)
                .find("couldn't find local name \\\"stranger\\\" in the initial "
                      "cluster configuration"),
            std::string::npos)
      << r.err;
  argv = c.argv(0);
  argv.push_back("--initial-advertise-peer-urls=http://127.0.0.1:1");
  r = run(argv, {}, 20s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err)
                .find("--initial-cluster has m1=" + c.peer_url(0) +
                      " but missing from --initial-advertise-peer-urls=http://127.0.0.1:1"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// A follower that falls behind the leader's compacted log gets the leader's db: while stopped
// (SIGSTOP keeps its client connections) and after a kill -9 and restart. A watcher on it sees
// every event in order across the install.
TEST_F(ClusterTest, ALaggingMemberCatchesUpFromTheLeadersSnapshot) {
  cairn_cluster c(dir_.path(), 3,
                  {"--snapshot-count=100", "--experimental-snapshot-catchup-entries=10"});
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int lagging = (leader + 1) % 3;

  auto watch_ch = grpc::CreateChannel(c.endpoint(lagging), grpc::InsecureChannelCredentials());
  auto watch_stub = etcdserverpb::Watch::NewStub(watch_ch);
  grpc::ClientContext watch_ctx;
  auto stream = watch_stub->Watch(&watch_ctx);
  etcdserverpb::WatchRequest wreq;
  wreq.mutable_create_request()->set_key("k/");
  wreq.mutable_create_request()->set_range_end("k0");
  ASSERT_TRUE(stream->Write(wreq));
  etcdserverpb::WatchResponse wresp;
  ASSERT_TRUE(stream->Read(&wresp));
  ASSERT_TRUE(wresp.created());
  std::mutex seen_mu;
  std::vector<std::int64_t> seen;
  std::thread reader([&] {
    etcdserverpb::WatchResponse r;
    while (stream->Read(&r)) {
      std::lock_guard lock(seen_mu);
      for (const auto& ev : r.events()) seen.push_back(ev.kv().mod_revision());
    }
  });
  auto seen_count = [&] {
    std::lock_guard lock(seen_mu);
    return seen.size();
  };

  auto kv = etcdserverpb::KV::NewStub(
      grpc::CreateChannel(c.endpoint(leader), grpc::InsecureChannelCredentials()));
  auto put = [&](int i) {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key("k/" + std::to_string(i));
    req.set_value("v" + std::to_string(i));
    etcdserverpb::PutResponse resp;
    return kv->Put(&ctx, req, &resp).ok();
  };
  ::kill(c.proc(lagging).pid(), SIGSTOP);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(put(i));
  ::kill(c.proc(lagging).pid(), SIGCONT);

  auto caught_up = [&](int i, const std::string& key) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto r = etcdctl(c.endpoint(i), {"get", key, "--consistency=s", "--print-value-only"});
      if (r.exit_code == 0 && !r.out.empty()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  EXPECT_TRUE(caught_up(lagging, "k/299"));
  EXPECT_NE(c.proc(lagging).log().find("restored mvcc store from the leader's snapshot"),
            std::string::npos);
  for (int attempt = 0; attempt < 200 && seen_count() < 300; ++attempt) {
    std::this_thread::sleep_for(20ms);
  }
  watch_ctx.TryCancel();
  reader.join();
  // The watcher on the stopped member saw the 300 puts once each, in order, across the install.
  ASSERT_EQ(seen.size(), 300u);
  for (std::size_t i = 1; i < 300; ++i) ASSERT_EQ(seen[i], seen[i - 1] + 1) << i;

  // Down hard this time, and back.
  c.kill(lagging);
  for (int i = 300; i < 600; ++i) ASSERT_TRUE(put(i));
  c.start(lagging);
  EXPECT_TRUE(caught_up(lagging, "k/599"));
  EXPECT_NE(c.proc(lagging).log().find("restored mvcc store from the leader's snapshot"),
            std::string::npos);

  // Every member holds the same keys at the same revisions.
  std::set<std::uint32_t> hashes;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    etcdserverpb::HashKVResponse h;
    ASSERT_TRUE(maintenance(c.endpoint(i))->HashKV(&ctx, {}, &h).ok());
    hashes.insert(h.hash());
  }
  EXPECT_EQ(hashes.size(), 1u);
  auto r =
      etcdctl(c.endpoint(lagging), {"get", "k/", "--prefix", "--consistency=s", "-w", "fields"});
  EXPECT_NE(r.out.find("\"Count\" : 600"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// etcdctl's "Member %16x <verb> cluster %16x": an id with a leading zero digit is padded with a
// space, so a test matching "Member " + id fails for one member in sixteen.
std::string member_changed(const std::string& id, const std::string& verb) {
  return "Member " + std::string(id.size() < 16 ? 16 - id.size() : 0, ' ') + id + " " + verb +
         " cluster";
}

std::string id_of(const cairn_cluster& c, int i, const std::string& member_list) {
  // "<id>, started, <name>, <peer urls>, ..." → the id of the line with this member's peer URL.
  std::istringstream in(member_list);
  for (std::string line; std::getline(in, line);) {
    if (line.find(c.peer_url(i)) != std::string::npos) return line.substr(0, line.find(','));
  }
  return "";
}

bool exits_within(process& p, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p.exited()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// etcdctl member add/promote/update/remove on a loaded cluster: a learner joins with
// --initial-cluster-state=existing, is refused promotion until in sync, then promoted; a second
// learner, a taken peer URL are refused with etcd's errors; a follower and then the leader are
// removed (each stops, and a removed member restarted on its data stops again); no acknowledged
// write is lost; a wiped member is replaced under a new id.
TEST_F(ClusterTest, MembersAreAddedPromotedAndRemovedUnderLoad) {
  cairn_cluster c(dir_.path(), 5);  // m4 and m5 join later
  std::string founders;             // m1..m3 found the cluster
  for (int j = 0; j < 3; ++j) founders += (j ? "," : "") + c.name(j) + "=" + c.peer_url(j);
  for (int i = 0; i < 3; ++i) c.start(i, {"--initial-cluster=" + founders});
  ASSERT_GE(wait_for_leader(c, {0, 1, 2}, 10s), 0);
  const std::string eps = c.endpoint(0) + "," + c.endpoint(1) + "," + c.endpoint(2);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> acked;
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; !stop; ++n) {
        // Through every founder that still runs; a refused put is retried on the next one.
        auto ch = grpc::CreateChannel(c.endpoint((w + n) % 3), grpc::InsecureChannelCredentials());
        auto kv = etcdserverpb::KV::NewStub(ch);
        etcdserverpb::PutRequest req;
        req.set_key("m/" + std::to_string(w) + "/" + std::to_string(n));
        req.set_value("v");
        etcdserverpb::PutResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 2s);
        if (kv->Put(&ctx, req, &resp).ok()) {
          std::lock_guard lock(mu);
          acked[req.key()] = req.value();
        }
        std::this_thread::sleep_for(5ms);
      }
    });
  }

  // etcd refuses changes until every voter has been connected for its health interval (5 s).
  std::this_thread::sleep_for(5500ms);
  auto r = etcdctl(eps, {"member", "add", c.name(3), "--learner", "--peer-urls=" + c.peer_url(3)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), std::string::npos) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"")));
  const std::string joined_cluster = m[1];
  r = etcdctl(eps, {"member", "list"});
  const std::string learner = id_of(c, 3, r.out);
  ASSERT_FALSE(learner.empty()) << r.out;
  EXPECT_NE(r.out.find(", unstarted, , " + c.peer_url(3) + ", , true"), std::string::npos) << r.out;

  r = etcdctl(eps, {"member", "promote", learner});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(
      r.err.find("etcdserver: can only promote a learner member which is in sync with leader"),
      std::string::npos)
      << r.err;
  r = etcdctl(eps, {"member", "add", c.name(4), "--learner", "--peer-urls=" + c.peer_url(4)});
  EXPECT_NE(r.err.find("etcdserver: too many learner members in cluster"), std::string::npos)
      << r.err;
  r = etcdctl(eps, {"member", "update", learner, "--peer-urls=" + c.peer_url(0)});
  EXPECT_NE(r.err.find("etcdserver: Peer URLs already exists"), std::string::npos) << r.err;

  c.start(3, {"--initial-cluster=" + joined_cluster, "--initial-cluster-state=existing"});
  bool promoted = false;
  for (int attempt = 0; attempt < 100 && !promoted; ++attempt) {
    r = etcdctl(eps, {"member", "promote", learner});
    promoted = r.exit_code == 0;
    if (!promoted) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(promoted) << r.err;
  EXPECT_NE(r.out.find(member_changed(learner, "promoted in")), std::string::npos) << r.out;

  // Remove a follower, then the leader: each stops on its own.
  std::this_thread::sleep_for(5500ms);  // m4's stream has been up for a health interval
  int leader = wait_for_leader(c, {0, 1, 2, 3}, 5s);
  ASSERT_GE(leader, 0);
  int follower = leader == 0 ? 1 : 0;
  r = etcdctl(eps, {"member", "list"});
  const std::string follower_id = id_of(c, follower, r.out);
  const std::string leader_id = id_of(c, leader, r.out);
  r = etcdctl(eps, {"member", "remove", follower_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exits_within(c.proc(follower), 10s)) << c.proc(follower).log();
  std::vector<int> rest;
  for (int i = 0; i < 4; ++i) {
    if (i != follower) rest.push_back(i);
  }
  std::this_thread::sleep_for(500ms);
  r = etcdctl(c.endpoint(rest.back()), {"member", "remove", leader_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exits_within(c.proc(leader), 10s)) << c.proc(leader).log();
  std::vector<int> left;
  for (int i : rest) {
    if (i != leader) left.push_back(i);
  }
  ASSERT_EQ(left.size(), 2u);
  EXPECT_GE(wait_for_leader(c, left, 5s), 0);

  // A removed member restarted on its old data directory is refused and stops again.
  c.start(follower);
  EXPECT_TRUE(exits_within(c.proc(follower), 15s)) << c.proc(follower).log();
  EXPECT_NE(c.proc(follower).log().find("the member has been permanently removed from the cluster"),
            std::string::npos);

  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_GT(acked.size(), 50u);
  for (int i : left) {
    auto kv = etcdserverpb::KV::NewStub(
        grpc::CreateChannel(c.endpoint(i), grpc::InsecureChannelCredentials()));
    etcdserverpb::RangeRequest req;
    req.set_key("m/");
    req.set_range_end("m0");
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(kv->Range(&ctx, req, &resp).ok());
    std::set<std::string> got;
    for (const auto& kv : resp.kvs()) got.insert(kv.key());
    std::size_t lost = 0;
    for (const auto& [k, v] : acked) lost += !got.contains(k);
    EXPECT_EQ(lost, 0u) << c.name(i);
  }
  r = etcdctl(c.endpoint(left[0]), {"member", "list"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

// The way etcd's docs replace a member whose disk was lost: remove it, add it again (a new id),
// start it on an empty data directory with --initial-cluster-state=existing.
TEST_F(ClusterTest, AMemberWhoseDataWasWipedIsReplaced) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(etcdctl(c.endpoint(0), {"put", "w" + std::to_string(i), "x"}).exit_code, 0);
  }
  const int lost = wait_for_leader(c, all_of(c), 5s) == 2 ? 1 : 2;
  auto r = etcdctl(c.endpoint(0), {"member", "list"});
  const std::string old_id = id_of(c, lost, r.out);
  c.kill(lost);
  std::filesystem::remove_all(c.data_dir(lost));
  // The others notice the closed connections (a down member is removed without the health
  // check, as etcd does).
  std::this_thread::sleep_for(1s);
  const std::string alive = c.endpoint((lost + 1) % 3);
  r = etcdctl(alive, {"member", "remove", old_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::this_thread::sleep_for(5500ms);  // the health interval of the two left
  r = etcdctl(alive, {"member", "add", c.name(lost), "--peer-urls=" + c.peer_url(lost)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  c.start(lost, {"--initial-cluster-state=existing"});
  bool caught_up = false;
  for (int attempt = 0; attempt < 100 && !caught_up; ++attempt) {
    auto g = etcdctl(c.endpoint(lost), {"get", "w19", "--consistency=s", "--print-value-only"});
    caught_up = g.out == "x\n";
    if (!caught_up) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(caught_up) << c.proc(lost).log();
  // It publishes its name once it has caught up.
  std::string new_id;
  for (int attempt = 0; attempt < 100; ++attempt) {
    r = etcdctl(c.endpoint(lost), {"member", "list"});
    new_id = id_of(c, lost, r.out);
    if (r.out.find(new_id + ", started, " + c.name(lost)) != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(new_id, old_id);
  EXPECT_NE(r.out.find(new_id + ", started, " + c.name(lost)), std::string::npos) << r.out;
}

// What a learner answers, in a form both servers can be compared by: the exit code, stdout and
// etcdctl's "Error:" lines (its JSON warnings carry timestamps).
std::string answer_of(const run_result& r) {
  std::string text = std::to_string(r.exit_code) + "\n" + r.out;
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);) {
    if (line.starts_with("Error:")) text += line + "\n";
  }
  return text;
}

// A learner serves only Status and serializable ranges: the real etcd 3.4 and cairn each get a
// one-member cluster plus a learner, and the same requests on the learner answer alike.
TEST_F(ClusterTest, ALearnerRefusesWhatEtcdRefuses) {
  if (!std::filesystem::exists(etcd_binary())) GTEST_SKIP() << "no etcd";
  auto session = [&](bool real_etcd) {
    std::map<std::string, std::string> answers;
    cairn_cluster c(dir_.path() / (real_etcd ? "etcd" : "cairn"), 2);
    if (real_etcd) c.use_binary(etcd_binary());
    c.start(0, {"--initial-cluster=" + c.name(0) + "=" + c.peer_url(0)});
    EXPECT_GE(wait_for_leader(c, {0}, 10s), 0);
    EXPECT_EQ(etcdctl(c.endpoint(0), {"put", "a", "1"}).exit_code, 0);
    auto r = etcdctl(c.endpoint(0),
                     {"member", "add", c.name(1), "--learner", "--peer-urls=" + c.peer_url(1)});
    std::smatch m;
    EXPECT_TRUE(std::regex_search(r.out, m, std::regex("ETCD_INITIAL_CLUSTER=\"([^\"]+)\"")))
        << r.out << r.err;
    c.start(1, {"--initial-cluster=" + m[1].str(), "--initial-cluster-state=existing"});
    const std::string learner = c.endpoint(1);
    bool caught_up = false;
    for (int attempt = 0; attempt < 100 && !caught_up; ++attempt) {
      r = etcdctl(learner, {"get", "a", "--consistency=s", "--print-value-only"});
      caught_up = r.out == "1\n";
      if (!caught_up) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(caught_up) << c.proc(1).log();
    const std::vector<std::vector<std::string>> requests = {
        {"get", "a", "--consistency=s"},
        {"get", "a"},
        {"put", "b", "2"},
        {"del", "a"},
        {"compaction", "1"},
        {"lease", "grant", "10"},
        {"lease", "list"},
        {"member", "list"},
        {"alarm", "list"},
        {"endpoint", "hashkv"},
        {"defrag"},
        {"endpoint", "health"},
        {"snapshot", "save", (dir_.path() / (real_etcd ? "etcd.db" : "cairn.db")).string()},
    };
    for (auto args : requests) {
      const std::string name = args[0] == "snapshot" ? "snapshot save" : absl::StrJoin(args, " ");
      args.insert(args.begin(), "--command-timeout=2s");
      answers[name] = answer_of(etcdctl(learner, args));
    }
    r = etcdctl(learner, {"endpoint", "status", "-w", "fields"});
    answers["endpoint status"] =
        std::to_string(r.exit_code) + " " +
        std::to_string(r.out.find("\"IsLearner\" : true") != std::string::npos);
    // A watch stream, straight over gRPC (etcdctl's watch retries an unavailable member).
    auto watch = etcdserverpb::Watch::NewStub(
        grpc::CreateChannel(learner, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    auto stream = watch->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key("a");
    stream->Write(req);
    etcdserverpb::WatchResponse resp;
    while (stream->Read(&resp)) {
    }
    auto st = stream->Finish();
    answers["watch"] = std::to_string(st.error_code()) + " " + st.error_message();
    return answers;
  };
  const auto etcd = session(true);
  const auto cairn = session(false);
  for (const auto& [request, answer] : etcd) {
    EXPECT_EQ(cairn.at(request), answer) << request;
  }
  // The comparison has teeth: the learner refused writes and served the serializable read.
  EXPECT_NE(etcd.at("put b 2").find("Error: etcdserver: rpc not supported for learner"),
            std::string::npos)
      << etcd.at("put b 2");
  EXPECT_EQ(etcd.at("get a --consistency=s"), "0\na\n1\n");
}

// LeaseTimeToLive through a follower answers the leader's count-down, as etcd forwards it.
TEST_F(ClusterTest, LeaseTimeToLiveThroughAFollowerIsTheLeaders) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % 3;
  const std::string id = grant_lease(c.endpoint(leader), 30);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(etcdctl(c.endpoint(leader), {"put", "held", "x", "--lease=" + id}).exit_code, 0);
  std::this_thread::sleep_for(2100ms);
  auto r = etcdctl(c.endpoint(follower), {"lease", "timetolive", id, "--keys"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(
      std::regex_match(r.out, std::regex("lease " + id +
                                         " granted with TTL\\(30s\\), remaining\\(2[0-7]s\\), "
                                         "attached keys\\(\\[held\\]\\)\n")))
      << r.out;
  r = etcdctl(c.endpoint(follower), {"lease", "timetolive", "1234abcd"});
  EXPECT_EQ(r.out, "lease 000000001234abcd already expired\n") << r.err;
}

// etcd #15247: a leader paused past a lease's TTL wakes believing it still leads, with the
// lease expired on its clock while the new leader kept it alive. It must not revoke it.
TEST_F(ClusterTest, AStalledOldLeaderDoesNotRevokeALeaseTheNewLeaderKeptAlive) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const std::string hex_id = grant_lease(c.endpoint(leader), 3);
  ASSERT_FALSE(hex_id.empty());
  const std::int64_t id = std::stoll(hex_id, nullptr, 16);
  ASSERT_EQ(etcdctl(c.endpoint(leader), {"put", "held", "x", "--lease=" + hex_id}).exit_code, 0);

  // Keep-alives through whichever of the others answers, every 300 ms.
  std::atomic<bool> stop{false};
  std::atomic<int> stalled{-1};
  std::thread keeper([&] {
    for (int i = 0; !stop;) {
      if (i == stalled) {
        i = (i + 1) % 3;
        continue;
      }
      auto lease = etcdserverpb::Lease::NewStub(
          grpc::CreateChannel(c.endpoint(i), grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 1s);
      auto s = lease->LeaseKeepAlive(&ctx);
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(id);
      etcdserverpb::LeaseKeepAliveResponse resp;
      const bool renewed = s->Write(req) && s->Read(&resp) && resp.ttl() > 0;
      ctx.TryCancel();
      if (renewed) {
        std::this_thread::sleep_for(300ms);
      } else {
        i = (i + 1) % 3;  // the next member
      }
    }
  });
  // Three pauses of the leader of the day, each longer than the TTL.
  for (int round = 0; round < 3; ++round) {
    std::vector<int> rest;
    for (int i = 0; i < 3; ++i) {
      if (i != leader) rest.push_back(i);
    }
    stalled = leader;
    ::kill(c.proc(leader).pid(), SIGSTOP);
    std::this_thread::sleep_for(4500ms);
    ::kill(c.proc(leader).pid(), SIGCONT);
    std::this_thread::sleep_for(1500ms);  // its lease loop wakes with the lease expired
    stalled = -1;
    auto r = etcdctl(c.endpoint(rest[0]), {"get", "held", "--print-value-only"});
    EXPECT_EQ(r.out, "x\n") << "round " << round << ": the old leader revoked the lease\n"
                            << c.proc(leader).log();
    if (r.out != "x\n") break;
    leader = wait_for_leader(c, all_of(c), 5s);
    ASSERT_GE(leader, 0);
  }
  stop = true;
  keeper.join();
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// Rewrites the value of the newest revision of `key` in a stopped member's backend, as a disk
// or a bug could: the store still opens, its HashKV no longer matches its peers'.
void tamper_with(const std::filesystem::path& data_dir, const std::string& key) {
  auto b = schema::open_backend((data_dir / "member" / "db").string(), {});
  ASSERT_TRUE(b.has_value());
  std::string rev_key, record;
  {
    auto cur = (*b)->cursor(schema::key);
    for (cur.seek(""); cur.valid(); cur.next()) {
      auto r = mvcc::decode_record(cur.value());
      if (r && !r->tombstone && r->key == key) {
        rev_key = cur.key();
        record =
            mvcc::encode_put(r->key, r->create_revision, r->version, r->lease, r->prev, "tampered");
      }
    }
  }
  ASSERT_FALSE(rev_key.empty()) << key << " is not in " << data_dir;
  (*b)->put(schema::key, rev_key, record);
  ASSERT_TRUE((*b)->sync());
}

// Stops member i with SIGTERM (a clean stop: everything applied is in its backend).
void stop(cairn_cluster& c, int i) {
  ::kill(c.proc(i).pid(), SIGTERM);
  ASSERT_TRUE(exits_within(c.proc(i), 10s)) << c.proc(i).log();
}

// etcd's corruption checks: with --experimental-corrupt-check-time the leader compares every
// member's HashKV and raises CORRUPT for a member whose data differs (etcdctl alarm list shows
// it, every write is refused with "etcdserver: corrupt cluster", reads go on, disarm restores
// writes); with --experimental-initial-corrupt-check that member refuses to start.
TEST_F(ClusterTest, ADivergedMemberRaisesCorruptAndIsRefusedAtStart) {
  cairn_cluster c(dir_.path(), 3, {"--experimental-corrupt-check-time=1s"});
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int bad = (leader + 1) % 3;
  const std::string eps = c.endpoints();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(etcdctl(eps, {"put", "k" + std::to_string(i), "v"}).exit_code, 0);
  }
  const std::uint64_t bad_num = member_id_of(c.endpoint(bad));
  ASSERT_NE(bad_num, 0u);
  std::ostringstream hex;
  hex << std::hex << bad_num;
  const std::string bad_id = hex.str();
  // A healthy cluster passes its checks: no alarm after a few rounds.
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(etcdctl(eps, {"alarm", "list"}).out, "");

  stop(c, bad);
  tamper_with(c.data_dir(bad), "k7");
  c.start(bad);
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  EXPECT_EQ(etcdctl(c.endpoint(bad), {"get", "k7", "--consistency=s", "--print-value-only"}).out,
            "tampered\n")
      << c.proc(bad).log();
  std::string alarms;
  for (int attempt = 0; attempt < 100 && alarms.empty(); ++attempt) {
    alarms = etcdctl(eps, {"alarm", "list"}).out;
    if (alarms.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(alarms.find("memberID:" + std::to_string(bad_num) + " alarm:CORRUPT"),
            std::string::npos)
      << alarms << c.proc(leader).log();
  auto put = etcdctl(eps, {"put", "after", "x"});
  EXPECT_NE(put.exit_code, 0);
  EXPECT_NE(put.err.find("etcdserver: corrupt cluster"), std::string::npos) << put.err;
  EXPECT_EQ(etcdctl(c.endpoint(leader), {"get", "k7", "--print-value-only"}).out, "v\n");
  EXPECT_NE(c.proc(leader).log().find("same compact revision then hashes must match"),
            std::string::npos);

  // Started again with the initial check, the diverged member refuses to serve.
  stop(c, bad);
  EXPECT_THROW(c.start(bad, {"--experimental-initial-corrupt-check"}), std::runtime_error);
  ASSERT_TRUE(exits_within(c.proc(bad), 20s));
  EXPECT_NE(c.proc(bad).log().find(bad_id + " found data inconsistency with peers"),
            std::string::npos)
      << c.proc(bad).log();

  // A member that agrees with its peers passes the initial check and serves.
  const int good = 3 - leader - bad;
  stop(c, good);
  c.start(good, {"--experimental-initial-corrupt-check"});
  // Serving once it has rejoined the leader (a linearizable read needs both of them).
  std::string got;
  for (int i = 0; i < 50 && got != "v\n"; ++i) {
    got = etcdctl(c.endpoint(good), {"get", "k7", "--print-value-only"}).out;
    if (got != "v\n") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(got, "v\n");
  EXPECT_NE(c.proc(good).log().find("initial corruption checking passed; no corruption"),
            std::string::npos);

  // Disarming lets writes through again (the diverged member stays down).
  auto disarm = etcdctl(eps, {"alarm", "disarm"});
  EXPECT_EQ(disarm.exit_code, 0) << disarm.err;
  EXPECT_EQ(etcdctl(c.endpoint(leader), {"put", "after", "x"}).exit_code, 0);
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// --initial-cluster-state=existing checks the local --initial-cluster against the members the
// running cluster reports (etcd's ValidateClusterAndAssignIDs): a member that was never added,
// or a list whose peer URLs differ from the cluster's, is refused and changes nothing; after
// `member add`, the same start joins.
TEST_F(ClusterTest, JoiningWithAnInitialClusterThatDoesNotMatchIsRefused) {
  cairn_cluster c(dir_.path(), 3);
  const std::string two = c.name(0) + "=" + c.peer_url(0) + "," + c.name(1) + "=" + c.peer_url(1);
  for (int i = 0; i < 2; ++i) c.start(i, {"--initial-cluster=" + two});
  ASSERT_GE(wait_for_leader(c, {0, 1}, 10s), 0);
  const std::string eps = c.endpoint(0) + "," + c.endpoint(1);

  // m3 was never added: three members here, two in the cluster.
  auto argv = c.argv(2);
  argv.push_back("--initial-cluster-state=existing");
  auto r = run(argv, {}, 20s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("error validating peerURLs"), std::string::npos) << r.err;
  EXPECT_NE((r.out + r.err).find("member count is unequal"), std::string::npos) << r.err;

  // Two members, but m2's peer URL is not the one the cluster has.
  argv = c.argv(2);
  argv.push_back("--initial-cluster=" + c.name(0) + "=" + c.peer_url(0) + "," + c.name(2) + "=" +
                 c.peer_url(2));
  argv.push_back("--initial-cluster-state=existing");
  r = run(argv, {}, 20s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("PeerURLs: no match found for existing member"), std::string::npos)
      << r.err;
  EXPECT_NE((r.out + r.err).find(c.peer_url(1)), std::string::npos) << r.err;

  auto list = etcdctl(eps, {"member", "list"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 2) << list.out;
  EXPECT_EQ(etcdctl(eps, {"put", "a", "1"}).out, "OK\n");

  // Added first, m3 joins with the same flags and serves the data.
  // (Retried: the strict reconfiguration check wants the members connected for 5 s first.)
  run_result add;
  for (int attempt = 0; attempt < 40; ++attempt) {
    add = etcdctl(eps, {"member", "add", c.name(2), "--peer-urls=" + c.peer_url(2)});
    if (add.exit_code == 0 || add.err.find("unhealthy cluster") == std::string::npos) break;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_EQ(add.exit_code, 0) << add.err;
  // (The refused starts left nothing in m3's data directory that would stop this one.)
  c.start(2, {"--initial-cluster-state=existing"});
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    served = etcdctl(c.endpoint(2), {"get", "a", "--print-value-only"}).out == "1\n";
    if (!served) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(served) << c.proc(2).log();
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// etcdctl member update moves a live member to another peer URL: the cluster records it (member
// list), the member restarted on the new URL rejoins, and writes through it reach every member.
TEST_F(ClusterTest, MemberUpdateMovesAMemberToANewPeerUrl) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  const int leader = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(leader, 0);
  const int moved = (leader + 1) % 3;
  const std::string eps = c.endpoints();
  ASSERT_EQ(etcdctl(eps, {"put", "before", "1"}).exit_code, 0);
  const std::string id = id_of(c, moved, etcdctl(eps, {"member", "list"}).out);
  ASSERT_FALSE(id.empty());
  const std::string new_url = "http://127.0.0.1:" + std::to_string(free_port());

  auto r = etcdctl(eps, {"member", "update", id, "--peer-urls=" + new_url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(member_changed(id, "updated in")), std::string::npos) << r.out;
  auto list = etcdctl(eps, {"member", "list"}).out;
  EXPECT_NE(list.find(id + ", started, " + c.name(moved) + ", " + new_url + ","), std::string::npos)
      << list;
  EXPECT_EQ(list.find(c.peer_url(moved)), std::string::npos) << list;

  ::kill(c.proc(moved).pid(), SIGTERM);
  ASSERT_TRUE(exits_within(c.proc(moved), 10s));
  c.start(moved, {"--listen-peer-urls=" + new_url, "--initial-advertise-peer-urls=" + new_url});
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  r = etcdctl(c.endpoint(moved), {"put", "after", "2"});
  EXPECT_EQ(r.out, "OK\n") << r.err << c.proc(moved).log();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(etcdctl(c.endpoint(i), {"get", "after", "--print-value-only"}).out, "2\n") << i;
  }
  // The others reach it on the new URL only: with the leader down, it and the third member
  // still elect a leader and serve.
  c.kill(leader);
  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != leader) rest.push_back(i);
  }
  ASSERT_GE(wait_for_leader(c, rest, 10s), 0);
  EXPECT_EQ(etcdctl(c.endpoint(moved), {"put", "later", "3"}).out, "OK\n");
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

// Whether every member in `members` reaches the same revision with the same HashKV within
// `timeout` (writes have stopped).
bool converged(cairn_cluster& c, const std::vector<int>& members,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::set<std::pair<std::int64_t, std::uint32_t>> seen;
    for (int i : members) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 1s);
      etcdserverpb::HashKVResponse h;
      if (!maintenance(c.endpoint(i))->HashKV(&ctx, {}, &h).ok()) {
        seen.insert({-1, static_cast<std::uint32_t>(i)});
        continue;
      }
      seen.insert({h.header().revision(), h.hash()});
    }
    if (seen.size() == 1) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Puts "w/<n>" through the members in `targets` in turn until stopped; keeps the keys whose
// put was acknowledged.
class writer {
 public:
  writer(cairn_cluster& c, std::vector<int> targets) {
    for (int i : targets) {
      stubs_.push_back(etcdserverpb::KV::NewStub(
          grpc::CreateChannel(c.endpoint(i), grpc::InsecureChannelCredentials())));
    }
    thread_ = std::thread([this] {
      for (int n = 0; !stop_; ++n) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 2s);
        etcdserverpb::PutRequest req;
        req.set_key("w/" + std::to_string(n));
        req.set_value(std::to_string(n));
        etcdserverpb::PutResponse resp;
        if (stubs_[n % stubs_.size()]->Put(&ctx, req, &resp).ok()) {
          std::lock_guard lock(mu_);
          acked_.push_back(req.key());
        }
      }
    });
  }
  std::vector<std::string> stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::size_t acked() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  ~writer() { stop(); }

 private:
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::thread thread_;
};

// Every acknowledged key is on member i (a serializable read of its own store).
void expect_all_present(cairn_cluster& c, int i, const std::vector<std::string>& keys) {
  auto r = etcdctl(c.endpoint(i), {"get", "w/", "--prefix", "--keys-only", "--consistency=s"});
  std::set<std::string> have;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) have.insert(line);
  }
  std::size_t missing = 0;
  for (const auto& k : keys) missing += have.contains(k) ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "member " << c.name(i) << " lacks " << missing << " of " << keys.size()
                         << " acknowledged keys";
}

// A leader cut off from both followers by TCP proxies on the peer links: the two elect a new
// leader within 5 election timeouts and go on taking writes; the old one serves no
// linearizable read and takes no write, and steps down. Healed, it follows the new leader,
// catches up, and every member holds the same data.
TEST_F(ClusterTest, AnIsolatedLeaderIsReplacedAndCatchesUpWhenHealed) {
  cairn_cluster c(dir_.path(), 3);
  c.with_peer_proxies();
  c.start_all();
  const int old = wait_for_leader(c, all_of(c), 10s);
  ASSERT_GE(old, 0);
  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != old) rest.push_back(i);
  }
  ASSERT_EQ(etcdctl(c.endpoint(old), {"put", "x", "before"}).exit_code, 0);
  writer w(c, rest);

  const auto cut_at = std::chrono::steady_clock::now();
  c.partition({old});
  const int next = wait_for_leader(c, rest, 10s);
  const auto elected_in = std::chrono::steady_clock::now() - cut_at;
  ASSERT_GE(next, 0);
  EXPECT_NE(next, old);
  EXPECT_LT(elected_in, 5 * std::chrono::milliseconds(cairn_cluster::election_ms) + 1s);
  ASSERT_EQ(etcdctl(c.endpoint(next), {"put", "x", "after"}).exit_code, 0);

  // The old leader: no stale linearizable read, no write; its own store still answers
  // serializable reads; it gives up leadership (check quorum).
  auto r = etcdctl(c.endpoint(old), {"get", "x", "--print-value-only"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out, "before\n");
  r = etcdctl(c.endpoint(old), {"put", "y", "1"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(etcdctl(c.endpoint(old), {"get", "x", "--print-value-only", "--consistency=s"}).out,
            "before\n");
  bool stepped_down = false;
  for (int attempt = 0; attempt < 50 && !stepped_down; ++attempt) {
    stepped_down = leader_seen_by(c.endpoint(old)) != member_id_of(c.endpoint(old));
    if (!stepped_down) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stepped_down);
  const std::size_t during = w.acked();
  std::this_thread::sleep_for(1s);
  EXPECT_GT(w.acked(), during) << "the majority stopped taking writes";

  c.heal();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  bool caught_up = false;
  for (int attempt = 0; attempt < 100 && !caught_up; ++attempt) {
    caught_up =
        etcdctl(c.endpoint(old), {"get", "x", "--print-value-only", "--consistency=s"}).out ==
        "after\n";
    if (!caught_up) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(caught_up) << c.proc(old).log();
  const auto acked = w.stop();
  EXPECT_GT(acked.size(), 0u);
  EXPECT_TRUE(converged(c, all_of(c), 10s));
  for (int i = 0; i < 3; ++i) expect_all_present(c, i, acked);
}

// Five members, the leader and one follower cut off from the other three: the three elect a
// leader and take writes through each of them, the two take none; healed, all five converge.
TEST_F(ClusterTest, FiveMembersSurviveAMinorityPartitionWithTheLeader) {
  cairn_cluster c(dir_.path(), 5);
  c.with_peer_proxies();
  c.start_all();
  const int old = wait_for_leader(c, all_of(c), 15s);
  ASSERT_GE(old, 0);
  const int buddy = (old + 1) % 5;
  std::vector<int> majority;
  for (int i = 0; i < 5; ++i) {
    if (i != old && i != buddy) majority.push_back(i);
  }
  auto list = etcdctl(c.endpoints(), {"member", "list"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 5) << list.out;
  writer w(c, majority);
  c.partition({old, buddy});
  const int next = wait_for_leader(c, majority, 10s);
  ASSERT_GE(next, 0);
  for (int i : {old, buddy}) {
    auto r = etcdctl(c.endpoint(i), {"put", "minority", "1"});
    EXPECT_NE(r.exit_code, 0) << c.name(i) << " took a write cut off from the majority";
  }
  const std::size_t during = w.acked();
  std::this_thread::sleep_for(1s);
  EXPECT_GT(w.acked(), during) << "the majority stopped taking writes";
  c.heal();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  const auto acked = w.stop();
  EXPECT_TRUE(converged(c, all_of(c), 15s));
  for (int i = 0; i < 5; ++i) expect_all_present(c, i, acked);
  // Every member answers Status. (Once, in a full parallel run, one member was missing from the
  // table right after convergence, undiagnosed: etcdctl's stderr now goes with the failure.)
  auto status = etcdctl(c.endpoints(), {"endpoint", "status", "--cluster", "-w", "table"});
  bool all = true;
  for (int i = 0; i < 5; ++i) all = all && status.out.find(c.endpoint(i)) != std::string::npos;
  if (!all) {
    ADD_FAILURE_AT(__FILE__, __LINE__) << "not every member answered Status:\n"
                                       << status.out << status.err;
  }
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(etcdctl(c.endpoint(buddy), {"get", "minority"}).out, "");
}

}  // namespace
}  // namespace cairn::e2e

namespace cairn::e2e {
namespace {

std::string scrape(const std::string& endpoint) {
  return run({"/usr/bin/curl", "-s", "http://" + endpoint + "/metrics"}).out;
}

// The value of one series in a scrape (-1 if absent).
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// etcd_network_peer_* on a live cluster: bytes both ways, the streams up, round trips probed
// (etcd's buckets); a member killed shows as inactive and disconnected on the others.
TEST_F(ClusterTest, PeerMetricsAreEtcds) {
  cairn_cluster c(dir_.path(), 3);
  c.start_all();
  ASSERT_GE(wait_for_leader(c, all_of(c), 10s), 0);
  ASSERT_EQ(etcdctl(c.endpoints(), {"put", "a", "1"}).exit_code, 0);
  std::ostringstream local, gone;
  local << std::hex << member_id_of(c.endpoint(0));
  gone << std::hex << member_id_of(c.endpoint(2));
  std::string text;
  for (int attempt = 0; attempt < 100; ++attempt) {
    text = scrape(c.endpoint(0));
    if (sample(text, "etcd_network_peer_round_trip_time_seconds_count{To=\"" + gone.str() + "\"}") >
        0) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(sample(text, "etcd_network_peer_sent_bytes_total{To=\"" + gone.str() + "\"}"), 0)
      << text;
  EXPECT_GT(sample(text, "etcd_network_peer_received_bytes_total{From=\"" + gone.str() + "\"}"), 0);
  EXPECT_EQ(sample(text, "etcd_network_active_peers{Local=\"" + local.str() + "\",Remote=\"" +
                             gone.str() + "\"}"),
            1);
  EXPECT_GT(
      sample(text, "etcd_network_peer_round_trip_time_seconds_count{To=\"" + gone.str() + "\"}"),
      0);
  EXPECT_GE(sample(text, "etcd_network_peer_round_trip_time_seconds_bucket{To=\"" + gone.str() +
                             "\",le=\"0.0001\"}"),
            0);
  EXPECT_GE(sample(text, "etcd_network_peer_round_trip_time_seconds_bucket{To=\"" + gone.str() +
                             "\",le=\"3.2768\"}"),
            1);

  c.kill(2);
  double active = 1;
  for (int attempt = 0; attempt < 100 && active != 0; ++attempt) {
    text = scrape(c.endpoint(0));
    active = sample(text, "etcd_network_active_peers{Local=\"" + local.str() + "\",Remote=\"" +
                              gone.str() + "\"}");
    if (active != 0) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(active, 0) << text;
  EXPECT_GE(sample(text, "etcd_network_disconnected_peers_total{Local=\"" + local.str() +
                             "\",Remote=\"" + gone.str() + "\"}"),
            1);
}

}  // namespace
}  // namespace cairn::e2e
