// v3rpc/services.h: the etcdserverpb services a single member answers, over the node
// (etcdserver::server): KV (Range, Put, DeleteRange, Txn, Compact), Maintenance (Alarm, Status,
// Defragment, Hash, HashKV, Snapshot, MoveLeader), Cluster (MemberList; the membership changes
// answer etcd's errors, or UNIMPLEMENTED where etcd would carry them out) and Auth (as etcd with
// authentication disabled and no users or roles). Maintenance's other methods are left to the
// generated base class, which answers UNIMPLEMENTED.
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
// Maintenance, Cluster and Auth use gRPC's synchronous API: every node call blocks until the
// request is applied, so each call holds a thread of gRPC's sync pool. KV is served without
// blocking a thread (see kv_service).
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

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grpcpp/server_builder.h>

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

// Parses one peer URL by etcd's rules (types.NewURLs: http/https/unix/unixs, "host:port", no
// path) into its canonical spelling; nullopt if etcd would refuse it. The command line's parser
// (cmd/values.h) in the server; tests may pass their own.
using url_parser = std::function<std::optional<std::string>(std::string_view)>;

struct service_options {
  std::uint64_t max_txn_ops = 128;  // --max-txn-ops
  member_info self;
  url_parser parse_peer_url;          // null: every URL is taken as written
  bool strict_reconfig_check = true;  // --strict-reconfig-check
};

// MemberAdd's peer URLs parsed as etcd's v3rpc does before anything else: at least one, each
// valid ("etcdserver: given member URLs are invalid" otherwise), in canonical spelling.
cairn::expected<std::vector<std::string>, base::errc> parse_member_urls(
    const std::vector<std::string>& peer_urls, const url_parser& parse);

// etcd refuses a call whose metadata says `hasleader: true` with "etcdserver: no leader" while
// the member knows no leader (etcd's interceptor); other calls go on.
std::optional<base::errc> leader_required(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, bool has_leader);

// etcd's interceptors, in their order: a learner serves only Status and serializable Range
// ("etcdserver: rpc not supported for learner"; `learner_may` says the call is one of those),
// then leader_required. Every service calls it first.
std::optional<base::errc> admit(const grpc::ServerContextBase* ctx, const etcdserver::server& node,
                                bool learner_may = false);

// The caller as the auth store sees it (etcd's AuthInfoFromCtx, then AuthInfoFromTLS): the
// user of the "token" (or "authorization") metadata, invalid_auth_token when the store does
// not know it or it expired; else the common name of a verified client certificate; else
// nobody (the apply or the check then answers user_empty). Always at the store's current
// revision, unless the token was issued earlier. While auth is disabled: nobody, and tokens
// are ignored.
cairn::expected<auth::auth_info, base::errc> caller(const grpc::ServerContextBase* ctx,
                                                    etcdserver::server& node);

// etcd's authMaintenanceServer and membership checks: with auth on, the caller must have the
// root role (Defragment, Snapshot, Hash, HashKV, MoveLeader, MemberAdd/Remove/Update/Promote).
std::optional<base::errc> admin(const grpc::ServerContextBase* ctx, etcdserver::server& node);

// A stream refused before it starts: finishes at once with `status`.
template <typename Req, typename Resp>
class refused_stream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit refused_stream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
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

// The response header etcd sends: this member, the cluster, the raft term and `revision`.
void fill_header(etcdserver::server& node, std::int64_t revision, etcdserverpb::ResponseHeader* h);

// Conversions between the wire types and the node's.
void to_wire(const mvcc::key_value& kv, mvccpb::KeyValue* out);
mvcc::range_request from_wire(const etcdserverpb::RangeRequest& r);
mvcc::put_request from_wire(const etcdserverpb::PutRequest& r);
mvcc::delete_range_request from_wire(const etcdserverpb::DeleteRangeRequest& r);
mvcc::txn_request from_wire(const etcdserverpb::TxnRequest& r);
void to_wire(const mvcc::txn_response& r, etcdserverpb::TxnResponse& out);

// Runs closures on a few threads of its own: work a gRPC callback must not do on gRPC's
// threads because it blocks (a linearizable read waiting for its ReadIndex round).
class reader_pool {
 public:
  explicit reader_pool(int threads = 4);
  ~reader_pool();  // runs what is queued, then joins
  reader_pool(const reader_pool&) = delete;
  reader_pool& operator=(const reader_pool&) = delete;
  void run(std::function<void()> fn);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::vector<std::thread> threads_;
};

// Range uses gRPC's callback API; Put, DeleteRange and Txn its asynchronous API, served from
// completion queues of the service's own (one poller thread per usable core, at most 4): the
// thread that reads a write off the connection hands it to the node at once. gRPC 1.51's
// callback API runs every callback on separate threads, two thread switches a request, the
// largest cost of a small write on a busy core (docs/benchmarks.md). No thread waits for a
// proposal or a ReadIndex round: the node finishes a call from the thread that learns the
// outcome, and a linearizable read runs on a reader thread once its read point is applied.
// Compact stays synchronous (rare, and it may wait for the compaction on disk).
//
// register_on() takes the place of ServerBuilder::RegisterService; the first calls are
// requested once the builder has started the server. stop() comes after the server's Shutdown
// and before the server is destroyed (no new call may be requested of a destroyed server): it
// waits for the calls still requested (Shutdown fails them) and those with the node, then
// drains the queues. The destructor stops too, for a server that never started.
class kv_service final
    : public etcdserverpb::KV::WithCallbackMethod_Range<
          etcdserverpb::KV::WithAsyncMethod_Put<etcdserverpb::KV::WithAsyncMethod_DeleteRange<
              etcdserverpb::KV::WithAsyncMethod_Txn<etcdserverpb::KV::Service>>>> {
 public:
  kv_service(etcdserver::server& node, service_options options)
      : node_(node), options_(std::move(options)) {}
  ~kv_service() override;
  kv_service(const kv_service&) = delete;
  kv_service& operator=(const kv_service&) = delete;

  void register_on(grpc::ServerBuilder& b);
  void stop();

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest* req,
                       etcdserverpb::CompactionResponse* resp) override;

 private:
  struct tag;  // what the completion queues carry (services.cc)
  template <class Req, class Resp>
  class async_call;
  using put_call = async_call<etcdserverpb::PutRequest, etcdserverpb::PutResponse>;
  using delete_call =
      async_call<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>;
  using txn_call = async_call<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>;
  class starter;  // requests the first calls once the server runs (services.cc)

  void start();
  void poll(grpc::ServerCompletionQueue* queue);
  void serve(put_call* c);
  void serve(delete_call* c);
  void serve(txn_call* c);
  template <class Call>
  auto reply(Call* c);
  bool begin();  // a call is to be requested (false once stopping) ...
  void begun();  // ... or a call that came is to be served ...
  void ended();  // ... and its request event came, or its answer is on its way

  etcdserver::server& node_;
  service_options options_;
  reader_pool readers_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> pollers_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::size_t outstanding_ = 0;  // requests not yet come and calls not yet answered; mu_
  bool stopping_ = false;        // guarded by mu_
  bool stopped_ = false;         // guarded by mu_
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
  cluster_service(etcdserver::server& node, service_options options)
      : node_(node), opts_(std::move(options)) {}
  grpc::Status MemberAdd(grpc::ServerContext* ctx, const etcdserverpb::MemberAddRequest* req,
                         etcdserverpb::MemberAddResponse* resp) override;
  grpc::Status MemberRemove(grpc::ServerContext* ctx, const etcdserverpb::MemberRemoveRequest* req,
                            etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::Status MemberUpdate(grpc::ServerContext* ctx, const etcdserverpb::MemberUpdateRequest* req,
                            etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::Status MemberList(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest* req,
                          etcdserverpb::MemberListResponse* resp) override;
  grpc::Status MemberPromote(grpc::ServerContext* ctx,
                             const etcdserverpb::MemberPromoteRequest* req,
                             etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  etcdserver::server& node_;
  service_options opts_;
};

// etcdserverpb.Auth over the node's auth store. Changes go through raft as the caller (the
// apply checks the root role, as etcd's authApplierV3); AuthStatus, UserGet/List and
// RoleGet/List read the local store (etcd sends those through raft too; the answers are the
// same). Passwords are bcrypt-hashed here at `bcrypt_cost`, before proposing. Authenticate
// checks the password after a linearizable read point, then proposes the token so that every
// member knows it.
class auth_service final : public etcdserverpb::Auth::Service {
 public:
  explicit auth_service(etcdserver::server& node, int bcrypt_cost = 10)
      : node_(node), bcrypt_cost_(bcrypt_cost) {}
  grpc::Status AuthEnable(grpc::ServerContext* ctx, const etcdserverpb::AuthEnableRequest* req,
                          etcdserverpb::AuthEnableResponse* resp) override;
  grpc::Status AuthDisable(grpc::ServerContext* ctx, const etcdserverpb::AuthDisableRequest* req,
                           etcdserverpb::AuthDisableResponse* resp) override;
  grpc::Status AuthStatus(grpc::ServerContext* ctx, const etcdserverpb::AuthStatusRequest* req,
                          etcdserverpb::AuthStatusResponse* resp) override;
  grpc::Status Authenticate(grpc::ServerContext* ctx, const etcdserverpb::AuthenticateRequest* req,
                            etcdserverpb::AuthenticateResponse* resp) override;
  grpc::Status UserAdd(grpc::ServerContext* ctx, const etcdserverpb::AuthUserAddRequest* req,
                       etcdserverpb::AuthUserAddResponse* resp) override;
  grpc::Status UserGet(grpc::ServerContext* ctx, const etcdserverpb::AuthUserGetRequest* req,
                       etcdserverpb::AuthUserGetResponse* resp) override;
  grpc::Status UserList(grpc::ServerContext* ctx, const etcdserverpb::AuthUserListRequest* req,
                        etcdserverpb::AuthUserListResponse* resp) override;
  grpc::Status UserDelete(grpc::ServerContext* ctx, const etcdserverpb::AuthUserDeleteRequest* req,
                          etcdserverpb::AuthUserDeleteResponse* resp) override;
  grpc::Status UserChangePassword(grpc::ServerContext* ctx,
                                  const etcdserverpb::AuthUserChangePasswordRequest* req,
                                  etcdserverpb::AuthUserChangePasswordResponse* resp) override;
  grpc::Status UserGrantRole(grpc::ServerContext* ctx,
                             const etcdserverpb::AuthUserGrantRoleRequest* req,
                             etcdserverpb::AuthUserGrantRoleResponse* resp) override;
  grpc::Status UserRevokeRole(grpc::ServerContext* ctx,
                              const etcdserverpb::AuthUserRevokeRoleRequest* req,
                              etcdserverpb::AuthUserRevokeRoleResponse* resp) override;
  grpc::Status RoleAdd(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleAddRequest* req,
                       etcdserverpb::AuthRoleAddResponse* resp) override;
  grpc::Status RoleGet(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleGetRequest* req,
                       etcdserverpb::AuthRoleGetResponse* resp) override;
  grpc::Status RoleList(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleListRequest* req,
                        etcdserverpb::AuthRoleListResponse* resp) override;
  grpc::Status RoleDelete(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleDeleteRequest* req,
                          etcdserverpb::AuthRoleDeleteResponse* resp) override;
  grpc::Status RoleGrantPermission(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthRoleGrantPermissionRequest* req,
                                   etcdserverpb::AuthRoleGrantPermissionResponse* resp) override;
  grpc::Status RoleRevokePermission(grpc::ServerContext* ctx,
                                    const etcdserverpb::AuthRoleRevokePermissionRequest* req,
                                    etcdserverpb::AuthRoleRevokePermissionResponse* resp) override;

 private:
  // The root role checked (when auth is on), then `password` hashed within the bcrypt slots.
  grpc::Status hash_for(const grpc::ServerContext* ctx, const std::string& password,
                        std::string* hash);
  etcdserver::server& node_;
  int bcrypt_cost_;
};

class node_health final : public http::health_source {
 public:
  explicit node_health(etcdserver::server& node) : node_(node) {}
  std::vector<http::alarm_type> alarms() override;
  bool has_leader() override;
  cairn::expected<void, base::errc> read_probe(bool serializable) override;
  bool is_learner() override { return node_.is_learner(); }

 private:
  etcdserver::server& node_;
};

}  // namespace cairn::v3rpc
