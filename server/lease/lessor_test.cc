#include "lease/lessor.h"

#include <gtest/gtest.h>

#include <map>

#include "mvcc/testing.h"

namespace cairn::lease {
namespace {

using namespace std::chrono_literals;
using mvcc::testing::db;
using mvcc::testing::temp_dir;

// A clock that moves only when told.
struct fake_clock {
  clock::time_point t = clock::time_point{} + 1000h;
  clock_fn fn() {
    return [this] { return t; };
  }
};

class LessorTest : public ::testing::Test {
 protected:
  LessorTest() { reopen(); }

  lessor_config config() {
    lessor_config c;
    c.min_ttl = 2;
    c.now = clk.fn();
    c.checkpoint = with_checkpoint;
    c.checkpoint_persist = with_persist;
    c.checkpoint_interval = 5s;
    return c;
  }
  // A new lessor over the same database, as after a restart (secondary until promoted).
  void reopen() {
    if (d.st) d.st->set_lease_hook(nullptr);
    le.reset();
    d.be->force_commit();
    le = std::make_unique<lessor>(d.be.get(), config());
    le->recover();
    d.st->set_lease_hook(le.get());
  }
  lease_status grant(std::int64_t id, std::int64_t ttl) {
    auto r = le->grant(lease_id{id}, ttl);
    EXPECT_TRUE(r) << (r ? "" : base::message(r.error()));
    return r ? *r : lease_status{};
  }
  std::int64_t ttl_of(std::int64_t id) { return le->time_to_live(lease_id{id}, false)->ttl; }

  fake_clock clk;
  bool with_checkpoint = false;
  bool with_persist = false;
  temp_dir dir;
  db d{dir};
  std::unique_ptr<lessor> le;
};

TEST(LessorMinTtl, IsOneAndAHalfElectionTimeoutsRoundedUp) {
  EXPECT_EQ(min_ttl_seconds(1000ms, 100ms), 2);   // etcd's defaults: 15 ticks × 100 ms = 1.5 s
  EXPECT_EQ(min_ttl_seconds(5000ms, 100ms), 8);   // 7.5 s
  EXPECT_EQ(min_ttl_seconds(100ms, 10ms), 1);     // 0.15 s
  EXPECT_EQ(min_ttl_seconds(3000ms, 1000ms), 4);  // (3 × 3) / 2 = 4 whole ticks of 1 s
}

TEST_F(LessorTest, GrantRaisesToMinimumAndChecksBounds) {
  EXPECT_EQ(grant(1, 1).granted_ttl, 2);
  EXPECT_EQ(grant(2, 100).granted_ttl, 100);
  EXPECT_EQ(le->grant(lease_id{2}, 5).error(), base::errc::lease_exist);
  EXPECT_EQ(le->grant(lease_id{3}, max_ttl_seconds + 1).error(), base::errc::lease_ttl_too_large);
  EXPECT_TRUE(le->grant(lease_id{3}, max_ttl_seconds));
  EXPECT_EQ(le->grant(lease_id{0}, 5).error(), base::errc::lease_not_found);
  EXPECT_EQ(le->revoke(lease_id{42}).error(), base::errc::lease_not_found);
}

TEST_F(LessorTest, SecondaryNeverExpiresPrimaryDoes) {
  grant(1, 10);
  EXPECT_EQ(ttl_of(1), 9223372036);
  clk.t += 1h;
  EXPECT_TRUE(le->expired(10).empty());
  EXPECT_EQ(le->renew(lease_id{1}).error(), base::errc::not_leader);
  le->promote(1s);
  EXPECT_EQ(ttl_of(1), 11);
  clk.t += 10500ms;
  EXPECT_EQ(ttl_of(1), 0);  // 0.5 s left, truncated as etcd does
  EXPECT_TRUE(le->expired(10).empty());
  clk.t += 500ms;
  EXPECT_EQ(le->expired(10), std::vector<lease_id>{lease_id{1}});
  // Reported once per retry interval.
  EXPECT_TRUE(le->expired(10).empty());
  clk.t += 3s;
  EXPECT_EQ(le->expired(10), std::vector<lease_id>{lease_id{1}});
  // An expired lease cannot be renewed.
  EXPECT_EQ(le->renew(lease_id{1}).error(), base::errc::lease_not_found);
  le->demote();
  EXPECT_TRUE(le->expired(10).empty());
}

TEST_F(LessorTest, RenewRestartsTheTtl) {
  le->promote(0ms);
  grant(1, 10);
  clk.t += 9s;
  EXPECT_EQ(ttl_of(1), 1);
  auto r = le->renew(lease_id{1});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ttl, 10);
  EXPECT_EQ(ttl_of(1), 10);
  clk.t += 9s;
  EXPECT_TRUE(le->expired(10).empty());
  clk.t += 1s;
  EXPECT_EQ(le->expired(10).size(), 1u);
  EXPECT_EQ(le->renew(lease_id{7}).error(), base::errc::lease_not_found);
}

TEST_F(LessorTest, ExpiredIsRateLimitedAndSoonestFirst) {
  le->promote(0ms);
  for (int i = 1; i <= 10; ++i) grant(i, 20 - i);  // lease 10 expires first
  clk.t += 1h;
  auto first = le->expired(3);
  EXPECT_EQ(first, (std::vector<lease_id>{lease_id{10}, lease_id{9}, lease_id{8}}));
  EXPECT_EQ(le->expired(100).size(), 7u);
  EXPECT_EQ(le->leases().front(), lease_id{10});
}

TEST_F(LessorTest, PromoteSpreadsExpiriesAtThreeQuartersOfTheRevokeRate) {
  // Every lease would expire at now + 11 s; the revoke rate is 1000, so at most 750 a second.
  for (int i = 1; i <= 2000; ++i) grant(i, 10);
  grant(5000, 30);  // far from the crowd: untouched
  le->promote(1s);
  const auto start = clk.t;
  std::map<int, std::size_t> per_second;  // whole seconds from now → leases expired by then
  int long_lease_at = -1;
  std::size_t total = 0;
  for (int s = 0; s <= 40; ++s) {
    clk.t = start + std::chrono::seconds(s);
    auto now_expired = le->expired(100000);
    per_second[s] = now_expired.size();
    total += now_expired.size();
    for (auto id : now_expired) {
      if (id == lease_id{5000}) long_lease_at = s;
      ASSERT_TRUE(le->revoke(id));  // as the node does
    }
  }
  EXPECT_EQ(total, 2001u);
  for (const auto& [second, n] : per_second) EXPECT_LE(n, 750u) << second;
  EXPECT_EQ(per_second[10], 0u);
  EXPECT_EQ(per_second[11], 750u);
  std::size_t by_14 = 0;
  for (int s = 11; s <= 14; ++s) by_14 += per_second[s];
  EXPECT_EQ(by_14, 2000u);  // 2000 / 750 s of spreading at most
  EXPECT_EQ(long_lease_at, 31);
}

TEST_F(LessorTest, KeysAttachDetachThroughTheStore) {
  grant(1, 10);
  grant(2, 10);
  ASSERT_TRUE(d.st->put({"a", "1", 1}));
  ASSERT_TRUE(d.st->put({"b", "1", 1}));
  ASSERT_TRUE(d.st->put({"c", "1", 2}));
  EXPECT_EQ(le->keys(lease_id{1}), (std::vector<std::string>{"a", "b"}));
  // Moving a key to another lease detaches it from the first; no lease detaches it.
  ASSERT_TRUE(d.st->put({"a", "2", 2}));
  ASSERT_TRUE(d.st->put({"c", "2", 0}));
  EXPECT_EQ(le->keys(lease_id{1}), std::vector<std::string>{"b"});
  EXPECT_EQ(le->keys(lease_id{2}), std::vector<std::string>{"a"});
  // ignore_lease keeps the lease.
  mvcc::put_request keep{"a", "3"};
  keep.ignore_lease = true;
  ASSERT_TRUE(d.st->put(keep));
  EXPECT_EQ(le->keys(lease_id{2}), std::vector<std::string>{"a"});
  ASSERT_TRUE(d.st->delete_range({"a", ""}));
  EXPECT_TRUE(le->keys(lease_id{2}).empty());
  auto ttl = le->time_to_live(lease_id{1}, true);
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"b"});
  EXPECT_TRUE(le->time_to_live(lease_id{1}, false)->keys.empty());
  EXPECT_FALSE(le->time_to_live(lease_id{9}, true));
}

TEST_F(LessorTest, PutWithUnknownLeaseFailsAndWritesNothing) {
  auto before = d.st->rev();
  EXPECT_EQ(d.st->put({"a", "1", 77}).error(), mvcc::errc::lease_not_found);
  mvcc::txn_request t;
  t.success.push_back({mvcc::put_request{"x", "1"}});
  t.success.push_back({mvcc::put_request{"y", "1", 77}});
  EXPECT_EQ(d.st->txn(t).error(), mvcc::errc::lease_not_found);
  // The branch not taken is not checked (etcd checks the chosen branch only).
  mvcc::txn_request other;
  other.compares.push_back(
      {"nokey", "", mvcc::compare_target::version, mvcc::compare_result::equal, 0});
  other.failure.push_back({mvcc::put_request{"y", "1", 77}});
  EXPECT_TRUE(d.st->txn(other));
  EXPECT_EQ(d.st->rev(), before);
}

TEST_F(LessorTest, PersistsAndRecoversWithKeysFromTheStore) {
  grant(1, 10);
  grant(2, 30);
  ASSERT_TRUE(d.st->put({"k", "v", 2}));
  ASSERT_TRUE(le->revoke(lease_id{1}));
  reopen();
  EXPECT_FALSE(le->exists(lease_id{1}));
  ASSERT_TRUE(le->exists(lease_id{2}));
  EXPECT_EQ(le->time_to_live(lease_id{2}, false)->granted_ttl, 30);
  // Key attachments are not persisted by the lessor: the node rebuilds them from the store.
  EXPECT_TRUE(le->keys(lease_id{2}).empty());
  le->on_put("k", 2);
  EXPECT_EQ(le->keys(lease_id{2}), std::vector<std::string>{"k"});
}

TEST_F(LessorTest, CheckpointsAreScheduledAndCountDown) {
  with_checkpoint = true;
  reopen();
  le->promote(0ms);
  grant(1, 60);
  grant(2, 4);  // shorter than the interval: never checkpointed
  EXPECT_TRUE(le->due_checkpoints(10).empty());
  clk.t += 5s;
  auto cps = le->due_checkpoints(10);
  ASSERT_EQ(cps, std::vector<checkpoint>{(checkpoint{lease_id{1}, 55})});
  le->apply_checkpoints(cps);
  clk.t += 5s;
  EXPECT_EQ(le->due_checkpoints(10), std::vector<checkpoint>{(checkpoint{lease_id{1}, 50})});
  // A renewal forgets the checkpointed TTL and asks the node to tell everyone.
  auto r = le->renew(lease_id{1});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->clear_checkpoint);
}

TEST_F(LessorTest, PromoteCountsFromCheckpoint) {
  with_checkpoint = true;
  with_persist = true;
  reopen();
  le->promote(0ms);
  grant(1, 60);
  clk.t += 5s;
  le->apply_checkpoints(le->due_checkpoints(10));
  clk.t += 20s;
  // Restart: the persisted checkpoint (55 s) is where the new primary counts from.
  reopen();
  le->promote(1s);
  EXPECT_EQ(ttl_of(1), 56);
}

TEST_F(LessorTest, WithoutPersistRestartStartsOver) {
  with_checkpoint = true;
  reopen();
  le->promote(0ms);
  grant(1, 60);
  clk.t += 5s;
  auto cps = le->due_checkpoints(10);
  le->apply_checkpoints(cps);
  // In memory the checkpoint counts (a follower promoted now would use it)...
  le->demote();
  le->promote(0ms);
  EXPECT_EQ(ttl_of(1), 55);
  // ...but it is not on disk (etcd 3.4 and 3.5 without LeaseCheckpointPersist).
  reopen();
  le->promote(0ms);
  EXPECT_EQ(ttl_of(1), 60);
}

TEST(LeaseRecord, RoundTrips) {
  auto k = encode_lease_key(lease_id{-5});
  auto v = encode_lease_value(9000000000, 12);
  auto d = decode_lease(k, v);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->id, lease_id{-5});
  EXPECT_EQ(d->ttl, 9000000000);
  EXPECT_EQ(d->remaining_ttl, 12);
  EXPECT_FALSE(decode_lease(k, v.substr(1)));
  EXPECT_FALSE(decode_lease("short", v));
}

}  // namespace
}  // namespace cairn::lease
