// v3lockpb.Lock and v3electionpb.Election of an in-process node through a real gRPC channel:
// uncontended and contended locks, waiting in creation order, a waiter whose lease expires
// (etcd #11456), a client that gives up, unknown leases; campaigns, proclaim, leader, observe,
// resign and their errors.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "etcdserver/server.h"
#include "v3rpc/lease_service.h"
#include "v3rpc/lock_election.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;

class LockElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-lock-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    etcdserver::server_config cfg;
    cfg.name = "m";
    cfg.data_dir = dir_ + "/data";
    cfg.initial_cluster = "m=http://127.0.0.1:2380";
    cfg.heartbeat = 10ms;
    cfg.election = 100ms;  // minimum TTL 1 s
    cfg.lease_loop_interval = 20ms;
    auto n = etcdserver::server::start(cfg);
    ASSERT_TRUE(n) << n.error().message;
    node_ = std::move(*n);
    kv_ = std::make_unique<kv_service>(*node_, service_options{});
    lease_ = std::make_unique<lease_service>(*node_);
    lock_ = std::make_unique<lock_service>(*node_);
    election_ = std::make_unique<election_service>(*node_);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    kv_->register_on(b);
    b.RegisterService(lease_.get());
    b.RegisterService(lock_.get());
    b.RegisterService(election_.get());
    server_ = b.BuildAndStart();
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    kv_stub_ = etcdserverpb::KV::NewStub(ch);
    lease_stub_ = etcdserverpb::Lease::NewStub(ch);
    lock_stub_ = v3lockpb::Lock::NewStub(ch);
    election_stub_ = v3electionpb::Election::NewStub(ch);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
    if (kv_) kv_->stop();  // before the server is destroyed
    server_.reset();
    lease_->stop();
    node_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::int64_t grant(std::int64_t ttl) {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    EXPECT_TRUE(lease_stub_->LeaseGrant(&ctx, req, &resp).ok());
    return resp.id();
  }
  void revoke(std::int64_t id) {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    etcdserverpb::LeaseRevokeResponse resp;
    EXPECT_TRUE(lease_stub_->LeaseRevoke(&ctx, req, &resp).ok());
  }
  std::pair<grpc::Status, v3lockpb::LockResponse> lock(const std::string& name, std::int64_t lease,
                                                       std::chrono::milliseconds deadline = 10s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    v3lockpb::LockRequest req;
    req.set_name(name);
    req.set_lease(lease);
    v3lockpb::LockResponse resp;
    auto st = lock_stub_->Lock(&ctx, req, &resp);
    return {st, resp};
  }
  grpc::Status unlock(const std::string& key) {
    grpc::ClientContext ctx;
    v3lockpb::UnlockRequest req;
    req.set_key(key);
    v3lockpb::UnlockResponse resp;
    return lock_stub_->Unlock(&ctx, req, &resp);
  }
  std::vector<std::string> keys(const std::string& prefix) {
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(mvcc::prefix_range_end(prefix));
    req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(kv_stub_->Range(&ctx, req, &resp).ok());
    std::vector<std::string> out;
    for (const auto& kv : resp.kvs()) out.push_back(kv.key());
    return out;
  }
  std::pair<grpc::Status, v3electionpb::CampaignResponse> campaign(
      const std::string& name, std::int64_t lease, const std::string& value,
      std::chrono::milliseconds deadline = 10s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    v3electionpb::CampaignRequest req;
    req.set_name(name);
    req.set_lease(lease);
    req.set_value(value);
    v3electionpb::CampaignResponse resp;
    auto st = election_stub_->Campaign(&ctx, req, &resp);
    return {st, resp};
  }
  std::pair<grpc::Status, v3electionpb::LeaderResponse> leader(const std::string& name) {
    grpc::ClientContext ctx;
    v3electionpb::LeaderRequest req;
    req.set_name(name);
    v3electionpb::LeaderResponse resp;
    auto st = election_stub_->Leader(&ctx, req, &resp);
    return {st, resp};
  }
  grpc::Status proclaim(const v3electionpb::LeaderKey& l, const std::string& value) {
    grpc::ClientContext ctx;
    v3electionpb::ProclaimRequest req;
    *req.mutable_leader() = l;
    req.set_value(value);
    v3electionpb::ProclaimResponse resp;
    return election_stub_->Proclaim(&ctx, req, &resp);
  }
  grpc::Status resign(const v3electionpb::LeaderKey& l) {
    grpc::ClientContext ctx;
    v3electionpb::ResignRequest req;
    *req.mutable_leader() = l;
    v3electionpb::ResignResponse resp;
    return election_stub_->Resign(&ctx, req, &resp);
  }

  std::string dir_;
  std::unique_ptr<etcdserver::server> node_;
  std::unique_ptr<kv_service> kv_;
  std::unique_ptr<lease_service> lease_;
  std::unique_ptr<lock_service> lock_;
  std::unique_ptr<election_service> election_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_stub_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_stub_;
  std::unique_ptr<v3lockpb::Lock::Stub> lock_stub_;
  std::unique_ptr<v3electionpb::Election::Stub> election_stub_;
};

std::string hex(std::int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lx", static_cast<unsigned long>(v));
  return buf;
}

TEST_F(LockElectionTest, UncontendedLockIsTheLeaseKeyAndUnlockDeletesIt) {
  const auto l = grant(60);
  auto [st, resp] = lock("mylock", l);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.key(), "mylock/" + hex(l));
  EXPECT_EQ(resp.header().revision(), 2);  // the put of the key
  EXPECT_EQ(resp.header().member_id(), node_->member_id());
  EXPECT_EQ(keys("mylock/"), std::vector<std::string>{resp.key()});
  // Locking again with the same lease reuses the key (and holds at once).
  auto [again, again_resp] = lock("mylock", l);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again_resp.key(), resp.key());
  EXPECT_EQ(again_resp.header().revision(), 2);
  ASSERT_TRUE(unlock(resp.key()).ok());
  EXPECT_TRUE(keys("mylock/").empty());
}

TEST_F(LockElectionTest, WaitersGetTheLockInCreationOrder) {
  const auto a = grant(60), b = grant(60), c = grant(60);
  auto [st, held] = lock("q", a);
  ASSERT_TRUE(st.ok());
  auto second = std::async(std::launch::async, [&] { return lock("q", b); });
  while (keys("q/").size() < 2) std::this_thread::sleep_for(5ms);
  auto third = std::async(std::launch::async, [&] { return lock("q", c); });
  while (keys("q/").size() < 3) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(second.wait_for(300ms), std::future_status::timeout);
  EXPECT_EQ(third.wait_for(0ms), std::future_status::timeout);
  ASSERT_TRUE(unlock(held.key()).ok());
  auto [st2, r2] = second.get();
  ASSERT_TRUE(st2.ok()) << st2.error_message();
  EXPECT_EQ(r2.key(), "q/" + hex(b));
  EXPECT_EQ(third.wait_for(300ms), std::future_status::timeout);
  // The holder's lease goes: its key goes with it, and the next waiter holds.
  revoke(b);
  auto [st3, r3] = third.get();
  ASSERT_TRUE(st3.ok()) << st3.error_message();
  EXPECT_EQ(r3.key(), "q/" + hex(c));
}

// etcd #11456: a waiter whose lease expires while it waits must not be handed the lock.
TEST_F(LockElectionTest, AWaiterWhoseLeaseExpiredIsNotGrantedTheLock) {
  const auto holder = grant(60);
  const auto waiter = grant(1);
  auto [st, held] = lock("fence", holder);
  ASSERT_TRUE(st.ok());
  auto waiting = std::async(std::launch::async, [&] { return lock("fence", waiter); });
  // The waiter's key goes with its lease; the waiter keeps waiting for the holder.
  while (keys("fence/").size() < 2) std::this_thread::sleep_for(5ms);
  while (keys("fence/").size() > 1) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(waiting.wait_for(100ms), std::future_status::timeout);
  ASSERT_TRUE(unlock(held.key()).ok());
  auto [wst, wresp] = waiting.get();
  EXPECT_EQ(wst.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(wst.error_message(), "mutex: session is expired");
  EXPECT_TRUE(keys("fence/").empty());
}

TEST_F(LockElectionTest, AWaiterThatGivesUpTakesItsKeyAway) {
  const auto a = grant(60), b = grant(60);
  auto [st, held] = lock("gu", a);
  ASSERT_TRUE(st.ok());
  auto [wst, wresp] = lock("gu", b, 300ms);
  EXPECT_EQ(wst.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (int i = 0; i < 100 && keys("gu/").size() > 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(keys("gu/"), std::vector<std::string>{held.key()});
}

TEST_F(LockElectionTest, LockErrors) {
  auto [st, resp] = lock("x", 0x1234);
  // etcd sends KV errors from its recipes with code Unknown.
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(st.error_message(), "etcdserver: requested lease not found");
  EXPECT_TRUE(keys("x/").empty());
  auto empty = unlock("");
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(empty.error_message(), "etcdserver: key is not provided");
  // Lease 0: the server grants one (60 s, as etcd's session default).
  auto [st0, r0] = lock("zero", 0);
  ASSERT_TRUE(st0.ok()) << st0.error_message();
  ASSERT_TRUE(r0.key().starts_with("zero/"));
  const auto id = static_cast<std::int64_t>(std::stoull(r0.key().substr(5), nullptr, 16));
  grpc::ClientContext ctx;
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(lease_stub_->LeaseTimeToLive(&ctx, req, &ttl).ok());
  EXPECT_EQ(ttl.grantedttl(), 60);
}

TEST_F(LockElectionTest, CampaignLeaderProclaimResign) {
  auto [none, none_resp] = leader("e");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(none.error_message(), "election: no leader");

  const auto a = grant(60), b = grant(60);
  auto [st, won] = campaign("e", a, "alpha");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(won.leader().name(), "e");
  EXPECT_EQ(won.leader().key(), "e/" + hex(a));
  EXPECT_EQ(won.leader().rev(), 2);
  EXPECT_EQ(won.leader().lease(), a);
  EXPECT_EQ(won.header().revision(), 2);
  auto [lst, l] = leader("e");
  ASSERT_TRUE(lst.ok());
  EXPECT_EQ(l.kv().key(), won.leader().key());
  EXPECT_EQ(l.kv().value(), "alpha");
  EXPECT_EQ(l.kv().lease(), a);

  auto second = std::async(std::launch::async, [&] { return campaign("e", b, "beta"); });
  while (keys("e/").size() < 2) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(second.wait_for(200ms), std::future_status::timeout);

  ASSERT_TRUE(proclaim(won.leader(), "alpha2").ok());
  EXPECT_EQ(leader("e").second.kv().value(), "alpha2");
  // A stale leader key (another create revision) cannot proclaim or resign.
  v3electionpb::LeaderKey stale = won.leader();
  stale.set_rev(1);
  auto p = proclaim(stale, "nope");
  EXPECT_EQ(p.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(p.error_message(), "election: not leader");
  ASSERT_TRUE(resign(stale).ok());
  EXPECT_EQ(keys("e/").size(), 2u);

  ASSERT_TRUE(resign(won.leader()).ok());
  auto [st2, won2] = second.get();
  ASSERT_TRUE(st2.ok()) << st2.error_message();
  EXPECT_EQ(won2.leader().key(), "e/" + hex(b));
  EXPECT_EQ(leader("e").second.kv().value(), "beta");

  grpc::ClientContext ctx;
  v3electionpb::ProclaimRequest no_leader;
  v3electionpb::ProclaimResponse resp;
  auto missing = election_stub_->Proclaim(&ctx, no_leader, &resp);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(missing.error_message(), "\"leader\" field must be provided");
}

TEST_F(LockElectionTest, CampaignAgainWithANewValueProclaimsIt) {
  const auto a = grant(60);
  ASSERT_TRUE(campaign("r", a, "one").first.ok());
  auto [st, again] = campaign("r", a, "two");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(again.leader().rev(), 2);  // the same key, from its first campaign
  EXPECT_EQ(leader("r").second.kv().value(), "two");
}

TEST_F(LockElectionTest, ObserveFollowsProclamationsAndSuccessiveLeaders) {
  grpc::ClientContext ctx;
  v3electionpb::LeaderRequest req;
  req.set_name("obs");
  auto stream = election_stub_->Observe(&ctx, req);
  std::vector<std::pair<std::string, std::int64_t>> seen;
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    v3electionpb::LeaderResponse r;
    while (stream->Read(&r)) seen.emplace_back(r.kv().value(), r.header().revision());
    reading = false;
  });
  const auto a = grant(60), b = grant(60);
  auto [st, won] = campaign("obs", a, "v1");  // revision 2
  ASSERT_TRUE(st.ok());
  auto second = std::async(std::launch::async, [&] { return campaign("obs", b, "w1"); });
  while (keys("obs/").size() < 2) std::this_thread::sleep_for(5ms);  // revision 3
  ASSERT_TRUE(proclaim(won.leader(), "v2").ok());                    // revision 4
  ASSERT_TRUE(resign(won.leader()).ok());                            // revision 5
  ASSERT_TRUE(second.get().first.ok());
  for (int i = 0; i < 200 && seen.size() < 3; ++i) std::this_thread::sleep_for(10ms);
  ctx.TryCancel();
  reader.join();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, "v1");
  EXPECT_GE(seen[0].second, 2);
  EXPECT_EQ(seen[1].first, "v2");
  EXPECT_EQ(seen[1].second, 4);
  EXPECT_EQ(seen[2].first, "w1");
  EXPECT_FALSE(reading);
}

}  // namespace
}  // namespace cairn::v3rpc
