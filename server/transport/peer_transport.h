// transport/peer_transport.h: raft messages between members, over gRPC on the peer URLs.
//
// Sending: one long-lived client stream per peer (Peer.Stream), fed by a sender thread that
// batches whatever messages are queued for that peer into one Envelope. A broken or refused
// stream makes the thread report the peer unreachable to the node (raft then probes it), drop
// what was queued (raft retransmits), wait a backoff and dial again. Snapshots (MSG_SNAP) go on
// their own thread and stream, so a large one never holds up heartbeats.
//
// Receiving (peer_service): checks the envelope's cluster id and the sender's membership, then
// steps each message into the node.
//
// Lease renewals and time-to-live questions on followers are forwarded to the leader with the
// LeaseRenew and LeaseTimeToLive calls.
//
// Thread-safety: send() and lease_renew() from any thread; attach() once, before traffic.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/stats.h"
#include "etcdserver/server.h"
#include "raftpb/peer.grpc.pb.h"

namespace cairn::transport {

// What the transport counts, per peer (etcd's etcd_network_peer_* families).
struct peer_counters {
  std::uint64_t sent_bytes = 0;
  std::uint64_t sent_failures = 0;
  std::uint64_t received_bytes = 0;
  std::uint64_t received_failures = 0;
  bool active = false;  // a stream to it is up
  std::chrono::steady_clock::time_point active_since{};
  std::uint64_t disconnects = 0;
  // Probe round trips to it, in seconds (etcd_network_peer_round_trip_time_seconds{To}).
  base::histogram::snapshot_t round_trip;
  // The same probes for etcd's v2 leader stats: the last, smallest, largest, mean and standard
  // deviation of the round trip in milliseconds, and probes answered / failed.
  double latency_current_ms = 0, latency_min_ms = 0, latency_max_ms = 0;
  double latency_sum_ms = 0, latency_sum_squares = 0;
  std::uint64_t probes_ok = 0, probes_failed = 0;
};

// etcd's buckets for the peer round trip: 100 µs doubling 16 times (up to 3.28 s).
std::vector<double> round_trip_bounds();

// Errors on the wire of the peer calls: 0 for none, else the base::errc value + 1.
std::uint32_t encode_errc(base::errc e);
std::optional<base::errc> decode_errc(std::uint32_t wire);

// "http://host:port" or "https://host:port" → "host:port" for gRPC; nullopt for other schemes.
std::optional<std::string> dial_target(const std::string& peer_url);

struct transport_options {
  std::chrono::milliseconds dial_timeout{1000};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
  std::chrono::milliseconds request_timeout{5000};
  std::size_t max_queued = 4096;  // messages per peer; more are dropped (raft retries)
  std::size_t snapshot_chunk = 1 << 20;
  // How often each peer is probed for the round-trip metric (etcd: every 4 s).
  std::chrono::milliseconds probe_interval{4000};
  // Credentials for https peer URLs (tls::grpc_channel_credentials); null: https peers are not
  // dialed.
  std::shared_ptr<grpc::ChannelCredentials> tls;
};

class peer_transport final : public etcdserver::transport {
 public:
  explicit peer_transport(transport_options opts = {});
  ~peer_transport() override;

  // Binds to the node once it has opened (its ids and members); sends before are dropped.
  void attach(etcdserver::server& node);
  void stop();

  void send(std::vector<raftpb::Message> msgs) override;
  cairn::expected<std::int64_t, base::errc> lease_renew(std::uint64_t leader,
                                                        std::int64_t id) override;
  cairn::expected<std::optional<lease::lease_status>, base::errc> lease_time_to_live(
      std::uint64_t leader, std::int64_t id, bool keys) override;
  cairn::expected<etcdserver::peer_hash, base::errc> hash_kv(std::uint64_t peer,
                                                             std::int64_t rev) override;
  std::optional<std::chrono::steady_clock::time_point> active_since(std::uint64_t peer) override;
  cairn::expected<void, base::errc> promote_on_leader(std::uint64_t leader,
                                                      std::uint64_t id) override;

  // The receiving side counts here too.
  void count_received(std::uint64_t from, std::size_t bytes, bool failed);
  std::map<std::uint64_t, peer_counters> counters() const;

 private:
  struct peer;
  peer& peer_for(std::uint64_t id);  // mu_ held
  void run_sender(peer& p, bool snapshots);
  // One snapshot to one peer, start to end; true if the peer took it all.
  bool send_snapshot(std::uint64_t to, raftpb::Message m);
  std::shared_ptr<grpc::Channel> channel_for(std::uint64_t id);
  // A unary Peer call to the leader with the request timeout; the answer's error field decoded.
  template <typename Req, typename Resp, typename Call>
  cairn::expected<void, base::errc> call_leader(std::uint64_t leader, Req& req, Resp* resp,
                                                Call call);

  transport_options opts_;
  std::atomic<etcdserver::server*> node_{nullptr};
  mutable std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<peer>> peers_;  // guarded by mu_
  std::map<std::uint64_t, peer_counters> counters_;       // guarded by mu_
  std::set<std::uint64_t> snapshots_in_flight_;           // guarded by mu_
  std::vector<std::thread> snapshot_threads_;             // guarded by mu_
  bool stopped_ = false;                                  // guarded by mu_
  // Keeps a stream to every member up (etcd's peers stay connected, which the reconfiguration
  // checks rely on) and stops the senders of removed members.
  void maintain();
  std::condition_variable maintain_cv_;
  std::thread maintainer_;
  // Every probe_interval: a Probe call to each peer, timed into round_trip_.
  void probe();
  std::map<std::uint64_t, std::unique_ptr<base::histogram>> round_trip_;  // guarded by mu_
  std::thread prober_;
};

// The Peer service a member serves on its --listen-peer-urls.
class peer_service final : public raftpb::Peer::Service {
 public:
  peer_service(etcdserver::server& node, peer_transport& t) : node_(node), transport_(t) {}
  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<raftpb::Envelope>* reader,
                      raftpb::Ack* ack) override;
  grpc::Status LeaseRenew(grpc::ServerContext* ctx, const raftpb::LeaseRenewRequest* req,
                          raftpb::LeaseRenewResponse* resp) override;
  grpc::Status Snapshot(grpc::ServerContext* ctx, grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                        raftpb::Ack* ack) override;
  grpc::Status Promote(grpc::ServerContext* ctx, const raftpb::PromoteRequest* req,
                       raftpb::PromoteResponse* resp) override;
  grpc::Status Members(grpc::ServerContext* ctx, const raftpb::MembersRequest* req,
                       raftpb::MembersResponse* resp) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* ctx, const raftpb::LeaseTimeToLiveRequest* req,
                               raftpb::LeaseTimeToLiveResponse* resp) override;
  grpc::Status HashKV(grpc::ServerContext* ctx, const raftpb::HashKVRequest* req,
                      raftpb::HashKVResponse* resp) override;
  grpc::Status Probe(grpc::ServerContext* ctx, const raftpb::ProbeRequest* req,
                     raftpb::ProbeResponse* resp) override;

 private:
  grpc::Status check_cluster(std::uint64_t cluster_id, std::uint64_t from) const;
  etcdserver::server& node_;
  peer_transport& transport_;
};

// What a member joining an existing cluster learns from the first of `peer_urls` that answers
// (etcd's GetClusterFromRemotePeers): the cluster id and its members.
struct remote_cluster {
  std::uint64_t cluster_id = 0;
  std::vector<etcdserver::member> members;
};
cairn::expected<remote_cluster, std::string> fetch_cluster(
    const std::vector<std::string>& peer_urls, std::chrono::milliseconds timeout,
    std::shared_ptr<grpc::ChannelCredentials> tls = nullptr);

// Listens on the peer URLs ("http://host:port", "https://host:port" with `tls`) and serves
// `svc`.
class peer_listener {
 public:
  static cairn::expected<std::unique_ptr<peer_listener>, std::string> start(
      const std::vector<std::string>& peer_urls, peer_service& svc,
      std::shared_ptr<grpc::ServerCredentials> tls = nullptr);
  ~peer_listener();
  void stop();
  const std::vector<std::string>& addresses() const { return addresses_; }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> addresses_;
};

}  // namespace cairn::transport
