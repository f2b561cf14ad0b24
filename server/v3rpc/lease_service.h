// v3rpc/lease_service.h: etcdserverpb.Lease over the node (etcdserver::server's lease calls).
//
//   LeaseGrant       through raft; ID 0 lets the server choose; TTL raised to the minimum
//                    (1.5 election timeouts), above 9000000000 "etcdserver: too large lease TTL".
//   LeaseRevoke      through raft; the attached keys are deleted in one revision, which the
//                    header carries. Unknown ID: "etcdserver: requested lease not found".
//   LeaseKeepAlive   bidirectional stream, served by a callback-API reactor (the design's choice):
//                    each request renews on the leader's lessor, which never blocks (no raft
//                    round; a checkpoint reset is proposed without waiting), so the reactor
//                    answers on gRPC's callback thread. Requests on one stream are answered in
//                    order, one at a time. An unknown or expired lease answers TTL 0 (etcd turns
//                    ErrLeaseNotFound into TTL 0); any other error ends the stream with it.
//   LeaseTimeToLive  read locally; an unknown ID answers TTL -1 (not an error), as etcd does.
//                    With keys=true the attached keys come sorted (etcd: map order).
//   LeaseLeases      read locally, soonest expiry first.
// Headers carry cluster id, member id, raft term and the store's revision (the revoke's own
// revision for LeaseRevoke). A call with metadata `hasleader: true` fails with "etcdserver: no
// leader" while there is none.
//
// Thread-safety: no mutable state of its own; reactors own their stream's buffers.
#pragma once

#include "etcdserver/server.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace cairn::v3rpc {

class lease_service final
    : public etcdserverpb::Lease::WithCallbackMethod_LeaseKeepAlive<etcdserverpb::Lease::Service> {
 public:
  explicit lease_service(etcdserver::server& node) : node_(node) {}

  grpc::Status LeaseGrant(grpc::ServerContext* ctx, const etcdserverpb::LeaseGrantRequest* req,
                          etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::Status LeaseRevoke(grpc::ServerContext* ctx, const etcdserverpb::LeaseRevokeRequest* req,
                           etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* ctx,
                               const etcdserverpb::LeaseTimeToLiveRequest* req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::Status LeaseLeases(grpc::ServerContext* ctx, const etcdserverpb::LeaseLeasesRequest* req,
                           etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  etcdserver::server& node_;
};

}  // namespace cairn::v3rpc
