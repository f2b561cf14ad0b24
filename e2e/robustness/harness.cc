#include "robustness/harness.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/e2e.h"

namespace cairn::robustness {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;

const char* to_string(fault f) {
  switch (f) {
    case fault::kill_random:
      return "kill-random";
    case fault::kill_leader:
      return "kill-leader";
    case fault::pause_random:
      return "pause-random";
    case fault::pause_leader:
      return "pause-leader";
    case fault::isolate_leader:
      return "isolate-leader";
    case fault::isolate_random:
      return "isolate-random";
    case fault::minority_leader:
      return "minority-with-leader";
    case fault::majority_leader:
      return "majority-with-leader";
    case fault::bridge:
      return "bridge";
    case fault::delay_peers:
      return "delay-peers";
    case fault::failpoint_crash:
      return "failpoint-crash";
    case fault::failpoint_sleep:
      return "failpoint-sleep";
    case fault::replace_member:
      return "replace-member";
  }
  return "?";
}

namespace {

class clock {
 public:
  nanos now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// A connection of its own (gRPC shares channels with equal arguments) that reconnects quickly
// after its member restarts.
std::shared_ptr<grpc::Channel> channel(const std::string& ep, int n) {
  grpc::ChannelArguments args;
  args.SetInt("cairn.robustness.channel", n);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return grpc::CreateCustomChannel(ep, grpc::InsecureChannelCredentials(), args);
}

// Errors after which the request certainly had no effect; anything else may have been applied.
outcome of(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::OK:
      return outcome::ok;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return outcome::failed;
    case grpc::StatusCode::UNAVAILABLE:
      // The channel had no connection, so the request was never sent (gRPC fails a call that
      // does not wait for readiness at once, with this message, while it cannot connect).
      if (st.error_message().starts_with("failed to connect to all addresses"))
        return outcome::failed;
      return outcome::unknown;
    default:
      return outcome::unknown;
  }
}

void deadline(grpc::ClientContext& ctx, std::chrono::milliseconds d) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
}

std::string prefix_end(std::string p) {
  p.back() = static_cast<char>(p.back() + 1);
  return p;
}

struct shared_state {
  clock clk;
  history h;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> seen_revision{1};
  void saw(std::int64_t rev) {
    std::int64_t cur = seen_revision.load();
    while (rev > cur && !seen_revision.compare_exchange_weak(cur, rev)) {
    }
  }
};

// One traffic client pinned to one member.
class client {
 public:
  client(int id, std::string ep, const scenario& s, shared_state& st)
      : id_(id), ep_(std::move(ep)), profile_(s.traffic), st_(st), rng_(s.seed * 1000 + id) {
    auto ch = channel(ep_, id);
    kv_ = etcdserverpb::KV::NewStub(ch);
    lease_ = etcdserverpb::Lease::NewStub(ch);
  }

  void run() {
    while (!st_.stop) {
      if (profile_ == traffic_profile::etcd)
        etcd_step();
      else
        kubernetes_step();
      // After a failure a short rest, so an unreachable member does not fill the history.
      std::this_thread::sleep_for(
          std::chrono::microseconds(rng_() % 3000 + (backoff_ ? 50000 : 0)));
      backoff_ = false;
    }
  }

  // A linearizable read of every key of the traffic, recorded (the final state).
  bool final_read(const std::string& prefix) {
    TxnRequest t;
    auto* r = t.add_success()->mutable_request_range();
    r->set_key(prefix);
    r->set_range_end(prefix_end(prefix));
    return range(t, false, 5s) == outcome::ok;
  }

 private:
  std::string value() { return "c" + std::to_string(id_) + "-" + std::to_string(next_++); }
  std::string key(int n) {
    return profile_ == traffic_profile::etcd ? "k" + std::to_string(n)
                                             : "/registry/pods/p" + std::to_string(n);
  }
  int pick(std::initializer_list<int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int x = static_cast<int>(rng_() % static_cast<unsigned>(total));
    int i = 0;
    for (int w : weights) {
      if (x < w) return i;
      x -= w;
      ++i;
    }
    return i - 1;
  }

  operation start(op_kind kind, const TxnRequest& t) {
    operation op;
    op.client = id_;
    op.kind = kind;
    op.member = ep_;
    op.txn = t;
    op.call = st_.clk.now();
    return op;
  }
  void finish(operation& op, const grpc::Status& status, std::int64_t revision) {
    op.result = of(status);
    if (op.result == outcome::unknown) backoff_ = true;
    if (op.result == outcome::ok) {
      op.ret = st_.clk.now();
      op.revision = revision;
      st_.saw(revision);
    } else {
      op.ret = op.result == outcome::failed ? st_.clk.now() : never;
      op.error = std::to_string(status.error_code()) + " " + status.error_message();
      op.txn_resp.Clear();
    }
  }

  outcome range(const TxnRequest& t, bool serializable, std::chrono::milliseconds timeout = 1s,
                etcdserverpb::RangeResponse* answer = nullptr) {
    operation op = start(op_kind::range, t);
    op.serializable = serializable;
    etcdserverpb::RangeRequest req = t.success(0).request_range();
    req.set_serializable(serializable);
    op.txn.mutable_success(0)->mutable_request_range()->set_serializable(serializable);
    grpc::ClientContext ctx;
    deadline(ctx, timeout);
    etcdserverpb::RangeResponse resp;
    grpc::Status status = kv_->Range(&ctx, req, &resp);
    op.txn_resp.set_succeeded(true);
    for (const auto& kv : resp.kvs()) known_[kv.key()] = kv.mod_revision();
    *op.txn_resp.add_responses()->mutable_response_range() = resp;
    finish(op, status, resp.header().revision());
    const outcome o = op.result;
    if (answer != nullptr) *answer = resp;
    st_.h.add(std::move(op));
    return o;
  }
  // Sends one request and records it as the txn `t`, its response placed by `wrap`.
  template <typename Resp, typename Send, typename Wrap>
  void record(op_kind kind, const TxnRequest& t, Send send, Wrap wrap) {
    operation op = start(kind, t);
    grpc::ClientContext ctx;
    deadline(ctx, 1s);
    Resp resp;
    grpc::Status status = send(ctx, resp);
    op.txn_resp.set_succeeded(true);
    wrap(*op.txn_resp.add_responses(), resp);
    finish(op, status, resp.header().revision());
    st_.h.add(std::move(op));
  }
  void put(const std::string& k, std::int64_t lease) {
    TxnRequest t;
    auto* p = t.add_success()->mutable_request_put();
    p->set_key(k);
    p->set_value(value());
    p->set_lease(lease);
    p->set_prev_kv(rng_() % 2 == 0);
    record<etcdserverpb::PutResponse>(
        op_kind::put, t, [&](auto& ctx, auto& resp) { return kv_->Put(&ctx, *p, &resp); },
        [](auto& out, const auto& resp) { *out.mutable_response_put() = resp; });
  }
  void del(const std::string& k) {
    TxnRequest t;
    auto* d = t.add_success()->mutable_request_delete_range();
    d->set_key(k);
    d->set_prev_kv(rng_() % 2 == 0);
    record<etcdserverpb::DeleteRangeResponse>(
        op_kind::del, t, [&](auto& ctx, auto& resp) { return kv_->DeleteRange(&ctx, *d, &resp); },
        [](auto& out, const auto& resp) { *out.mutable_response_delete_range() = resp; });
  }
  void txn(const TxnRequest& t) {
    operation op = start(op_kind::txn, t);
    grpc::ClientContext ctx;
    deadline(ctx, 1s);
    etcdserverpb::TxnResponse resp;
    grpc::Status status = kv_->Txn(&ctx, t, &resp);
    op.txn_resp = resp;
    for (const auto& r : resp.responses())
      for (const auto& kv : r.response_range().kvs()) known_[kv.key()] = kv.mod_revision();
    finish(op, status, resp.header().revision());
    st_.h.add(std::move(op));
  }
  void revoke() {
    operation op = start(op_kind::lease_revoke, TxnRequest{});
    op.lease = lease_id_;
    grpc::ClientContext ctx;
    deadline(ctx, 1s);
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(lease_id_);
    etcdserverpb::LeaseRevokeResponse resp;
    grpc::Status status = lease_->LeaseRevoke(&ctx, req, &resp);
    finish(op, status, resp.header().revision());
    st_.h.add(std::move(op));
    lease_id_ = 0;  // a new one for the next leased put
  }
  // A lease of this client's, granted when needed (its grant is not a revision; not recorded).
  std::int64_t lease() {
    if (lease_id_ != 0) return lease_id_;
    const std::int64_t id = (static_cast<std::int64_t>(id_ + 1) << 32) + ++leases_;
    grpc::ClientContext ctx;
    deadline(ctx, 1s);
    etcdserverpb::LeaseGrantRequest req;
    req.set_id(id);
    req.set_ttl(3600);
    etcdserverpb::LeaseGrantResponse resp;
    if (lease_->LeaseGrant(&ctx, req, &resp).ok()) lease_id_ = id;
    return id;  // even when the grant's outcome is unknown: a put then may fail (not found)
  }
  TxnRequest get_req(const std::string& k, const std::string& end = "", std::int64_t limit = 0) {
    TxnRequest t;
    auto* r = t.add_success()->mutable_request_range();
    r->set_key(k);
    r->set_range_end(end);
    r->set_limit(limit);
    return t;
  }

  void etcd_step() {
    const std::string k = key(static_cast<int>(rng_() % 10));
    switch (pick({15, 8, 10, 5, 20, 5, 10, 5, 5, 10})) {
      case 0:
        range(get_req(k), false);
        break;
      case 1:
        range(get_req("k", "l", static_cast<std::int64_t>(rng_() % 4)), false);
        break;
      case 2:
        range(get_req(k), true);
        break;
      case 3:
        range(get_req("k", "l"), true);
        break;
      case 4:
        put(k, 0);
        break;
      case 5:
        del(k);
        break;
      case 6: {  // two keys at one revision, or a put and a delete
        TxnRequest t;
        auto* p = t.add_success()->mutable_request_put();
        p->set_key(k);
        p->set_value(value());
        const std::string other = key(static_cast<int>((rng_() % 9 + 1 + (k[1] - '0')) % 10));
        if (rng_() % 2 == 0) {
          auto* q = t.add_success()->mutable_request_put();
          q->set_key(other);
          q->set_value(value());
        } else {
          t.add_success()->mutable_request_delete_range()->set_key(other);
        }
        txn(t);
        break;
      }
      case 7:
        put(k, lease());
        break;
      case 8:
        if (lease_id_ != 0) revoke();
        break;
      default: {  // compare-and-set on the last mod_revision this client saw
        TxnRequest t;
        auto* c = t.add_compare();
        c->set_key(k);
        c->set_target(Compare::MOD);
        c->set_result(Compare::EQUAL);
        c->set_mod_revision(known_.count(k) ? known_[k] : 0);
        auto* p = t.add_success()->mutable_request_put();
        p->set_key(k);
        p->set_value(value());
        t.add_failure()->mutable_request_range()->set_key(k);
        txn(t);
      }
    }
  }

  void kubernetes_step() {
    const std::string k = key(static_cast<int>(rng_() % 10));
    const std::string prefix = "/registry/pods/";
    const int what = pick({5, 2, 8, 5, 20, 5, 5, 50});
    auto guarded = [&](std::int64_t mod, bool remove) {
      TxnRequest t;
      auto* c = t.add_compare();
      c->set_key(k);
      c->set_target(Compare::MOD);
      c->set_result(Compare::EQUAL);
      c->set_mod_revision(mod);
      if (remove) {
        t.add_success()->mutable_request_delete_range()->set_key(k);
      } else {
        auto* p = t.add_success()->mutable_request_put();
        p->set_key(k);
        p->set_value(value());
      }
      t.add_failure()->mutable_request_range()->set_key(k);
      txn(t);
    };
    switch (what) {
      case 0:
        range(get_req(k), false);
        break;
      case 1:
        range(get_req(k), true);
        break;
      case 2: {  // a get at the revision of the last list (kube's GetRev)
        TxnRequest t = get_req(k);
        t.mutable_success(0)->mutable_request_range()->set_revision(list_rev_);
        if (list_rev_ > 0) range(t, false);
        break;
      }
      case 3:
        range(get_req(prefix, prefix_end(prefix)), true);
        break;
      case 4: {  // list in pages of 4, later pages at the first page's revision
        TxnRequest t = get_req(prefix, prefix_end(prefix), 4);
        etcdserverpb::RangeResponse page;
        if (range(t, false, 1s, &page) != outcome::ok) break;
        list_rev_ = page.header().revision();
        if (!page.more() || page.kvs().empty()) break;
        // the next page at the first page's revision, after the first page's last key
        auto* next = t.mutable_success(0)->mutable_request_range();
        next->set_key(page.kvs(page.kvs_size() - 1).key() + '\0');
        next->set_revision(list_rev_);
        range(t, false);
        break;
      }
      case 5:
        guarded(0, false);
        break;  // create
      case 6:
        guarded(known_.count(k) ? known_[k] : 0, true);
        break;  // delete
      default:
        guarded(known_.count(k) ? known_[k] : 0, false);
        break;  // update
    }
  }

  int id_;
  std::string ep_;
  traffic_profile profile_;
  shared_state& st_;
  std::mt19937_64 rng_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::map<std::string, std::int64_t> known_;  // key → the last mod_revision this client saw
  std::int64_t lease_id_ = 0;
  int leases_ = 0;
  int next_ = 0;
  std::int64_t list_rev_ = 0;
  bool backoff_ = false;
};

// A watcher on one member: one watch of the prefix per stream, resumed after the last revision
// it saw when the stream breaks, with progress requests every 250 ms.
class watcher {
 public:
  // slow: a pause after every response (a consumer that falls behind, etcd #17529)
  watcher(int id, std::string ep, std::string prefix, std::int64_t start, shared_state& st,
          std::chrono::milliseconds slow = {})
      : id_(id),
        ep_(std::move(ep)),
        prefix_(std::move(prefix)),
        start_(start),
        next_(start),
        st_(st),
        slow_(slow) {}

  void run() {
    while (!done_) {  // past the end of the traffic: finish() stops it
      stream_once();
      if (!done_) std::this_thread::sleep_for(100ms);
    }
  }
  // Stops once the watcher has been told (by events or a progress notification) of `rev`.
  bool wait_for(std::int64_t rev, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return known_ >= rev; });
  }
  void finish() {
    done_ = true;
    std::lock_guard lock(mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  int streams() const { return streams_; }
  int id() const { return id_; }
  std::int64_t start() const { return start_; }  // the first stream's start revision
  const std::string& member() const { return ep_; }

 private:
  void stream_once() {
    auto stub = etcdserverpb::Watch::NewStub(channel(ep_, 10000 + id_ * 100 + streams_));
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(mu_);
      ctx_ = &ctx;
    }
    ++streams_;
    auto stream = stub->Watch(&ctx);
    watch_record rec;
    rec.client = id_;
    rec.member = ep_;
    rec.request.set_key(prefix_);
    rec.request.set_range_end(prefix_end(prefix_));
    rec.request.set_start_revision(next_);
    rec.request.set_prev_kv(true);
    rec.request.set_progress_notify(true);
    etcdserverpb::WatchRequest create;
    *create.mutable_create_request() = rec.request;
    std::mutex write_mu;
    std::atomic<bool> open{stream->Write(create)};
    std::thread progress([&] {
      while (open && !done_) {
        std::this_thread::sleep_for(250ms);
        etcdserverpb::WatchRequest req;
        req.mutable_progress_request();
        std::lock_guard lock(write_mu);
        if (!open || !stream->Write(req)) break;
      }
    });
    etcdserverpb::WatchResponse resp;
    rec.end = "stream broken";
    while (open && stream->Read(&resp)) {
      if (slow_.count() > 0) std::this_thread::sleep_for(slow_);
      watch_response r;
      r.at = st_.clk.now();
      r.header_revision = resp.header().revision();
      r.created = resp.created();
      r.canceled = resp.canceled();
      r.compact_revision = resp.compact_revision();
      r.events.assign(resp.events().begin(), resp.events().end());
      std::int64_t told = r.header_revision;
      if (!r.events.empty()) next_ = r.events.back().kv().mod_revision() + 1;
      if (r.events.empty() && !r.created && !r.canceled) next_ = std::max(next_, told + 1);
      rec.responses.push_back(std::move(r));
      if (resp.canceled()) {
        rec.end = "canceled: " + resp.cancel_reason();
        if (resp.compact_revision() > 0) next_ = resp.compact_revision();
        break;
      }
      if (!resp.created()) {
        std::lock_guard lock(mu_);
        known_ = std::max(known_, resp.events().empty() ? told : next_ - 1);
        cv_.notify_all();
      }
    }
    open = false;
    ctx.TryCancel();
    progress.join();
    stream->Finish();
    {
      std::lock_guard lock(mu_);
      ctx_ = nullptr;
    }
    if (done_) rec.end = "run ended";
    st_.h.add(std::move(rec));
  }

  int id_;
  std::string ep_;
  std::string prefix_;
  std::int64_t start_;
  std::int64_t next_;
  shared_state& st_;
  std::chrono::milliseconds slow_;
  std::atomic<bool> done_{false};
  std::atomic<int> streams_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t known_ = 0;
  grpc::ClientContext* ctx_ = nullptr;
};

// Member status over gRPC: (member id, leader id, revision); nullopt when it does not answer.
struct member_status {
  std::uint64_t id = 0;
  std::uint64_t leader = 0;
  std::int64_t revision = 0;
};
std::optional<member_status> status_of(const std::string& ep) {
  auto stub = etcdserverpb::Maintenance::NewStub(channel(ep, 99999));
  grpc::ClientContext ctx;
  deadline(ctx, 500ms);
  etcdserverpb::StatusResponse resp;
  if (!stub->Status(&ctx, etcdserverpb::StatusRequest{}, &resp).ok()) return std::nullopt;
  return member_status{resp.header().member_id(), resp.leader(), resp.header().revision()};
}

int leader_of(e2e::cairn_cluster& c) {
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    auto s = status_of(c.endpoint(i));
    if (s && s->leader != 0 && s->leader == s->id) return i;
  }
  return -1;
}

// A membership call through a running member other than `target`, retried for 10 s while the
// cluster refuses it; `done` says which refusals mean an earlier attempt already took effect
// (its answer lost). Returns the last error, empty on success.
template <typename Call>
std::string reconfigure(e2e::cairn_cluster& c, int target, Call call, const std::string& done) {
  std::string last;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < until;) {
    for (int i = 0; i < c.size(); ++i) {
      if (i == target || !c.running(i)) continue;
      auto stub = etcdserverpb::Cluster::NewStub(channel(c.endpoint(i), 9000 + i));
      grpc::ClientContext ctx;
      deadline(ctx, 2s);
      const grpc::Status st = call(*stub, ctx);
      if (st.ok() || (!done.empty() && st.error_message() == done)) return "";
      last = st.error_message();
    }
    std::this_thread::sleep_for(200ms);
  }
  return last.empty() ? "no member to ask" : last;
}

// The replace_member fault on member `target`; an empty answer, or what went wrong.
std::string replace_member(e2e::cairn_cluster& c, int target) {
  const std::string url = c.peer_url(target);
  std::uint64_t id = 0;
  std::string err = reconfigure(
      c, target,
      [&](etcdserverpb::Cluster::Stub& stub, grpc::ClientContext& ctx) {
        etcdserverpb::MemberListResponse resp;
        grpc::Status st = stub.MemberList(&ctx, etcdserverpb::MemberListRequest{}, &resp);
        for (const auto& m : resp.members())
          if (std::find(m.peerurls().begin(), m.peerurls().end(), url) != m.peerurls().end())
            id = m.id();
        return st;
      },
      "");
  if (!err.empty() || id == 0) return "member list: " + (err.empty() ? "no " + url : err);
  err = reconfigure(
      c, target,
      [&](etcdserverpb::Cluster::Stub& stub, grpc::ClientContext& ctx) {
        etcdserverpb::MemberRemoveRequest req;
        req.set_id(id);
        etcdserverpb::MemberRemoveResponse resp;
        return stub.MemberRemove(&ctx, req, &resp);
      },
      "etcdserver: member not found");
  if (!err.empty()) return "member remove: " + err;
  // A removed member stops by itself once it applies its removal.
  bool stopped = false;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       !stopped && std::chrono::steady_clock::now() < until;) {
    stopped = !c.running(target);
    if (!stopped) std::this_thread::sleep_for(20ms);
  }
  if (!stopped) {
    c.kill(target);
    return "member remove: " + c.name(target) + " still ran 10 s after its removal";
  }
  err = reconfigure(
      c, target,
      [&](etcdserverpb::Cluster::Stub& stub, grpc::ClientContext& ctx) {
        etcdserverpb::MemberAddRequest req;
        req.add_peerurls(url);
        etcdserverpb::MemberAddResponse resp;
        return stub.MemberAdd(&ctx, req, &resp);
      },
      "etcdserver: Peer URLs already exists");
  if (!err.empty()) return "member add: " + err;
  std::filesystem::remove_all(c.data_dir(target));
  c.start(target, {"--initial-cluster-state=existing"});
  return "";
}

}  // namespace

std::string run_report::summary() const {
  std::string s =
      scenario + " seed " + std::to_string(seed) + ": " + std::to_string(kv.operations) +
      " operations (" + std::to_string(kv.acknowledged) + " acknowledged, " +
      std::to_string(kv.failed) + " failed, " + std::to_string(kv.open) + " unknown of which " +
      std::to_string(kv.open_applied) + " applied), revision " + std::to_string(kv.last_revision) +
      ", " + std::to_string(watch.events) + " watch events on " + std::to_string(watch_streams) +
      " streams, " + std::to_string(watch.progress_notifications) + " progress notifications; " +
      std::to_string(faults.size()) + " faults:";
  for (const injected_fault& f : faults) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf, " %s(m%d%s%s) at %.2fs recovered %s", to_string(f.what), f.member + 1,
        f.detail.empty() ? "" : " ", f.detail.c_str(), static_cast<double>(f.at) / 1e9,
        f.recovered < 0 ? "never"
                        : (std::to_string((f.recovered - f.healed) / 1000000) + "ms").c_str());
    s += buf;
  }
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [e, n] : errors) by_count.push_back({-n, e});
  std::sort(by_count.begin(), by_count.end());
  s += "; errors:";
  for (size_t i = 0; i < by_count.size() && i < 4; ++i)
    s += " " + std::to_string(-by_count[i].first) + "x \"" + by_count[i].second + "\"";
  s += "; linearizability: " + std::string(to_string(kv.result)) + " (" +
       std::to_string(kv.search_steps) +
       " search steps); anomalies: " + std::to_string(anomalies.size());
  for (const std::string& a : anomalies) s += "\n  " + a;
  if (!artifacts.empty()) s += "\n  history and logs saved in " + artifacts;
  return s;
}

run_report run(const scenario& s, const fs::path& dir, const fs::path& artifacts_root) {
  run_report rep;
  rep.scenario = s.name;
  rep.seed = s.seed;
  std::mt19937_64 rng(s.seed);
  shared_state st;

  e2e::cairn_cluster c(dir, s.members, s.flags);
  const bool proxies = std::any_of(s.faults.begin(), s.faults.end(), [](fault f) {
    return f != fault::kill_random && f != fault::kill_leader && f != fault::pause_random &&
           f != fault::pause_leader && f != fault::failpoint_sleep && f != fault::replace_member;
  });
  if (proxies) c.with_peer_proxies();
  auto failpoint_file = [&](int i) { return dir / (c.name(i) + ".failpoints"); };
  auto arm = [&](int i, const std::string& text) { std::ofstream(failpoint_file(i)) << text; };
  if (!s.failpoints.empty()) {
    c.use_binary(e2e::cairn_failpoints_binary());
    for (int i = 0; i < c.size(); ++i) {
      arm(i, "");
      c.set_env(i, {{"CAIRN_FAILPOINTS_FILE", failpoint_file(i).string()}});
    }
  }
  c.start_all();
  // Serving: a linearizable read through every member.
  const std::string prefix = s.traffic == traffic_profile::etcd ? "k" : "/registry/pods/";
  for (int i = 0; i < c.size(); ++i) {
    auto kv = etcdserverpb::KV::NewStub(channel(c.endpoint(i), 5000 + i));
    bool up = false;
    for (auto until = std::chrono::steady_clock::now() + 20s;
         !up && std::chrono::steady_clock::now() < until;) {
      grpc::ClientContext ctx;
      deadline(ctx, 1s);
      etcdserverpb::RangeRequest req;
      req.set_key(prefix);
      etcdserverpb::RangeResponse resp;
      up = kv->Range(&ctx, req, &resp).ok();
      if (!up) std::this_thread::sleep_for(50ms);
    }
    if (!up) rep.anomalies.push_back("harness: " + c.name(i) + " never served a read");
  }
  if (!rep.anomalies.empty()) return rep;

  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < s.clients; ++i)
    clients.push_back(std::make_unique<client>(i, c.endpoint(i % c.size()), s, st));
  std::vector<std::unique_ptr<watcher>> watchers;
  for (int i = 0; i < c.size(); ++i) {
    // one from the first revision on every member, one from "now" on the first
    watchers.push_back(std::make_unique<watcher>(100 + i, c.endpoint(i), prefix, 2, st));
  }
  watchers.push_back(std::make_unique<watcher>(200, c.endpoint(0), prefix, 0, st));
  // A slow consumer (etcd #17529), and a watch of keys nobody writes, which must still be told
  // of the final revision by progress notifications (#17507).
  watchers.push_back(std::make_unique<watcher>(201, c.endpoint(c.size() - 1), prefix, 2, st,
                                               std::chrono::milliseconds(2)));
  watchers.push_back(std::make_unique<watcher>(202, c.endpoint(0), prefix + "~quiet/", 0, st));
  std::vector<std::thread> threads;
  for (auto& cl : clients) threads.emplace_back([&cl] { cl->run(); });
  std::vector<std::thread> watch_threads;
  for (auto& w : watchers) watch_threads.emplace_back([p = w.get()] { p->run(); });
  std::thread compactor([&] {
    auto stub = etcdserverpb::KV::NewStub(channel(c.endpoint(0), 7000));
    std::int64_t done = 0;
    while (!st.stop) {
      std::this_thread::sleep_for(300ms);
      const std::int64_t target = st.seen_revision.load() - 100;
      if (target <= done) continue;
      grpc::ClientContext ctx;
      deadline(ctx, 1s);
      etcdserverpb::CompactionRequest req;
      req.set_revision(target);
      etcdserverpb::CompactionResponse resp;
      if (stub->Compact(&ctx, req, &resp).ok()) done = target;
    }
  });

  // The nemesis: one fault at a time after a second of clean traffic.
  const auto end = std::chrono::steady_clock::now() + s.duration;
  std::this_thread::sleep_for(1s);
  // A watch from 300 revisions ahead: nothing before its start, not even a notification
  // (etcd #20221).
  watchers.push_back(
      std::make_unique<watcher>(203, c.endpoint(0), prefix, st.seen_revision.load() + 300, st));
  watch_threads.emplace_back([p = watchers.back().get()] { p->run(); });
  auto pause_for = [&](int lo_ms, int hi_ms) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(lo_ms + static_cast<int>(rng() % (hi_ms - lo_ms))));
  };
  try {
    while (!s.faults.empty() && std::chrono::steady_clock::now() + 2500ms < end) {
      const fault f = s.faults[rng() % s.faults.size()];
      injected_fault inj{f};
      const int leader = leader_of(c);
      const int random = static_cast<int>(rng() % c.size());
      const bool on_leader = f == fault::kill_leader || f == fault::pause_leader ||
                             f == fault::isolate_leader || f == fault::minority_leader;
      const int target = on_leader && leader >= 0 ? leader : random;
      inj.member = target;
      inj.at = st.clk.now();
      switch (f) {
        case fault::kill_random:
        case fault::kill_leader:
          c.kill(target);
          pause_for(300, 1000);
          c.start(target);
          break;
        case fault::pause_random:
        case fault::pause_leader:
          ::kill(c.proc(target).pid(), SIGSTOP);
          pause_for(500, 2000);
          ::kill(c.proc(target).pid(), SIGCONT);
          break;
        case fault::isolate_leader:
        case fault::isolate_random:
          c.partition({target});
          pause_for(1000, 2000);
          c.heal();
          break;
        case fault::minority_leader: {
          std::set<int> side = {target};
          if (c.size() >= 5) side.insert((target + 1 + static_cast<int>(rng() % 4)) % c.size());
          c.partition(side);
          pause_for(1000, 2000);
          c.heal();
          break;
        }
        case fault::majority_leader: {
          std::set<int> side;
          const int want = (c.size() - 1) / 2;
          for (int i = 0; static_cast<int>(side.size()) < want && i < c.size() * 4; ++i) {
            const int m = static_cast<int>(rng() % c.size());
            if (m != leader) side.insert(m);
          }
          inj.member = -1;
          c.partition(side);
          pause_for(1000, 2000);
          c.heal();
          break;
        }
        case fault::bridge: {
          // {a,b} | bridge | {d,e} over a random order of the members
          std::vector<int> order(c.size());
          for (int i = 0; i < c.size(); ++i) order[i] = i;
          std::shuffle(order.begin(), order.end(), rng);
          const int mid = c.size() / 2;
          for (int i = 0; i < mid; ++i)
            for (int j = mid + 1; j < c.size(); ++j) c.cut(order[i], order[j]);
          inj.member = order[mid];
          pause_for(1000, 2000);
          c.heal();
          break;
        }
        case fault::delay_peers:
          c.delay_links(std::chrono::milliseconds(20 + rng() % 60));
          inj.member = -1;
          pause_for(1000, 2000);
          c.heal();
          break;
        case fault::failpoint_crash: {
          const std::string fp = s.failpoints[rng() % s.failpoints.size()];
          const bool rare = fp.starts_with("defrag") || fp.starts_with("compact") ||
                            fp.find("Snap") != std::string::npos;
          const int after = rare ? 0 : static_cast<int>(rng() % 20);
          arm(target, fp + "=crash-after(" + std::to_string(after) + ")");
          std::this_thread::sleep_for(100ms);  // the member reads its file every 50 ms
          std::thread helper;
          if (fp.starts_with("defrag")) {
            helper = std::thread([ep = c.endpoint(target)] {
              auto m = etcdserverpb::Maintenance::NewStub(channel(ep, 8000));
              grpc::ClientContext ctx;
              deadline(ctx, 3s);
              etcdserverpb::DefragmentResponse resp;
              (void)m->Defragment(&ctx, etcdserverpb::DefragmentRequest{}, &resp);
            });
          }
          if (fp.find("ApplySnap") != std::string::npos && c.size() > 1) {
            // Far enough behind that the leader sends its snapshot (the scenario's flags make
            // snapshots and log compaction frequent).
            c.partition({target});
            pause_for(1500, 2500);
            c.heal();
          }
          bool died = false;
          for (auto until = std::chrono::steady_clock::now() + 3s;
               !died && std::chrono::steady_clock::now() < until;) {
            died = !c.running(target);
            if (!died) std::this_thread::sleep_for(20ms);
          }
          if (helper.joinable()) helper.join();
          arm(target, "");
          inj.detail = fp + (died ? " crashed" : " not reached");
          if (died) {
            pause_for(100, 500);
            c.start(target);
          }
          break;
        }
        case fault::replace_member:
          if (c.size() < 3) break;
          if (std::string err = replace_member(c, target); !err.empty())
            rep.anomalies.push_back("harness: replacing " + c.name(target) + ": " + err);
          break;
        case fault::failpoint_sleep: {
          const std::string fp = s.failpoints[rng() % s.failpoints.size()];
          arm(target, fp + "=sleep(" + std::to_string(20 + rng() % 130) + ")");
          inj.detail = fp + " slept";
          pause_for(1000, 2000);
          arm(target, "");
          break;
        }
      }
      inj.healed = st.clk.now();
      rep.faults.push_back(inj);
      std::this_thread::sleep_for(1000ms);
    }
  } catch (const std::exception& e) {
    rep.anomalies.push_back(std::string("harness: ") + e.what());
  }
  while (std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(50ms);

  // Stop the traffic, heal everything, bring every member back.
  st.stop = true;
  for (auto& t : threads) t.join();
  compactor.join();
  c.heal();
  for (int i = 0; i < c.size(); ++i) {
    try {
      if (!c.running(i)) c.start(i);
    } catch (const std::exception& e) {
      rep.anomalies.push_back(std::string("harness: ") + e.what());
    }
  }
  // The final state, through every member (recorded, so checked).
  for (int i = 0; i < c.size(); ++i) {
    client reader(1000 + i, c.endpoint(i), s, st);
    bool ok = false;
    for (auto until = std::chrono::steady_clock::now() + 20s;
         !ok && std::chrono::steady_clock::now() < until;)
      ok = reader.final_read(prefix);
    if (!ok) rep.anomalies.push_back("durability: " + c.name(i) + " never served the final read");
  }
  // Convergence: the same revision everywhere, then the same HashKV there.
  std::int64_t final_rev = 0;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < until;) {
    std::set<std::int64_t> revs;
    for (int i = 0; i < c.size(); ++i) {
      auto ms = status_of(c.endpoint(i));
      revs.insert(ms ? ms->revision : -1);
    }
    if (revs.size() == 1 && *revs.begin() > 0) {
      final_rev = *revs.begin();
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  if (final_rev == 0) {
    rep.anomalies.push_back("convergence: the members never reached one revision");
  } else {
    std::set<std::uint32_t> hashes;
    for (int i = 0; i < c.size(); ++i) {
      auto stub = etcdserverpb::Maintenance::NewStub(channel(c.endpoint(i), 6000 + i));
      grpc::ClientContext ctx;
      deadline(ctx, 5s);
      etcdserverpb::HashKVRequest req;
      req.set_revision(final_rev);
      etcdserverpb::HashKVResponse resp;
      grpc::Status hs = stub->HashKV(&ctx, req, &resp);
      if (!hs.ok()) {
        rep.anomalies.push_back("convergence: HashKV on " + c.name(i) + ": " + hs.error_message());
        continue;
      }
      hashes.insert(resp.hash());
    }
    if (hashes.size() > 1)
      rep.anomalies.push_back("convergence: members differ in HashKV at revision " +
                              std::to_string(final_rev));
  }
  // Every watcher must be told of the final revision (events or progress) before it stops,
  // unless it watches from past it.
  for (auto& w : watchers) {
    if (can_be_told(w->start(), final_rev) && !w->wait_for(final_rev, 10s))
      rep.anomalies.push_back("watch: watcher c" + std::to_string(w->id()) + " on " + w->member() +
                              " was never told of revision " + std::to_string(final_rev));
    w->finish();
  }
  for (auto& t : watch_threads) t.join();
  for (auto& w : watchers) rep.watch_streams += w->streams();

  // Recovery: the first acknowledged write called after each fault was healed.
  const std::vector<operation> ops = st.h.operations();
  for (const operation& op : ops)
    if (op.result != outcome::ok) ++rep.errors[op.error];
  for (injected_fault& f : rep.faults) {
    for (const operation& op : ops) {
      if (op.result != outcome::ok || op.call < f.healed || op.kind == op_kind::range) continue;
      if (f.recovered < 0 || op.ret < f.recovered) f.recovered = op.ret;
    }
  }

  const std::vector<watch_record> watches = st.h.watches();
  rep.kv = check_linearizability(ops, watches);
  for (const std::string& a : rep.kv.anomalies) rep.anomalies.push_back("linearizability: " + a);
  if (rep.kv.replayed) {
    rep.watch = check_watches(watches, *rep.kv.replayed);
    for (const std::string& a : rep.watch.anomalies) rep.anomalies.push_back(a);
  }
  if (!rep.ok()) {
    const fs::path out = artifacts_root / (s.name + "-" + std::to_string(s.seed));
    std::error_code ec;
    fs::remove_all(out, ec);
    fs::create_directories(out, ec);
    std::ofstream(out / "history.jsonl") << st.h.to_json();
    std::ofstream(out / "report.txt") << rep.summary() << "\n";
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".log")
        fs::copy_file(entry.path(), out / entry.path().filename(),
                      fs::copy_options::overwrite_existing, ec);
    rep.artifacts = out.string();
  }
  return rep;
}

}  // namespace cairn::robustness
