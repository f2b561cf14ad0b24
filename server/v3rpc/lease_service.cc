#include "v3rpc/lease_service.h"

#include <string_view>

#include "v3rpc/errors.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

bool lacks_leader(const grpc::ServerContextBase* ctx, const etcdserver::server& node) {
  return leader_required(ctx->client_metadata(), node.leader() != 0).has_value();
}

void fill(etcdserver::server& node, etcdserverpb::ResponseHeader* h, std::int64_t revision = 0) {
  h->set_cluster_id(node.cluster_id());
  h->set_member_id(node.member_id());
  h->set_revision(revision != 0 ? revision : node.store().rev());
  h->set_raft_term(node.term());
}

// One KeepAlive stream: read a request, renew, write the answer, read the next.
class keep_alive final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  explicit keep_alive(etcdserver::server& node) : node_(node) { StartRead(&req_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or the call ended)
      Finish(grpc::Status::OK);
      return;
    }
    std::int64_t ttl = 0;
    auto r = node_.lease_renew(req_.id());
    if (r) {
      ttl = *r;
    } else if (r.error() != base::errc::lease_not_found) {
      Finish(to_grpc_status(r.error()));
      return;
    }
    resp_.Clear();
    fill(node_, resp_.mutable_header());
    resp_.set_id(req_.id());
    resp_.set_ttl(ttl);
    StartWrite(&resp_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "context canceled"));
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  etcdserver::server& node_;
  LeaseKeepAliveRequest req_;
  LeaseKeepAliveResponse resp_;
};

// A stream that ends at once with `status`.
class refused final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  explicit refused(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::Status lease_service::LeaseGrant(grpc::ServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) {
  if (lacks_leader(ctx, node_)) return to_grpc_status(base::errc::no_leader);
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
  if (lacks_leader(ctx, node_)) return to_grpc_status(base::errc::no_leader);
  auto rev = node_.lease_revoke(req->id());
  if (!rev) return to_grpc_status(rev.error());
  fill(node_, resp->mutable_header(), *rev);
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>*
lease_service::LeaseKeepAlive(grpc::CallbackServerContext* ctx) {
  if (lacks_leader(ctx, node_)) return new refused(to_grpc_status(base::errc::no_leader));
  return new keep_alive(node_);
}

grpc::Status lease_service::LeaseTimeToLive(grpc::ServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) {
  if (lacks_leader(ctx, node_)) return to_grpc_status(base::errc::no_leader);
  resp->set_id(req->id());
  auto st = node_.lease_time_to_live(req->id(), req->keys());
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
  if (lacks_leader(ctx, node_)) return to_grpc_status(base::errc::no_leader);
  for (auto id : node_.lease_ids()) resp->add_leases()->set_id(id);
  fill(node_, resp->mutable_header());
  return grpc::Status::OK;
}

}  // namespace cairn::v3rpc
