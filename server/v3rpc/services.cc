#include "v3rpc/services.h"

#include <sched.h>

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "base/log.h"
#include "base/version.h"
#include "spdlog/spdlog.h"
#include "v3rpc/errors.h"

namespace cairn::v3rpc {

std::optional<base::errc> leader_required(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, bool has_leader) {
  if (has_leader) return std::nullopt;
  auto [lo, hi] = metadata.equal_range("hasleader");
  for (auto it = lo; it != hi; ++it) {
    if (std::string_view(it->second.data(), it->second.size()) == "true") {
      return base::errc::no_leader;
    }
  }
  return std::nullopt;
}

std::optional<base::errc> admit(const grpc::ServerContextBase* ctx, const etcdserver::server& node,
                                bool learner_may) {
#ifndef CAIRN_PLANTED_BUG_LEARNER_SERVES_EVERYTHING
  if (!learner_may && node.is_learner()) return base::errc::not_supported_for_learner;
#else
  (void)learner_may;  // planted bug: learners serve everything
#endif
  return leader_required(ctx->client_metadata(), node.leader() != 0);
}

std::optional<base::errc> admin(const grpc::ServerContextBase* ctx, etcdserver::server& node) {
  auto who = caller(ctx, node);
  if (!who) return who.error();
  if (auto ok = node.auth().check_admin(*who); !ok) return ok.error();
  return std::nullopt;
}

reader_pool::reader_pool(int threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      while (true) {
        std::function<void()> fn;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
          if (queue_.empty()) return;  // stopping, nothing left
          fn = std::move(queue_.front());
          queue_.pop_front();
        }
        fn();
      }
    });
  }
}

reader_pool::~reader_pool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void reader_pool::run(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void fill_header(etcdserver::server& node, std::int64_t revision, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(node.cluster_id());
  h->set_member_id(node.member_id());
  h->set_revision(revision);
  h->set_raft_term(node.term());
}

void to_wire(const mvcc::key_value& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

namespace {

// The public conversions overload with the helpers below.
using v3rpc::from_wire;
using v3rpc::to_wire;

grpc::Status fail(base::errc e) { return to_grpc_status(e); }

// etcd's isTxnSerializable: every operation of both branches is a serializable range.
bool txn_serializable(const etcdserverpb::TxnRequest& r) {
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      if (!op.has_request_range() || !op.request_range().serializable()) return false;
    }
  }
  return true;
}

void to_wire(const mvcc::range_response& r, etcdserverpb::RangeResponse& out) {
  for (const auto& kv : r.kvs) to_wire(kv, out.add_kvs());
  out.set_more(r.more);
  out.set_count(r.count);
}

void to_wire(const mvcc::put_response& r, etcdserverpb::PutResponse& out) {
  if (r.prev_kv) to_wire(*r.prev_kv, out.mutable_prev_kv());
}

void to_wire(const mvcc::delete_range_response& r, etcdserverpb::DeleteRangeResponse& out) {
  out.set_deleted(r.deleted);
  for (const auto& kv : r.prev_kvs) to_wire(kv, out.add_prev_kvs());
}

bool is_empty_key(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      return op.request_range().key().empty();
    case etcdserverpb::RequestOp::kRequestPut:
      return op.request_put().key().empty();
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return op.request_delete_range().key().empty();
    default:
      return false;
  }
}

// The keys one branch writes: single puts and deleted ranges.
struct written {
  std::set<std::string> puts;
  std::vector<std::pair<std::string, std::string>> deletes;  // [key, range_end) as in the API
};

bool in_range(const std::string& k, const std::pair<std::string, std::string>& r) {
  if (r.second.empty()) return k == r.first;
  if (r.second == std::string_view("\0", 1)) return k >= r.first;
  return k >= r.first && k < r.second;
}

std::optional<base::errc> check_ops(
    const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops,
    std::uint64_t max_txn_ops, written& w);

std::optional<base::errc> check_nested(const etcdserverpb::TxnRequest& t, std::uint64_t max_txn_ops,
                                       written& outer) {
  if (auto e = check_txn(t, max_txn_ops)) return e;
  // The nested branches exclude each other, so each may write what the other writes; what
  // either writes must not collide with the enclosing branch.
  written a, b;
  if (auto e = check_ops(t.success(), max_txn_ops, a)) return e;
  if (auto e = check_ops(t.failure(), max_txn_ops, b)) return e;
#ifndef CAIRN_PLANTED_BUG_NESTED_TXN_DUPLICATE
  for (const auto* side : {&a, &b}) {
    for (const auto& k : side->puts) {
      if (outer.puts.contains(k)) return base::errc::duplicate_key;
    }
  }
#endif
  for (const auto* side : {&a, &b}) {
    outer.puts.insert(side->puts.begin(), side->puts.end());
    outer.deletes.insert(outer.deletes.end(), side->deletes.begin(), side->deletes.end());
  }
  return std::nullopt;
}

std::optional<base::errc> check_ops(
    const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops,
    std::uint64_t max_txn_ops, written& w) {
  for (const auto& op : ops) {
    if (is_empty_key(op)) return base::errc::empty_key;
    switch (op.request_case()) {
      case etcdserverpb::RequestOp::kRequestPut:
        if (auto e = check_put(op.request_put())) return e;
        if (!w.puts.insert(op.request_put().key()).second) return base::errc::duplicate_key;
        break;
      case etcdserverpb::RequestOp::kRequestDeleteRange:
        w.deletes.emplace_back(op.request_delete_range().key(),
                               op.request_delete_range().range_end());
        break;
      case etcdserverpb::RequestOp::kRequestTxn:
        if (auto e = check_nested(op.request_txn(), max_txn_ops, w)) return e;
        break;
      default:
        break;
    }
  }
  for (const auto& k : w.puts) {
    for (const auto& d : w.deletes) {
      if (in_range(k, d)) return base::errc::duplicate_key;
    }
  }
  return std::nullopt;
}

mvcc::compare from_wire(const etcdserverpb::Compare& c) {
  mvcc::compare out;
  out.key = c.key();
  out.range_end = c.range_end();
  out.result = static_cast<mvcc::compare_result>(c.result());
  switch (c.target()) {
    case etcdserverpb::Compare::VERSION:
      out.target = mvcc::compare_target::version;
      out.number = c.version();
      break;
    case etcdserverpb::Compare::CREATE:
      out.target = mvcc::compare_target::create;
      out.number = c.create_revision();
      break;
    case etcdserverpb::Compare::MOD:
      out.target = mvcc::compare_target::mod;
      out.number = c.mod_revision();
      break;
    case etcdserverpb::Compare::VALUE:
      out.target = mvcc::compare_target::value;
      out.value = c.value();
      break;
    case etcdserverpb::Compare::LEASE:
      out.target = mvcc::compare_target::lease;
      out.number = c.lease();
      break;
    default:
      break;
  }
  return out;
}

std::optional<mvcc::request_op> from_wire(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      return mvcc::request_op{from_wire(op.request_range())};
    case etcdserverpb::RequestOp::kRequestPut:
      return mvcc::request_op{from_wire(op.request_put())};
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return mvcc::request_op{from_wire(op.request_delete_range())};
    case etcdserverpb::RequestOp::kRequestTxn:
      return mvcc::request_op{mvcc::box<mvcc::txn_request>(from_wire(op.request_txn()))};
    default:
      return std::nullopt;  // an empty op: etcd skips it too
  }
}

template <class... F>
struct overload : F... {
  using F::operator()...;
};

void to_wire(const mvcc::response_op& r, std::int64_t revision, etcdserverpb::ResponseOp& out) {
  // Inner responses carry only the revision in their header, as etcd's apply fills them.
  std::visit(overload{[&](const mvcc::range_response& x) {
                        auto* o = out.mutable_response_range();
                        o->mutable_header()->set_revision(x.revision);
                        to_wire(x, *o);
                      },
                      [&](const mvcc::put_response& x) {
                        auto* o = out.mutable_response_put();
                        o->mutable_header()->set_revision(revision);
                        to_wire(x, *o);
                      },
                      [&](const mvcc::delete_range_response& x) {
                        auto* o = out.mutable_response_delete_range();
                        o->mutable_header()->set_revision(revision);
                        to_wire(x, *o);
                      },
                      [&](const mvcc::box<mvcc::txn_response>& x) {
                        auto* o = out.mutable_response_txn();
                        o->mutable_header()->set_revision(revision);
                        to_wire(*x, *o);
                      }},
             r.op);
}

base::errc from_mvcc(mvcc::errc e) {
  switch (e) {
    case mvcc::errc::compacted:
      return base::errc::compacted;
    case mvcc::errc::future_rev:
      return base::errc::future_rev;
    default:
      return base::errc::key_not_found;
  }
}

}  // namespace

std::optional<base::errc> check_put(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return base::errc::empty_key;
  if (r.ignore_value() && !r.value().empty()) return base::errc::value_provided;
  if (r.ignore_lease() && r.lease() != 0) return base::errc::lease_provided;
  return std::nullopt;
}

std::optional<base::errc> check_move_leader(std::uint64_t self, std::uint64_t leader,
                                            const std::vector<std::uint64_t>& voters,
                                            std::uint64_t target) {
  if (self != leader) return base::errc::not_leader;
  if (std::find(voters.begin(), voters.end(), target) == voters.end()) {
    return base::errc::bad_leader_transferee;
  }
  return std::nullopt;
}

std::optional<base::errc> check_txn(const etcdserverpb::TxnRequest& r, std::uint64_t max_txn_ops) {
  auto too_many = [&](int n) { return static_cast<std::uint64_t>(n) > max_txn_ops; };
  if (too_many(r.compare_size()) || too_many(r.success_size()) || too_many(r.failure_size())) {
    return base::errc::too_many_ops;
  }
  written s, f;
  if (auto e = check_ops(r.success(), max_txn_ops, s)) return e;
  if (auto e = check_ops(r.failure(), max_txn_ops, f)) return e;
  return std::nullopt;
}

mvcc::range_request from_wire(const etcdserverpb::RangeRequest& r) {
  mvcc::range_request out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.limit = r.limit();
  out.revision = r.revision();
  out.order = static_cast<mvcc::sort_order>(r.sort_order());
  out.target = static_cast<mvcc::sort_target>(r.sort_target());
  out.keys_only = r.keys_only();
  out.count_only = r.count_only();
  out.min_mod_revision = r.min_mod_revision();
  out.max_mod_revision = r.max_mod_revision();
  out.min_create_revision = r.min_create_revision();
  out.max_create_revision = r.max_create_revision();
  return out;
}

mvcc::put_request from_wire(const etcdserverpb::PutRequest& r) {
  mvcc::put_request out;
  out.key = r.key();
  out.value = r.value();
  out.lease = r.lease();
  out.prev_kv = r.prev_kv();
  out.ignore_value = r.ignore_value();
  out.ignore_lease = r.ignore_lease();
  return out;
}

mvcc::delete_range_request from_wire(const etcdserverpb::DeleteRangeRequest& r) {
  mvcc::delete_range_request out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.prev_kv = r.prev_kv();
  return out;
}

mvcc::txn_request from_wire(const etcdserverpb::TxnRequest& r) {
  mvcc::txn_request out;
  for (const auto& c : r.compare()) out.compares.push_back(from_wire(c));
  for (const auto& op : r.success()) {
    if (auto o = from_wire(op)) out.success.push_back(std::move(*o));
  }
  for (const auto& op : r.failure()) {
    if (auto o = from_wire(op)) out.failure.push_back(std::move(*o));
  }
  return out;
}

void to_wire(const mvcc::txn_response& r, etcdserverpb::TxnResponse& out) {
  out.set_succeeded(r.succeeded);
  for (const auto& op : r.responses) to_wire(op, r.revision, *out.add_responses());
}

grpc::ServerUnaryReactor* kv_service::Range(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::RangeRequest* req,
                                            etcdserverpb::RangeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auto e = admit(ctx, node_, req->serializable())) return reactor->Finish(fail(*e)), reactor;
  if (req->key().empty()) return reactor->Finish(fail(base::errc::empty_key)), reactor;
  auto who = caller(ctx, node_);
  if (!who) return reactor->Finish(fail(who.error())), reactor;
  auto read = [this, reactor, req, resp, who = *who] {
    auto r = node_.range(from_wire(*req), /*serializable=*/true, who);  // the local read
    if (!r) return reactor->Finish(fail(r.error()));
    to_wire(*r, *resp);
    fill_header(node_, r->revision, resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  if (req->serializable()) {
    read();
    return reactor;
  }
  // Linearizable: once the ReadIndex round and the apply thread allow it, read on a reader
  // thread (the callback comes on the raft loop or the apply thread, which must not read).
  node_.read_index_async([this, reactor, read](cairn::expected<void, base::errc> ok) {
    if (!ok) return reactor->Finish(fail(ok.error()));
    readers_.run(read);
  });
  return reactor;
}

// What a completion queue hands back: a call whose request arrived, or whose answer went out.
struct kv_service::tag {
  virtual ~tag() = default;
  virtual void on_event(bool ok) = 0;
};

// One unary write served through the asynchronous API: requested on a queue, handed to the
// node when its request arrives (a new call of the method is requested then), answered once
// from whichever thread learns the outcome, and deleted when the answer is out or the server
// shuts down.
template <class Req, class Resp>
class kv_service::async_call final : public kv_service::tag {
 public:
  using request_fn = void (kv_service::*)(grpc::ServerContext*, Req*,
                                          grpc::ServerAsyncResponseWriter<Resp>*,
                                          grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                          void*);

  // Requests a call of the method on `queue`, unless the service is stopping.
  static void request(kv_service& svc, grpc::ServerCompletionQueue* queue, request_fn method) {
    if (!svc.begin()) return;
    auto* c = new async_call(svc, queue, method);
    (svc.*method)(&c->ctx, &c->req, &c->writer_, queue, queue, c);
  }

  void on_event(bool ok) override {
    if (answering_) {  // the answer is out
      delete this;
      return;
    }
    if (ok) {
      svc_.begun();  // before ended(): stop() must not see nothing outstanding meanwhile
      request(svc_, queue_, request_);
    }
    svc_.ended();  // the request came, or failed because the server shut down
    if (!ok) {
      delete this;
      return;
    }
    svc_.serve(this);
  }

  // Exactly once per call that was served, from any thread.
  void finish(const grpc::Status& status) {
    kv_service& svc = svc_;  // `this` may be gone as soon as the answer is started
    answering_ = true;
    if (status.ok()) {
      writer_.Finish(resp, status, this);
    } else {
      writer_.FinishWithError(status, this);
    }
    svc.ended();
  }

  grpc::ServerContext ctx;
  Req req;
  Resp resp;

 private:
  async_call(kv_service& svc, grpc::ServerCompletionQueue* queue, request_fn request)
      : svc_(svc), queue_(queue), request_(request) {}

  kv_service& svc_;
  grpc::ServerCompletionQueue* queue_;
  request_fn request_;
  grpc::ServerAsyncResponseWriter<Resp> writer_{&ctx};
  bool answering_ = false;  // written before the answer starts, read when its event comes
};

// ServerBuilder calls a plugin's Finish once the server has started: the moment calls may be
// requested.
class kv_service::starter final : public grpc::ServerBuilderOption {
  class plugin final : public grpc::ServerBuilderPlugin {
   public:
    explicit plugin(kv_service& svc) : svc_(svc) {}
    std::string name() override { return "cairn.kv"; }
    void InitServer(grpc::ServerInitializer*) override {}
    void Finish(grpc::ServerInitializer*) override { svc_.start(); }
    void ChangeArguments(const std::string&, void*) override {}

   private:
    kv_service& svc_;
  };

 public:
  explicit starter(kv_service& svc) : svc_(svc) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<plugin>(svc_));
  }

 private:
  kv_service& svc_;
};

namespace {

// The cores this process may run on (a `taskset` shrinks it), 1 to 4.
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::clamp(CPU_COUNT(&set), 1, 4);
}

// Calls of each method requested ahead on each queue, so a burst of writes finds them waiting.
constexpr int calls_ahead = 16;

}  // namespace

void kv_service::register_on(grpc::ServerBuilder& b) {
  b.RegisterService(this);
  for (int i = usable_cores(); i > 0; --i) queues_.push_back(b.AddCompletionQueue());
  b.SetOption(std::make_unique<starter>(*this));
}

void kv_service::start() {
  for (auto& q : queues_) {
    for (int i = 0; i < calls_ahead; ++i) {
      put_call::request(*this, q.get(), &kv_service::RequestPut);
      delete_call::request(*this, q.get(), &kv_service::RequestDeleteRange);
      txn_call::request(*this, q.get(), &kv_service::RequestTxn);
    }
    pollers_.emplace_back([this, q = q.get()] { poll(q); });
  }
}

void kv_service::poll(grpc::ServerCompletionQueue* queue) {
  void* t = nullptr;
  bool ok = false;
  while (queue->Next(&t, &ok)) static_cast<tag*>(t)->on_event(ok);
}

void kv_service::stop() {
  {
    std::unique_lock lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    idle_.wait(lock, [&] { return outstanding_ == 0; });
    stopped_ = true;
  }
  for (auto& q : queues_) q->Shutdown();
  if (pollers_.empty()) {
    for (auto& q : queues_) poll(q.get());  // the server never started: nothing to drain
  }
  for (auto& t : pollers_) t.join();
}

kv_service::~kv_service() { stop(); }

bool kv_service::begin() {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  ++outstanding_;
  return true;
}

void kv_service::begun() {
  std::lock_guard lock(mu_);
  ++outstanding_;
}

void kv_service::ended() {
  std::lock_guard lock(mu_);
  if (--outstanding_ == 0) idle_.notify_all();
}

// What the node answers to a write, sent back on `c`.
template <class Call>
auto kv_service::reply(Call* c) {
  return [this, c](auto r) {
    if (!r) return c->finish(fail(r.error()));
    to_wire(*r, c->resp);
    fill_header(node_, r->revision, c->resp.mutable_header());
    c->finish(grpc::Status::OK);
  };
}

void kv_service::serve(put_call* c) {
  if (auto e = admit(&c->ctx, node_)) return c->finish(fail(*e));
  if (auto e = check_put(c->req)) return c->finish(fail(*e));
  auto who = caller(&c->ctx, node_);
  if (!who) return c->finish(fail(who.error()));
  node_.put_async(from_wire(c->req), reply(c), *who);
}

void kv_service::serve(delete_call* c) {
  if (auto e = admit(&c->ctx, node_)) return c->finish(fail(*e));
  if (c->req.key().empty()) return c->finish(fail(base::errc::empty_key));
  auto who = caller(&c->ctx, node_);
  if (!who) return c->finish(fail(who.error()));
  node_.delete_range_async(from_wire(c->req), reply(c), *who);
}

void kv_service::serve(txn_call* c) {
  if (auto e = admit(&c->ctx, node_)) return c->finish(fail(*e));
  if (auto e = check_txn(c->req, options_.max_txn_ops)) return c->finish(fail(*e));
  auto t = from_wire(c->req);
  auto answer = [send = reply(c)](cairn::expected<mvcc::txn_response, base::errc> r) {
    send(std::move(r));
  };
  auto who = caller(&c->ctx, node_);
  if (!who) return c->finish(fail(who.error()));
  if (!mvcc::is_read_only(t)) {
    node_.txn_async(t, std::move(answer), *who);
  } else if (txn_serializable(c->req)) {
    answer(node_.txn(t, true, *who));  // a local read: quick, so on this poller thread
  } else {
    // Linearizable: after the ReadIndex round, read on a reader thread.
    node_.read_index_async([this, t = std::move(t), answer = std::move(answer),
                            who = *who](cairn::expected<void, base::errc> ok) mutable {
      if (!ok) return answer(cairn::unexpected(ok.error()));
      readers_.run([this, t = std::move(t), answer = std::move(answer), who] {
        answer(node_.txn(t, /*serializable=*/true, who));
      });
    });
  }
}

grpc::Status kv_service::Compact(grpc::ServerContext* ctx,
                                 const etcdserverpb::CompactionRequest* req,
                                 etcdserverpb::CompactionResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto who = caller(ctx, node_); !who) return fail(who.error());  // a bad token, as etcd
  auto r = node_.compact(req->revision(), req->physical());
  if (!r) return fail(r.error());
  fill_header(node_, r->revision, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::Alarm(grpc::ServerContext* ctx,
                                        const etcdserverpb::AlarmRequest* req,
                                        etcdserverpb::AlarmResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto who = caller(ctx, node_); !who) return fail(who.error());
  // Values outside the enums never reach raft (an entry the apply cannot decode would stop
  // every member); etcd answers them with nothing.
  if (req->action() < 0 || req->action() > 2 || req->alarm() < 0 || req->alarm() > 2) {
    fill_header(node_, node_.store().rev(), resp->mutable_header());
    return grpc::Status::OK;
  }
  etcdserver::alarm_request a;
  a.action = static_cast<etcdserver::alarm_action>(req->action());
  a.member_id = req->memberid();
  a.alarm = static_cast<etcdserver::alarm_type>(req->alarm());
  auto r = node_.alarm(a);
  if (!r) return fail(r.error());
  for (const auto& m : *r) {
    auto* out = resp->add_alarms();
    out->set_memberid(m.member_id);
    out->set_alarm(static_cast<etcdserverpb::AlarmType>(m.alarm));
  }
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::Status(grpc::ServerContext* ctx,
                                         const etcdserverpb::StatusRequest*,
                                         etcdserverpb::StatusResponse* resp) {
  if (auto e = admit(ctx, node_, /*learner_may=*/true)) return fail(*e);
  auto s = node_.status();
  resp->set_version(std::string(base::etcd_version));
  resp->set_dbsize(static_cast<std::int64_t>(s.db_size));
  resp->set_dbsizeinuse(static_cast<std::int64_t>(s.db_size_in_use));
  resp->set_leader(s.leader);
  resp->set_raftindex(node_.committed_index());
  resp->set_raftterm(s.raft_term);
  resp->set_islearner(node_.is_learner());
  resp->set_raftappliedindex(s.applied_index);
  if (s.leader == 0) resp->add_errors(std::string(base::message(base::errc::no_leader)));
  // Each alarm as Go's compact text form of AlarmMember, trailing space included.
  for (const auto& a : s.alarms) {
    resp->add_errors("memberID:" + std::to_string(a.member_id) + " alarm:" +
                     etcdserverpb::AlarmType_Name(static_cast<etcdserverpb::AlarmType>(a.alarm)) +
                     " ");
  }
  fill_header(node_, s.revision, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::Defragment(grpc::ServerContext* ctx,
                                             const etcdserverpb::DefragmentRequest*,
                                             etcdserverpb::DefragmentResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto r = node_.defrag();
  if (!r) return grpc::Status(grpc::StatusCode::UNKNOWN, r.error().message);
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::HashKV(grpc::ServerContext* ctx,
                                         const etcdserverpb::HashKVRequest* req,
                                         etcdserverpb::HashKVResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto r = node_.store().hash_kv(req->revision());
  if (!r) return fail(from_mvcc(r.error()));
  resp->set_hash(r->hash);
  resp->set_compact_revision(r->compact_revision);
  fill_header(node_, r->revision, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::Hash(grpc::ServerContext* ctx, const etcdserverpb::HashRequest*,
                                       etcdserverpb::HashResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto r = node_.hash();
  if (!r) return fail(r.error());
  resp->set_hash(r->hash);
  fill_header(node_, r->revision, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status maintenance_service::Snapshot(
    grpc::ServerContext* ctx, const etcdserverpb::SnapshotRequest*,
    grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto snap = node_.snapshot();
  if (!snap) return grpc::Status(grpc::StatusCode::UNKNOWN, snap.error().message);
  const std::uint64_t total = snap->file->size();
  spdlog::info("v3rpc: sending a database snapshot to a client: {} bytes at revision {}", total,
               snap->revision);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "sha256 unavailable");
  }
  const grpc::Status gone(grpc::StatusCode::CANCELLED, "the client went away");
  etcdserverpb::SnapshotResponse resp;
  std::string chunk(snapshot_chunk_bytes, '\0');
  std::uint64_t sent = 0;
  while (sent < total) {
    auto n = snap->file->read_at(sent, chunk.data(), chunk.size());
    if (!n) return grpc::Status(grpc::StatusCode::UNKNOWN, n.error().message);
    if (*n == 0) return grpc::Status(grpc::StatusCode::UNKNOWN, "snapshot copy ended early");
    sent += *n;
    std::string_view bytes(chunk.data(), *n);
    EVP_DigestUpdate(sha.get(), bytes.data(), bytes.size());
    resp.Clear();
    if (sent == *n) fill_header(node_, snap->revision, resp.mutable_header());
    resp.set_remaining_bytes(total - sent);
    resp.set_blob(bytes.data(), bytes.size());
    if (ctx->IsCancelled() || !writer->Write(resp)) return gone;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_DigestFinal_ex(sha.get(), digest, &digest_size);
  resp.Clear();
  resp.set_remaining_bytes(0);
#ifndef CAIRN_PLANTED_BUG_SNAPSHOT_NO_SHA256
  resp.set_blob(digest, digest_size);
  if (!writer->Write(resp)) return gone;
#endif
  return grpc::Status::OK;
}

grpc::Status maintenance_service::MoveLeader(grpc::ServerContext* ctx,
                                             const etcdserverpb::MoveLeaderRequest* req,
                                             etcdserverpb::MoveLeaderResponse*) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  std::vector<std::uint64_t> voters;
  for (const auto& m : node_.members().list()) {
    if (!m.is_learner) voters.push_back(m.id);
  }
  const std::uint64_t leader = node_.leader();
  if (auto e = check_move_leader(node_.member_id(), leader, voters, req->targetid())) {
    return fail(*e);
  }
  // To itself: raft ignores it and etcd's wait for the target to lead ends at once.
  if (req->targetid() == leader) return grpc::Status::OK;
  if (auto r = node_.move_leader(req->targetid()); !r) return fail(r.error());
  return grpc::Status::OK;
}

namespace {

template <typename Resp>
void fill_members(const std::vector<etcdserver::member>& ms, Resp* resp) {
  for (const auto& mem : ms) {
    auto* m = resp->add_members();
    m->set_id(mem.id);
    m->set_name(mem.name);
    for (const auto& u : mem.peer_urls) m->add_peerurls(u);
    for (const auto& u : mem.client_urls) m->add_clienturls(u);
    m->set_islearner(mem.is_learner);
  }
}

}  // namespace

grpc::Status cluster_service::MemberList(grpc::ServerContext* ctx,
                                         const etcdserverpb::MemberListRequest*,
                                         etcdserverpb::MemberListResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  fill_members(node_.members().list(), resp);
  // Membership requests carry no store revision.
  fill_header(node_, 0, resp->mutable_header());
  return grpc::Status::OK;
}

cairn::expected<std::vector<std::string>, base::errc> parse_member_urls(
    const std::vector<std::string>& peer_urls, const url_parser& parse) {
  // etcd's v3rpc parses MemberAdd's URLs before anything else (types.NewURLs: at least one).
  if (peer_urls.empty()) return cairn::unexpected(base::errc::member_bad_urls);
  std::vector<std::string> out;
  for (const auto& u : peer_urls) {
    auto c = parse ? parse(u) : std::optional<std::string>(u);
    if (!c) return cairn::unexpected(base::errc::member_bad_urls);
    out.push_back(std::move(*c));
  }
  return out;
}

grpc::Status cluster_service::MemberAdd(grpc::ServerContext* ctx,
                                        const etcdserverpb::MemberAddRequest* req,
                                        etcdserverpb::MemberAddResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto urls =
      parse_member_urls({req->peerurls().begin(), req->peerurls().end()}, opts_.parse_peer_url);
  if (!urls) return fail(urls.error());
  auto r = node_.add_member(std::move(*urls), req->islearner());
  if (!r) return fail(r.error());
  auto* m = resp->mutable_member();
  m->set_id(r->added.id);
  for (const auto& u : r->added.peer_urls) m->add_peerurls(u);
  m->set_islearner(r->added.is_learner);
  fill_members(r->members, resp);
  fill_header(node_, 0, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status cluster_service::MemberRemove(grpc::ServerContext* ctx,
                                           const etcdserverpb::MemberRemoveRequest* req,
                                           etcdserverpb::MemberRemoveResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto r = node_.remove_member(req->id());
  if (!r) return fail(r.error());
  fill_members(*r, resp);
  fill_header(node_, 0, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status cluster_service::MemberUpdate(grpc::ServerContext* ctx,
                                           const etcdserverpb::MemberUpdateRequest* req,
                                           etcdserverpb::MemberUpdateResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  // MemberUpdate's URLs are not parsed by etcd; they are compared as given.
  auto r = node_.update_member(req->id(), {req->peerurls().begin(), req->peerurls().end()});
  if (!r) return fail(r.error());
  fill_members(*r, resp);
  fill_header(node_, 0, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status cluster_service::MemberPromote(grpc::ServerContext* ctx,
                                            const etcdserverpb::MemberPromoteRequest* req,
                                            etcdserverpb::MemberPromoteResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto r = node_.promote_member(req->id());
  if (!r) return fail(r.error());
  fill_members(*r, resp);
  fill_header(node_, 0, resp->mutable_header());
  return grpc::Status::OK;
}

namespace {

using etcdserver::auth_op;
using etcdserver::auth_request;

// An auth change through raft as the caller; OK with the header, or the apply's error.
template <typename Resp>
grpc::Status change(etcdserver::server& node, const grpc::ServerContext* ctx, auth_request a,
                    Resp* resp, std::string* token = nullptr) {
  if (auto e = admit(ctx, node)) return fail(*e);
  auto who = caller(ctx, node);
  if (!who) return fail(who.error());
  auto r = node.auth_change(std::move(a), *who);
  if (!r) return fail(r.error());
  if (token != nullptr) *token = std::move(*r);
  fill_header(node, node.store().rev(), resp->mutable_header());
  return grpc::Status::OK;
}

auth_request named(auth_op op, std::string name) {
  auth_request a;
  a.op = op;
  a.name = std::move(name);
  return a;
}

}  // namespace

grpc::Status auth_service::hash_for(const grpc::ServerContext* ctx, const std::string& password,
                                    std::string* hash) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  if (auto e = admin(ctx, node_)) return fail(*e);
  auto h = node_.auth().hash_bounded(password, bcrypt_cost_);
  if (!h) return fail(h.error());
  *hash = std::move(*h);
  return grpc::Status::OK;
}

grpc::Status auth_service::AuthEnable(grpc::ServerContext* ctx,
                                      const etcdserverpb::AuthEnableRequest*,
                                      etcdserverpb::AuthEnableResponse* resp) {
  return change(node_, ctx, named(auth_op::enable, ""), resp);
}

grpc::Status auth_service::AuthDisable(grpc::ServerContext* ctx,
                                       const etcdserverpb::AuthDisableRequest*,
                                       etcdserverpb::AuthDisableResponse* resp) {
  return change(node_, ctx, named(auth_op::disable, ""), resp);
}

grpc::Status auth_service::AuthStatus(grpc::ServerContext* ctx,
                                      const etcdserverpb::AuthStatusRequest*,
                                      etcdserverpb::AuthStatusResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  resp->set_enabled(node_.auth().enabled());
  resp->set_authrevision(node_.auth().revision());
  return grpc::Status::OK;
}

grpc::Status auth_service::Authenticate(grpc::ServerContext* ctx,
                                        const etcdserverpb::AuthenticateRequest* req,
                                        etcdserverpb::AuthenticateResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  // etcd: a linearizable read point first, so the password is checked against what the
  // cluster has committed; then the token goes through raft so every member knows it. If
  // the store changed meanwhile, again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    mvcc::range_request probe;
    probe.key = std::string(1, '\0');
    probe.limit = 1;
    probe.keys_only = true;
    if (auto r = node_.range(probe); !r) return fail(r.error());
    auto checked = node_.auth().check_password(req->name(), req->password());
    if (!checked) {
      if (checked.error() != base::errc::auth_not_enabled) {
        CAIRN_LOG(warn, "invalid authentication was requested", {"user", req->name()});
      }
      return fail(checked.error());
    }
    auth_request a = named(auth_op::authenticate, req->name());
    a.secret = node_.auth().token_prefix();
    std::string token;
    if (auto st = change(node_, ctx, std::move(a), resp, &token); !st.ok()) return st;
    if (*checked == node_.auth().revision()) {
      resp->set_token(token);
      return grpc::Status::OK;
    }
  }
  return fail(base::errc::auth_old_revision);
}

grpc::Status auth_service::UserAdd(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthUserAddRequest* req,
                                   etcdserverpb::AuthUserAddResponse* resp) {
  if (req->name().empty()) return fail(base::errc::user_empty);
  auth_request a = named(auth_op::user_add, req->name());
  a.no_password = req->has_options() && req->options().no_password();
  if (!a.no_password) {
    // Hashed here, so the raft log never holds the password (etcd 3.4 logs it in clear); the
    // root role first, so nobody else can make this member hash.
    if (auto st = hash_for(ctx, req->password(), &a.secret); !st.ok()) return st;
  }
  return change(node_, ctx, std::move(a), resp);
}

grpc::Status auth_service::UserGet(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthUserGetRequest* req,
                                   etcdserverpb::AuthUserGetResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  auto who = caller(ctx, node_);
  if (!who) return fail(who.error());
  // etcd: the root role, or a user asking about itself.
  if (auto ok = node_.auth().check_admin(*who); !ok && req->name() != who->user) {
    return fail(ok.error());
  }
  auto u = node_.auth().get_user(req->name());
  if (!u) return fail(base::errc::user_not_found);
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  for (const auto& r : u->roles) resp->add_roles(r);
  return grpc::Status::OK;
}

grpc::Status auth_service::UserList(grpc::ServerContext* ctx,
                                    const etcdserverpb::AuthUserListRequest*,
                                    etcdserverpb::AuthUserListResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  auto who = caller(ctx, node_);
  if (!who) return fail(who.error());
  if (auto ok = node_.auth().check_admin(*who); !ok) return fail(ok.error());
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  for (const auto& n : node_.auth().user_names()) resp->add_users(n);
  return grpc::Status::OK;
}

grpc::Status auth_service::UserDelete(grpc::ServerContext* ctx,
                                      const etcdserverpb::AuthUserDeleteRequest* req,
                                      etcdserverpb::AuthUserDeleteResponse* resp) {
  return change(node_, ctx, named(auth_op::user_delete, req->name()), resp);
}

grpc::Status auth_service::UserChangePassword(
    grpc::ServerContext* ctx, const etcdserverpb::AuthUserChangePasswordRequest* req,
    etcdserverpb::AuthUserChangePasswordResponse* resp) {
  auth_request a = named(auth_op::user_change_password, req->name());
  if (auto st = hash_for(ctx, req->password(), &a.secret); !st.ok()) return st;
  return change(node_, ctx, std::move(a), resp);
}

grpc::Status auth_service::UserGrantRole(grpc::ServerContext* ctx,
                                         const etcdserverpb::AuthUserGrantRoleRequest* req,
                                         etcdserverpb::AuthUserGrantRoleResponse* resp) {
  auth_request a = named(auth_op::user_grant_role, req->user());
  a.role = req->role();
  return change(node_, ctx, std::move(a), resp);
}

grpc::Status auth_service::UserRevokeRole(grpc::ServerContext* ctx,
                                          const etcdserverpb::AuthUserRevokeRoleRequest* req,
                                          etcdserverpb::AuthUserRevokeRoleResponse* resp) {
  auth_request a = named(auth_op::user_revoke_role, req->name());
  a.role = req->role();
  return change(node_, ctx, std::move(a), resp);
}

grpc::Status auth_service::RoleAdd(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthRoleAddRequest* req,
                                   etcdserverpb::AuthRoleAddResponse* resp) {
  if (req->name().empty()) return fail(base::errc::role_empty);
  return change(node_, ctx, named(auth_op::role_add, req->name()), resp);
}

grpc::Status auth_service::RoleGet(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthRoleGetRequest* req,
                                   etcdserverpb::AuthRoleGetResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  auto who = caller(ctx, node_);
  if (!who) return fail(who.error());
  // etcd: the root role, or a user that has this role.
  if (auto ok = node_.auth().check_admin(*who);
      !ok && !node_.auth().has_role(who->user, req->role())) {
    return fail(ok.error());
  }
  auto r = node_.auth().get_role(req->role());
  if (!r) return fail(base::errc::role_not_found);
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  for (const auto& p : r->perms) {
    auto* out = resp->add_perm();
    out->set_permtype(static_cast<authpb::Permission_Type>(p.type));
    out->set_key(p.key);
    out->set_range_end(p.range_end);
  }
  return grpc::Status::OK;
}

grpc::Status auth_service::RoleList(grpc::ServerContext* ctx,
                                    const etcdserverpb::AuthRoleListRequest*,
                                    etcdserverpb::AuthRoleListResponse* resp) {
  if (auto e = admit(ctx, node_)) return fail(*e);
  auto who = caller(ctx, node_);
  if (!who) return fail(who.error());
  if (auto ok = node_.auth().check_admin(*who); !ok) return fail(ok.error());
  fill_header(node_, node_.store().rev(), resp->mutable_header());
  for (const auto& n : node_.auth().role_names()) resp->add_roles(n);
  return grpc::Status::OK;
}

grpc::Status auth_service::RoleDelete(grpc::ServerContext* ctx,
                                      const etcdserverpb::AuthRoleDeleteRequest* req,
                                      etcdserverpb::AuthRoleDeleteResponse* resp) {
  return change(node_, ctx, named(auth_op::role_delete, req->role()), resp);
}

grpc::Status auth_service::RoleGrantPermission(
    grpc::ServerContext* ctx, const etcdserverpb::AuthRoleGrantPermissionRequest* req,
    etcdserverpb::AuthRoleGrantPermissionResponse* resp) {
  // etcd answers a missing permission with "permission not given" (3.5).
  if (!req->has_perm()) return fail(base::errc::permission_not_given);
  // Only READ, WRITE and READWRITE go to raft: anything else could not be decoded when applied.
  if (req->perm().permtype() < 0 || req->perm().permtype() > 2) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: invalid permission type");
  }
  auth_request a = named(auth_op::role_grant_permission, req->name());
  a.perm_type = static_cast<std::uint8_t>(req->perm().permtype());
  a.key = req->perm().key();
  a.range_end = req->perm().range_end();
  return change(node_, ctx, std::move(a), resp);
}

grpc::Status auth_service::RoleRevokePermission(
    grpc::ServerContext* ctx, const etcdserverpb::AuthRoleRevokePermissionRequest* req,
    etcdserverpb::AuthRoleRevokePermissionResponse* resp) {
  auth_request a = named(auth_op::role_revoke_permission, req->role());
  a.key = req->key();
  a.range_end = req->range_end();
  return change(node_, ctx, std::move(a), resp);
}

cairn::expected<auth::auth_info, base::errc> caller(const grpc::ServerContextBase* ctx,
                                                    etcdserver::server& node) {
  auth::store& st = node.auth();
  if (!st.enabled()) return auth::auth_info{"", st.revision()};
  const auto& md = ctx->client_metadata();
  for (const char* key : {"token", "authorization"}) {
    auto it = md.find(key);
    if (it == md.end()) continue;
    const std::string token(it->second.data(), it->second.size());
    auto who = st.token_info(token);
    if (who || st.uses_jwt()) return who;
    // A simple token names the raft index that made it ("prefix.N"); a member that has not
    // applied N yet waits a little for it, as etcd does (bounded, and only for an index
    // within plausible reach, so a forged one costs nothing).
    const auto dot = token.rfind('.');
    std::uint64_t n = 0;
    if (dot == std::string::npos ||
        std::from_chars(token.data() + dot + 1, token.data() + token.size(), n).ptr !=
            token.data() + token.size()) {
      return who;
    }
    const std::uint64_t applied = node.applied_index();
    if (n <= applied || n - applied > 10000) return who;
    for (int i = 0; i < 200 && node.applied_index() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return st.token_info(token);
  }
  // No token: the common name of a verified client certificate is the user (etcd's
  // AuthInfoFromTLS), except for the gateway's calls.
  if (st.cert_login() && md.find("grpcgateway-accept") == md.end()) {
    if (auto ac = ctx->auth_context(); ac && ac->IsPeerAuthenticated()) {
      auto cn = ac->FindPropertyValues("x509_common_name");
      if (!cn.empty() && !cn.front().empty()) {
        return auth::auth_info{std::string(cn.front().data(), cn.front().size()), st.revision()};
      }
    }
  }
  return auth::auth_info{"", st.revision()};
}

std::vector<http::alarm_type> node_health::alarms() {
  std::vector<http::alarm_type> out;
  for (const auto& a : node_.alarms()) out.push_back(static_cast<http::alarm_type>(a.alarm));
  return out;
}

bool node_health::has_leader() { return node_.leader() != 0; }

cairn::expected<void, base::errc> node_health::read_probe(bool serializable) {
  mvcc::range_request r;
  r.key = "health";
  r.keys_only = true;
  r.limit = 1;
  auto res = node_.range(r, serializable);
  if (!res) return cairn::unexpected(res.error());
  return {};
}

}  // namespace cairn::v3rpc
