// v3rpc/lock_election.h: v3lockpb.Lock and v3electionpb.Election, etcd's server-side recipes
// (v3rpc/recipes.h) behind gRPC.
//
//   Lock      LockRequest{name, lease} → the key held ("name/<lease hex>") once every older
//             contender is gone and the lease is still alive (else "mutex: session is expired").
//   Unlock    deletes the key.
//   Campaign  CampaignRequest{name, lease, value} → LeaderKey{name, key, rev, lease} once this
//             contender leads.
//   Proclaim  a new value while still leader, else "election: not leader".
//   Leader    the current leader's key-value, else "election: no leader".
//   Observe   a stream of LeaderResponse: the leader now (waiting for one), each proclaimed value,
//             then the next leader's.
//   Resign    gives up leadership (deletes the key if it is still the one that won).
// Proclaim and Resign without a `leader` answer etcd's `"leader" field must be provided`. Every
// error is sent with code Unknown and etcd's text, KV errors included, as etcd sends them; only
// `hasleader` without a leader is etcd's Unavailable "etcdserver: no leader".
//
// Lock, Campaign and Observe block a thread of gRPC's synchronous pool while they wait (etcd
// blocks a goroutine); a cancelled client is noticed within 100 ms.
//
// Thread-safety: no mutable state; the node is thread-safe.
#pragma once

#include "etcdserver/server.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::v3rpc {

class lock_service final : public v3lockpb::Lock::Service {
 public:
  explicit lock_service(etcdserver::server& node) : node_(node) {}
  grpc::Status Lock(grpc::ServerContext* ctx, const v3lockpb::LockRequest* req,
                    v3lockpb::LockResponse* resp) override;
  grpc::Status Unlock(grpc::ServerContext* ctx, const v3lockpb::UnlockRequest* req,
                      v3lockpb::UnlockResponse* resp) override;

 private:
  etcdserver::server& node_;
};

class election_service final : public v3electionpb::Election::Service {
 public:
  explicit election_service(etcdserver::server& node) : node_(node) {}
  grpc::Status Campaign(grpc::ServerContext* ctx, const v3electionpb::CampaignRequest* req,
                        v3electionpb::CampaignResponse* resp) override;
  grpc::Status Proclaim(grpc::ServerContext* ctx, const v3electionpb::ProclaimRequest* req,
                        v3electionpb::ProclaimResponse* resp) override;
  grpc::Status Leader(grpc::ServerContext* ctx, const v3electionpb::LeaderRequest* req,
                      v3electionpb::LeaderResponse* resp) override;
  grpc::Status Observe(grpc::ServerContext* ctx, const v3electionpb::LeaderRequest* req,
                       grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) override;
  grpc::Status Resign(grpc::ServerContext* ctx, const v3electionpb::ResignRequest* req,
                      v3electionpb::ResignResponse* resp) override;

 private:
  etcdserver::server& node_;
};

}  // namespace cairn::v3rpc
