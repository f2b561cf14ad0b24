// Leases through an in-process node: grant, attach, expiry and revoke (keys deleted in one
// revision), keep-alive, restart with keys and remaining TTLs, checkpoints.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "etcdserver/server.h"

namespace cairn::etcdserver {
namespace {

using namespace std::chrono_literals;

class LeaseServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-lease-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cfg_.data_dir = dir_ + "/data";
    cfg_.name = "n1";
    cfg_.initial_cluster = "n1=http://127.0.0.1:1";
    cfg_.heartbeat = 10ms;
    cfg_.election = 100ms;  // minimum TTL: 1 s
    cfg_.lease_loop_interval = 20ms;
  }
  void TearDown() override {
    srv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start() {
    auto s = server::start(cfg_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    srv_ = std::move(*s);
  }
  void restart() {
    srv_.reset();
    start();
  }
  std::int64_t grant(std::int64_t ttl, std::int64_t id = 0) {
    auto g = srv_->lease_grant(id, ttl);
    EXPECT_TRUE(g.has_value()) << (g ? "" : base::message(g.error()));
    return g ? g->id : 0;
  }
  std::int64_t put(const std::string& k, std::int64_t lease) {
    mvcc::put_request p;
    p.key = k;
    p.value = "v";
    p.lease = lease;
    auto r = srv_->put(p);
    EXPECT_TRUE(r.has_value()) << (r ? "" : base::message(r.error()));
    return r ? r->revision : 0;
  }
  std::vector<std::string> keys(std::int64_t at = 0) {
    mvcc::range_request r;
    r.key = std::string(1, '\0');
    r.range_end = std::string(1, '\0');
    r.revision = at;
    auto res = srv_->range(r, true);
    EXPECT_TRUE(res.has_value());
    std::vector<std::string> out;
    if (res) {
      for (const auto& kv : res->kvs) out.push_back(kv.key);
    }
    return out;
  }
  bool wait_gone(std::int64_t lease, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!srv_->lease_time_to_live(lease, false)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::string dir_;
  server_config cfg_;
  std::unique_ptr<server> srv_;
};

TEST_F(LeaseServerTest, GrantChecksAndChoosesIds) {
  start();
  auto g = srv_->lease_grant(0, 0);
  ASSERT_TRUE(g.has_value());
  EXPECT_GT(g->id, 0);
  EXPECT_EQ(g->ttl, 1);  // raised to the minimum
  auto h = srv_->lease_grant(0, 60);
  ASSERT_TRUE(h.has_value());
  EXPECT_NE(h->id, g->id);
  EXPECT_EQ(srv_->lease_grant(g->id, 5).error(), base::errc::lease_exist);
  EXPECT_EQ(srv_->lease_grant(0, 9000000001).error(), base::errc::lease_ttl_too_large);
  EXPECT_EQ(grant(30, 42), 42);
  auto ttl = srv_->lease_time_to_live(42, false);
  ASSERT_TRUE(ttl.has_value());
  EXPECT_EQ(ttl->granted_ttl, 30);
  EXPECT_EQ(ttl->ttl, 29);  // counted down and truncated, as etcd answers
  EXPECT_EQ(srv_->lease_ids().size(), 3u);
  EXPECT_EQ(srv_->lease_ids().front(), g->id);  // soonest expiry first
}

TEST_F(LeaseServerTest, PutChecksTheLeaseAndAttaches) {
  start();
  auto id = grant(60);
  mvcc::put_request p;
  p.key = "k";
  p.lease = id + 1;
  EXPECT_EQ(srv_->put(p).error(), base::errc::lease_not_found);
  mvcc::txn_request t;
  t.success.push_back({p});
  EXPECT_EQ(srv_->txn(t).error(), base::errc::lease_not_found);
  put("a", id);
  put("b", id);
  put("b", 0);  // detached
  t.success[0].op = mvcc::put_request{"c", "v", id};
  ASSERT_TRUE(srv_->txn(t).has_value());
  EXPECT_EQ(srv_->lease_time_to_live(id, true)->keys, (std::vector<std::string>{"a", "c"}));
  ASSERT_TRUE(srv_->delete_range({"a"}).has_value());
  EXPECT_EQ(srv_->lease_time_to_live(id, true)->keys, std::vector<std::string>{"c"});
}

TEST_F(LeaseServerTest, RevokeDeletesKeysInOneRevision) {
  start();
  auto id = grant(60);
  put("a", id);
  put("b", id);
  put("c", id);
  auto before = put("keep", 0);
  auto rev = srv_->lease_revoke(id);
  ASSERT_TRUE(rev.has_value());
  EXPECT_EQ(*rev, before + 1);
  EXPECT_EQ(srv_->store().rev(), before + 1);
  EXPECT_EQ(keys(), std::vector<std::string>{"keep"});
  EXPECT_FALSE(srv_->lease_time_to_live(id, false).has_value());
  EXPECT_EQ(srv_->lease_revoke(id).error(), base::errc::lease_not_found);
  // A lease without keys takes no revision.
  auto empty = grant(60);
  EXPECT_EQ(srv_->lease_revoke(empty).value(), before + 1);
}

TEST_F(LeaseServerTest, ExpiryDeletesKeysAtomically) {
  start();
  auto id = grant(1);
  put("x/1", id);
  put("x/2", id);
  put("x/3", id);
  auto before = put("y", 0);
  ASSERT_TRUE(wait_gone(id, 5s));
  // The lease loop's revoke: one revision, all three keys.
  for (int i = 0; i < 100 && srv_->store().rev() == before; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(srv_->store().rev(), before + 1);
  EXPECT_EQ(keys(before + 1), std::vector<std::string>{"y"});
  EXPECT_EQ(keys(before).size(), 4u);
}

TEST_F(LeaseServerTest, KeepAliveKeepsTheLeaseAlive) {
  start();
  auto id = grant(1);
  put("k", id);
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(200ms);
    auto r = srv_->lease_renew(id);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(*r, 1);
  }
  EXPECT_EQ(keys(), std::vector<std::string>{"k"});
  ASSERT_TRUE(wait_gone(id, 5s));
  EXPECT_EQ(srv_->lease_renew(id).error(), base::errc::lease_not_found);
  for (int i = 0; i < 100 && !keys().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(keys().empty());
}

TEST_F(LeaseServerTest, RestartKeepsLeasesAndTheirKeys) {
  start();
  auto id = grant(100);
  auto other = grant(100);
  put("a", id);
  put("b", id);
  put("c", other);
  ASSERT_TRUE(srv_->lease_revoke(other).has_value());
  restart();
  auto ttl = srv_->lease_time_to_live(id, true);
  ASSERT_TRUE(ttl.has_value());
  EXPECT_EQ(ttl->granted_ttl, 100);
  EXPECT_EQ(ttl->keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(srv_->lease_time_to_live(other, false).has_value());
  // The rebuilt attachments are what a revoke deletes.
  ASSERT_TRUE(srv_->lease_revoke(id).has_value());
  EXPECT_TRUE(keys().empty());
  restart();
  EXPECT_TRUE(srv_->lease_ids().empty());
}

// A crash loses the backend's open batch; the WAL replays grants, puts and revokes exactly once.
TEST_F(LeaseServerTest, CrashReplaysLeaseEntries) {
  cfg_.backend_batch_interval = 1h;  // nothing reaches the db file before the crash
  start();
  auto kept = grant(100);
  auto gone = grant(100);
  put("a", kept);
  put("b", gone);
  put("c", gone);
  ASSERT_TRUE(srv_->lease_revoke(gone).has_value());
  auto rev = srv_->store().rev();
  srv_->simulate_crash();
  srv_.reset();
  start();
  // A linearizable read waits until the replayed entries are applied.
  ASSERT_TRUE(srv_->range({"a"}).has_value());
  EXPECT_EQ(srv_->store().rev(), rev);
  EXPECT_EQ(keys(), std::vector<std::string>{"a"});
  EXPECT_FALSE(srv_->lease_time_to_live(gone, false).has_value());
  auto ttl = srv_->lease_time_to_live(kept, true);
  ASSERT_TRUE(ttl.has_value());
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"a"});
  EXPECT_EQ(srv_->lease_ids().size(), 1u);
}

TEST_F(LeaseServerTest, RestartKeepsRemainingTtl) {
  cfg_.lease_checkpoint = true;
  cfg_.lease_checkpoint_persist = true;
  cfg_.lease_checkpoint_interval = 500ms;
  start();
  auto id = grant(30);
  std::this_thread::sleep_for(3s);
  restart();
  auto ttl = srv_->lease_time_to_live(id, false);
  ASSERT_TRUE(ttl.has_value());
  // Checkpointed at 27 or 28 s left (every 0.5 s, rounded up); the new leader adds the election
  // timeout (0.1 s). Without the checkpoint it would be 30.
  EXPECT_LE(ttl->ttl, 28);
  EXPECT_GE(ttl->ttl, 25);
  // A renewal forgets the checkpoint, here and on disk.
  ASSERT_TRUE(srv_->lease_renew(id).has_value());
  std::this_thread::sleep_for(200ms);
  restart();
  EXPECT_GE(srv_->lease_time_to_live(id, false)->ttl, 28);
}

TEST_F(LeaseServerTest, WithoutPersistenceRestartResetsTtlAsEtcd) {
  cfg_.lease_checkpoint = true;
  cfg_.lease_checkpoint_interval = 500ms;
  start();
  auto id = grant(30);
  std::this_thread::sleep_for(1500ms);
  EXPECT_LE(srv_->lease_time_to_live(id, false)->ttl, 28);
  restart();
  EXPECT_GE(srv_->lease_time_to_live(id, false)->ttl, 29);  // 30 s + 0.1 s, counting down
}

}  // namespace
}  // namespace cairn::etcdserver
