#include "transport/peer_transport.h"

#include <fmt/format.h>

#include <utility>

#include <unistd.h>

#include <cstdio>

#include "base/crc32c.h"
#include "base/log.h"

namespace cairn::transport {

std::uint32_t encode_errc(base::errc e) { return static_cast<std::uint32_t>(e) + 1; }

std::optional<base::errc> decode_errc(std::uint32_t wire) {
  if (wire == 0) return std::nullopt;
  return static_cast<base::errc>(wire - 1);
}

std::optional<std::string> dial_target(const std::string& peer_url) {
  std::size_t skip = 0;
  if (peer_url.starts_with("http://")) {
    skip = 7;
  } else if (peer_url.starts_with("https://")) {
    skip = 8;
  } else {
    return std::nullopt;
  }
  std::string rest = peer_url.substr(skip);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  if (rest.empty()) return std::nullopt;
  return rest;
}

struct peer_transport::peer {
  std::uint64_t id = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<raftpb::Message> queue;    // guarded by mu
  bool stop = false;                    // guarded by mu
  grpc::ClientContext* live = nullptr;  // the stream being written, to cancel at stop
  std::string url;                      // the URL the channel dials
  std::shared_ptr<grpc::Channel> channel;
  std::thread sender;
};

peer_transport::peer_transport(transport_options opts) : opts_(opts) {}

peer_transport::~peer_transport() { stop(); }

void peer_transport::attach(etcdserver::server& node) {
  node_ = &node;
  maintainer_ = std::thread([this] { maintain(); });
  prober_ = std::thread([this] { probe(); });
}

std::vector<double> round_trip_bounds() {
  std::vector<double> b;
  for (int i = 0; i < 16; ++i) b.push_back(0.0001 * static_cast<double>(1 << i));
  return b;
}

void peer_transport::probe() {
  std::unique_lock lock(mu_);
  while (!maintain_cv_.wait_for(lock, opts_.probe_interval, [&] { return stopped_; })) {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, p] : peers_) ids.push_back(id);
    lock.unlock();
    for (auto id : ids) {
      raftpb::ProbeRequest req;
      raftpb::ProbeResponse resp;
      const auto start = std::chrono::steady_clock::now();
      const bool ok = call_leader(id, req, &resp, &raftpb::Peer::Stub::Probe).has_value();
      const auto took = std::chrono::steady_clock::now() - start;
      std::lock_guard relock(mu_);
      if (!peers_.contains(id)) continue;
      auto& c = counters_[id];
      if (!ok) {
        ++c.probes_failed;
        continue;
      }
      const double ms = std::chrono::duration<double, std::milli>(took).count();
      c.latency_current_ms = ms;
      c.latency_min_ms = c.probes_ok == 0 ? ms : std::min(c.latency_min_ms, ms);
      c.latency_max_ms = std::max(c.latency_max_ms, ms);
      c.latency_sum_ms += ms;
      c.latency_sum_squares += ms * ms;
      ++c.probes_ok;
      auto& h = round_trip_[id];
      if (!h) h = std::make_unique<base::histogram>(round_trip_bounds());
      h->observe(took);
    }
    lock.lock();
  }
}

void peer_transport::maintain() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    etcdserver::server* node = node_.load();
    std::vector<std::unique_ptr<peer>> gone;
    if (node != nullptr) {
      std::set<std::uint64_t> want;
      for (const auto& m : node->members().list()) {
        if (m.id != node->member_id()) want.insert(m.id);
      }
      for (auto id : want) peer_for(id);
      for (auto it = peers_.begin(); it != peers_.end();) {
        if (!want.contains(it->first)) {
          gone.push_back(std::move(it->second));
          it = peers_.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (!gone.empty()) {
      lock.unlock();
      for (auto& p : gone) {
        {
          std::lock_guard plock(p->mu);
          p->stop = true;
          if (p->live != nullptr) p->live->TryCancel();
          p->cv.notify_all();
        }
        if (p->sender.joinable()) p->sender.join();
        std::lock_guard clock(mu_);
        counters_.erase(p->id);
        round_trip_.erase(p->id);
      }
      lock.lock();
    }
    maintain_cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopped_; });
  }
}

void peer_transport::stop() {
  std::map<std::uint64_t, std::unique_ptr<peer>> peers;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    peers.swap(peers_);
  }
  maintain_cv_.notify_all();
  if (maintainer_.joinable()) maintainer_.join();
  if (prober_.joinable()) prober_.join();
  for (auto& [id, p] : peers) {
    std::lock_guard lock(p->mu);
    p->stop = true;
    if (p->live != nullptr) p->live->TryCancel();
    p->cv.notify_all();
  }
  for (auto& [id, p] : peers) {
    if (p->sender.joinable()) p->sender.join();
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(snapshot_threads_);
  }
  for (auto& t : threads) t.join();
}

bool peer_transport::send_snapshot(std::uint64_t to, raftpb::Message m) {
  etcdserver::server* node = node_.load();
  if (node == nullptr) return false;
  const auto start = std::chrono::steady_clock::now();
  auto snap = node->snapshot_for(std::move(m));
  if (!snap) {
    CAIRN_LOG(warn, "failed to make a snapshot for a member",
              {"remote-peer-id", fmt::format("{:x}", to)}, {"error", snap.error()});
    return false;
  }
  auto ch = channel_for(to);
  if (!ch) return false;
  const auto index = snap->msg.snapshot().metadata().index();
  CAIRN_LOG(info, "sending database snapshot", {"snapshot-receiver-id", fmt::format("{:x}", to)},
            {"snapshot-index", index}, {"snapshot-size", snap->db->size()});
  grpc::ClientContext ctx;
  raftpb::Ack ack;
  auto stub = raftpb::Peer::NewStub(ch);
  auto writer = stub->Snapshot(&ctx, &ack);
  raftpb::SnapshotChunk first;
  first.set_cluster_id(node->cluster_id());
  first.set_from(node->member_id());
  *first.mutable_message() = snap->msg;
  first.set_db_size(snap->db->size());
  bool ok = writer->Write(first);
  std::uint32_t crc = 0;
  std::string buf(opts_.snapshot_chunk, '\0');
  std::uint64_t offset = 0;
  while (ok) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) {
        ok = false;
        break;
      }
    }
    auto n = snap->db->read_at(offset, buf.data(), buf.size());
    if (!n) {
      ok = false;
      break;
    }
    raftpb::SnapshotChunk c;
    c.set_data(buf.data(), *n);
    crc = base::crc32c_extend(crc, std::string_view(buf.data(), *n));
    offset += *n;
    const bool last = offset >= snap->db->size() || *n == 0;
    if (last) {
      c.set_last(true);
      c.set_crc32c(crc);
    }
    ok = writer->Write(c);
    {
      std::lock_guard lock(mu_);
      counters_[to].sent_bytes += *n;
    }
    if (last) break;
  }
  writer->WritesDone();
  auto st = writer->Finish();
  ok = ok && st.ok();
  if (ok) {
    CAIRN_LOG(info, "sent database snapshot", {"snapshot-receiver-id", fmt::format("{:x}", to)},
              {"snapshot-index", index}, {"snapshot-size", snap->db->size()},
              {"took", base::go_duration(std::chrono::steady_clock::now() - start)});
  } else {
    CAIRN_LOG(warn, "failed to send database snapshot",
              {"snapshot-receiver-id", fmt::format("{:x}", to)}, {"snapshot-index", index},
              {"error", st.error_message()});
  }
  return ok;
}

peer_transport::peer& peer_transport::peer_for(std::uint64_t id) {
  auto& slot = peers_[id];
  if (!slot) {
    slot = std::make_unique<peer>();
    slot->id = id;
    slot->sender = std::thread([this, p = slot.get()] { run_sender(*p, false); });
  }
  return *slot;
}

void peer_transport::send(std::vector<raftpb::Message> msgs) {
  etcdserver::server* node = node_.load();
  if (node == nullptr) return;
  std::lock_guard lock(mu_);
  if (stopped_) return;
  for (auto& m : msgs) {
    if (m.type() == raftpb::MSG_SNAP) {
      // On a thread of its own, one at a time per peer (raft asks again if one is dropped).
      const std::uint64_t to = m.to();
      if (!snapshots_in_flight_.insert(to).second) continue;
      snapshot_threads_.emplace_back([this, to, m = std::move(m)]() mutable {
        const bool ok = send_snapshot(to, std::move(m));
        etcdserver::server* n = node_.load();
        if (n != nullptr) n->report_snapshot(to, ok);
        std::lock_guard lock(mu_);
        snapshots_in_flight_.erase(to);
      });
      continue;
    }
    peer& p = peer_for(m.to());
    std::lock_guard plock(p.mu);
    if (p.queue.size() >= opts_.max_queued) {
      ++counters_[p.id].sent_failures;
      continue;  // dropped: raft retransmits
    }
    p.queue.push_back(std::move(m));
    p.cv.notify_one();
  }
}

std::shared_ptr<grpc::Channel> peer_transport::channel_for(std::uint64_t id) {
  etcdserver::server* node = node_.load();
  if (node == nullptr) return nullptr;
  auto m = node->members().get(id);
  if (!m || m->peer_urls.empty()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = peers_.find(id);
  peer* p = it == peers_.end() ? nullptr : it->second.get();
  if (p != nullptr && p->channel && p->url == m->peer_urls.front()) return p->channel;
  auto target = dial_target(m->peer_urls.front());
  const bool tls = m->peer_urls.front().starts_with("https://");
  if (!target || (tls && !opts_.tls)) {
    CAIRN_LOG(warn,
              tls ? "cannot dial an https peer URL without --peer-cert-file/--peer-key-file or "
                    "--peer-auto-tls"
                  : "cannot dial peer URL (only http:// and https:// peer URLs are supported)",
              {"remote-peer-id", fmt::format("{:x}", id)}, {"url", m->peer_urls.front()});
    return nullptr;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(opts_.min_backoff.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(opts_.min_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(opts_.max_backoff.count()));
  // A peer that vanished without closing the connection is noticed by keepalive pings.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Each peer its own connection (gRPC would otherwise share one between channels).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto ch = grpc::CreateCustomChannel(*target, tls ? opts_.tls : grpc::InsecureChannelCredentials(),
                                      args);
  if (p != nullptr) {
    p->channel = ch;
    p->url = m->peer_urls.front();
  }
  return ch;
}

void peer_transport::run_sender(peer& p, bool /*snapshots*/) {
  auto backoff = opts_.min_backoff;
  auto wait_backoff = [&] {
    std::unique_lock lock(p.mu);
    p.queue.clear();  // what waited is stale now; raft resends
    p.cv.wait_for(lock, backoff, [&] { return p.stop; });
    backoff = std::min(backoff * 2, opts_.max_backoff);
    return !p.stop;
  };
  auto report = [&](bool was_active) {
    etcdserver::server* node = node_.load();
    if (node != nullptr) node->report_unreachable(p.id);
    std::lock_guard lock(mu_);
    auto& c = counters_[p.id];
    ++c.sent_failures;
    if (was_active) {
      c.active = false;
      ++c.disconnects;
    }
  };
  std::string last_error;
  while (true) {
    {
      std::lock_guard lock(p.mu);
      if (p.stop) return;
    }
    auto ch = channel_for(p.id);
    if (!ch || !ch->WaitForConnected(std::chrono::system_clock::now() + opts_.dial_timeout)) {
      report(false);
      if (!wait_backoff()) return;
      continue;
    }
    grpc::ClientContext ctx;
    raftpb::Ack ack;
    auto stub = raftpb::Peer::NewStub(ch);
    {
      std::lock_guard lock(p.mu);
      if (p.stop) return;
      p.live = &ctx;
    }
    auto writer = stub->Stream(&ctx, &ack);
    const std::uint64_t cluster = node_.load()->cluster_id();
    const std::uint64_t self = node_.load()->member_id();
    bool active = false;
    bool ok = true;
    bool hello = true;  // an empty envelope first: the stream is up even while there is no traffic
    while (ok) {
      raftpb::Envelope env;
      env.set_cluster_id(cluster);
      env.set_from(self);
      if (hello) {
        hello = false;
      } else {
        std::unique_lock lock(p.mu);
        // While idle, watch the connection: a peer that went away is noticed at once (its
        // stream stops counting as active, which member removal checks).
        bool lost = false;
        while (!p.stop && p.queue.empty()) {
          if (p.cv.wait_for(lock, std::chrono::milliseconds(100),
                            [&] { return p.stop || !p.queue.empty(); })) {
            break;
          }
          if (ch->GetState(false) != GRPC_CHANNEL_READY) {
            lost = true;
            break;
          }
        }
        if (p.stop) break;
        if (lost) {
          ok = false;
          break;
        }
        std::size_t bytes = 0;
        while (!p.queue.empty() && env.messages_size() < 256 && bytes < (4u << 20)) {
          bytes += p.queue.front().ByteSizeLong();
          *env.add_messages() = std::move(p.queue.front());
          p.queue.pop_front();
        }
      }
      const std::size_t size = env.ByteSizeLong();
      ok = writer->Write(env);
      if (ok) {
        backoff = opts_.min_backoff;
        std::lock_guard lock(mu_);
        auto& c = counters_[p.id];
        c.sent_bytes += size;
        if (!active) {
          active = true;
          if (!c.active) {
            c.active = true;
            c.active_since = std::chrono::steady_clock::now();
            CAIRN_LOG(info, "peer became active", {"peer-id", fmt::format("{:x}", p.id)});
          }
        }
      }
    }
    bool stopping;
    {
      std::lock_guard lock(p.mu);
      stopping = p.stop;
    }
    if (stopping) {
      ctx.TryCancel();
      (void)writer->Finish();
      std::lock_guard lock(p.mu);
      p.live = nullptr;
      return;
    }
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    {
      std::lock_guard lock(p.mu);
      p.live = nullptr;
    }
    if (st.error_message() != last_error || active) {
      CAIRN_LOG(warn, "lost TCP streaming connection with remote peer",
                {"remote-peer-id", fmt::format("{:x}", p.id)}, {"error", st.error_message()});
      last_error = st.error_message();
    }
    if (st.error_message() == "the member has been permanently removed from the cluster") {
      if (auto* node = node_.load()) node->mark_removed();
    }
    report(active);
    if (!wait_backoff()) return;
  }
}

template <typename Req, typename Resp, typename Call>
cairn::expected<void, base::errc> peer_transport::call_leader(std::uint64_t leader, Req& req,
                                                              Resp* resp, Call call) {
  etcdserver::server* node = node_.load();
  if (node == nullptr) return cairn::unexpected(base::errc::no_leader);
  auto ch = channel_for(leader);
  if (!ch) return cairn::unexpected(base::errc::no_leader);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + opts_.request_timeout);
  req.set_cluster_id(node->cluster_id());
  auto stub = raftpb::Peer::NewStub(ch);
  grpc::Status st = ((*stub).*call)(&ctx, req, resp);
  if (!st.ok()) {
    return cairn::unexpected(st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                 ? base::errc::timeout
                                 : base::errc::no_leader);
  }
  if (auto e = decode_errc(resp->error())) return cairn::unexpected(*e);
  return {};
}

cairn::expected<std::int64_t, base::errc> peer_transport::lease_renew(std::uint64_t leader,
                                                                      std::int64_t id) {
  raftpb::LeaseRenewRequest req;
  req.set_id(id);
  raftpb::LeaseRenewResponse resp;
  if (auto r = call_leader(leader, req, &resp, &raftpb::Peer::Stub::LeaseRenew); !r) {
    return cairn::unexpected(r.error());
  }
  return resp.ttl();
}

cairn::expected<std::optional<lease::lease_status>, base::errc> peer_transport::lease_time_to_live(
    std::uint64_t leader, std::int64_t id, bool keys) {
  raftpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  raftpb::LeaseTimeToLiveResponse resp;
  if (auto r = call_leader(leader, req, &resp, &raftpb::Peer::Stub::LeaseTimeToLive); !r) {
    return cairn::unexpected(r.error());
  }
  if (!resp.found()) return std::optional<lease::lease_status>();
  lease::lease_status st;
  st.id = lease::lease_id{id};
  st.ttl = resp.ttl();
  st.granted_ttl = resp.granted_ttl();
  st.keys.assign(resp.keys().begin(), resp.keys().end());
  return st;
}

cairn::expected<etcdserver::peer_hash, base::errc> peer_transport::hash_kv(std::uint64_t peer,
                                                                           std::int64_t rev) {
  raftpb::HashKVRequest req;
  req.set_revision(rev);
  raftpb::HashKVResponse resp;
  if (auto r = call_leader(peer, req, &resp, &raftpb::Peer::Stub::HashKV); !r) {
    return cairn::unexpected(r.error());
  }
  return etcdserver::peer_hash{resp.member_id(), resp.revision(), resp.hash(),
                               resp.compact_revision()};
}

std::optional<std::chrono::steady_clock::time_point> peer_transport::active_since(
    std::uint64_t peer) {
  std::lock_guard lock(mu_);
  auto it = counters_.find(peer);
  if (it == counters_.end() || !it->second.active) return std::nullopt;
  return it->second.active_since;
}

cairn::expected<void, base::errc> peer_transport::promote_on_leader(std::uint64_t leader,
                                                                    std::uint64_t id) {
  raftpb::PromoteRequest req;
  req.set_id(id);
  raftpb::PromoteResponse resp;
  return call_leader(leader, req, &resp, &raftpb::Peer::Stub::Promote);
}

cairn::expected<remote_cluster, std::string> fetch_cluster(
    const std::vector<std::string>& peer_urls, std::chrono::milliseconds timeout,
    std::shared_ptr<grpc::ChannelCredentials> tls) {
  std::string last = "no peer URLs to ask";
  for (const auto& u : peer_urls) {
    auto target = dial_target(u);
    if (!target) continue;
    const bool https = u.starts_with("https://");
    if (https && !tls) {
      last = u + ": an https peer URL needs --peer-cert-file/--peer-key-file";
      continue;
    }
    auto ch = grpc::CreateChannel(*target, https ? tls : grpc::InsecureChannelCredentials());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    raftpb::MembersResponse resp;
    auto st = raftpb::Peer::NewStub(ch)->Members(&ctx, raftpb::MembersRequest{}, &resp);
    if (!st.ok()) {
      last = u + ": " + st.error_message();
      continue;
    }
    remote_cluster rc;
    rc.cluster_id = resp.cluster_id();
    for (const auto& r : resp.members()) {
      if (auto m = etcdserver::decode_member(r.SerializeAsString())) rc.members.push_back(*m);
    }
    return rc;
  }
  return cairn::unexpected("could not retrieve cluster information from the given URLs (" + last +
                           ")");
}

void peer_transport::count_received(std::uint64_t from, std::size_t bytes, bool failed) {
  std::lock_guard lock(mu_);
  auto& c = counters_[from];
  if (failed) {
    ++c.received_failures;
  } else {
    c.received_bytes += bytes;
  }
}

std::map<std::uint64_t, peer_counters> peer_transport::counters() const {
  std::lock_guard lock(mu_);
  auto out = counters_;
  for (const auto& [id, h] : round_trip_) out[id].round_trip = h->snapshot();
  return out;
}

grpc::Status peer_service::check_cluster(std::uint64_t cluster_id, std::uint64_t from) const {
  if (cluster_id != node_.cluster_id()) {
    CAIRN_LOG(warn, "request cluster ID mismatch",
              {"local-member-id", fmt::format("{:x}", node_.member_id())},
              {"local-member-cluster-id", fmt::format("{:x}", node_.cluster_id())},
              {"remote-peer-member-id", fmt::format("{:x}", from)},
              {"remote-peer-cluster-id", fmt::format("{:x}", cluster_id)});
    return {grpc::StatusCode::FAILED_PRECONDITION, "request cluster ID mismatch"};
  }
  if (node_.members().is_removed(from)) {
    CAIRN_LOG(warn, "rejected stream from remote peer because it was removed",
              {"local-member-id", fmt::format("{:x}", node_.member_id())},
              {"remote-peer-id-stream-handler", fmt::format("{:x}", from)});
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "the member has been permanently removed from the cluster"};
  }
  return grpc::Status::OK;
}

grpc::Status peer_service::Stream(grpc::ServerContext*,
                                  grpc::ServerReader<raftpb::Envelope>* reader, raftpb::Ack*) {
  raftpb::Envelope env;
  while (reader->Read(&env)) {
    if (auto st = check_cluster(env.cluster_id(), env.from()); !st.ok()) {
      transport_.count_received(env.from(), 0, true);
      return st;
    }
    transport_.count_received(env.from(), env.ByteSizeLong(), false);
    for (auto& m : *env.mutable_messages()) node_.step(std::move(m));
  }
  return grpc::Status::OK;
}

grpc::Status peer_service::LeaseRenew(grpc::ServerContext*, const raftpb::LeaseRenewRequest* req,
                                      raftpb::LeaseRenewResponse* resp) {
  if (auto st = check_cluster(req->cluster_id(), 0); !st.ok()) return st;
  // Only the leader renews; a member that is no longer it says so (the follower's KeepAlive
  // then answers as etcd does when the leader moved).
  if (node_.leader() != node_.member_id()) {
    resp->set_error(encode_errc(base::errc::not_leader));
    return grpc::Status::OK;
  }
  auto r = node_.lease_renew(req->id());
  if (r) {
    resp->set_ttl(*r);
  } else {
    resp->set_error(encode_errc(r.error()));
  }
  return grpc::Status::OK;
}

grpc::Status peer_service::LeaseTimeToLive(grpc::ServerContext*,
                                           const raftpb::LeaseTimeToLiveRequest* req,
                                           raftpb::LeaseTimeToLiveResponse* resp) {
  if (auto st = check_cluster(req->cluster_id(), 0); !st.ok()) return st;
  // Only the leader's lessor counts down (as for LeaseRenew).
  if (node_.leader() != node_.member_id()) {
    resp->set_error(encode_errc(base::errc::not_leader));
    return grpc::Status::OK;
  }
  if (auto st = node_.lease_time_to_live(req->id(), req->keys())) {
    resp->set_found(true);
    resp->set_ttl(st->ttl);
    resp->set_granted_ttl(st->granted_ttl);
    for (auto& k : st->keys) resp->add_keys(std::move(k));
  }
  return grpc::Status::OK;
}

grpc::Status peer_service::HashKV(grpc::ServerContext*, const raftpb::HashKVRequest* req,
                                  raftpb::HashKVResponse* resp) {
  if (auto st = check_cluster(req->cluster_id(), 0); !st.ok()) return st;
  resp->set_member_id(node_.member_id());
  auto r = node_.store().hash_kv(req->revision());
  if (!r) {
    // hash_kv fails only for a revision compacted away or not reached yet.
    resp->set_error(encode_errc(r.error() == mvcc::errc::compacted ? base::errc::compacted
                                                                   : base::errc::future_rev));
    return grpc::Status::OK;
  }
  resp->set_revision(r->revision);
  resp->set_hash(r->hash);
  resp->set_compact_revision(r->compact_revision);
  return grpc::Status::OK;
}

grpc::Status peer_service::Probe(grpc::ServerContext*, const raftpb::ProbeRequest* req,
                                 raftpb::ProbeResponse*) {
  return check_cluster(req->cluster_id(), 0);
}

grpc::Status peer_service::Snapshot(grpc::ServerContext*,
                                    grpc::ServerReader<raftpb::SnapshotChunk>* reader,
                                    raftpb::Ack*) {
  raftpb::SnapshotChunk first;
  if (!reader->Read(&first)) return {grpc::StatusCode::INVALID_ARGUMENT, "empty snapshot stream"};
  if (auto st = check_cluster(first.cluster_id(), first.from()); !st.ok()) return st;
  if (first.message().type() != raftpb::MSG_SNAP) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "the first chunk carries no snapshot message"};
  }
  const auto index = first.message().snapshot().metadata().index();
  const std::string path = node_.received_snapshot_path(index);
  const std::string tmp = path + ".tmp";
  CAIRN_LOG(info, "receiving database snapshot",
            {"snapshot-sender-id", fmt::format("{:x}", first.from())}, {"snapshot-index", index},
            {"snapshot-size", first.db_size()});
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return {grpc::StatusCode::INTERNAL, "cannot create " + tmp};
  std::uint32_t crc = 0;
  std::uint64_t size = 0;
  bool complete = false;
  std::uint32_t want_crc = 0;
  raftpb::SnapshotChunk c;
  bool write_ok = true;
  while (reader->Read(&c)) {
    write_ok = write_ok && std::fwrite(c.data().data(), 1, c.data().size(), f) == c.data().size();
    crc = base::crc32c_extend(crc, c.data());
    size += c.data().size();
    if (c.last()) {
      complete = true;
      want_crc = c.crc32c();
      break;
    }
  }
  write_ok = write_ok && std::fflush(f) == 0 && ::fdatasync(fileno(f)) == 0;
  std::fclose(f);
  transport_.count_received(first.from(), size, !complete);
  if (!write_ok || !complete || size != first.db_size() || crc != want_crc) {
    std::remove(tmp.c_str());
    CAIRN_LOG(warn, "failed to receive database snapshot",
              {"snapshot-sender-id", fmt::format("{:x}", first.from())}, {"snapshot-index", index},
              {"received-bytes", size});
    return {grpc::StatusCode::DATA_LOSS, "incomplete or corrupt snapshot"};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return {grpc::StatusCode::INTERNAL, "cannot rename " + tmp};
  }
  CAIRN_LOG(info, "received database snapshot",
            {"snapshot-sender-id", fmt::format("{:x}", first.from())}, {"snapshot-index", index},
            {"snapshot-size", size});
  node_.step(first.message());
  return grpc::Status::OK;
}

grpc::Status peer_service::Promote(grpc::ServerContext*, const raftpb::PromoteRequest* req,
                                   raftpb::PromoteResponse* resp) {
  if (auto st = check_cluster(req->cluster_id(), 0); !st.ok()) return st;
  auto r = node_.promote_member_here(req->id());
  if (!r) {
    resp->set_error(encode_errc(r.error()));
    return grpc::Status::OK;
  }
  for (const auto& m : *r) {
    resp->add_members()->ParseFromString(etcdserver::encode_member(m));
  }
  return grpc::Status::OK;
}

grpc::Status peer_service::Members(grpc::ServerContext*, const raftpb::MembersRequest*,
                                   raftpb::MembersResponse* resp) {
  resp->set_cluster_id(node_.cluster_id());
  for (const auto& m : node_.members().list()) {
    resp->add_members()->ParseFromString(etcdserver::encode_member(m));
  }
  return grpc::Status::OK;
}

cairn::expected<std::unique_ptr<peer_listener>, std::string> peer_listener::start(
    const std::vector<std::string>& peer_urls, peer_service& svc,
    std::shared_ptr<grpc::ServerCredentials> tls) {
  auto l = std::unique_ptr<peer_listener>(new peer_listener());
  grpc::ServerBuilder b;
  std::vector<std::pair<std::string, std::unique_ptr<int>>> ports;
  for (const auto& u : peer_urls) {
    auto target = dial_target(u);
    if (!target) {
      return cairn::unexpected("cannot listen on peer URL " + u +
                               " (only http:// and https:// peer URLs are supported)");
    }
    const bool https = u.starts_with("https://");
    if (https && !tls) {
      // etcd's words (transport.NewListener with an empty TLSInfo).
      return cairn::unexpected("cannot listen on TLS for " + *target +
                               ": KeyFile and CertFile are not presented");
    }
    ports.emplace_back(*target, std::make_unique<int>(0));
    b.AddListeningPort(*target, https ? tls : grpc::InsecureServerCredentials(),
                       ports.back().second.get());
  }
  b.SetMaxReceiveMessageSize(-1);
  b.SetMaxSendMessageSize(-1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.RegisterService(&svc);
  l->server_ = b.BuildAndStart();
  if (!l->server_) return cairn::unexpected(std::string("cannot listen on the peer URLs"));
  for (auto& [target, port] : ports) {
    if (*port == 0) return cairn::unexpected("cannot listen on peer URL http://" + target);
    auto host = target.substr(0, target.rfind(':'));
    l->addresses_.push_back(host + ":" + std::to_string(*port));
  }
  return l;
}

peer_listener::~peer_listener() { stop(); }

void peer_listener::stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    server_.reset();
  }
}

}  // namespace cairn::transport
