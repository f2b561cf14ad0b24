#include "v3rpc/lease_service.h"

#include <optional>
#include <string_view>

#include "v3rpc/errors.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

void fill(etcdserver::server& node, etcdserverpb::ResponseHeader* h, std::int64_t revision = 0) {
  h->set_cluster_id(node.cluster_id());
  h->set_member_id(node.member_id());
  h->set_revision(revision != 0 ? revision : node.store().rev());
  h->set_raft_term(node.term());
}

}  // namespace

// One KeepAlive stream: read a request, renew, write the answer, read the next. A stream whose
// metadata says `hasleader: true` is registered with the service, which ends it when the member
// has had no leader for a while. `mu_` guards the finishing state: Finish is called once, never
// while a write is outstanding.
class lease_service::keep_alive final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  keep_alive(lease_service& svc, bool require_leader) : svc_(svc), registered_(require_leader) {
    if (registered_) svc_.add_stream(this);
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or the call ended)
      finish(grpc::Status::OK);
      return;
    }
    std::int64_t ttl = 0;
    auto r = svc_.node_.lease_renew(req_.id());
    if (r) {
      ttl = *r;
    } else if (r.error() != base::errc::lease_not_found) {
      finish(to_grpc_status(r.error()));
      return;
    }
    resp_.Clear();
    fill(svc_.node_, resp_.mutable_header());
    resp_.set_id(req_.id());
    resp_.set_ttl(ttl);
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      writing_ = true;
    }
    StartWrite(&resp_);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> pending;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      pending = std::move(pending_);
    }
    if (pending) return finish(*pending);
    if (!ok) return finish(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
    StartRead(&req_);
  }

  // Any thread. Ends the stream with `st` (after the write in flight, if any), once.
  void finish(const grpc::Status& st) {
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      if (writing_) {
        if (!pending_) pending_ = st;
        return;
      }
      finished_ = true;
    }
    Finish(st);
  }

  void OnDone() override {
    if (registered_) svc_.remove_stream(this);
    delete this;
  }

 private:
  lease_service& svc_;
  const bool registered_;
  LeaseKeepAliveRequest req_;
  LeaseKeepAliveResponse resp_;
  std::mutex mu_;
  bool finished_ = false;                // guarded by mu_
  bool writing_ = false;                 // guarded by mu_
  std::optional<grpc::Status> pending_;  // guarded by mu_
};

namespace {

// A stream that ends at once with `status`.
using refused = refused_stream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;

}  // namespace

grpc::Status lease_service::LeaseGrant(grpc::ServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) {
  if (auto e = admit(ctx, node_)) return to_grpc_status(*e);
  // Any user may grant; a token that is not valid is refused, as etcd's raft requests are.
  if (auto who = caller(ctx, node_); !who) return to_grpc_status(who.error());
  auto g = node_.lease_grant(req->id(), req->ttl());
  if (!g) return to_grpc_status(g.error());
  fill(node_, resp->mutable_header(), g->revision);
  resp->set_id(g->id);
  resp->set_ttl(g->ttl);
  return grpc::Status::OK;
}

grpc::Status lease_service::LeaseRevoke(grpc::ServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) {
  if (auto e = admit(ctx, node_)) return to_grpc_status(*e);
  auto who = caller(ctx, node_);
  if (!who) return to_grpc_status(who.error());
  auto rev = node_.lease_revoke(req->id(), *who);
  if (!rev) return to_grpc_status(rev.error());
  fill(node_, resp->mutable_header(), *rev);
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>*
lease_service::LeaseKeepAlive(grpc::CallbackServerContext* ctx) {
  if (auto e = admit(ctx, node_)) return new refused(to_grpc_status(*e));
  const bool require_leader = leader_required(ctx->client_metadata(), false).has_value();
  return new keep_alive(*this, require_leader);
}

lease_service::lease_service(etcdserver::server& node, lease_options options)
    : node_(node), options_(std::move(options)) {
  if (!options_.leader) options_.leader = [this] { return node_.leader(); };
  if (options_.election_timeout.count() <= 0) options_.election_timeout = std::chrono::seconds(1);
  monitor_ = std::thread([this] { monitor(); });
}

lease_service::~lease_service() { stop(); }

void lease_service::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
}

void lease_service::add_stream(keep_alive* s) {
  std::lock_guard lock(mu_);
  leader_streams_.insert(s);
}

void lease_service::remove_stream(keep_alive* s) {
  std::lock_guard lock(mu_);
  leader_streams_.erase(s);
}

void lease_service::monitor() {
  // etcd's monitorLeader: every election timeout, count how long there has been no leader; at
  // max_no_leader_count, end every `hasleader` stream with "etcdserver: no leader".
  int without = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, options_.election_timeout, [&] { return stop_; })) {
    if (leader_streams_.empty()) {  // nothing to end: do not even ask the node
      without = 0;
      continue;
    }
    lock.unlock();
    const bool leaderless = options_.leader() == 0;
    lock.lock();
    without = leaderless ? without + 1 : 0;
    if (without < options_.max_no_leader_count) continue;
#ifndef CAIRN_PLANTED_BUG_LEASE_KEEP_LEADERLESS_STREAMS
    for (keep_alive* s : leader_streams_) s->finish(to_grpc_status(base::errc::no_leader));
#endif
  }
}

grpc::Status lease_service::LeaseTimeToLive(grpc::ServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) {
  if (auto e = admit(ctx, node_)) return to_grpc_status(*e);
  resp->set_id(req->id());
  auto r = node_.leader_lease_time_to_live(req->id(), req->keys());
  if (!r) return to_grpc_status(r.error());
  const auto& st = *r;
  if (!st) {
    resp->set_ttl(-1);
  } else {
    resp->set_ttl(st->ttl);
    resp->set_grantedttl(st->granted_ttl);
    for (const auto& k : st->keys) resp->add_keys(k);
  }
  fill(node_, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status lease_service::LeaseLeases(grpc::ServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest*,
                                        etcdserverpb::LeaseLeasesResponse* resp) {
  if (auto e = admit(ctx, node_)) return to_grpc_status(*e);
  for (auto id : node_.lease_ids()) resp->add_leases()->set_id(id);
  fill(node_, resp->mutable_header());
  return grpc::Status::OK;
}

}  // namespace cairn::v3rpc
