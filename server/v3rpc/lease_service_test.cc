// etcdserverpb.Lease of an in-process node through a real gRPC channel on 127.0.0.1: grant,
// revoke, the KeepAlive stream, TimeToLive with keys, Leases, etcd's errors and headers, and a
// KV Put carrying a lease.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "etcdserver/server.h"
#include "v3rpc/lease_service.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;

class LeaseServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-lease-svc-XXXXXX";
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
    lease_options lo;
    lo.election_timeout = 50ms;
    lo.leader = [this] { return leaderless_ ? std::uint64_t{0} : node_->leader(); };
    lease_ = std::make_unique<lease_service>(*node_, lo);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    kv_->register_on(b);
    b.RegisterService(lease_.get());
    server_ = b.BuildAndStart();
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    kv_stub_ = etcdserverpb::KV::NewStub(ch);
    stub_ = etcdserverpb::Lease::NewStub(ch);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
    if (kv_) kv_->stop();  // before the server is destroyed
    server_.reset();
    lease_->stop();
    node_.reset();
    std::filesystem::remove_all(dir_);
  }

  etcdserverpb::LeaseGrantResponse grant(std::int64_t ttl, std::int64_t id = 0) {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    req.set_id(id);
    etcdserverpb::LeaseGrantResponse resp;
    auto st = stub_->LeaseGrant(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  grpc::Status put(const std::string& k, std::int64_t lease) {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key(k);
    req.set_value("v");
    req.set_lease(lease);
    etcdserverpb::PutResponse resp;
    return kv_stub_->Put(&ctx, req, &resp);
  }
  etcdserverpb::LeaseTimeToLiveResponse ttl(std::int64_t id, bool keys) {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(keys);
    etcdserverpb::LeaseTimeToLiveResponse resp;
    auto st = stub_->LeaseTimeToLive(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  std::int64_t count(const std::string& prefix) {
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(mvcc::prefix_range_end(prefix));
    req.set_count_only(true);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(kv_stub_->Range(&ctx, req, &resp).ok());
    return resp.count();
  }

  std::atomic<bool> leaderless_{false};
  std::string dir_;
  std::unique_ptr<etcdserver::server> node_;
  std::unique_ptr<kv_service> kv_;
  std::unique_ptr<lease_service> lease_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_stub_;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
};

TEST_F(LeaseServiceTest, GrantRevokeTimeToLiveAndLeases) {
  auto g = grant(60);
  EXPECT_GT(g.id(), 0);
  EXPECT_EQ(g.ttl(), 60);
  EXPECT_EQ(g.header().member_id(), node_->member_id());
  EXPECT_EQ(g.header().cluster_id(), node_->cluster_id());
  EXPECT_EQ(g.header().revision(), 1);
  EXPECT_EQ(grant(0, 7).ttl(), 1);  // raised to the minimum

  ASSERT_TRUE(put("a", g.id()).ok());
  ASSERT_TRUE(put("b", g.id()).ok());
  auto bad = put("c", 12345);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bad.error_message(), "etcdserver: requested lease not found");

  auto t = ttl(g.id(), true);
  EXPECT_EQ(t.id(), g.id());
  EXPECT_EQ(t.grantedttl(), 60);
  EXPECT_GE(t.ttl(), 58);
  ASSERT_EQ(t.keys_size(), 2);
  EXPECT_EQ(t.keys(0), "a");
  EXPECT_EQ(t.keys(1), "b");
  EXPECT_EQ(ttl(g.id(), false).keys_size(), 0);
  auto missing = ttl(999, true);
  EXPECT_EQ(missing.ttl(), -1);
  EXPECT_EQ(missing.id(), 999);
  EXPECT_EQ(missing.header().revision(), 3);

  {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseLeasesResponse resp;
    ASSERT_TRUE(stub_->LeaseLeases(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.leases_size(), 2);
    EXPECT_EQ(resp.leases(0).id(), 7);  // expires first
    EXPECT_EQ(resp.leases(1).id(), g.id());
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(g.id());
    etcdserverpb::LeaseRevokeResponse resp;
    ASSERT_TRUE(stub_->LeaseRevoke(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.header().revision(), 4);  // both keys in one revision
    EXPECT_EQ(count("a"), 0);
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(g.id());
    etcdserverpb::LeaseRevokeResponse resp;
    auto st = stub_->LeaseRevoke(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), "etcdserver: requested lease not found");
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(9000000001);
    etcdserverpb::LeaseGrantResponse resp;
    auto st = stub_->LeaseGrant(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(st.error_message(), "etcdserver: too large lease TTL");
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(5);
    req.set_id(7);
    etcdserverpb::LeaseGrantResponse resp;
    auto st = stub_->LeaseGrant(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(), "etcdserver: lease already exists");
  }
}

// kube-apiserver's pattern: LeaseGrant, then Txn(If(mod == 0)).Then(Put(key, lease)); the key
// goes when the lease expires, with no keep-alive and no revoke.
TEST_F(LeaseServiceTest, KubeApiserverCreateWithLeaseExpires) {
  auto g = grant(1);
  auto create = [&](const std::string& key, std::int64_t lease) {
    grpc::ClientContext ctx;
    etcdserverpb::TxnRequest txn;
    auto* c = txn.add_compare();
    c->set_key(key);
    c->set_target(etcdserverpb::Compare::MOD);
    c->set_result(etcdserverpb::Compare::EQUAL);
    c->set_mod_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value("event");
    put->set_lease(lease);
    etcdserverpb::TxnResponse resp;
    return std::make_pair(kv_stub_->Txn(&ctx, txn, &resp), resp);
  };
  auto [st, resp] = create("/registry/events/a", g.id());
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.succeeded());
  auto [bad, bad_resp] = create("/registry/events/b", g.id() + 1);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bad.error_message(), "etcdserver: requested lease not found");
  EXPECT_EQ(count("/registry/events/"), 1);
  for (int i = 0; i < 300 && count("/registry/events/") > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(count("/registry/events/"), 0);
}

TEST_F(LeaseServiceTest, KeepAliveStreamKeepsKeysUntilItStops) {
  auto g = grant(1);
  ASSERT_TRUE(put("k/1", g.id()).ok());
  ASSERT_TRUE(put("k/2", g.id()).ok());
  grpc::ClientContext ctx;
  auto stream = stub_->LeaseKeepAlive(&ctx);
  for (int i = 0; i < 10; ++i) {
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(g.id());
    ASSERT_TRUE(stream->Write(req));
    etcdserverpb::LeaseKeepAliveResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.id(), g.id());
    EXPECT_EQ(resp.ttl(), 1);
    EXPECT_EQ(resp.header().member_id(), node_->member_id());
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(count("k/"), 2);
  // An unknown lease answers TTL 0 and the stream goes on.
  etcdserverpb::LeaseKeepAliveRequest unknown;
  unknown.set_id(424242);
  ASSERT_TRUE(stream->Write(unknown));
  etcdserverpb::LeaseKeepAliveResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.id(), 424242);
  EXPECT_EQ(resp.ttl(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // Without renewals the lease expires and both keys go.
  for (int i = 0; i < 300 && count("k/") > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(count("k/"), 0);
  EXPECT_EQ(ttl(g.id(), false).ttl(), -1);
}

// etcd ends a `hasleader` KeepAlive stream after 3 election timeouts without a leader; a
// stream without the metadata goes on.
TEST_F(LeaseServiceTest, HasLeaderKeepAliveStreamsEndWithoutALeader) {
  auto g = grant(60);
  grpc::ClientContext with_ctx, without_ctx;
  with_ctx.AddMetadata("hasleader", "true");
  // A bound, so that a server that never ends the stream fails the test instead of hanging it.
  with_ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto with = stub_->LeaseKeepAlive(&with_ctx);
  auto without = stub_->LeaseKeepAlive(&without_ctx);
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(g.id());
  etcdserverpb::LeaseKeepAliveResponse resp;
  for (auto* s : {with.get(), without.get()}) {
    ASSERT_TRUE(s->Write(req));
    ASSERT_TRUE(s->Read(&resp));
    EXPECT_EQ(resp.ttl(), 60);
  }
  // A leader the whole time: both go on past several monitor periods.
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(with->Write(req));
  ASSERT_TRUE(with->Read(&resp));
  leaderless_ = true;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(with->Read(&resp));  // ended by the server
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 100ms);  // not at once: 3 periods of 50 ms
  auto st = with->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "etcdserver: no leader");
  // The other stream still answers (the node itself still renews).
  ASSERT_TRUE(without->Write(req));
  ASSERT_TRUE(without->Read(&resp));
  EXPECT_EQ(resp.ttl(), 60);
  without->WritesDone();
  EXPECT_TRUE(without->Finish().ok());
}

}  // namespace
}  // namespace cairn::v3rpc
