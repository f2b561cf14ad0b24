// The checks the services make before proposing, and the wire ↔ node conversions.
// Planted bug NESTED_TXN_DUPLICATE (no check of a nested txn's puts against its enclosing
// branch) is caught by ServicesCheck.NestedTxnPutCollidesWithOuterPut.
#include "v3rpc/services.h"

#include <gtest/gtest.h>

#include <cctype>

namespace cairn::v3rpc {
namespace {

etcdserverpb::RequestOp put_op(const std::string& k) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(k);
  op.mutable_request_put()->set_value("v");
  return op;
}

etcdserverpb::RequestOp delete_op(const std::string& k, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(k);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}

TEST(ServicesCheck, PlainTxnPasses) {
  etcdserverpb::TxnRequest t;
  *t.add_success() = put_op("a");
  *t.add_success() = put_op("b");
  *t.add_failure() = put_op("a");  // the other branch may write the same key
  EXPECT_EQ(check_txn(t, 128), std::nullopt);
}

TEST(ServicesCheck, EmptyKeyInAnOp) {
  etcdserverpb::TxnRequest t;
  *t.add_failure() = put_op("");
  EXPECT_EQ(check_txn(t, 128), base::errc::empty_key);
  etcdserverpb::TxnRequest r;
  r.add_success()->mutable_request_range();
  EXPECT_EQ(check_txn(r, 128), base::errc::empty_key);
}

TEST(ServicesCheck, TooManyOps) {
  etcdserverpb::TxnRequest t;
  for (int i = 0; i < 3; ++i) *t.add_success() = put_op("k" + std::to_string(i));
  EXPECT_EQ(check_txn(t, 3), std::nullopt);
  EXPECT_EQ(check_txn(t, 2), base::errc::too_many_ops);
  etcdserverpb::TxnRequest c;
  for (int i = 0; i < 3; ++i) c.add_compare()->set_key("k");
  EXPECT_EQ(check_txn(c, 2), base::errc::too_many_ops);
}

TEST(ServicesCheck, DuplicatePutsAndPutInDeletedRange) {
  etcdserverpb::TxnRequest t;
  *t.add_success() = put_op("a");
  *t.add_success() = put_op("a");
  EXPECT_EQ(check_txn(t, 128), base::errc::duplicate_key);

  etcdserverpb::TxnRequest d;
  *d.add_success() = delete_op("a", "c");
  *d.add_success() = put_op("b");
  EXPECT_EQ(check_txn(d, 128), base::errc::duplicate_key);

  etcdserverpb::TxnRequest outside;
  *outside.add_success() = delete_op("a", "c");
  *outside.add_success() = put_op("c");
  EXPECT_EQ(check_txn(outside, 128), std::nullopt);

  etcdserverpb::TxnRequest from;
  *from.add_success() = delete_op("a", std::string(1, '\0'));
  *from.add_success() = put_op("zzz");
  EXPECT_EQ(check_txn(from, 128), base::errc::duplicate_key);
}

TEST(ServicesCheck, NestedTxnPutCollidesWithOuterPut) {
  etcdserverpb::TxnRequest t;
  *t.add_success() = put_op("a");
  auto* nested = t.add_success()->mutable_request_txn();
  *nested->add_failure() = put_op("a");
  EXPECT_EQ(check_txn(t, 128), base::errc::duplicate_key);

  // Both nested branches may write the same key: only one of them runs.
  etcdserverpb::TxnRequest ok;
  auto* n2 = ok.add_success()->mutable_request_txn();
  *n2->add_success() = put_op("x");
  *n2->add_failure() = put_op("x");
  EXPECT_EQ(check_txn(ok, 128), std::nullopt);
}

TEST(ServicesCheck, PutFlags) {
  etcdserverpb::PutRequest p;
  p.set_key("k");
  p.set_ignore_value(true);
  EXPECT_EQ(check_put(p), std::nullopt);
  p.set_value("v");
  EXPECT_EQ(check_put(p), base::errc::value_provided);
  p.clear_value();
  p.set_ignore_lease(true);
  p.set_lease(5);
  EXPECT_EQ(check_put(p), base::errc::lease_provided);
}

TEST(ServicesConvert, TxnRoundTrip) {
  etcdserverpb::TxnRequest t;
  auto* c = t.add_compare();
  c->set_key("k");
  c->set_target(etcdserverpb::Compare::MOD);
  c->set_result(etcdserverpb::Compare::LESS);
  c->set_mod_revision(7);
  auto* r = t.add_success()->mutable_request_range();
  r->set_key("a");
  r->set_range_end("b");
  r->set_limit(3);
  r->set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  r->set_sort_target(etcdserverpb::RangeRequest::MOD);
  t.add_success();  // an empty op is dropped, as etcd skips it
  *t.add_failure() = delete_op("x");
  const auto m = from_wire(t);
  ASSERT_EQ(m.compares.size(), 1u);
  EXPECT_EQ(m.compares[0].target, mvcc::compare_target::mod);
  EXPECT_EQ(m.compares[0].result, mvcc::compare_result::less);
  EXPECT_EQ(m.compares[0].number, 7);
  ASSERT_EQ(m.success.size(), 1u);
  const auto& rr = std::get<mvcc::range_request>(m.success[0].op);
  EXPECT_EQ(rr.range_end, "b");
  EXPECT_EQ(rr.limit, 3);
  EXPECT_EQ(rr.order, mvcc::sort_order::descend);
  EXPECT_EQ(rr.target, mvcc::sort_target::mod);
  ASSERT_EQ(m.failure.size(), 1u);
  EXPECT_EQ(std::get<mvcc::delete_range_request>(m.failure[0].op).key, "x");

  mvcc::txn_response resp;
  resp.succeeded = true;
  resp.revision = 9;
  mvcc::range_response range;
  range.kvs.push_back({"a", 2, 9, 3, "v", 0});
  range.count = 1;
  range.revision = 9;
  resp.responses.push_back({range});
  etcdserverpb::TxnResponse out;
  to_wire(resp, out);
  EXPECT_TRUE(out.succeeded());
  ASSERT_EQ(out.responses_size(), 1);
  const auto& wr = out.responses(0).response_range();
  EXPECT_EQ(wr.header().revision(), 9);
  ASSERT_EQ(wr.kvs_size(), 1);
  EXPECT_EQ(wr.kvs(0).mod_revision(), 9);
  EXPECT_EQ(wr.kvs(0).version(), 3);
  EXPECT_EQ(wr.count(), 1);
}

TEST(ServicesCheck, HasLeaderMetadataNeedsALeader) {
  std::multimap<grpc::string_ref, grpc::string_ref> md;
  EXPECT_EQ(leader_required(md, false), std::nullopt);  // no metadata: served
  md.emplace("hasleader", "false");
  EXPECT_EQ(leader_required(md, false), std::nullopt);
  md.emplace("hasleader", "true");
  EXPECT_EQ(leader_required(md, false), base::errc::no_leader);
  EXPECT_EQ(leader_required(md, true), std::nullopt);
}

// MemberAdd's URLs are refused as etcd 3.4.23 refuses them (each case seen live); the rest of
// the membership rules are the node's (e2e/cluster_test.cc, etcdctl_compare_test.cc).
TEST(ServicesCheck, MemberAddUrlsAreParsedFirst) {
  // A parser that accepts scheme://host:port only and lower-cases the scheme, as etcd's does.
  const url_parser parse = [](std::string_view u) -> std::optional<std::string> {
    const auto sep = u.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    std::string scheme(u.substr(0, sep));
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "http" && scheme != "https") return std::nullopt;
    const auto rest = u.substr(sep + 3);
    if (rest.find(':') == std::string_view::npos || rest.find('/') != std::string_view::npos)
      return std::nullopt;
    return scheme + "://" + std::string(rest);
  };
  auto check = [&](std::vector<std::string> urls) -> std::optional<base::errc> {
    auto r = parse_member_urls(urls, parse);
    if (r) return std::nullopt;
    return r.error();
  };
  EXPECT_EQ(check({}), base::errc::member_bad_urls);
  EXPECT_EQ(check({"http://10.0.0.2"}), base::errc::member_bad_urls);
  EXPECT_EQ(check({"http://10.0.0.2:2380/path"}), base::errc::member_bad_urls);
  EXPECT_EQ(check({"http://10.0.0.2:2380", "ftp://x:1"}), base::errc::member_bad_urls);
  EXPECT_EQ(check({"http://10.0.0.2:2380"}), std::nullopt);
  auto canonical = parse_member_urls({"HTTP://10.0.0.1:2380"}, parse);
  ASSERT_TRUE(canonical);
  EXPECT_EQ(canonical->front(), "http://10.0.0.1:2380");
}

}  // namespace
}  // namespace cairn::v3rpc
