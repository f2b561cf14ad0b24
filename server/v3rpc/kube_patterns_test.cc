// What kube-apiserver sends, in its exact shapes (reference §1.2), replayed against an in-process
// node through a real gRPC channel, every call carrying `hasleader: true` and a
// `client-api-version` as etcd's client does:
//   - the /registry/health probe (a plain linearizable Get);
//   - create: Txn If(MOD(key) == 0) Then(Put(key, value, lease)), no else branch;
//   - update and delete: Txn If(MOD(key) == rev) Then(Put | DeleteRange) Else(Range(key));
//   - point Get with limit 1 and a revision;
//   - List paging: Range(key = prefix, then lastKey + "\0"; range_end = prefix end; limit;
//     revision pinned by the first page), `count` the full range on every page;
//   - Count (count_only over prefix + "/") and keys_only listing;
//   - the compactor: Txn If(VERSION(compact_rev_key) == v) Then(Put(compact_rev_key, rev))
//     Else(Range(compact_rev_key)), then Compact(rev); reads below it then fail with OutOfRange;
//   - Watch: start_revision = RV + 1, prev_kv, progress_notify, progress requests; a watch from a
//     compacted revision is cancelled with compact_revision;
//   - LeaseGrant with keys deleted on expiry, no keep-alive;
//   - Status: dbSize and a version from which kube-apiserver enables consistent reads.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "etcdserver/server.h"
#include "v3rpc/lease_service.h"
#include "v3rpc/services.h"
#include "v3rpc/watch_service.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;
using etcdserverpb::Compare;

class KubePatterns : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-kube-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    etcdserver::server_config cfg;
    cfg.name = "m";
    cfg.data_dir = dir_ + "/data";
    cfg.initial_cluster = "m=http://127.0.0.1:2380";
    cfg.heartbeat = 10ms;
    cfg.election = 100ms;
    cfg.lease_loop_interval = 20ms;
    auto n = etcdserver::server::start(cfg);
    ASSERT_TRUE(n) << n.error().message;
    node_ = std::move(*n);
    kv_ = std::make_unique<kv_service>(*node_, service_options{});
    lease_ = std::make_unique<lease_service>(*node_);
    maintenance_ = std::make_unique<maintenance_service>(*node_);
    watch_options wo;
    wo.progress_notify_interval = 200ms;
    watch_ = std::make_unique<watch_service>(*node_, wo);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    kv_->register_on(b);
    b.RegisterService(lease_.get());
    b.RegisterService(maintenance_.get());
    b.RegisterService(watch_.get());
    server_ = b.BuildAndStart();
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    kv_stub_ = etcdserverpb::KV::NewStub(ch);
    lease_stub_ = etcdserverpb::Lease::NewStub(ch);
    maintenance_stub_ = etcdserverpb::Maintenance::NewStub(ch);
    watch_stub_ = etcdserverpb::Watch::NewStub(ch);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
    if (kv_) kv_->stop();  // before the server is destroyed
    server_.reset();
    lease_->stop();
    watch_->stop();
    node_.reset();
    std::filesystem::remove_all(dir_);
  }

  // As etcd's Go client with WithRequireLeader.
  static void kube_metadata(grpc::ClientContext& ctx) {
    ctx.AddMetadata("hasleader", "true");
    ctx.AddMetadata("client-api-version", "3.5");
  }

  etcdserverpb::RangeResponse range(const etcdserverpb::RangeRequest& req,
                                    grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    kube_metadata(ctx);
    etcdserverpb::RangeResponse resp;
    auto st = kv_stub_->Range(&ctx, req, &resp);
    if (status != nullptr) {
      *status = st;
    } else {
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    return resp;
  }
  etcdserverpb::TxnResponse txn(const etcdserverpb::TxnRequest& req) {
    grpc::ClientContext ctx;
    kube_metadata(ctx);
    etcdserverpb::TxnResponse resp;
    auto st = kv_stub_->Txn(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  // store.go Create: If(MOD == 0) Then(Put(key, value, lease)).
  etcdserverpb::TxnResponse create(const std::string& key, const std::string& value,
                                   std::int64_t lease = 0) {
    etcdserverpb::TxnRequest t;
    auto* c = t.add_compare();
    c->set_key(key);
    c->set_target(Compare::MOD);
    c->set_result(Compare::EQUAL);
    c->set_mod_revision(0);
    auto* p = t.add_success()->mutable_request_put();
    p->set_key(key);
    p->set_value(value);
    p->set_lease(lease);
    return txn(t);
  }
  // OptimisticPut / OptimisticDelete with GetOnFailure.
  etcdserverpb::TxnResponse update(const std::string& key, std::int64_t rev,
                                   const std::string& value) {
    etcdserverpb::TxnRequest t;
    auto* c = t.add_compare();
    c->set_key(key);
    c->set_target(Compare::MOD);
    c->set_result(Compare::EQUAL);
    c->set_mod_revision(rev);
    auto* p = t.add_success()->mutable_request_put();
    p->set_key(key);
    p->set_value(value);
    t.add_failure()->mutable_request_range()->set_key(key);
    return txn(t);
  }
  etcdserverpb::TxnResponse remove(const std::string& key, std::int64_t rev) {
    etcdserverpb::TxnRequest t;
    auto* c = t.add_compare();
    c->set_key(key);
    c->set_target(Compare::MOD);
    c->set_result(Compare::EQUAL);
    c->set_mod_revision(rev);
    t.add_success()->mutable_request_delete_range()->set_key(key);
    t.add_failure()->mutable_request_range()->set_key(key);
    return txn(t);
  }
  // compact.go: If(VERSION(compact_rev_key) == expect) Then(Put) Else(Range).
  etcdserverpb::TxnResponse compactor_txn(std::int64_t expect_version, std::int64_t rev) {
    etcdserverpb::TxnRequest t;
    auto* c = t.add_compare();
    c->set_key("compact_rev_key");
    c->set_target(Compare::VERSION);
    c->set_result(Compare::EQUAL);
    c->set_version(expect_version);
    auto* p = t.add_success()->mutable_request_put();
    p->set_key("compact_rev_key");
    p->set_value(std::to_string(rev));
    t.add_failure()->mutable_request_range()->set_key("compact_rev_key");
    return txn(t);
  }
  grpc::Status compact(std::int64_t rev) {
    grpc::ClientContext ctx;
    kube_metadata(ctx);
    etcdserverpb::CompactionRequest req;
    req.set_revision(rev);
    etcdserverpb::CompactionResponse resp;
    return kv_stub_->Compact(&ctx, req, &resp);
  }

  std::string dir_;
  std::unique_ptr<etcdserver::server> node_;
  std::unique_ptr<kv_service> kv_;
  std::unique_ptr<lease_service> lease_;
  std::unique_ptr<maintenance_service> maintenance_;
  std::unique_ptr<watch_service> watch_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_stub_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_stub_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_stub_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_stub_;
};

TEST_F(KubePatterns, HealthProbeCreateGetUpdateDelete) {
  etcdserverpb::RangeRequest health;
  health.set_key("/registry/health");
  EXPECT_EQ(range(health).count(), 0);  // absent, and no error: the probe passes

  const std::string key = "/registry/pods/default/web";
  auto created = create(key, std::string("k8s\0v1", 6));
  ASSERT_TRUE(created.succeeded());
  const std::int64_t rv = created.header().revision();
  EXPECT_EQ(created.responses_size(), 1);
  // A second create loses: no else branch, nothing in the responses.
  auto again = create(key, "other");
  EXPECT_FALSE(again.succeeded());
  EXPECT_EQ(again.responses_size(), 0);
  EXPECT_EQ(again.header().revision(), rv);

  // Kubernetes.Get: limit 1 at a revision.
  etcdserverpb::RangeRequest get;
  get.set_key(key);
  get.set_limit(1);
  get.set_revision(rv);
  auto got = range(get);
  ASSERT_EQ(got.kvs_size(), 1);
  EXPECT_EQ(got.kvs(0).value(), std::string("k8s\0v1", 6));
  EXPECT_EQ(got.kvs(0).mod_revision(), rv);

  auto updated = update(key, rv, "v2");
  ASSERT_TRUE(updated.succeeded());
  const std::int64_t rv2 = updated.header().revision();
  EXPECT_EQ(rv2, rv + 1);
  // A stale update gets the current object back from the else branch.
  auto stale = update(key, rv, "v3");
  EXPECT_FALSE(stale.succeeded());
  ASSERT_EQ(stale.responses_size(), 1);
  ASSERT_EQ(stale.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(stale.responses(0).response_range().kvs(0).value(), "v2");
  EXPECT_EQ(stale.responses(0).response_range().kvs(0).mod_revision(), rv2);

  auto stale_delete = remove(key, rv);
  EXPECT_FALSE(stale_delete.succeeded());
  EXPECT_EQ(stale_delete.responses(0).response_range().kvs(0).value(), "v2");
  auto deleted = remove(key, rv2);
  ASSERT_TRUE(deleted.succeeded());
  EXPECT_EQ(deleted.responses(0).response_delete_range().deleted(), 1);
  etcdserverpb::RangeRequest gone;
  gone.set_key(key);
  EXPECT_EQ(range(gone).count(), 0);
}

TEST_F(KubePatterns, ListPagesAtAPinnedRevisionWithTheFullCount) {
  const std::string prefix = "/registry/configmaps/";
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "ns/cm%02d", i);
    ASSERT_TRUE(create(prefix + name, "data").succeeded());
  }
  etcdserverpb::RangeRequest page;
  page.set_key(prefix);
  page.set_range_end(mvcc::prefix_range_end(prefix));
  page.set_limit(10);
  auto first = range(page);
  ASSERT_EQ(first.kvs_size(), 10);
  EXPECT_EQ(first.count(), 25);
  EXPECT_TRUE(first.more());
  const std::int64_t pinned = first.header().revision();
  // Writes between pages are not seen by the pinned list.
  ASSERT_TRUE(create(prefix + "ns/cm05a", "late").succeeded());
  std::vector<std::string> listed;
  for (const auto& kv : first.kvs()) listed.push_back(kv.key());
  auto next = first;
  while (next.more()) {
    page.set_key(listed.back() + std::string(1, '\0'));
    page.set_revision(pinned);
    next = range(page);
    // The remaining count, whatever the limit (hasMore = len(kvs) < count).
    EXPECT_EQ(next.more(), next.kvs_size() < next.count());
    for (const auto& kv : next.kvs()) listed.push_back(kv.key());
  }
  EXPECT_EQ(listed.size(), 25u);
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  EXPECT_EQ(std::count(listed.begin(), listed.end(), prefix + "ns/cm05a"), 0);

  // Count, as the object-count metrics poll it.
  etcdserverpb::RangeRequest count;
  count.set_key(prefix);
  count.set_range_end(mvcc::prefix_range_end(prefix));
  count.set_count_only(true);
  auto counted = range(count);
  EXPECT_EQ(counted.count(), 26);
  EXPECT_EQ(counted.kvs_size(), 0);
  // keys_only (1.33+ size estimates).
  etcdserverpb::RangeRequest keys;
  keys.set_key(prefix);
  keys.set_range_end(mvcc::prefix_range_end(prefix));
  keys.set_keys_only(true);
  auto k = range(keys);
  ASSERT_EQ(k.kvs_size(), 26);
  EXPECT_TRUE(k.kvs(0).value().empty());
}

TEST_F(KubePatterns, CompactorTxnThenCompactThenTooOldReads) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(create("/registry/a/" + std::to_string(i), "x").succeeded());
  etcdserverpb::RangeRequest head;
  head.set_key("/registry/a/0");
  const std::int64_t rev1 = range(head).header().revision();
  // First round: compact_rev_key does not exist (version 0).
  auto won = compactor_txn(0, rev1);
  ASSERT_TRUE(won.succeeded());
  ASSERT_TRUE(compact(rev1).ok());
  // Another apiserver with a stale view of the version loses and sees the current value.
  auto lost = compactor_txn(0, rev1);
  EXPECT_FALSE(lost.succeeded());
  ASSERT_EQ(lost.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(lost.responses(0).response_range().kvs(0).version(), 1);
  EXPECT_EQ(lost.responses(0).response_range().kvs(0).value(), std::to_string(rev1));
  // Second round with the version it saw.
  ASSERT_TRUE(create("/registry/a/later", "y").succeeded());
  const std::int64_t rev2 = range(head).header().revision();
  ASSERT_TRUE(compactor_txn(1, rev2).succeeded());
  ASSERT_TRUE(compact(rev2).ok());
  // A LIST continue at a compacted revision: 410 Gone for kube-apiserver.
  etcdserverpb::RangeRequest old;
  old.set_key("/registry/a/");
  old.set_range_end(mvcc::prefix_range_end("/registry/a/"));
  old.set_revision(rev1);
  grpc::Status st;
  range(old, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(st.error_message(), "etcdserver: mvcc: required revision has been compacted");
  // And a future one: TooLargeResourceVersionError.
  old.set_revision(rev2 + 100);
  range(old, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(st.error_message(), "etcdserver: mvcc: required revision is a future revision");
}

TEST_F(KubePatterns, WatchFromRvPlusOneWithPrevKvProgressAndCompaction) {
  const std::string prefix = "/registry/services/";
  auto c = create(prefix + "ns/a", "v1");
  const std::int64_t rv = c.header().revision();

  grpc::ClientContext ctx;
  kube_metadata(ctx);
  auto stream = watch_stub_->Watch(&ctx);
  etcdserverpb::WatchRequest req;
  auto* cr = req.mutable_create_request();
  cr->set_key(prefix);
  cr->set_range_end(mvcc::prefix_range_end(prefix));
  cr->set_start_revision(rv + 1);
  cr->set_prev_kv(true);
  cr->set_progress_notify(true);
  ASSERT_TRUE(stream->Write(req));
  etcdserverpb::WatchResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_TRUE(resp.created());
  const std::int64_t id = resp.watch_id();

  auto u = update(prefix + "ns/a", rv, "v2");
  ASSERT_TRUE(u.succeeded());
  auto d = remove(prefix + "ns/a", u.header().revision());
  ASSERT_TRUE(d.succeeded());
  std::vector<mvccpb::Event> events;
  while (events.size() < 2 && stream->Read(&resp)) {
    for (const auto& e : resp.events()) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 2u);
  // Every non-create event must carry prev_kv ("etcd event received with PrevKv=nil").
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[0].prev_kv().value(), "v1");
  EXPECT_EQ(events[1].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[1].prev_kv().value(), "v2");
  EXPECT_EQ(events[1].kv().mod_revision(), d.header().revision());

  // A progress request on the same stream: answered with watch id -1 at the current revision.
  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(stream->Write(progress));
  bool got_progress = false;
  bool got_notify = false;
  for (int i = 0; i < 20 && !(got_progress && got_notify) && stream->Read(&resp); ++i) {
    if (!resp.events().empty()) continue;
    if (resp.watch_id() == -1) got_progress = true;
    if (resp.watch_id() == id) got_notify = true;  // progress_notify every 200 ms here
    EXPECT_EQ(resp.header().revision(), d.header().revision());
  }
  EXPECT_TRUE(got_progress);
  EXPECT_TRUE(got_notify);

  // A watch from before the compaction is cancelled with the compaction revision.
  ASSERT_TRUE(compact(d.header().revision()).ok());
  etcdserverpb::WatchRequest old;
  old.mutable_create_request()->set_key(prefix);
  old.mutable_create_request()->set_range_end(mvcc::prefix_range_end(prefix));
  old.mutable_create_request()->set_start_revision(rv);
  ASSERT_TRUE(stream->Write(old));
  bool cancelled = false;
  for (int i = 0; i < 20 && !cancelled && stream->Read(&resp); ++i) {
    if (resp.canceled()) {
      cancelled = true;
      EXPECT_EQ(resp.compact_revision(), d.header().revision());
    }
  }
  EXPECT_TRUE(cancelled);
  ctx.TryCancel();
}

TEST_F(KubePatterns, EventsWithALeaseGoWithoutKeepAliveAndStatusTellsSizeAndVersion) {
  grpc::ClientContext gctx;
  kube_metadata(gctx);
  etcdserverpb::LeaseGrantRequest g;
  g.set_ttl(1);
  etcdserverpb::LeaseGrantResponse lease;
  ASSERT_TRUE(lease_stub_->LeaseGrant(&gctx, g, &lease).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(create("/registry/events/ns/e" + std::to_string(i), "ev", lease.id()).succeeded());
  }
  etcdserverpb::RangeRequest events;
  events.set_key("/registry/events/");
  events.set_range_end(mvcc::prefix_range_end("/registry/events/"));
  events.set_count_only(true);
  EXPECT_EQ(range(events).count(), 3);
  for (int i = 0; i < 300 && range(events).count() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(range(events).count(), 0);

  grpc::ClientContext sctx;
  kube_metadata(sctx);
  etcdserverpb::StatusResponse status;
  ASSERT_TRUE(maintenance_stub_->Status(&sctx, {}, &status).ok());
  EXPECT_GT(status.dbsize(), 0);
  // kube-apiserver enables consistent reads from the watch cache from 3.5.13 on.
  int major = 0, minor = 0, patch = 0;
  ASSERT_EQ(std::sscanf(status.version().c_str(), "%d.%d.%d", &major, &minor, &patch), 3);
  EXPECT_TRUE(major > 3 || (major == 3 && (minor > 5 || (minor == 5 && patch >= 13))))
      << status.version();
}

}  // namespace
}  // namespace cairn::v3rpc
