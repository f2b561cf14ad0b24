#include "etcdserver/request.h"

#include <gtest/gtest.h>

namespace cairn::etcdserver {
namespace {

mvcc::txn_request sample_txn() {
  mvcc::txn_request inner;
  inner.success.push_back({mvcc::delete_range_request{"a", "b", true}});
  mvcc::txn_request t;
  t.compares.push_back({"k", "", mvcc::compare_target::value, mvcc::compare_result::not_equal, 0,
                        std::string("v\0x", 3)});
  t.compares.push_back({"k", "z", mvcc::compare_target::mod, mvcc::compare_result::less, 7, ""});
  mvcc::range_request rr;
  rr.key = "r";
  rr.range_end = "\0";
  rr.limit = 3;
  rr.order = mvcc::sort_order::descend;
  rr.target = mvcc::sort_target::mod;
  rr.count_only = true;
  rr.max_create_revision = 9;
  t.success.push_back({rr});
  t.success.push_back({mvcc::put_request{"p", "value", 5, true, false, true}});
  t.failure.push_back({mvcc::box<mvcc::txn_request>(inner)});
  return t;
}

TEST(RequestTest, EveryKindRoundTrips) {
  std::vector<request> rs;
  rs.push_back({1, mvcc::put_request{"key", std::string("v\xff\0", 3), 42, true, true, false}});
  rs.push_back({2, mvcc::delete_range_request{"a", "\0", true}});
  rs.push_back({3, sample_txn()});
  rs.push_back({4, compact_request{99, true}});
  rs.push_back(
      {~std::uint64_t{0}, alarm_request{alarm_action::deactivate, 77, alarm_type::nospace}});
  rs.push_back(
      {5, member_attributes_request{0x4036b1db24775ea0, "m1", {"http://a:1", "http://b:2"}}});
  rs.push_back({6, member_attributes_request{1, "", {}}});
  for (const auto& r : rs) {
    auto bytes = encode_request(r);
    auto back = decode_request(bytes);
    ASSERT_TRUE(back.has_value()) << r.id;
    EXPECT_EQ(*back, r) << r.id;
  }
}

TEST(RequestTest, LeaseKindsRoundTrip) {
  std::vector<request> rs;
  rs.push_back({5, lease_grant_request{0x694d7f4b5e3d1a0b, 9000000000}});
  rs.push_back({6, lease_revoke_request{-1}});
  rs.push_back({7, lease_checkpoint_request{{{1, 55}, {2, 0}}}});
  rs.push_back({8, lease_checkpoint_request{}});
  for (const auto& r : rs) {
    auto bytes = encode_request(r);
    auto back = decode_request(bytes);
    ASSERT_TRUE(back.has_value()) << r.id;
    EXPECT_EQ(*back, r) << r.id;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode_request(bytes.substr(0, n)).has_value()) << r.id << " " << n;
    }
  }
}

// Entries already in WALs decode as before: the bytes of the older kinds did not move.
TEST(RequestTest, OlderKindsKeepTheirBytes) {
  const std::string compact("\x01\x02\0\0\0\0\0\0\0\x04\x63\0\0\0\0\0\0\0\x01", 19);
  EXPECT_EQ(encode_request({2, compact_request{99, true}}), compact);
  const std::string alarm("\x01\x03\0\0\0\0\0\0\0\x05\x01\x07\0\0\0\0\0\0\0\x01", 20);
  EXPECT_EQ(encode_request({3, alarm_request{alarm_action::activate, 7, alarm_type::nospace}}),
            alarm);
  EXPECT_EQ(encode_request({4, lease_revoke_request{1}})[9], '\x07');
}

TEST(RequestTest, RejectsDamagedBytes) {
  auto bytes = encode_request({3, sample_txn()});
  // Every strict prefix is short somewhere.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_request(bytes.substr(0, n)).has_value()) << n;
  }
  EXPECT_FALSE(decode_request(bytes + "x").has_value());
  std::string wrong_version = bytes;
  wrong_version[0] = 2;
  EXPECT_FALSE(decode_request(wrong_version).has_value());
  // An alarm type beyond corrupt.
  auto alarm = encode_request({1, alarm_request{alarm_action::get, 1, alarm_type::corrupt}});
  alarm.back() = 3;
  EXPECT_FALSE(decode_request(alarm).has_value());
}

TEST(RequestTest, DeepNestingIsRefused) {
  mvcc::txn_request t;
  for (int i = 0; i < 100; ++i) {
    mvcc::txn_request outer;
    outer.success.push_back({mvcc::box<mvcc::txn_request>(t)});
    t = std::move(outer);
  }
  EXPECT_FALSE(decode_request(encode_request({1, t})).has_value());
}

TEST(RequestTest, QuotaCostFollowsEtcd) {
  EXPECT_EQ(quota_cost(mvcc::put_request{"ab", "cde"}), 256 + 5);
  auto t = sample_txn();
  // Success holds one put (p/value); failure only a delete.
  EXPECT_EQ(quota_cost(t), 256 + 1 + 5);
  mvcc::txn_request reads;
  reads.success.push_back({mvcc::range_request{}});
  EXPECT_EQ(quota_cost(reads), 0);
  EXPECT_FALSE(txn_has_writes(reads));
  EXPECT_TRUE(txn_has_writes(t));
  mvcc::txn_request nested_delete;
  mvcc::txn_request inner;
  inner.failure.push_back({mvcc::delete_range_request{"x"}});
  nested_delete.failure.push_back({mvcc::box<mvcc::txn_request>(inner)});
  EXPECT_TRUE(txn_has_writes(nested_delete));
}

}  // namespace
}  // namespace cairn::etcdserver
