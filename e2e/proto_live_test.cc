// Talks to a real etcd 3.4.23 through Cairn's generated stubs: every answer must decode with no
// field our descriptors do not know (anywhere in the message tree), and carry values that only
// a correct decoding gives (revisions advancing by one, counts, previous values, nested
// transaction results). Complements proto/proto_descriptor_test.cc, which compares the
// descriptors themselves; this one proves the bytes on the wire agree.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/e2e.h"

namespace cairn::e2e {
namespace {

namespace pb = google::protobuf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every message in the tree under `m` that carries unknown fields, as "path: numbers".
void find_unknown_fields(const pb::Message& m, const std::string& path,
                         std::vector<std::string>& out) {
  const pb::Reflection& r = *m.GetReflection();
  const pb::UnknownFieldSet& unknown = r.GetUnknownFields(m);
  if (!unknown.empty()) {
    std::string numbers;
    for (int i = 0; i < unknown.field_count(); ++i) {
      if (i > 0) numbers += ',';
      numbers += std::to_string(unknown.field(i).number());
    }
    out.push_back(path + ": unknown field(s) " + numbers);
  }
  std::vector<const pb::FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r.FieldSize(m, f); ++i) {
        find_unknown_fields(r.GetRepeatedMessage(m, f, i),
                            path + "." + f->name() + "[" + std::to_string(i) + "]", out);
      }
    } else {
      find_unknown_fields(r.GetMessage(m, f), path + "." + f->name(), out);
    }
  }
}

std::vector<std::string> unknown_fields(const pb::Message& m) {
  std::vector<std::string> out;
  find_unknown_fields(m, m.GetDescriptor()->name(), out);
  return out;
}

// The walker must see unknown fields at any depth, or the live checks below prove nothing.
TEST(proto_live, walker_finds_unknown_fields_at_any_depth) {
  etcdserverpb::TxnResponse txn;
  txn.mutable_header()->set_revision(7);
  auto* range = txn.add_responses()->mutable_response_range();
  range->add_kvs()->set_key("a");
  range->add_kvs()->set_key("b");
  EXPECT_THAT(unknown_fields(txn), IsEmpty());

  // Field 99 of KeyValue, as a newer server might send it: tag (99 << 3 | varint), value 1.
  mvccpb::KeyValue kv;
  kv.set_key("b");
  std::string bytes = kv.SerializeAsString() + "\x98\x06\x01";
  ASSERT_TRUE(range->mutable_kvs(1)->ParseFromString(bytes));
  txn.GetReflection()->MutableUnknownFields(&txn)->AddVarint(42, 1);
  EXPECT_THAT(unknown_fields(txn),
              ElementsAre("TxnResponse: unknown field(s) 42",
                          "TxnResponse.responses[0].response_range.kvs[1]: unknown field(s) 99"));
}

class proto_live_etcd : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_.emplace();
    channel_ = grpc::CreateChannel(etcd_->endpoint(), grpc::InsecureChannelCredentials());
  }

  // A context for one call: waits for the channel to connect, gives up after 20 s.
  static std::unique_ptr<grpc::ClientContext> context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_wait_for_ready(true);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  }

  // Every KV answer's header names the cluster, the member and a term.
  static void expect_header(const etcdserverpb::ResponseHeader& h, int64_t revision) {
    EXPECT_NE(h.cluster_id(), 0u);
    EXPECT_NE(h.member_id(), 0u);
    EXPECT_GE(h.raft_term(), 1u);
    EXPECT_EQ(h.revision(), revision);
  }

  std::optional<etcd_server> etcd_;
  std::shared_ptr<grpc::Channel> channel_;
};

etcdserverpb::RequestOp put_op(const std::string& key, const std::string& value) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  return op;
}

etcdserverpb::RequestOp range_op(const std::string& key) {
  etcdserverpb::RequestOp op;
  op.mutable_request_range()->set_key(key);
  return op;
}

TEST_F(proto_live_etcd, put_range_and_txn_decode_completely) {
  auto kv = etcdserverpb::KV::NewStub(channel_);

  // An empty store is at revision 1; every write advances it by one.
  etcdserverpb::PutRequest put;
  put.set_key("k1");
  put.set_value("v1");
  etcdserverpb::PutResponse put_resp;
  grpc::Status s = kv->Put(context().get(), put, &put_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(put_resp), IsEmpty());
  expect_header(put_resp.header(), 2);
  EXPECT_FALSE(put_resp.has_prev_kv());

  put.set_value("v2");
  put.set_prev_kv(true);
  s = kv->Put(context().get(), put, &put_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(put_resp), IsEmpty());
  expect_header(put_resp.header(), 3);
  ASSERT_TRUE(put_resp.has_prev_kv());
  EXPECT_EQ(put_resp.prev_kv().key(), "k1");
  EXPECT_EQ(put_resp.prev_kv().value(), "v1");
  EXPECT_EQ(put_resp.prev_kv().create_revision(), 2);
  EXPECT_EQ(put_resp.prev_kv().mod_revision(), 2);
  EXPECT_EQ(put_resp.prev_kv().version(), 1);

  for (const char* key : {"k2", "k3"}) {
    etcdserverpb::PutRequest p;
    p.set_key(key);
    p.set_value(std::string("value of ") + key);
    ASSERT_TRUE(kv->Put(context().get(), p, &put_resp).ok());
  }
  expect_header(put_resp.header(), 5);

  // The prefix "k", newest key first, two at a time: count still says three.
  etcdserverpb::RangeRequest range;
  range.set_key("k");
  range.set_range_end("l");
  range.set_limit(2);
  range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  range.set_sort_target(etcdserverpb::RangeRequest::KEY);
  etcdserverpb::RangeResponse range_resp;
  s = kv->Range(context().get(), range, &range_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(range_resp), IsEmpty());
  expect_header(range_resp.header(), 5);
  ASSERT_EQ(range_resp.kvs_size(), 2);
  EXPECT_EQ(range_resp.kvs(0).key(), "k3");
  EXPECT_EQ(range_resp.kvs(0).value(), "value of k3");
  EXPECT_EQ(range_resp.kvs(0).mod_revision(), 5);
  EXPECT_EQ(range_resp.kvs(1).key(), "k2");
  EXPECT_TRUE(range_resp.more());
  EXPECT_EQ(range_resp.count(), 3);

  // k1 as it was at revision 2, served from the member's own store.
  etcdserverpb::RangeRequest old;
  old.set_key("k1");
  old.set_revision(2);
  old.set_serializable(true);
  s = kv->Range(context().get(), old, &range_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(range_resp), IsEmpty());
  ASSERT_EQ(range_resp.kvs_size(), 1);
  EXPECT_EQ(range_resp.kvs(0).value(), "v1");
  EXPECT_EQ(range_resp.kvs(0).version(), 1);

  etcdserverpb::RangeRequest count_only;
  count_only.set_key("k");
  count_only.set_range_end("l");
  count_only.set_count_only(true);
  s = kv->Range(context().get(), count_only, &range_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(range_resp.kvs_size(), 0);
  EXPECT_EQ(range_resp.count(), 3);

  // A Txn whose guard holds: a put, a range and a nested read-only txn, all at revision 6.
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("k1");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_value("v2");
  *txn.add_success() = put_op("k4", "v4");
  *txn.add_success() = range_op("k1");
  auto* nested = txn.add_success()->mutable_request_txn();
  *nested->add_success() = range_op("k2");
  *txn.add_failure() = put_op("never", "written");
  etcdserverpb::TxnResponse txn_resp;
  s = kv->Txn(context().get(), txn, &txn_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(txn_resp), IsEmpty());
  expect_header(txn_resp.header(), 6);
  EXPECT_TRUE(txn_resp.succeeded());
  ASSERT_EQ(txn_resp.responses_size(), 3);
  EXPECT_TRUE(txn_resp.responses(0).has_response_put());
  ASSERT_TRUE(txn_resp.responses(1).has_response_range());
  ASSERT_EQ(txn_resp.responses(1).response_range().kvs_size(), 1);
  EXPECT_EQ(txn_resp.responses(1).response_range().kvs(0).value(), "v2");
  ASSERT_TRUE(txn_resp.responses(2).has_response_txn());
  const auto& inner = txn_resp.responses(2).response_txn();
  EXPECT_TRUE(inner.succeeded());
  ASSERT_EQ(inner.responses_size(), 1);
  ASSERT_EQ(inner.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(inner.responses(0).response_range().kvs(0).key(), "k2");

  // A guard that fails runs the failure branch; reading only, the revision stays.
  etcdserverpb::TxnRequest failing;
  auto* version_cmp = failing.add_compare();
  version_cmp->set_key("k1");
  version_cmp->set_target(etcdserverpb::Compare::VERSION);
  version_cmp->set_result(etcdserverpb::Compare::GREATER);
  version_cmp->set_version(5);
  *failing.add_success() = put_op("never", "written");
  *failing.add_failure() = range_op("k4");
  s = kv->Txn(context().get(), failing, &txn_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(txn_resp), IsEmpty());
  expect_header(txn_resp.header(), 6);
  EXPECT_FALSE(txn_resp.succeeded());
  ASSERT_EQ(txn_resp.responses_size(), 1);
  ASSERT_EQ(txn_resp.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(txn_resp.responses(0).response_range().kvs(0).value(), "v4");
  EXPECT_EQ(txn_resp.responses(0).response_range().kvs(0).create_revision(), 6);
}

TEST_F(proto_live_etcd, status_and_member_list_decode_completely) {
  auto maintenance = etcdserverpb::Maintenance::NewStub(channel_);
  etcdserverpb::StatusResponse status;
  grpc::Status s = maintenance->Status(context().get(), {}, &status);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(status), IsEmpty());
  EXPECT_EQ(status.version(), "3.4.23");
  EXPECT_NE(status.header().member_id(), 0u);
  EXPECT_EQ(status.leader(), status.header().member_id());  // a single member leads itself
  EXPECT_GT(status.dbsize(), 0);
  EXPECT_GT(status.dbsizeinuse(), 0);
  EXPECT_GE(status.raftterm(), 1u);
  EXPECT_GE(status.raftindex(), 1u);
  EXPECT_GE(status.raftappliedindex(), 1u);
  EXPECT_FALSE(status.islearner());
  EXPECT_THAT(status.errors(), IsEmpty());

  auto cluster = etcdserverpb::Cluster::NewStub(channel_);
  // The 3.5 field `linearizable` is unknown to 3.4.23, which must ignore it.
  for (const bool linearizable : {false, true}) {
    SCOPED_TRACE(linearizable ? "linearizable" : "plain");
    etcdserverpb::MemberListRequest req;
    req.set_linearizable(linearizable);
    etcdserverpb::MemberListResponse members;
    s = cluster->MemberList(context().get(), req, &members);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_THAT(unknown_fields(members), IsEmpty());
    EXPECT_EQ(members.header().member_id(), status.header().member_id());
    EXPECT_EQ(members.header().cluster_id(), status.header().cluster_id());
    ASSERT_EQ(members.members_size(), 1);
    const auto& m = members.members(0);
    EXPECT_EQ(m.id(), status.header().member_id());
    EXPECT_EQ(m.name(), "e2e");
    EXPECT_THAT(m.clienturls(),
                ElementsAre("http://127.0.0.1:" + std::to_string(etcd_->client_port())));
    ASSERT_EQ(m.peerurls_size(), 1);
    EXPECT_TRUE(m.peerurls(0).starts_with("http://127.0.0.1:")) << m.peerurls(0);
    EXPECT_FALSE(m.islearner());
  }
}

TEST_F(proto_live_etcd, lease_grant_time_to_live_and_leases_decode_completely) {
  auto lease = etcdserverpb::Lease::NewStub(channel_);
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  etcdserverpb::LeaseGrantResponse granted;
  grpc::Status s = lease->LeaseGrant(context().get(), grant, &granted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(granted), IsEmpty());
  EXPECT_NE(granted.id(), 0);
  EXPECT_EQ(granted.ttl(), 60);
  EXPECT_EQ(granted.error(), "");
  EXPECT_NE(granted.header().member_id(), 0u);

  auto kv = etcdserverpb::KV::NewStub(channel_);
  etcdserverpb::PutRequest put;
  put.set_key("leased");
  put.set_value("x");
  put.set_lease(granted.id());
  etcdserverpb::PutResponse put_resp;
  s = kv->Put(context().get(), put, &put_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();

  etcdserverpb::LeaseTimeToLiveRequest ttl_req;
  ttl_req.set_id(granted.id());
  ttl_req.set_keys(true);
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  s = lease->LeaseTimeToLive(context().get(), ttl_req, &ttl);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(ttl), IsEmpty());
  EXPECT_EQ(ttl.id(), granted.id());
  EXPECT_EQ(ttl.grantedttl(), 60);
  EXPECT_GT(ttl.ttl(), 0);
  EXPECT_LE(ttl.ttl(), 60);
  EXPECT_THAT(ttl.keys(), ElementsAre("leased"));

  etcdserverpb::LeaseLeasesResponse leases;
  s = lease->LeaseLeases(context().get(), {}, &leases);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(unknown_fields(leases), IsEmpty());
  ASSERT_EQ(leases.leases_size(), 1);
  EXPECT_EQ(leases.leases(0).id(), granted.id());
}

}  // namespace
}  // namespace cairn::e2e
