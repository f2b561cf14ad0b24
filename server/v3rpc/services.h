// v3rpc/services.h: the etcdserverpb services a single member answers, over the node
// (etcdserver::server): KV (Range, Put, DeleteRange, Txn, Compact), Maintenance (Alarm, Status,
// Defragment, Hash, HashKV, Snapshot, MoveLeader) and Cluster (MemberList). The other methods of
// these services are left to the generated base class, which answers UNIMPLEMENTED.
//
// Maintenance, where it is not obvious:
//   Snapshot    streams a consistent copy of the backend as etcd does: the db bytes in chunks of
//               32 KiB, each with `remaining_bytes` = db bytes still to come after it, then one
//               last message whose blob is the SHA-256 of all the db bytes (remaining_bytes 0).
//               A client that concatenates the blobs (etcdctl snapshot save) gets db + 32-byte
//               SHA-256, the layout etcd's restore checks. The db is an LMDB file, not bbolt:
//               etcdctl `snapshot status/restore` cannot read it (docs/compatibility.md). The copy
//               is made first into an unnamed file beside the db (etcdserver::server::snapshot), so
//               writes go on during the stream and cannot change it. Unlike etcd, which sends no
//               header, the first message carries one: every write up to its revision is in the
//               copy.
//   Hash        a CRC-32C of the whole committed backend, defined byte for byte at
//               etcdserver::backend_hash (server.h); meant to compare Cairn members with each
//               other, never equal to etcd's number for the same data.
//   MoveLeader  as etcd: "etcdserver: not leader" unless this member leads, "etcdserver: bad
//               leader transferee" (FailedPrecondition) unless the target is a voting member; a
//               move to the current leader succeeds at once (raft ignores it). The membership is
//               this member alone, so that is every case for now. Like etcd, the response has no
//               header.
//
// The services use gRPC's synchronous API: every node call blocks until the request is applied,
// so each call holds a thread of gRPC's sync pool, not a callback thread.
//
// Before anything is proposed the requests are checked as etcd's v3rpc layer checks them (empty
// key, too many txn operations, a key written twice in one txn, ignore_value/ignore_lease with a
// value/lease). A call carrying the metadata `hasleader: true` fails with "etcdserver: no
// leader" while the node knows no leader.
//
// Also here: a health_source (http/health.h) backed by the node.
//
// Thread-safety: the services are called from many gRPC threads at once; they keep no mutable
// state of their own and the node is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"
#include "etcdserver/server.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "http/health.h"

namespace cairn::v3rpc {

// What MemberList tells about this member.
struct member_info {
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
};

struct service_options {
  std::uint64_t max_txn_ops = 128;  // --max-txn-ops
  member_info self;
};

// etcd's checks of a request before it is proposed; pure, for tests.
std::optional<base::errc> check_txn(const etcdserverpb::TxnRequest& r, std::uint64_t max_txn_ops);
std::optional<base::errc> check_put(const etcdserverpb::PutRequest& r);
// MoveLeader's checks, in etcd's order: this member must lead, the target must be a voter.
std::optional<base::errc> check_move_leader(std::uint64_t self, std::uint64_t leader,
                                            const std::vector<std::uint64_t>& voters,
                                            std::uint64_t target);

// Snapshot chunk size (etcd's snapshotSendBufferSize).
inline constexpr std::size_t snapshot_chunk_bytes = 32 * 1024;

// Conversions between the wire types and the node's.
mvcc::range_request from_wire(const etcdserverpb::RangeRequest& r);
mvcc::put_request from_wire(const etcdserverpb::PutRequest& r);
mvcc::delete_range_request from_wire(const etcdserverpb::DeleteRangeRequest& r);
mvcc::txn_request from_wire(const etcdserverpb::TxnRequest& r);
void to_wire(const mvcc::txn_response& r, etcdserverpb::TxnResponse& out);

class kv_service final : public etcdserverpb::KV::Service {
 public:
  kv_service(etcdserver::server& node, service_options options)
      : node_(node), options_(std::move(options)) {}
  grpc::Status Range(grpc::ServerContext* ctx, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override;
  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse* resp) override;
  grpc::Status DeleteRange(grpc::ServerContext* ctx, const etcdserverpb::DeleteRangeRequest* req,
                           etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::Status Txn(grpc::ServerContext* ctx, const etcdserverpb::TxnRequest* req,
                   etcdserverpb::TxnResponse* resp) override;
  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override;

 private:
  etcdserver::server& node_;
  service_options options_;
};

class maintenance_service final : public etcdserverpb::Maintenance::Service {
 public:
  explicit maintenance_service(etcdserver::server& node) : node_(node) {}
  grpc::Status Alarm(grpc::ServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                     etcdserverpb::AlarmResponse* resp) override;
  grpc::Status Status(grpc::ServerContext* ctx, const etcdserverpb::StatusRequest* req,
                      etcdserverpb::StatusResponse* resp) override;
  grpc::Status Defragment(grpc::ServerContext* ctx, const etcdserverpb::DefragmentRequest* req,
                          etcdserverpb::DefragmentResponse* resp) override;
  grpc::Status HashKV(grpc::ServerContext* ctx, const etcdserverpb::HashKVRequest* req,
                      etcdserverpb::HashKVResponse* resp) override;
  grpc::Status Hash(grpc::ServerContext* ctx, const etcdserverpb::HashRequest* req,
                    etcdserverpb::HashResponse* resp) override;
  grpc::Status Snapshot(grpc::ServerContext* ctx, const etcdserverpb::SnapshotRequest* req,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override;
  grpc::Status MoveLeader(grpc::ServerContext* ctx, const etcdserverpb::MoveLeaderRequest* req,
                          etcdserverpb::MoveLeaderResponse* resp) override;

 private:
  etcdserver::server& node_;
};

class cluster_service final : public etcdserverpb::Cluster::Service {
 public:
  cluster_service(etcdserver::server& node, member_info self)
      : node_(node), self_(std::move(self)) {}
  grpc::Status MemberList(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;

 private:
  etcdserver::server& node_;
  member_info self_;
};

class node_health final : public http::health_source {
 public:
  explicit node_health(etcdserver::server& node) : node_(node) {}
  std::vector<http::alarm_type> alarms() override;
  bool has_leader() override;
  cairn::expected<void, base::errc> read_probe(bool serializable) override;
  bool is_learner() override { return false; }

 private:
  etcdserver::server& node_;
};

}  // namespace cairn::v3rpc
