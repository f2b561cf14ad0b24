#include "v3rpc/watch_service.h"
#include "base/failpoint.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/errors.h"
#include "mvcc/watchable_store.h"
#include "v3rpc/errors.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {

namespace {

using clock = std::chrono::steady_clock;
using etcdserverpb::WatchCreateRequest;
using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// etcd's ErrEmptyWatcherRange, sent as a cancel_reason.
constexpr std::string_view empty_range_reason = "mvcc: watcher range is empty";

std::size_t varint_size(std::size_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void to_wire(const mvcc::key_value& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

void to_wire(const mvcc::event& e, mvccpb::Event* out) {
  out->set_type(e.type == mvcc::event_type::put ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
  to_wire(e.kv, out->mutable_kv());
#ifndef CAIRN_PLANTED_BUG_WATCH_NO_PREV_KV
  if (e.prev_kv) to_wire(*e.prev_kv, out->mutable_prev_kv());
#endif
}

bool wants_leader(const grpc::CallbackServerContext* ctx) {
  // Would it be refused without a leader?
  return leader_required(ctx->client_metadata(), /*has_leader=*/false).has_value();
}

}  // namespace

std::vector<WatchResponse> fragment_response(const WatchResponse& r, std::size_t max_bytes) {
  if (r.ByteSizeLong() < max_bytes || r.events_size() < 2) return {r};
  WatchResponse base = r;
  base.clear_events();
  base.set_fragment(true);
  const std::size_t base_size = base.ByteSizeLong();
  std::vector<WatchResponse> out;
  int idx = 0;
  const int n = r.events_size();
  for (;;) {
    WatchResponse part = base;
    std::size_t size = base_size;
    while (idx < n) {
      const std::size_t ev = r.events(idx).ByteSizeLong();
      // One byte of tag (field 11, length-delimited), the length, the event.
      const std::size_t with = size + 1 + varint_size(ev) + ev;
      // Over the limit: the part ends before this event, unless it would be empty.
      if (part.events_size() >= 1 && with >= max_bytes) break;
      *part.add_events() = r.events(idx);
      size = with;
      ++idx;
    }
    const bool last = idx == n;
    if (last) part.set_fragment(false);
    out.push_back(std::move(part));
    if (last) break;
  }
  return out;
}

// Answers queued on a stream beyond which it stops reading requests.
constexpr std::size_t max_queued = 256;

// One gRPC Watch stream. Owned by the service's map from creation to OnDone; the service thread
// may hold a second reference for a moment, so nothing here assumes it dies in OnDone.
class watch_service::stream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse> {
 public:
  stream(watch_service& svc, std::uint64_t id, bool needs_leader,
         const grpc::CallbackServerContext* ctx)
      : svc_(svc), id_(id), needs_leader_(needs_leader), ctx_(ctx) {
    next_notify_ = clock::now() + svc_.options_.progress_notify_interval;
  }

  // Called once, right after the service registered the stream.
  void start() {
    std::lock_guard lock(mu_);
    if (needs_leader_ && svc_.leader() == 0) {
      finish_locked(to_grpc_status(base::errc::no_leader));
      return;
    }
    ws_ = svc_.node_.watchable().new_stream();
    watch_service* svc = &svc_;
    const std::uint64_t id = id_;
    ws_->set_on_ready([svc, id] { svc->wake(id); });
    StartRead(&req_);
  }

  bool needs_leader() const { return needs_leader_; }

  // The store has something for this stream (service thread).
  void pump() {
    std::lock_guard lock(mu_);
    pump_locked();
  }

  // Service thread, every tick: pending progress answers and progress notifications.
  void tick(clock::time_point now) {
    std::lock_guard lock(mu_);
    if (finished_ || !ws_) return;
    if (now >= next_notify_) {
      next_notify_ = now + svc_.options_.progress_notify_interval;
      for (auto& [wid, info] : watchers_) {
        if (!info.progress_notify) continue;
        // etcd sends one only to a watcher that got nothing since the last tick.
        if (!info.sent_since_tick) ws_->request_progress(wid);
        info.sent_since_tick = false;
      }
    }
    pump_locked();
  }

  // Ends the stream with `st` (no leader).
  void end(grpc::Status st) {
    std::lock_guard lock(mu_);
    finish_locked(std::move(st));
  }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (!ok) return;  // the client half-closed (or left): etcd keeps sending until it leaves
    if (finished_) return;
    switch (req_.request_union_case()) {
      case WatchRequest::kCreateRequest:
        create_locked(req_.create_request());
        break;
      case WatchRequest::kCancelRequest:
        cancel_locked(req_.cancel_request().watch_id());
        break;
      case WatchRequest::kProgressRequest:
        progress_locked();
        break;
      default:
        break;  // etcd ignores what it does not know rather than end the stream
    }
    pump_locked();
    if (finished_) return;
    // A client that sends faster than it reads is not read from until its answers have left
    // (etcd's control channel blocks its reader the same way).
    if (out_.size() >= max_queued) {
      read_paused_ = true;
      return;
    }
    StartRead(&req_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      finish_locked(grpc::Status::CANCELLED);
      return;
    }
    if (finish_after_write_) {
      grpc::Status st = std::move(*finish_after_write_);
      finish_after_write_.reset();
      finish_locked(std::move(st));
      return;
    }
    pump_locked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    finish_locked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    // May destroy this stream: the last thing done here.
    svc_.forget(id_);
  }

 private:
  struct watcher_info {
    bool progress_notify = false;
    bool fragment = false;
    bool sent_since_tick = false;
  };

  void fill_header(std::int64_t revision, etcdserverpb::ResponseHeader* h) const {
    h->set_cluster_id(svc_.node_.cluster_id());
    h->set_member_id(svc_.node_.member_id());
    h->set_revision(revision);
    h->set_raft_term(svc_.node_.term());
  }

  std::int64_t current_rev() const { return svc_.node_.store().rev(); }

  void create_locked(const WatchCreateRequest& c) {
    mvcc::watch_request r;
    r.key = c.key().empty() ? std::string(1, '\0') : c.key();
    r.range_end = c.range_end();
    r.prev_kv = c.prev_kv();
    for (int f : c.filters()) {
      if (f == WatchCreateRequest::NOPUT) r.no_put = true;
      if (f == WatchCreateRequest::NODELETE) r.no_delete = true;
    }
    if (c.watch_id() != 0) r.watch_id = c.watch_id();
    // "From now" is fixed here, as etcd fixes it before creating the watcher: the header says
    // the revision the watch starts after, and writes landing in between are caught up.
    const std::int64_t rev = current_rev();
    r.start_revision = c.start_revision() == 0 ? rev + 1 : c.start_revision();
    drain_locked();
    WatchResponse wr;
    fill_header(rev, wr.mutable_header());
    wr.set_created(true);
    // etcd's isWatchPermitted: the whole range readable, else created and canceled at once
    // with the error as the reason.
    auto who = caller(ctx_, svc_.node_);
    cairn::expected<void, base::errc> allowed =
        who ? svc_.node_.auth().check(*who, r.key, r.range_end, auth::perm_type::read)
            : cairn::expected<void, base::errc>(cairn::unexpected(who.error()));
    if (!allowed) {
      const base::errc why = allowed.error();
      wr.set_watch_id(-1);
      wr.set_canceled(true);
      wr.set_cancel_reason(to_grpc_status(why).error_message());
      out_.push_back(std::move(wr));
      return;
    }
    const bool all_from_key = r.range_end.size() == 1 && r.range_end[0] == '\0';
    if (!r.range_end.empty() && !all_from_key && r.key >= r.range_end) {
      wr.set_watch_id(-1);
      wr.set_canceled(true);
      wr.set_cancel_reason(std::string(empty_range_reason));
      out_.push_back(std::move(wr));
      return;
    }
    auto id = ws_->watch(r);
    if (!id) {
      wr.set_watch_id(-1);
      wr.set_canceled(true);
      wr.set_cancel_reason(std::string(mvcc::to_string(id.error())));
      out_.push_back(std::move(wr));
      return;
    }
    watchers_[*id] = watcher_info{c.progress_notify(), c.fragment(), false};
    wr.set_watch_id(*id);
    out_.push_back(std::move(wr));
  }

  void cancel_locked(std::int64_t wid) {
    // Cancelled first, so nothing more is made for it; then what was made goes out before the
    // answer.
    if (!ws_->cancel(wid)) return;  // etcd answers nothing for an unknown id
    watchers_.erase(wid);
    drain_locked();
    WatchResponse wr;
    fill_header(current_rev(), wr.mutable_header());
    wr.set_watch_id(wid);
    wr.set_canceled(true);
    out_.push_back(std::move(wr));
  }

  void progress_locked() {
#ifdef CAIRN_PLANTED_BUG_WATCH_PROGRESS_WHILE_UNSYNCED
    // Planted: answered at once, whether or not every watcher has caught up.
    drain_locked();
    WatchResponse wr;
    fill_header(current_rev(), wr.mutable_header());
    wr.set_watch_id(-1);
    out_.push_back(std::move(wr));
#else
    // One pending request answers every request made while it waits, as etcd.
    progress_pending_ = true;
#endif
  }

  // Moves what the store buffered for this stream so far into the send queue.
  void drain_locked() {
    for (std::size_t n = ws_->buffered(); n > 0; --n) {
      auto r = ws_->try_next();
      if (!r) break;
      queue_locked(*r);
    }
  }

  void queue_locked(const mvcc::watch_response& r) {
    WatchResponse wr;
    // etcd's compaction notice carries no revision: its header says 0.
    fill_header(r.compact_revision != 0 ? 0 : r.revision, wr.mutable_header());
    wr.set_watch_id(r.watch_id);
    for (const auto& e : r.events) to_wire(e, wr.add_events());
    bool fragment = false;
    if (auto it = watchers_.find(r.watch_id); it != watchers_.end()) {
      fragment = it->second.fragment;
      if (!r.events.empty()) it->second.sent_since_tick = true;
      if (r.compact_revision != 0) watchers_.erase(it);  // the store removed it
    }
    if (r.compact_revision != 0) {
      wr.set_compact_revision(r.compact_revision);
      wr.set_canceled(true);
    }
    if (fragment) {
      for (auto& part : fragment_response(wr, svc_.options_.max_request_bytes)) {
        out_.push_back(std::move(part));
      }
    } else {
      out_.push_back(std::move(wr));
    }
  }

  // Starts the next write if none is in flight: the send queue first, else one response from
  // the store. Also retries a pending progress request.
  void pump_locked() {
    if (finished_ || !ws_) return;
    if (progress_pending_ && ws_->request_progress_all()) progress_pending_ = false;
    if (writing_) return;
    if (out_.empty()) {
      if (auto r = ws_->try_next()) queue_locked(*r);
    }
    if (out_.empty()) return;
    cur_ = std::move(out_.front());
    out_.pop_front();
    writing_ = true;
    CAIRN_FAILPOINT("beforeSendWatchResponse");
    StartWrite(&cur_);
    if (read_paused_ && out_.size() < max_queued / 2) {
      read_paused_ = false;
      StartRead(&req_);
    }
  }

  void finish_locked(grpc::Status st) {
    if (finished_) return;
    if (writing_) {
      if (!finish_after_write_) finish_after_write_ = std::move(st);
      return;
    }
    finished_ = true;
    Finish(std::move(st));
  }

  watch_service& svc_;
  const std::uint64_t id_;
  const bool needs_leader_;
  const grpc::CallbackServerContext* ctx_;  // the stream's, alive until OnDone

  std::mutex mu_;  // guards everything below
  std::unique_ptr<mvcc::watch_stream> ws_;
  std::map<std::int64_t, watcher_info> watchers_;
  std::deque<WatchResponse> out_;
  WatchRequest req_;
  WatchResponse cur_;
  bool writing_ = false;
  bool finished_ = false;  // Finish was called
  std::optional<grpc::Status> finish_after_write_;
  bool progress_pending_ = false;
  bool read_paused_ = false;  // too much queued: the next read waits for the queue to drain
  clock::time_point next_notify_;
};

// ---------------------------------------------------------------------------------------------
// watch_service

watch_service::watch_service(etcdserver::server& node, watch_options options)
    : node_(node), options_(std::move(options)) {
  if (options_.progress_notify_interval.count() <= 0) {
    options_.progress_notify_interval = std::chrono::minutes(10);
  }
  if (options_.tick.count() <= 0) options_.tick = std::chrono::milliseconds(50);
  thread_ = std::thread([this] { loop(); });
}

watch_service::~watch_service() {
  stop();
  std::map<std::uint64_t, std::shared_ptr<stream>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(streams_);
  }
}

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* watch_service::Watch(
    grpc::CallbackServerContext* ctx) {
  if (auto e = admit(ctx, node_)) {
    return new refused_stream<WatchRequest, WatchResponse>(to_grpc_status(*e));
  }
  std::shared_ptr<stream> s;
  {
    std::lock_guard lock(mu_);
    const std::uint64_t id = next_stream_++;
    s = std::make_shared<stream>(*this, id, wants_leader(ctx), ctx);
    streams_.emplace(id, s);
  }
  s->start();
  return s.get();
}

void watch_service::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t watch_service::stream_count() const {
  std::lock_guard lock(mu_);
  return streams_.size();
}

std::uint64_t watch_service::leader() const {
  return options_.leader ? options_.leader() : node_.leader();
}

void watch_service::wake(std::uint64_t stream_id) {
  {
    std::lock_guard lock(mu_);
    woken_.push_back(stream_id);
  }
  cv_.notify_one();
}

void watch_service::forget(std::uint64_t stream_id) {
  std::shared_ptr<stream> gone;  // dropped after the lock: its store stream takes store locks
  std::lock_guard lock(mu_);
  if (auto it = streams_.find(stream_id); it != streams_.end()) {
    gone = std::move(it->second);
    streams_.erase(it);
  }
}

void watch_service::loop() {
  const auto election = options_.election_timeout.count() > 0 ? options_.election_timeout
                                                              : std::chrono::milliseconds(1000);
  auto next_tick = clock::now() + options_.tick;
  auto next_leader_check = clock::now() + election;
  int no_leader = 0;
  for (;;) {
    std::vector<std::shared_ptr<stream>> woken;
    std::vector<std::shared_ptr<stream>> all;
    bool tick = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_tick, [&] { return stop_ || !woken_.empty(); });
      if (stop_) return;
      std::sort(woken_.begin(), woken_.end());
      woken_.erase(std::unique(woken_.begin(), woken_.end()), woken_.end());
      for (std::uint64_t id : woken_) {
        if (auto it = streams_.find(id); it != streams_.end()) woken.push_back(it->second);
      }
      woken_.clear();
      if (clock::now() >= next_tick) {
        tick = true;
        next_tick = clock::now() + options_.tick;
        for (auto& [id, s] : streams_) all.push_back(s);
      }
    }
    for (auto& s : woken) s->pump();
    if (!tick) continue;
    const auto now = clock::now();
    bool cancel_leaderless = false;
    if (now >= next_leader_check) {
      next_leader_check = now + election;
      no_leader = leader() == 0 ? no_leader + 1 : 0;
      // Reconnecting costs more than refusing new streams: existing ones get a few election
      // timeouts to see a leader again.
      cancel_leaderless = no_leader >= options_.max_no_leader_count;
#ifdef CAIRN_PLANTED_BUG_WATCH_KEEP_LEADERLESS_STREAMS
      cancel_leaderless = false;  // Planted: streams demanding a leader live on without one.
#endif
    }
    for (auto& s : all) {
      if (cancel_leaderless && s->needs_leader()) {
        s->end(to_grpc_status(base::errc::no_leader));
      } else {
        s->tick(now);
      }
    }
  }
}

}  // namespace cairn::v3rpc
