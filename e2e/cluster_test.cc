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
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
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
