// Leases through an in-process node: grant, attach, expiry and revoke (keys deleted in one
// revision), keep-alive, restart with keys and remaining TTLs, checkpoints.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
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

// Three members in one process, their raft messages handed over in memory. A member marked
// stalled blocks in send(), which its raft loop calls: the loop stops (no tick, no step, no
// Ready) while its lease loop runs on, as when etcd's raft goroutine waits on a stuck disk.
class router {
 public:
  class link final : public transport {
   public:
    link(router& r, std::uint64_t& self) : r_(r), self_(self) {}
    void send(std::vector<raftpb::Message> msgs) override {
      std::unique_lock lock(r_.mu_);
      r_.cv_.wait(lock, [&] { return r_.closing_ || !r_.stalled_.contains(self_); });
      for (auto& m : msgs) {
        // Under the router's lock, so a member being torn down gets nothing more.
        if (auto it = r_.members_.find(m.to()); it != r_.members_.end()) it->second->step(m);
      }
    }
    cairn::expected<std::int64_t, base::errc> lease_renew(std::uint64_t leader,
                                                          std::int64_t id) override {
      server* s = r_.member(leader);
      if (s == nullptr) return cairn::unexpected(base::errc::no_leader);
      return s->lease_renew(id);
    }
    cairn::expected<std::optional<lease::lease_status>, base::errc> lease_time_to_live(
        std::uint64_t leader, std::int64_t id, bool keys) override {
      server* s = r_.member(leader);
      if (s == nullptr) return cairn::unexpected(base::errc::no_leader);
      return s->lease_time_to_live(id, keys);
    }
    cairn::expected<peer_hash, base::errc> hash_kv(std::uint64_t, std::int64_t) override {
      return cairn::unexpected(base::errc::timeout);
    }
    std::optional<std::chrono::steady_clock::time_point> active_since(std::uint64_t) override {
      return std::chrono::steady_clock::now() - 1h;
    }
    cairn::expected<void, base::errc> promote_on_leader(std::uint64_t, std::uint64_t) override {
      return cairn::unexpected(base::errc::timeout);
    }

   private:
    router& r_;
    std::uint64_t& self_;
  };

  void add(server& s) {
    std::lock_guard lock(mu_);
    members_[s.member_id()] = &s;
  }
  server* member(std::uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = members_.find(id);
    return it == members_.end() ? nullptr : it->second;
  }
  void stall(std::uint64_t id) {
    std::lock_guard lock(mu_);
    stalled_.insert(id);
  }
  void resume(std::uint64_t id) {
    {
      std::lock_guard lock(mu_);
      stalled_.erase(id);
    }
    cv_.notify_all();
  }
  // Before the members are destroyed: nothing blocks or is delivered any more.
  void close() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      members_.clear();
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closing_ = false;
  std::map<std::uint64_t, server*> members_;
  std::set<std::uint64_t> stalled_;
};

class StalledLeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-stall-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (int i = 0; i < 3; ++i) {
      ids_[i] = 0;
      links_[i] = std::make_unique<router::link>(router_, ids_[i]);
      server_config cfg;
      cfg.name = "n" + std::to_string(i + 1);
      cfg.data_dir = dir_ + "/" + cfg.name;
      cfg.initial_cluster = "n1=http://127.0.0.1:1,n2=http://127.0.0.1:2,n3=http://127.0.0.1:3";
      cfg.advertise_peer_urls = {"http://127.0.0.1:" + std::to_string(i + 1)};
      cfg.heartbeat = 10ms;
      cfg.election = 100ms;  // minimum TTL: 1 s
      cfg.lease_loop_interval = 20ms;
      cfg.peers = links_[i].get();
      auto s = server::start(cfg);
      ASSERT_TRUE(s.has_value()) << s.error().message;
      srv_[i] = std::move(*s);
      ids_[i] = srv_[i]->member_id();
      router_.add(*srv_[i]);
    }
  }
  void TearDown() override {
    router_.close();
    for (auto& s : srv_) s.reset();
    std::filesystem::remove_all(dir_);
  }
  // The member every other one (not in `except`) agrees leads, or -1 after `limit`.
  int leader(std::chrono::milliseconds limit, int except = -1) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      std::set<std::uint64_t> seen;
      for (int i = 0; i < 3; ++i) {
        if (i != except) seen.insert(srv_[i]->leader());
      }
      if (seen.size() == 1 && *seen.begin() != 0) {
        for (int i = 0; i < 3; ++i) {
          if (ids_[i] == *seen.begin() && i != except) return i;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  std::string dir_;
  router router_;
  std::uint64_t ids_[3] = {};
  std::unique_ptr<router::link> links_[3];
  std::unique_ptr<server> srv_[3];
};

// etcd #15247: a leader whose raft loop stalls past a lease's TTL still believes it leads, and
// its lessor sees the lease expire that the new leader keeps alive. Its revoke, proposed while
// stalled, would be forwarded to the new leader once the loop wakes as a follower, and
// committed. The lease loop must first prove that it still leads.
TEST_F(StalledLeaderTest, AStalledOldLeaderDoesNotRevokeALeaseTheNewLeaderKeepsAlive) {
  const int old = leader(10s);
  ASSERT_GE(old, 0);
  auto g = srv_[old]->lease_grant(0, 1);
  ASSERT_TRUE(g.has_value());
  mvcc::put_request p;
  p.key = "held";
  p.value = "x";
  p.lease = g->id;
  ASSERT_TRUE(srv_[old]->put(p).has_value());

  router_.stall(ids_[old]);
  // Keep the lease alive on whichever of the others leads, for 3 TTLs of the stall.
  int now = -1;
  auto keep_alive = [&](std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < 3; ++i) {
        if (i != old && srv_[i]->lease_renew(g->id).has_value()) now = i;
      }
      std::this_thread::sleep_for(100ms);
    }
  };
  keep_alive(3s);
  ASSERT_GE(now, 0) << "no new leader kept the lease alive";
  // The old leader's lessor still counts itself primary, and the lease ran out on its clock.
  EXPECT_TRUE(srv_[old]->lessor().is_primary());
  const auto changes = srv_[old]->stats().leader_changes.load();
  router_.resume(ids_[old]);
  keep_alive(1500ms);
  // It follows the new leader once, and stays: the ticks it missed while stalled are dropped,
  // not caught up in a burst that would run out its election timeout and make it campaign.
  EXPECT_EQ(srv_[old]->stats().leader_changes.load(), changes + 1);

  const int current = leader(5s);
  ASSERT_GE(current, 0);
  EXPECT_NE(current, old);
  auto ttl = srv_[current]->lease_time_to_live(g->id, true);
  ASSERT_TRUE(ttl.has_value()) << "the stalled old leader revoked the lease";
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"held"});
  mvcc::range_request r;
  r.key = "held";
  auto res = srv_[old]->range(r);  // linearizable, through the new leader
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->kvs.size(), 1u);
}

}  // namespace
}  // namespace cairn::etcdserver
