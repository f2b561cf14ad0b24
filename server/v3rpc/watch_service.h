// v3rpc/watch_service.h: etcdserverpb.Watch, the bidirectional Watch stream, over the node's
// watchable store (mvcc/watchable_store.h). One gRPC stream is one mvcc::watch_stream carrying
// any number of watchers.
//
// What a client sees, as etcd 3.5 answers it:
//   create    `created` first (header revision = the store's revision the watch starts after),
//             then the watcher's events in revision order, one revision never split across two
//             responses unless the client asked for `fragment`. start_revision 0 means "after the
//             current revision"; a start below the last compaction gets `created`, then one
//             response with `compact_revision` set and `canceled` (header revision 0, as
//             etcd), and the watcher is gone. An empty key means "\0"; range_end "\0" means
//             every key >= key. A client-chosen watch_id (> 0) already in use, or an empty
//             range (key >= range_end), is answered with created + canceled, watch_id -1 and
//             etcd's cancel_reason.
//   cancel    of a live watcher: a `canceled` response for it (no reason); of an unknown id:
//             nothing, as etcd.
//   progress  a `progress_request` is answered with watch_id -1 and the current revision only
//             once every watcher of the stream is synced (etcd #15220); until then it is retried
//             (after each response sent, and every tick), and further requests are folded into
//             the one pending. The answer travels through the store's buffer, behind every event
//             it promises. A stream without watchers is answered at once.
//   notify    watchers created with progress_notify get, every `progress_notify_interval`, a
//             response without events (their watch_id, the current revision) if they are synced
//             and nothing was sent to them since the last tick (etcd: --experimental-watch-
//             progress-notify-interval, 10 min by default; no jitter here).
//   fragment  for watchers that asked for it, a response of at least `max_request_bytes` with
//             two events or more is split as etcd splits it: each part takes events while it is
//             under the limit (always at least one), every part but the last has `fragment` set,
//             and all carry the same header and watch_id.
//   hasleader a stream whose metadata has `hasleader: true` is refused with "etcdserver: no
//             leader" (Unavailable) while the node knows no leader, and ended with that status
//             after 3 election timeouts in a row without one (etcd's monitorLeader). `leader` in
//             the options is the seam tests use to take the leader away.
//   headers   cluster_id, member_id, the response's revision and the current raft term.
//   half-close of the client's side does not end the stream (etcd keeps sending); a client
//             cancel ends it.
//
// Choice of API: the callback API (grpc::ServerBidiReactor), as the design asks, so a watch
// stream holds no thread. A stream has at most one read and one write in flight. What it sends
// comes from two places: control answers (created, canceled) it queues itself, and the store's
// per-stream buffer (events, compaction notices, progress), which it pulls one response at a
// time only when its own queue is empty, so a slow client leaves responses in the store's
// bounded buffer and the store turns its watchers into victims instead of blocking the writer
// (mvcc/watchable_store.h). Before a control answer is queued, everything already in the store
// buffer is moved to the queue, so answers and events leave in the order they were made.
//
// Threads and locks. gRPC's callback threads run the reactor methods. One service thread
// ("watch-ticker") pumps streams the store woke (the store's ready hook runs with the store's
// locks held and may only hand the stream id over), retries pending progress requests, sends
// progress notifications and watches the leader. Lock order: a stream's `mu_` → the store's
// locks → the service's `mu_` (a leaf: nothing is called while holding it). The service
// outlives its streams: destroy it only after the gRPC server has shut down.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "etcdserver/server.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace cairn::v3rpc {

struct watch_options {
  // --experimental-watch-progress-notify-interval / --watch-progress-notify-interval.
  std::chrono::milliseconds progress_notify_interval{std::chrono::minutes(10)};
  // --max-request-bytes: the fragment limit.
  std::uint64_t max_request_bytes = 1572864;
  // A `hasleader` stream is ended after this many election timeouts in a row without a leader.
  int max_no_leader_count = 3;
  // 0: etcd's default, 1 s (run.cc passes --election-timeout).
  std::chrono::milliseconds election_timeout{0};
  // The leader as the node sees it (0: none). Empty: node.leader(). Tests replace it.
  std::function<std::uint64_t()> leader;
  // How often the service thread looks at streams (progress retries, notify ticks).
  std::chrono::milliseconds tick{50};
};

// etcd's split of one response into fragments (pure; for tests). Returns `r` alone when it is
// smaller than `max_bytes` or has fewer than two events.
std::vector<etcdserverpb::WatchResponse> fragment_response(const etcdserverpb::WatchResponse& r,
                                                           std::size_t max_bytes);

class watch_service final : public etcdserverpb::Watch::CallbackService {
 public:
  watch_service(etcdserver::server& node, watch_options options);
  ~watch_service() override;
  watch_service(const watch_service&) = delete;
  watch_service& operator=(const watch_service&) = delete;

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override;

  // Stops the service thread (idempotent; the destructor calls it). Call it after the gRPC
  // server has shut down and before the node goes away: the thread reads the node.
  void stop();

  // Streams open now (tests).
  std::size_t stream_count() const;

  class stream;

 private:
  friend class stream;
  void wake(std::uint64_t stream_id);  // the store's ready hook; any thread, any locks
  void forget(std::uint64_t stream_id);
  void loop();
  std::uint64_t leader() const;

  etcdserver::server& node_;
  watch_options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, std::shared_ptr<stream>> streams_;  // guarded by mu_
  std::vector<std::uint64_t> woken_;                          // guarded by mu_
  std::uint64_t next_stream_ = 1;                             // guarded by mu_
  bool stop_ = false;                                         // guarded by mu_
  std::thread thread_;
};

}  // namespace cairn::v3rpc
