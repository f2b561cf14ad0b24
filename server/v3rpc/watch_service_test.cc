// The Watch service of an in-process node, driven through a real gRPC channel on 127.0.0.1 with
// the generated stubs (writes go through the KV service).
//
// Planted bugs (-DCAIRN_PLANTED_BUG=..., or a #define at the top of watch_service.cc):
//   WATCH_NO_PREV_KV (events lose prev_kv on the wire) is caught by
//     WatchServiceTest.HistoryWithPrevKvAndFilters;
//   WATCH_PROGRESS_WHILE_UNSYNCED (a progress request is answered at once) is caught by
//     WatchServiceTest.ProgressRequestWaitsUntilEveryWatcherIsSynced;
//   WATCH_KEEP_LEADERLESS_STREAMS (hasleader streams are not ended without a leader) is caught by
//     WatchServiceTest.HasLeaderStreamsAreRefusedAndEndedWithoutALeader;
//   MVCC_DROP_SLOW_WATCH_EVENT (mvcc: a full stream buffer drops events) is caught by
//     WatchServiceTest.ManyWatchersUnderConcurrentWritesLoseNothing.
#include "v3rpc/watch_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "etcdserver/server.h"
#include "mvcc/key_index.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;
using etcdserverpb::WatchCreateRequest;
using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// A fresh directory, removed with its contents at the end.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-watch-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// One node with KV and Watch behind a gRPC server.
class node_under_test {
 public:
  node_under_test(const std::filesystem::path& dir, watch_options wopts) {
    etcdserver::server_config cfg;
    cfg.name = "m";
    cfg.data_dir = dir.string();
    cfg.initial_cluster = "m=http://127.0.0.1:2380";
    cfg.heartbeat = 10ms;
    cfg.election = 100ms;
    auto n = etcdserver::server::start(cfg);
    EXPECT_TRUE(n) << (n ? "" : n.error().message);
    if (!n) return;
    node = std::move(*n);
    kv = std::make_unique<kv_service>(*node, service_options{});
    watch = std::make_unique<watch_service>(*node, std::move(wopts));
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    kv->register_on(b);
    b.RegisterService(watch.get());
    grpc_server = b.BuildAndStart();
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    kv_stub = etcdserverpb::KV::NewStub(channel);
    watch_stub = etcdserverpb::Watch::NewStub(channel);
  }
  ~node_under_test() {
    if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + 5s);
    if (kv) kv->stop();  // before the server is destroyed
    if (watch) watch->stop();
  }

  std::int64_t put(const std::string& k, const std::string& v) {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key(k);
    req.set_value(v);
    etcdserverpb::PutResponse resp;
    auto st = kv_stub->Put(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.header().revision();
  }
  std::int64_t del(const std::string& k) {
    grpc::ClientContext ctx;
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(k);
    etcdserverpb::DeleteRangeResponse resp;
    auto st = kv_stub->DeleteRange(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.header().revision();
  }
  // Puts every pair in one transaction (one revision).
  std::int64_t put_all(const std::vector<std::pair<std::string, std::string>>& kvs) {
    grpc::ClientContext ctx;
    etcdserverpb::TxnRequest req;
    for (const auto& [k, v] : kvs) {
      auto* p = req.add_success()->mutable_request_put();
      p->set_key(k);
      p->set_value(v);
    }
    etcdserverpb::TxnResponse resp;
    auto st = kv_stub->Txn(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.header().revision();
  }

  std::unique_ptr<etcdserver::server> node;
  std::unique_ptr<kv_service> kv;
  std::unique_ptr<watch_service> watch;
  std::unique_ptr<grpc::Server> grpc_server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_stub;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_stub;
};

// One client Watch stream; a reader thread queues what arrives. `pause()` stops reading (so the
// server's writes back up), `resume()` goes on.
class watch_client {
 public:
  explicit watch_client(etcdserverpb::Watch::Stub& stub, bool hasleader = false) {
    if (hasleader) ctx_.AddMetadata("hasleader", "true");
    rw_ = stub.Watch(&ctx_);
    reader_ = std::thread([this] { read_loop(); });
  }
  ~watch_client() {
    if (finished_) return;
    ctx_.TryCancel();
    resume();
    reader_.join();
    rw_->Finish();
  }

  bool send(const WatchRequest& r) { return rw_->Write(r); }
  bool half_close() { return rw_->WritesDone(); }
  bool create(const std::string& key, const std::string& range_end = "", std::int64_t start = 0,
              bool prev_kv = false, std::int64_t id = 0) {
    WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(range_end);
    c->set_start_revision(start);
    c->set_prev_kv(prev_kv);
    c->set_watch_id(id);
    return send(r);
  }
  bool cancel(std::int64_t id) {
    WatchRequest r;
    r.mutable_cancel_request()->set_watch_id(id);
    return send(r);
  }
  bool progress() {
    WatchRequest r;
    r.mutable_progress_request();
    return send(r);
  }

  std::optional<WatchResponse> next(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    WatchResponse r = std::move(q_.front());
    q_.pop_front();
    return r;
  }
  // Waits for the server to end the stream; its status.
  std::optional<grpc::Status> ended(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return closed_; })) return std::nullopt;
    lock.unlock();
    reader_.join();
    finished_ = true;
    return rw_->Finish();
  }
  void pause() {
    std::lock_guard lock(mu_);
    paused_ = true;
  }
  void resume() {
    {
      std::lock_guard lock(mu_);
      paused_ = false;
    }
    cv_.notify_all();
  }

 private:
  void read_loop() {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !paused_; });
      }
      WatchResponse r;
      if (!rw_->Read(&r)) break;
      std::lock_guard lock(mu_);
      q_.push_back(std::move(r));
      cv_.notify_all();
    }
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<WatchRequest, WatchResponse>> rw_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WatchResponse> q_;
  bool paused_ = false;
  bool closed_ = false;
  bool finished_ = false;  // Finish was called (by ended())
  std::thread reader_;
};

class WatchServiceTest : public ::testing::Test {
 protected:
  void start(watch_options o = {}) {
    if (!o.leader) o.leader = [this] { return leader_override.load() ? 0 : node_->node->leader(); };
    node_ = std::make_unique<node_under_test>(dir_.path(), std::move(o));
    ASSERT_TRUE(node_->node);
  }
  node_under_test& n() { return *node_; }
  void expect_header(const WatchResponse& r, std::int64_t revision) {
    EXPECT_EQ(r.header().cluster_id(), n().node->cluster_id());
    EXPECT_EQ(r.header().member_id(), n().node->member_id());
    EXPECT_EQ(r.header().raft_term(), n().node->term());
    EXPECT_GT(r.header().raft_term(), 0u);
    EXPECT_EQ(r.header().revision(), revision);
  }

  temp_dir dir_;
  std::atomic<bool> leader_override{false};
  std::unique_ptr<node_under_test> node_;
};

TEST_F(WatchServiceTest, CreatedFirstThenEventsInOrderWithHeaders) {
  start();
  const std::int64_t before = n().put("other", "x");
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("a"));
  auto created = c.next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  EXPECT_FALSE(created->canceled());
  EXPECT_EQ(created->watch_id(), 0);
  EXPECT_EQ(created->events_size(), 0);
  expect_header(*created, before);  // start 0: "after the current revision"

  const std::int64_t r1 = n().put("a", "1");
  n().put("b", "ignored");
  const std::int64_t r2 = n().put("a", "2");
  auto e1 = c.next();
  auto e2 = c.next();
  ASSERT_TRUE(e1 && e2);
  expect_header(*e1, r1);
  expect_header(*e2, r2);
  ASSERT_EQ(e1->events_size(), 1);
  ASSERT_EQ(e2->events_size(), 1);
  EXPECT_EQ(e1->watch_id(), 0);
  const auto& kv1 = e1->events(0).kv();
  EXPECT_EQ(e1->events(0).type(), mvccpb::Event::PUT);
  EXPECT_EQ(kv1.key(), "a");
  EXPECT_EQ(kv1.value(), "1");
  EXPECT_EQ(kv1.create_revision(), r1);
  EXPECT_EQ(kv1.mod_revision(), r1);
  EXPECT_EQ(kv1.version(), 1);
  EXPECT_EQ(e2->events(0).kv().value(), "2");
  EXPECT_EQ(e2->events(0).kv().version(), 2);
  EXPECT_FALSE(e2->events(0).has_prev_kv());  // not asked for
  EXPECT_FALSE(c.next(300ms)) << "nothing else: 'b' is not watched";
}

TEST_F(WatchServiceTest, HistoryWithPrevKvAndFilters) {
  start();
  const std::int64_t r1 = n().put("k", "v1");
  const std::int64_t r2 = n().put("k", "v2");
  const std::int64_t r3 = n().del("k");
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("k", "", r1, /*prev_kv=*/true, /*id=*/7));
  auto created = c.next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  EXPECT_EQ(created->watch_id(), 7);
  std::vector<mvccpb::Event> events;
  while (events.size() < 3) {
    auto r = c.next();
    ASSERT_TRUE(r) << "got " << events.size() << " events";
    EXPECT_EQ(r->watch_id(), 7);
    for (const auto& e : r->events()) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[0].kv().mod_revision(), r1);
  EXPECT_FALSE(events[0].has_prev_kv());  // a create has no previous value
  EXPECT_EQ(events[1].kv().value(), "v2");
  ASSERT_TRUE(events[1].has_prev_kv());
  EXPECT_EQ(events[1].prev_kv().value(), "v1");
  EXPECT_EQ(events[1].prev_kv().mod_revision(), r1);
  EXPECT_EQ(events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[2].kv().key(), "k");
  EXPECT_EQ(events[2].kv().mod_revision(), r3);
  ASSERT_TRUE(events[2].has_prev_kv());
  EXPECT_EQ(events[2].prev_kv().value(), "v2");
  EXPECT_EQ(events[2].prev_kv().mod_revision(), r2);

  // Filters: NOPUT sees only the delete, NODELETE only the puts.
  watch_client f(*n().watch_stub);
  for (auto [id, filter] :
       {std::pair{1, WatchCreateRequest::NOPUT}, std::pair{2, WatchCreateRequest::NODELETE}}) {
    WatchRequest r;
    auto* cr = r.mutable_create_request();
    cr->set_key("k");
    cr->set_start_revision(r1);
    cr->set_watch_id(id);
    cr->add_filters(filter);
    ASSERT_TRUE(f.send(r));
  }
  std::map<std::int64_t, std::vector<mvccpb::Event::EventType>> got;
  for (int i = 0; i < 20 && (got[1].size() < 1 || got[2].size() < 2); ++i) {
    auto r = f.next();
    ASSERT_TRUE(r);
    for (const auto& e : r->events()) got[r->watch_id()].push_back(e.type());
  }
  EXPECT_EQ(got[1], (std::vector{mvccpb::Event::DELETE}));
  EXPECT_EQ(got[2], (std::vector{mvccpb::Event::PUT, mvccpb::Event::PUT}));
}

TEST_F(WatchServiceTest, RangesPrefixesAndTheWholeKeySpace) {
  start();
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("p/", "p0", 0, false, 1));                 // prefix "p/"
  ASSERT_TRUE(c.create("q", std::string(1, '\0'), 0, false, 2));  // every key >= "q"
  ASSERT_TRUE(c.create("", std::string(1, '\0'), 0, false, 3));   // every key
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.next()) << i;         // created x3
  n().put("p/x", "1");
  n().put("p0", "1");
  n().put("z", "1");
  std::map<std::int64_t, std::vector<std::string>> keys;
  for (int i = 0; i < 5; ++i) {
    auto r = c.next();
    ASSERT_TRUE(r) << i;
    for (const auto& e : r->events()) keys[r->watch_id()].push_back(e.kv().key());
  }
  EXPECT_EQ(keys[1], (std::vector<std::string>{"p/x"}));
  EXPECT_EQ(keys[2], (std::vector<std::string>{"z"}));
  EXPECT_EQ(keys[3], (std::vector<std::string>{"p/x", "p0", "z"}));
  EXPECT_FALSE(c.next(200ms));
}

TEST_F(WatchServiceTest, WatchIdsDuplicatesEmptyRangesAndCancel) {
  start();
  watch_client c(*n().watch_stub);
  const std::int64_t rev = n().node->store().rev();
  ASSERT_TRUE(c.create("a"));
  ASSERT_TRUE(c.create("b", "", 0, false, 1));
  ASSERT_TRUE(c.create("c"));                   // server-chosen: skips 1
  ASSERT_TRUE(c.create("d", "", 0, false, 1));  // duplicate
  ASSERT_TRUE(c.create("z", "a"));              // empty range
  std::vector<WatchResponse> rs;
  for (int i = 0; i < 5; ++i) {
    auto r = c.next();
    ASSERT_TRUE(r) << i;
    EXPECT_TRUE(r->created());
    expect_header(*r, rev);
    rs.push_back(*r);
  }
  EXPECT_EQ(rs[0].watch_id(), 0);
  EXPECT_EQ(rs[1].watch_id(), 1);
  EXPECT_EQ(rs[2].watch_id(), 2);
  EXPECT_FALSE(rs[2].canceled());
  EXPECT_EQ(rs[3].watch_id(), -1);
  EXPECT_TRUE(rs[3].canceled());
  EXPECT_EQ(rs[3].cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_EQ(rs[4].watch_id(), -1);
  EXPECT_TRUE(rs[4].canceled());
  EXPECT_EQ(rs[4].cancel_reason(), "mvcc: watcher range is empty");

  // Cancel: one answer, then nothing more for it; an unknown id gets no answer.
  ASSERT_TRUE(c.cancel(1));
  auto cancelled = c.next();
  ASSERT_TRUE(cancelled);
  EXPECT_TRUE(cancelled->canceled());
  EXPECT_FALSE(cancelled->created());
  EXPECT_EQ(cancelled->watch_id(), 1);
  EXPECT_EQ(cancelled->cancel_reason(), "");
  expect_header(*cancelled, rev);
  ASSERT_TRUE(c.cancel(42));
  const std::int64_t rb = n().put("b", "1");
  const std::int64_t ra = n().put("a", "1");
  auto r = c.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id(), 0) << "the cancelled watcher on b got an event";
  expect_header(*r, ra);
  EXPECT_GT(ra, rb);
  EXPECT_FALSE(c.next(200ms));
  // A freed client id may be used again.
  ASSERT_TRUE(c.create("b", "", rb, false, 1));
  auto again = c.next();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->watch_id(), 1);
  EXPECT_FALSE(again->canceled());
  auto replay = c.next();
  ASSERT_TRUE(replay);
  ASSERT_EQ(replay->events_size(), 1);
  EXPECT_EQ(replay->events(0).kv().mod_revision(), rb);
}

TEST_F(WatchServiceTest, CompactedStartIsCancelledWithTheCompactRevision) {
  start();
  const std::int64_t r1 = n().put("k", "1");
  n().put("k", "2");
  const std::int64_t r3 = n().put("k", "3");
  auto compacted = n().node->compact(r3, true);
  ASSERT_TRUE(compacted);
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("k", "", r1));
  auto created = c.next();
  ASSERT_TRUE(created);
  EXPECT_TRUE(created->created());
  EXPECT_FALSE(created->canceled());
  auto notice = c.next();
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->watch_id(), 0);
  EXPECT_TRUE(notice->canceled());
  EXPECT_EQ(notice->compact_revision(), r3);
  EXPECT_EQ(notice->events_size(), 0);
  expect_header(*notice, 0);  // as etcd: the notice's header has no revision
  // From the compaction revision on, history is still there.
  ASSERT_TRUE(c.create("k", "", r3, false, 5));
  auto ok = c.next();
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->watch_id(), 5);
  auto ev = c.next();
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->events_size(), 1);
  EXPECT_EQ(ev->events(0).kv().value(), "3");
}

TEST_F(WatchServiceTest, ProgressRequestOnAStreamWithoutWatchersOrWithSyncedOnes) {
  start();
  const std::int64_t rev = n().put("x", "1");
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.progress());
  auto r = c.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id(), -1);
  EXPECT_FALSE(r->created());
  EXPECT_EQ(r->events_size(), 0);
  expect_header(*r, rev);
  ASSERT_TRUE(c.create("x"));
  ASSERT_TRUE(c.next());
  const std::int64_t rev2 = n().put("y", "1");
  ASSERT_TRUE(c.progress());
  auto p = c.next();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->watch_id(), -1);
  expect_header(*p, rev2);
}

// The answer to a progress request promises that every event up to its revision was sent: a
// stream whose watcher is behind (its client stopped reading, so the watcher became a victim)
// must not be answered before the watcher has caught up.
TEST_F(WatchServiceTest, ProgressRequestWaitsUntilEveryWatcherIsSynced) {
  start();
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("big/", "big0"));
  ASSERT_TRUE(c.next());
  c.pause();
  const std::string value(8 * 1024, 'v');
  std::int64_t last = 0;
  int puts = 0;
  for (; puts < 2000; ++puts) {
    last = n().put("big/" + std::to_string(puts % 50), value);
    if (puts > 200 && n().node->watchable().group_sizes().victims > 0) break;
  }
  ASSERT_GT(n().node->watchable().group_sizes().victims, 0u) << "the watcher never fell behind";
  // The stalled stream does not hold writers up.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i, ++puts) last = n().put("big/x", value);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  ASSERT_TRUE(c.progress());
  std::this_thread::sleep_for(300ms);  // time for a wrong answer to be queued
  ASSERT_NE(n().node->watchable().group_sizes().synced, 1u);
  c.resume();
  std::int64_t seen = 0;
  int events = 0;
  for (;;) {
    auto r = c.next(10s);
    ASSERT_TRUE(r) << "events " << events << " of " << puts + 1;
    if (r->watch_id() == -1) {
      EXPECT_GE(r->header().revision(), last);
      EXPECT_EQ(seen, last) << "progress answered before every event up to it was sent";
      break;
    }
    for (const auto& e : r->events()) {
      EXPECT_EQ(e.kv().mod_revision(), seen == 0 ? e.kv().mod_revision() : seen + 1);
      seen = e.kv().mod_revision();
      ++events;
    }
  }
  EXPECT_EQ(events, puts + 1);
}

TEST_F(WatchServiceTest, ProgressNotifyEveryIntervalForWatchersThatAskedForIt) {
  watch_options o;
  o.progress_notify_interval = 200ms;
  o.tick = 20ms;
  start(o);
  const std::int64_t rev = n().put("x", "1");
  watch_client c(*n().watch_stub);
  WatchRequest r;
  r.mutable_create_request()->set_key("quiet");
  r.mutable_create_request()->set_progress_notify(true);
  ASSERT_TRUE(c.send(r));
  ASSERT_TRUE(c.create("other"));  // id 1, no progress_notify
  ASSERT_TRUE(c.next());
  ASSERT_TRUE(c.next());
  const auto t0 = std::chrono::steady_clock::now();
  auto first = c.next(2s);
  ASSERT_TRUE(first);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_EQ(first->watch_id(), 0);
  EXPECT_EQ(first->events_size(), 0);
  EXPECT_FALSE(first->created());
  EXPECT_FALSE(first->canceled());
  expect_header(*first, rev);
  const std::int64_t rev2 = n().put("y", "1");
  auto second = c.next(2s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->watch_id(), 0) << "only the watcher that asked is notified";
  expect_header(*second, rev2);
}

TEST_F(WatchServiceTest, FragmentsSplitLargeResponsesForWatchersThatAskedForThem) {
  watch_options o;
  o.max_request_bytes = 2048;
  start(o);
  watch_client c(*n().watch_stub);
  for (bool fragment : {true, false}) {
    WatchRequest r;
    auto* cr = r.mutable_create_request();
    cr->set_key("f/");
    cr->set_range_end("f0");
    cr->set_fragment(fragment);
    ASSERT_TRUE(c.send(r));
    ASSERT_TRUE(c.next());
  }
  std::vector<std::pair<std::string, std::string>> kvs;
  for (int i = 0; i < 10; ++i) kvs.emplace_back("f/" + std::to_string(i), std::string(500, 'a'));
  const std::int64_t rev = n().put_all(kvs);
  std::map<std::int64_t, std::vector<WatchResponse>> by_id;
  while (by_id[1].empty() || by_id[0].empty() || by_id[0].back().fragment()) {
    auto r = c.next();
    ASSERT_TRUE(r);
    by_id[r->watch_id()].push_back(*r);
  }
  ASSERT_EQ(by_id[1].size(), 1u);
  EXPECT_EQ(by_id[1][0].events_size(), 10);
  EXPECT_FALSE(by_id[1][0].fragment());
  const auto& parts = by_id[0];
  ASSERT_GT(parts.size(), 1u);
  int total = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].fragment(), i + 1 < parts.size()) << i;
    EXPECT_LT(parts[i].ByteSizeLong(), 2048u) << i;
    EXPECT_EQ(parts[i].header().revision(), rev);
    for (const auto& e : parts[i].events()) {
      EXPECT_EQ(e.kv().key(), "f/" + std::to_string(total));
      ++total;
    }
  }
  EXPECT_EQ(total, 10);
}

TEST(FragmentResponse, FollowsEtcdsRule) {
  WatchResponse r;
  r.set_watch_id(3);
  r.mutable_header()->set_revision(9);
  for (int i = 0; i < 5; ++i) {
    auto* e = r.add_events();
    e->mutable_kv()->set_key("k" + std::to_string(i));
    e->mutable_kv()->set_value(std::string(100, 'x'));
  }
  EXPECT_EQ(fragment_response(r, r.ByteSizeLong() + 1).size(), 1u) << "under the limit";
  WatchResponse one;
  *one.add_events() = r.events(0);
  EXPECT_EQ(fragment_response(one, 10).size(), 1u) << "a single event is never split";
  auto parts = fragment_response(r, 10);  // every event alone
  ASSERT_EQ(parts.size(), 5u);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].events_size(), 1);
    EXPECT_EQ(parts[i].watch_id(), 3);
    EXPECT_EQ(parts[i].header().revision(), 9);
    EXPECT_EQ(parts[i].fragment(), i < 4);
  }
  // A limit that holds two events per part: the size decides exactly as etcd (< limit).
  WatchResponse two = r;
  two.clear_events();
  two.set_fragment(true);
  *two.add_events() = r.events(0);
  *two.add_events() = r.events(1);
  auto pairs = fragment_response(r, two.ByteSizeLong() + 1);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].events_size(), 2);
  EXPECT_EQ(pairs[1].events_size(), 2);
  EXPECT_EQ(pairs[2].events_size(), 1);
  auto singles = fragment_response(r, two.ByteSizeLong());  // == limit: too big
  EXPECT_EQ(singles.size(), 5u);
}

// Several streams, each with many watchers (single keys, prefixes, history), one of them
// reading slowly, while a writer thread writes: every watcher gets exactly the events of its
// keys, in revision order, none twice, none missing.
TEST_F(WatchServiceTest, ManyWatchersUnderConcurrentWritesLoseNothing) {
  start();
  constexpr int keys = 8;
  constexpr int writes = 600;
  struct spec {
    std::string key, range_end;
  };
  std::vector<spec> specs;
  for (int k = 0; k < keys; ++k) specs.push_back({"w/" + std::to_string(k), ""});
  specs.push_back({"w/", "w0"});
  specs.push_back({"w/1", "w/5"});
  const std::int64_t start_rev = n().node->store().rev() + 1;
  std::vector<std::unique_ptr<watch_client>> clients;
  for (int s = 0; s < 3; ++s) {
    clients.push_back(std::make_unique<watch_client>(*n().watch_stub));
    for (std::size_t i = 0; i < specs.size(); ++i) {
      ASSERT_TRUE(clients[s]->create(specs[i].key, specs[i].range_end, s == 2 ? start_rev : 0,
                                     /*prev_kv=*/s == 1, static_cast<std::int64_t>(i + 1)));
    }
    // Watchers starting "now" must exist before the first write.
    for (std::size_t i = 0; i < specs.size(); ++i) {
      auto created = clients[s]->next();
      ASSERT_TRUE(created && created->created());
    }
  }
  clients[0]->pause();  // the slow one
  std::vector<std::pair<std::string, std::int64_t>> log;
  std::atomic<bool> written{false};
  std::thread writer([&] {
    const std::string big(8192, 'x');
    for (int i = 0; i < writes; ++i) {
      const std::string k = "w/" + std::to_string((i * 7) % keys);
      log.emplace_back(k, n().put(k, big + std::to_string(i)));
    }
    written = true;
  });
  // The slow stream reads again once its watchers have fallen behind (victims), or at the end.
  bool fell_behind = false;
  while (!written && !fell_behind) {
    fell_behind = n().node->watchable().group_sizes().victims > 0;
    std::this_thread::sleep_for(5ms);
  }
  std::this_thread::sleep_for(200ms);
  clients[0]->resume();
  writer.join();
  EXPECT_TRUE(fell_behind) << "the slow stream never made its watchers victims";
  for (int s = 0; s < 3; ++s) {
    std::map<std::int64_t, std::vector<std::int64_t>> got;
    std::map<std::int64_t, std::vector<std::int64_t>> want;
    std::size_t total = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto id = static_cast<std::int64_t>(i + 1);
      for (const auto& [k, rev] : log) {
        mvcc::key_range r{specs[i].key, specs[i].range_end};
        if (r.contains(k)) want[id].push_back(rev);
      }
      total += want[id].size();
    }
    std::size_t seen = 0;
    while (seen < total) {
      auto r = clients[s]->next(10s);
      ASSERT_TRUE(r) << "stream " << s << ": " << seen << " of " << total << " events";
      for (const auto& e : r->events()) {
        got[r->watch_id()].push_back(e.kv().mod_revision());
        if (s == 1 && e.kv().version() > 1) {
          EXPECT_TRUE(e.has_prev_kv());
        }
        ++seen;
      }
    }
    EXPECT_FALSE(clients[s]->next(200ms)) << "stream " << s << ": more than expected";
    for (const auto& [id, revs] : want) {
      EXPECT_EQ(got[id], revs) << "stream " << s << " id " << id;
    }
  }
}

TEST_F(WatchServiceTest, HasLeaderStreamsAreRefusedAndEndedWithoutALeader) {
  watch_options o;
  o.election_timeout = 50ms;
  o.tick = 10ms;
  start(o);
  // With a leader: accepted.
  watch_client with(*n().watch_stub, /*hasleader=*/true);
  watch_client without(*n().watch_stub, /*hasleader=*/false);
  ASSERT_TRUE(with.create("a"));
  ASSERT_TRUE(without.create("a"));
  ASSERT_TRUE(with.next());
  ASSERT_TRUE(without.next());

  // A short loss (under 3 election timeouts) ends nothing.
  leader_override = true;
  std::this_thread::sleep_for(60ms);
  leader_override = false;
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(with.ended(0ms));

  const auto t0 = std::chrono::steady_clock::now();
  leader_override = true;
  // A new stream demanding a leader is refused at once.
  watch_client refused(*n().watch_stub, true);
  auto st = refused.ended(2s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st->error_message(), "etcdserver: no leader");
  // The open one is ended after 3 election timeouts; the one without hasleader stays.
  auto ended = with.ended(3s);
  ASSERT_TRUE(ended);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 95ms);
  EXPECT_EQ(ended->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ended->error_message(), "etcdserver: no leader");
  EXPECT_FALSE(without.ended(200ms));
  leader_override = false;
  n().put("a", "1");
  auto ev = without.next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->events_size(), 1);
}

// A client that sends many requests without reading is read from again once its answers leave;
// nothing is lost and the order holds.
TEST_F(WatchServiceTest, ManyRequestsFromAClientThatDoesNotRead) {
  start();
  watch_client c(*n().watch_stub);
  c.pause();
  constexpr int watchers = 1500;
  std::thread sender([&] {
    for (int i = 0; i < watchers; ++i) ASSERT_TRUE(c.create("m/" + std::to_string(i)));
  });
  std::this_thread::sleep_for(300ms);
  c.resume();
  sender.join();
  for (int i = 0; i < watchers; ++i) {
    auto r = c.next();
    ASSERT_TRUE(r) << i;
    ASSERT_TRUE(r->created());
    ASSERT_EQ(r->watch_id(), i);
  }
  const std::int64_t rev = n().put("m/7", "x");
  auto ev = c.next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->watch_id(), 7);
  expect_header(*ev, rev);
}

TEST_F(WatchServiceTest, HalfCloseKeepsTheStream) {
  start();
  watch_client c(*n().watch_stub);
  ASSERT_TRUE(c.create("a"));
  ASSERT_TRUE(c.next());
  ASSERT_TRUE(c.half_close());
  std::this_thread::sleep_for(100ms);
  const std::int64_t rev = n().put("a", "1");
  auto r = c.next();
  ASSERT_TRUE(r) << "etcd keeps sending after the client's half-close";
  expect_header(*r, rev);
  EXPECT_FALSE(c.ended(0ms));
}

TEST_F(WatchServiceTest, StreamsAreForgottenWhenClientsLeave) {
  start();
  {
    watch_client c(*n().watch_stub);
    ASSERT_TRUE(c.create("a"));
    ASSERT_TRUE(c.next());
    EXPECT_EQ(n().watch->stream_count(), 1u);
  }
  for (int i = 0; i < 100 && n().watch->stream_count() != 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(n().watch->stream_count(), 0u);
  EXPECT_EQ(n().node->watchable().group_sizes().synced, 0u);
}

}  // namespace
}  // namespace cairn::v3rpc
