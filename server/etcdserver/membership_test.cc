#include "etcdserver/membership.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "backend/backend.h"
#include "base/file.h"

namespace cairn::etcdserver {
namespace {

// Values printed by the real etcd 3.4.23 (`etcdctl member list` and `endpoint status`) for
// --initial-cluster m1=http://127.0.0.1:23801,m2=http://127.0.0.1:23802,m3=...:23803 and
// --initial-cluster-token tok; e2e/cluster_test.cc compares with a live etcd as well.
TEST(MembershipIds, AreEtcds) {
  EXPECT_EQ(compute_member_id({"http://127.0.0.1:23801"}, "tok"), 0x4036b1db24775ea0u);
  EXPECT_EQ(compute_member_id({"http://127.0.0.1:23802"}, "tok"), 0x2737ecedbf2a9065u);
  EXPECT_EQ(compute_member_id({"http://127.0.0.1:23803"}, "tok"), 0x80af5d65a6e2f603u);
  EXPECT_EQ(compute_cluster_id({0x80af5d65a6e2f603u, 0x4036b1db24775ea0u, 0x2737ecedbf2a9065u}),
            0x64d937c925e41b58u);
  // The token and every URL count; their order does not.
  EXPECT_NE(compute_member_id({"http://127.0.0.1:23801"}, "other"), 0x4036b1db24775ea0u);
  EXPECT_EQ(compute_member_id({"http://b:1", "http://a:1"}, "t"),
            compute_member_id({"http://a:1", "http://b:1"}, "t"));
  EXPECT_NE(compute_member_id({"http://a:1"}, "t"),
            compute_member_id({"http://a:1", "http://b:1"}, "t"));
}

TEST(Membership, RecordsRoundTrip) {
  member m{7, "m7", {"http://a:1", "http://b:2"}, {"http://a:3"}, true};
  auto d = decode_member(encode_member(m));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, m);
  EXPECT_FALSE(decode_member("\xff\xff\xff"));
}

}  // namespace
}  // namespace cairn::etcdserver
