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
// A `hasleader` KeepAlive stream is ended with "etcdserver: no leader" after 3 election timeouts
// without a leader (a thread of the service looks every election timeout), as etcd ends it.
//
// Thread-safety: the set of `hasleader` streams has its own mutex; reactors own their buffers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "etcdserver/server.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace cairn::v3rpc {

struct lease_options {
  // A `hasleader` KeepAlive stream ends after this many election timeouts in a row without a
  // leader, as etcd's monitorLeader ends it (0 below: --election-timeout, else 1 s).
  int max_no_leader_count = 3;
  std::chrono::milliseconds election_timeout{0};
  // The leader as the node sees it (0: none). Empty: node.leader(). Tests replace it.
  std::function<std::uint64_t()> leader;
};

class lease_service final
    : public etcdserverpb::Lease::WithCallbackMethod_LeaseKeepAlive<etcdserverpb::Lease::Service> {
 public:
  explicit lease_service(etcdserver::server& node, lease_options options = {});
  ~lease_service() override;
  lease_service(const lease_service&) = delete;
  lease_service& operator=(const lease_service&) = delete;
  // Stops the leader monitor (before the node goes away). Idempotent.
  void stop();

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
  class keep_alive;
  void add_stream(keep_alive* s);
  void remove_stream(keep_alive* s);
  void monitor();

  etcdserver::server& node_;
  lease_options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                     // guarded by mu_
  std::set<keep_alive*> leader_streams_;  // guarded by mu_
  std::thread monitor_;
};

}  // namespace cairn::v3rpc
