// Files this module writes besides the WAL and snapshots (whose formats wal/ and snap/ specify):
//
//   <data-dir>/member/cairn-format   "cairn data directory format 1\n", written atomically as
//                                    the last step of bootstrap: a directory without it is
//                                    either new or a bootstrap that never finished.
//   WAL metadata (wal::create)       "member_id=<16 hex>\ncluster_id=<16 hex>\n".
//   Raft snapshots                   metadata only (index, term, membership); the data field is
//                                    empty because the backend file is the state.
//   Alarm bucket                     key: member id (8 bytes big-endian) + alarm type (1 byte);
//                                    value empty.
//   Lease bucket                     written by the lessor (format in lease/lessor.cc). Which
//                                    keys a lease holds is not stored: open() rebuilds it from
//                                    the keys' lease fields.
//
// Bootstrap: a raft snapshot at index 1, term 1, whose membership is this member alone, is
// saved (snapshot file, then the WAL with its mark and a hard state {term 1, commit 1}), then
// the format file. Recovery loads the newest snapshot whose mark the WAL has, replays the WAL
// after it, and refuses a backend whose consistent index is below that snapshot (the backend is
// synced before every snapshot, so that would mean the db file was replaced).
#include "etcdserver/server.h"
#include "base/failpoint.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "raftpb/peer.pb.h"
#include "schema/schema.h"
#include "snap/snapshotter.h"
#include "spdlog/spdlog.h"
#include "wal/wal.h"

namespace cairn::etcdserver {

struct lease_revoked {
  std::int64_t revision = 0;
};
struct lease_checkpointed {};
struct auth_applied {
  std::string token;  // authenticate only
};

using apply_value =
    std::variant<mvcc::put_response, mvcc::delete_range_response, mvcc::txn_response,
                 compact_response, std::vector<alarm_member>, lease_grant_result, lease_revoked,
                 lease_checkpointed, std::vector<member>, auth_applied,
                 cairn::expected<v2store::event, v2store::error>>;

// Where the v2 store lives in the db: one blob, written before each commit that follows a
// change (the backend's pre-commit hook), so it always matches the consistent index.
constexpr std::string_view v2store_key = "v2store";

// A request as `who` asked it: the header the apply checks permissions with.
request as_user(request r, const auth::auth_info& who) {
  r.user = who.user;
  r.auth_revision = who.revision;
  return r;
}

struct server::apply_result {
  cairn::expected<apply_value, base::errc> value;
};

struct server::waiter {
  std::function<void(apply_result)> done;
  std::chrono::steady_clock::time_point deadline;
};

struct server::read_waiter {
  // Called once with the read index (or why there is none).
  std::function<void(cairn::expected<std::uint64_t, base::errc>)> index;
  std::chrono::steady_clock::time_point deadline;
};

struct server::applied_waiter {
  std::chrono::steady_clock::time_point deadline;
  std::function<void(cairn::expected<void, base::errc>)> ready;
};

struct server::loop_input {
  struct proposal {
    std::uint64_t id;
    std::string data;
  };
  struct snapshot_due {
    std::uint64_t index;
    std::uint64_t term;
    raftpb::ConfState conf;
  };
  struct conf_proposal {
    std::uint64_t id;
    raftpb::ConfChange cc;
  };
  using call = std::function<void(raft::raw_node&)>;
  std::variant<proposal, std::shared_ptr<read_waiter>, raftpb::Message, snapshot_due, conf_proposal,
               call>
      v;
};

namespace {

std::string_view alarm_name(alarm_type a) {
  switch (a) {
    case alarm_type::nospace:
      return "NOSPACE";
    case alarm_type::corrupt:
      return "CORRUPT";
    default:
      return "NONE";
  }
}

constexpr std::string_view format_file_name = "cairn-format";
constexpr std::string_view format_content = "cairn data directory format 1\n";

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 14695981039346656037ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string alarm_key(const alarm_member& a) {
  std::string k = schema::encode_u64(a.member_id);
  k.push_back(static_cast<char>(a.alarm));
  return k;
}

base::errc from_mvcc(mvcc::errc e) {
  switch (e) {
    case mvcc::errc::compacted:
      return base::errc::compacted;
    case mvcc::errc::future_rev:
      return base::errc::future_rev;
    case mvcc::errc::key_not_found:
      return base::errc::key_not_found;
    case mvcc::errc::lease_not_found:
      return base::errc::lease_not_found;
    default:
      break;
  }
  spdlog::critical("etcdserver: unexpected mvcc error {}", mvcc::to_string(e));
  std::abort();
}

[[noreturn]] void fatal(std::string_view what) {
  spdlog::critical("etcdserver: {}", what);
  std::abort();
}

template <class T>
cairn::expected<T, base::errc> take(cairn::expected<apply_value, base::errc> v) {
  if (!v) return cairn::unexpected(v.error());
  return std::get<T>(std::move(*v));
}

}  // namespace

server::server(server_config cfg)
    : cfg_(std::move(cfg)), fs_(cfg_.fs ? cfg_.fs : &base::posix_file_system()) {
  // Request ids only need to differ from those of entries still being replayed from the WAL,
  // which a previous run numbered: start from the wall clock in nanoseconds, as a restart comes
  // later than any id handed out before (at fewer than 10^9 requests a second).
  next_id_ = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  if (cfg_.request_timeout.count() == 0) {
    cfg_.request_timeout = std::chrono::milliseconds{5000} + 2 * cfg_.election;
  }
}

cairn::expected<std::unique_ptr<server>, server_error> server::open_stopped(server_config cfg) {
  std::unique_ptr<server> s(new server(std::move(cfg)));
  if (auto r = s->open(); !r) return cairn::unexpected(r.error());
  return s;
}

cairn::expected<std::unique_ptr<server>, server_error> server::start(server_config cfg) {
  auto s = open_stopped(std::move(cfg));
  if (!s) return s;
  if (auto r = (*s)->launch(); !r) return cairn::unexpected(r.error());
  return s;
}

cairn::expected<void, server_error> server::launch() {
  raft_thread_ = std::thread([this] { raft_loop(); });
  apply_thread_ = std::thread([this] { apply_loop(); });
  lease_thread_ = std::thread([this] { lease_loop(); });
  // A lone member elects itself at once (raft_loop campaigns); wait for that so the first
  // request does not meet "no leader". Members of a larger cluster elect one by ticks.
  if (conf_.voters_size() == 1 && conf_.voters(0) == member_id_) {
    auto deadline = std::chrono::steady_clock::now() + cfg_.request_timeout;
    while (leader_.load() != member_id_) {
      if (std::chrono::steady_clock::now() > deadline) {
        return cairn::unexpected(server_error{"no leader elected within the request timeout"});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }
  publisher_ = std::thread([this] { publish_attributes(); });
  if (cfg_.corrupt_check_interval.count() > 0) {
    CAIRN_LOG(info, "enabled corruption checking",
              {"local-member-id", fmt::format("{:x}", member_id_)},
              {"interval", fmt::format("{}ms", cfg_.corrupt_check_interval.count())});
    corrupt_thread_ = std::thread([this] { corrupt_check_loop(); });
  }
  if (cfg_.auto_compaction) {
    auto opts = *cfg_.auto_compaction;
    bool on = opts.mode == compaction_mode::periodic ? opts.period.count() > 0 : opts.revisions > 0;
    if (on) {
      server* p = this;
      compactor_ = std::make_unique<compactor>(
          opts, [p] { return p->store_->rev(); },
          [p](std::int64_t rev) {
            auto r = p->compact(rev, false);
            return r.has_value() || r.error() == base::errc::compacted;
          });
    }
  }
  return {};
}

cairn::expected<void, server_error> server::open() {
  auto err = [](std::string m) { return cairn::unexpected(server_error{std::move(m)}); };
  const std::string member = base::join_path(cfg_.data_dir, "member");
  const std::string wal_dir = base::join_path(member, "wal");
  const std::string snap_dir = base::join_path(member, "snap");
  const std::string db_path = base::join_path(member, "db");
  const std::string format_path = base::join_path(member, format_file_name);

  // etcd keeps its bbolt file at member/snap/db; ours is member/db.
  std::error_code ec;
  auto etcd_db = base::join_path(snap_dir, "db");
  auto on_fs = fs_->exists(etcd_db);
  if (std::filesystem::exists(etcd_db, ec) || (on_fs && *on_fs)) {
    return err(absl::StrCat(cfg_.data_dir,
                            " looks like an etcd data directory (member/snap/db is etcd's bbolt "
                            "database); Cairn cannot read it: start on a new directory and import "
                            "etcd's data with `cairnctl snapshot restore`"));
  }
  auto has_wal = wal::wal::exists(*fs_, wal_dir);
  if (!has_wal) return err(has_wal.error().message);
  auto has_format = fs_->exists(format_path);
  if (!has_format) return err(has_format.error().message);
  snapshotter_ = std::make_unique<snap::snapshotter>(*fs_, snap_dir);
  wal::options wopts;
  wopts.segment_size = cfg_.wal_segment_size;
  wopts.stats = &stats_.disk;

  raftpb::Snapshot snapshot;
  if (*has_format) {
    auto content = base::read_file(*fs_, format_path);
    if (!content) return err(content.error().message);
    if (*content != format_content) {
      return err(absl::StrCat(format_path, ": unknown data directory format"));
    }
    if (!*has_wal) return err(absl::StrCat(wal_dir, ": missing write-ahead log"));
    // The newest snapshot the WAL has a mark for.
    auto names = snapshotter_->names();
    if (!names) return err(names.error().message);
    std::optional<wal::wal::opened> opened;
    for (const auto& n : *names) {
      std::uint64_t term = 0, index = 0;
      if (!snap::parse_snapshot_file_name(n, &term, &index)) continue;
      auto o = wal::wal::open(*fs_, wal_dir, {index, term}, wopts);
      if (!o) {
        if (o.error().code == wal::errc::snapshot_not_found) continue;
        return err(o.error().message);
      }
      auto s = snapshotter_->load_newest(
          [&](std::uint64_t i, std::uint64_t t) { return i == index && t == term; });
      if (!s) continue;  // a broken file (logged by the snapshotter): try an older one
      snapshot = std::move(*s);
      opened = std::move(*o);
      break;
    }
    if (!opened) return err(absl::StrCat(cfg_.data_dir, ": no snapshot matching the WAL"));
    wal_ = std::move(opened->log);
    restarted_ = true;
    const std::string& meta = opened->data.metadata;
    if (std::sscanf(meta.c_str(), "member_id=%lx\ncluster_id=%lx\n", &member_id_, &cluster_id_) !=
        2) {
      return err(absl::StrCat(wal_dir, ": bad WAL metadata"));
    }
    if (auto r = storage_.apply_snapshot(snapshot); !r) fatal("restoring the raft snapshot");
    hard_state_ = opened->data.state;
    storage_.set_hard_state(hard_state_);
    storage_.append(opened->data.entries);
  } else {
    if (*has_wal || [&] {
          auto n = snapshotter_->names();
          return n && !n->empty();
        }()) {
      return err(absl::StrCat(cfg_.data_dir,
                              ": a bootstrap did not finish (no format file); remove the "
                              "directory to start over"));
    }
    auto initial = initial_members();
    if (!initial) return err(initial.error());
    bootstrap_members_ = std::move(*initial);
    std::vector<std::uint64_t> ids;
    member_id_ = 0;
    if (cfg_.join) {
      // etcd's ValidateClusterAndAssignIDs: the same members, matched by peer URLs, whose ids
      // the cluster already gave them.
      if (cfg_.join->members.size() != bootstrap_members_.size()) {
        return err("error validating peerURLs: member count is unequal");
      }
      for (const auto& e : cfg_.join->members) {
        auto eu = e.peer_urls;
        std::sort(eu.begin(), eu.end());
        bool found = false;
        for (auto& l : bootstrap_members_) {
          auto lu = l.peer_urls;
          std::sort(lu.begin(), lu.end());
          if (lu == eu) {
            l.id = e.id;
            found = true;
            break;
          }
        }
        if (!found) {
          return err(absl::StrFormat(
              "error validating peerURLs: PeerURLs: no match found for existing member (%x, %s)",
              e.id, absl::StrJoin(e.peer_urls, ",")));
        }
      }
      for (const auto& l : bootstrap_members_) {
        if (l.name == cfg_.name) member_id_ = l.id;
      }
      cluster_id_ = cfg_.join->cluster_id;
      // The members as the cluster has them (names, learners); the leader's snapshot brings the
      // rest. Raft starts empty: this member is in no configuration until that snapshot.
      bootstrap_members_ = cfg_.join->members;
    } else {
      for (const auto& m : bootstrap_members_) {
        ids.push_back(m.id);
        if (m.name == cfg_.name) member_id_ = m.id;
      }
      cluster_id_ = compute_cluster_id(ids);
    }
    if (auto r = base::create_dirs(*fs_, snap_dir); !r) return err(r.error().message);
    const std::uint64_t boot = cfg_.join ? 0 : 1;
    snapshot.mutable_metadata()->set_index(boot);
    snapshot.mutable_metadata()->set_term(boot);
    for (auto id : ids) snapshot.mutable_metadata()->mutable_conf_state()->add_voters(id);
    if (auto r = snapshotter_->save(snapshot); !r) return err(r.error().message);
    auto w = wal::wal::create(
        *fs_, wal_dir,
        absl::StrFormat("member_id=%016x\ncluster_id=%016x\n", member_id_, cluster_id_), wopts);
    if (!w) return err(w.error().message);
    wal_ = std::move(*w);
    if (boot > 0) {
      if (auto r = wal_->save_snapshot({boot, boot}); !r) return err(r.error().message);
    }
    hard_state_.set_term(boot);
    hard_state_.set_commit(boot);
    if (auto r = wal_->save(hard_state_, {}); !r) return err(r.error().message);
    if (auto r = base::write_file_atomically(*fs_, format_path, format_content); !r) {
      return err(r.error().message);
    }
    if (auto r = storage_.apply_snapshot(snapshot); !r) fatal("installing the bootstrap snapshot");
    storage_.set_hard_state(hard_state_);
  }
  conf_ = snapshot.metadata().conf_state();
  snapshot_index_ = snapshot.metadata().index();
  last_snapshot_ = snapshot.metadata().index();

  // The db is a real file whatever the file layer of WAL and snapshots.
  std::filesystem::create_directories(member, ec);
  backend::options bopts;
  bopts.quota_bytes = cfg_.quota_bytes;
  bopts.stats = &stats_.disk;
  bopts.batch_interval = cfg_.backend_batch_interval;
  bopts.batch_limit = cfg_.backend_batch_limit;
  // A commit the disk refuses is tried again until it goes in. Only the apply thread (or this
  // one, before it starts) commits; waiting blocks applying, and nothing is lost meanwhile: every
  // entry of the batch is in the WAL, so a crash or a stop now replays it at the next start.
  bopts.commit_failed = [this](std::string_view error) {
    if (!db_full_.exchange(true)) {
      spdlog::error("backend: committing the db failed ({}): refusing writes until it succeeds",
                    error);
    }
    std::unique_lock lock(apply_mu_);
    return !apply_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_apply_; });
  };
  bopts.commit_resumed = [this] {
    db_full_ = false;
    spdlog::warn("backend: db commits succeed again; serving writes");
  };
  auto be = schema::open_backend(db_path, bopts);
  if (!be) return err(absl::StrCat(db_path, ": ", be.error().message));
  backend_ = std::move(*be);
  {
    // Fault the db's pages in now rather than on the first reads, as etcd does by mapping its db
    // with MAP_POPULATE.
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t warmed = backend_->warm();
    spdlog::info("backend: warmed the memory map, {} bytes in {} ms (as etcd's MAP_POPULATE)",
                 warmed,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count());
  }
  if (!*has_format) {
    // The bootstrap snapshot stands for index 1: the (empty) db covers it, and the members.
    for (const auto& m : bootstrap_members_) members_.put(*backend_, m);
    const std::uint64_t boot = cfg_.join ? 0 : 1;
    schema::write_consistent_index(*backend_, {boot, boot});
    if (!backend_->sync()) return err(absl::StrCat(db_path, ": the first commit failed"));
  }
  members_.load(*backend_);
  if (members_.list().empty()) {
    // A data directory from before the members bucket: this member alone.
    etcdserver::member self;
    self.id = member_id_;
    self.name = cfg_.name;
    self.peer_urls = cfg_.advertise_peer_urls;
    members_.put(*backend_, self);
  }
  store_ = mvcc::store::open(*backend_);
  lease::lessor_config lc;
  lc.min_ttl = lease::min_ttl_seconds(cfg_.election, cfg_.heartbeat);
  lc.checkpoint = cfg_.lease_checkpoint;
  lc.checkpoint_persist = cfg_.lease_checkpoint_persist;
  lc.checkpoint_interval = cfg_.lease_checkpoint_interval;
  lc.revoke_per_second = cfg_.lease_revoke_rate;
  lessor_ = std::make_unique<lease::lessor>(backend_.get(), lc);
  lessor_->recover();
  restore_lease_keys();
  store_->set_lease_hook(lessor_.get());
  auth_ = std::make_unique<auth::store>(*backend_, cfg_.auth);
  v2_ = std::make_unique<v2store::store>();
  load_v2();
  backend_->add_pre_commit_hook([this] {
    if (v2_dirty_.exchange(false)) backend_->put(schema::meta, v2store_key, v2_->save());
  });
  // Server-chosen lease ids: the low 16 bits of the member id, then milliseconds since the epoch
  // shifted past an 8-bit counter, so ids differ across members and restarts.
  lease_counter_ =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count())
      << 8;
  // Close whatever batch opening wrote on this thread: the apply thread is the writer now.
  backend_->force_commit();
  auto ci = store_->consistent_index();
  if (ci.index < snapshot.metadata().index() &&
      std::filesystem::exists(received_snapshot_path(snapshot.metadata().index()), ec)) {
    // A snapshot from the leader was made durable but a crash came before its db was installed
    // (etcd's recovery of <index>.snap.db): install it now, before any thread runs.
    watchable_ = std::make_unique<mvcc::watchable_store>(*store_);
    install_snapshot(snapshot);
    backend_->force_commit();
    ci = store_->consistent_index();
  }
  if (ci.index < snapshot.metadata().index()) {
    return err(absl::StrCat(db_path, ": the database (consistent index ", ci.index,
                            ") is older than the raft snapshot at ", snapshot.metadata().index()));
  }
  applied_ = snapshot.metadata().index();
  applied_term_ = snapshot.metadata().term();
  load_alarms();
  if (!watchable_) watchable_ = std::make_unique<mvcc::watchable_store>(*store_);

  raft::config rc;
  rc.id = raft::node_id{member_id_};
  rc.heartbeat_tick = 1;
  rc.election_tick = static_cast<int>(std::max<std::int64_t>(
      2, cfg_.election.count() / std::max<std::int64_t>(1, cfg_.heartbeat.count())));
  rc.applied = snapshot.metadata().index();
  rc.seed = member_id_;
  if (auto why = rc.validate()) return err(*why);
  node_ = std::make_unique<raft::raw_node>(std::move(rc), storage_);
  term_ = hard_state_.term();
  committed_ = hard_state_.commit();
  last_index_ = storage_.last_index();
  spdlog::info("etcdserver: member {:016x} of cluster {:016x} starting at snapshot {}, db index {}",
               member_id_, cluster_id_, snapshot.metadata().index(), ci.index);
  return {};
}

void server::load_alarms() {
  auto view = backend_->read();
  std::lock_guard lock(alarm_mu_);
  view.scan(schema::alarm, "", "", [&](std::string_view k, std::string_view) {
    if (k.size() == 9) {
      alarms_.insert({*schema::decode_u64(k.substr(0, 8)), static_cast<alarm_type>(k[8])});
    }
    return true;
  });
}

void server::restore_lease_keys() {
  // Every live key that names a lease (the lessor's own bucket does not say).
  std::size_t attached = 0;
  store_->for_each_leased([&](std::string_view key, std::int64_t lease) {
    lessor_->on_put(key, lease);
    ++attached;
  });
  if (attached > 0) spdlog::info("etcdserver: {} keys attached to their leases", attached);
}

server::~server() { shutdown(false); }

void server::simulate_crash() { shutdown(true); }

void server::shutdown(bool crash) {
  {
    std::lock_guard lock(wait_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  compactor_.reset();
  {
    std::lock_guard lock(lease_mu_);
    stop_lease_ = true;
  }
  lease_cv_.notify_all();
  if (lease_thread_.joinable()) lease_thread_.join();
  if (publisher_.joinable()) publisher_.join();
  if (corrupt_thread_.joinable()) corrupt_thread_.join();
  {
    std::lock_guard lock(apply_mu_);
    stop_apply_ = true;
    crash_ = crash;
    apply_paused_ = false;
  }
  apply_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  {
    std::lock_guard lock(loop_mu_);
    stop_loop_ = true;
  }
  loop_cv_.notify_all();
  if (raft_thread_.joinable()) raft_thread_.join();
  // Everyone still waiting hears "stopped": registered proposals, reads in a ReadIndex round
  // and reads still queued for the raft loop.
  {
    std::lock_guard lock(wait_mu_);
    for (auto& [id, w] : waiters_) w->done({cairn::unexpected(base::errc::stopped)});
    waiters_.clear();
  }
  for (auto& [ctx, rs] : reads_) {
    for (auto& r : rs) r->index(cairn::unexpected(base::errc::stopped));
  }
  reads_.clear();
  {
    std::lock_guard lock(loop_mu_);
    for (auto& in : inbox_) {
      if (auto* rw = std::get_if<std::shared_ptr<read_waiter>>(&in.v)) {
        (*rw)->index(cairn::unexpected(base::errc::stopped));
      }
    }
    inbox_.clear();
  }
  {
    std::multimap<std::uint64_t, applied_waiter> left;
    {
      std::lock_guard lock(applied_mu_);
      left.swap(applied_waiters_);
    }
    for (auto& [index, w] : left) w.ready(cairn::unexpected(base::errc::stopped));
  }
  watchable_.reset();
  store_.reset();
  backend_.reset();
  if (wal_ && !crash) (void)wal_->close();
  wal_.reset();
}

// ---------------------------------------------------------------- requests

cairn::expected<server::apply_result, base::errc> server::propose(request r) {
  std::promise<apply_result> p;
  auto fut = p.get_future();
  propose_async(std::move(r), [&p](apply_result res) { p.set_value(std::move(res)); });
  apply_result res = fut.get();
  if (!res.value) return cairn::unexpected(res.value.error());
  return res;
}

void server::propose_async(request r, std::function<void(apply_result)> done) {
  if (disk_full()) {
    stats_.proposals_failed.fetch_add(1, std::memory_order_relaxed);
    return done({cairn::unexpected(base::errc::no_space)});
  }
  if (committed_.load() > applied_.load() + cfg_.max_pending_applies) {
    stats_.proposals_failed.fetch_add(1, std::memory_order_relaxed);
    return done({cairn::unexpected(base::errc::too_many_requests)});
  }
  r.id = ++next_id_;
  std::string data = encode_request(r);
  if (data.size() > cfg_.max_request_bytes) {
    return done({cairn::unexpected(base::errc::request_too_large)});
  }
  stats_.proposals_pending.fetch_add(1, std::memory_order_relaxed);
  submit(r.id, {loop_input::proposal{r.id, std::move(data)}},
         [this, done = std::move(done)](apply_result res) {
           stats_.proposals_pending.fetch_sub(1, std::memory_order_relaxed);
           done(std::move(res));
         });
}

void server::submit(std::uint64_t id, loop_input in, std::function<void(apply_result)> done) {
  auto w = std::make_shared<waiter>();
  w->done = std::move(done);
  w->deadline = std::chrono::steady_clock::now() + cfg_.request_timeout;
  bool stopped;
  {
    std::lock_guard lock(wait_mu_);
    stopped = stopped_;
    if (!stopped) waiters_[id] = w;
  }
  if (stopped) return w->done({cairn::unexpected(base::errc::stopped)});
  {
    std::lock_guard lock(loop_mu_);
    inbox_.push_back(std::move(in));
  }
  loop_cv_.notify_one();
}

std::shared_ptr<server::waiter> server::take_waiter(std::uint64_t id) {
  std::lock_guard lock(wait_mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return nullptr;
  auto w = std::move(it->second);
  waiters_.erase(it);
  return w;
}

void server::publish_applied(std::uint64_t index, std::uint64_t term) {
  applied_term_ = term;
  {
    std::lock_guard lock(applied_mu_);
    applied_ = index;
  }
  applied_cv_.notify_all();
}

void server::expire_waiters() {
  // Ids grow with time and every waiter has the same timeout, so the expired ones come first.
  std::vector<std::shared_ptr<waiter>> expired;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(wait_mu_);
    while (!waiters_.empty() && waiters_.begin()->second->deadline <= now) {
      expired.push_back(std::move(waiters_.begin()->second));
      waiters_.erase(waiters_.begin());
    }
  }
  for (auto& w : expired) {
    stats_.proposals_failed.fetch_add(1, std::memory_order_relaxed);
    w->done({cairn::unexpected(base::errc::timeout)});
  }
}

void server::expire_reads() {
  const auto now = std::chrono::steady_clock::now();
  // ReadIndex rounds that never came back (raft thread: reads_ is its own).
  for (auto it = reads_.begin(); it != reads_.end();) {
    auto& rs = it->second;
    std::vector<std::shared_ptr<read_waiter>> expired;
    std::erase_if(rs, [&](const std::shared_ptr<read_waiter>& r) {
      if (r->deadline > now) return false;
      expired.push_back(r);
      return true;
    });
    for (auto& r : expired) r->index(cairn::unexpected(base::errc::timeout));
    it = rs.empty() ? reads_.erase(it) : std::next(it);
  }
  // Reads whose index the apply thread has not reached in time.
  std::vector<applied_waiter> late;
  {
    std::lock_guard lock(applied_mu_);
    for (auto it = applied_waiters_.begin(); it != applied_waiters_.end();) {
      if (it->second.deadline <= now) {
        late.push_back(std::move(it->second));
        it = applied_waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : late) w.ready(cairn::unexpected(base::errc::timeout));
}

void server::propose_no_wait(request r) {
  r.id = ++next_id_;
  std::string data = encode_request(r);
  {
    std::lock_guard lock(wait_mu_);
    if (stopped_) return;
  }
  {
    std::lock_guard lock(loop_mu_);
    inbox_.push_back({loop_input::proposal{r.id, std::move(data)}});
  }
  loop_cv_.notify_one();
}

cairn::expected<void, base::errc> server::check_quota(std::int64_t cost) {
  if (cost == 0) return {};
  if (backend_->size() + static_cast<std::uint64_t>(cost) < cfg_.quota_bytes) return {};
  // Over quota: raise NOSPACE (through raft, so every member and a restart see it), refuse.
  alarm_request a{alarm_action::activate, member_id_, alarm_type::nospace};
  {
    std::lock_guard lock(alarm_mu_);
    if (alarms_.contains({member_id_, alarm_type::nospace})) {
      return cairn::unexpected(base::errc::no_space);
    }
  }
  spdlog::warn("etcdserver: database size {} over quota {}: raising NOSPACE", backend_->size(),
               cfg_.quota_bytes);
  (void)alarm(a);
  return cairn::unexpected(base::errc::no_space);
}

cairn::expected<mvcc::put_response, base::errc> server::put(const mvcc::put_request& r,
                                                            const auth::auth_info& who) {
  if (auto q = check_quota(quota_cost(r)); !q) return cairn::unexpected(q.error());
  auto res = propose(as_user({0, r}, who));
  if (!res) return cairn::unexpected(res.error());
  return take<mvcc::put_response>(std::move(res->value));
}

void server::put_async(const mvcc::put_request& r, callback<mvcc::put_response> done,
                       const auth::auth_info& who) {
  if (auto q = check_quota(quota_cost(r)); !q) return done(cairn::unexpected(q.error()));
  propose_async(as_user({0, r}, who), [done = std::move(done)](apply_result res) {
    done(take<mvcc::put_response>(std::move(res.value)));
  });
}

void server::delete_range_async(const mvcc::delete_range_request& r,
                                callback<mvcc::delete_range_response> done,
                                const auth::auth_info& who) {
  propose_async(as_user({0, r}, who), [done = std::move(done)](apply_result res) {
    done(take<mvcc::delete_range_response>(std::move(res.value)));
  });
}

void server::txn_async(const mvcc::txn_request& r, callback<mvcc::txn_response> done,
                       const auth::auth_info& who) {
  if (mvcc::is_read_only(r)) std::abort();  // callers read those through txn()
  if (auto q = check_quota(quota_cost(r)); !q) return done(cairn::unexpected(q.error()));
  propose_async(as_user({0, r}, who), [done = std::move(done)](apply_result res) {
    done(take<mvcc::txn_response>(std::move(res.value)));
  });
}

cairn::expected<mvcc::delete_range_response, base::errc> server::delete_range(
    const mvcc::delete_range_request& r, const auth::auth_info& who) {
  auto res = propose(as_user({0, r}, who));
  if (!res) return cairn::unexpected(res.error());
  return take<mvcc::delete_range_response>(std::move(res->value));
}

cairn::expected<mvcc::txn_response, base::errc> server::txn(const mvcc::txn_request& r,
                                                            bool serializable,
                                                            const auth::auth_info& who) {
#ifndef CAIRN_PLANTED_BUG_READ_TXN_THROUGH_RAFT
  if (mvcc::is_read_only(r)) {
    if (who.revision != 0) {
      if (auto ok = check_txn_auth(*auth_, who, r); !ok) return cairn::unexpected(ok.error());
    }
    // etcd's path for a txn without writes: the linearizable-read wait, then the store.
    if (!serializable) {
      if (auto ok = wait_read_index(); !ok) return cairn::unexpected(ok.error());
    }
    auto res = store_->read_txn(r);
    if (!res) return cairn::unexpected(from_mvcc(res.error()));
    return std::move(*res);
  }
#else
  (void)serializable;
#endif
  if (auto q = check_quota(quota_cost(r)); !q) return cairn::unexpected(q.error());
  auto res = propose(as_user({0, r}, who));
  if (!res) return cairn::unexpected(res.error());
  return take<mvcc::txn_response>(std::move(res->value));
}

cairn::expected<compact_response, base::errc> server::compact(std::int64_t revision,
                                                              bool physical) {
  auto res = propose({0, compact_request{revision, physical}});
  if (!res) return cairn::unexpected(res.error());
  return take<compact_response>(std::move(res->value));
}

cairn::expected<std::vector<alarm_member>, base::errc> server::alarm(const alarm_request& r) {
  auto res = propose({0, r});
  if (!res) return cairn::unexpected(res.error());
  return take<std::vector<alarm_member>>(std::move(res->value));
}

cairn::expected<lease_grant_result, base::errc> server::lease_grant(std::int64_t id,
                                                                    std::int64_t ttl) {
  if (ttl > lease::max_ttl_seconds) return cairn::unexpected(base::errc::lease_ttl_too_large);
  // Chosen before proposing, so every member applies the same id (etcd's reqIDGen, masked to a
  // positive int64).
  while (id == 0) {
    std::uint64_t suffix = ++lease_counter_ & ((std::uint64_t{1} << 48) - 1);
    id = static_cast<std::int64_t>((((member_id_ & 0xffff) << 48) | suffix) &
                                   ~(std::uint64_t{1} << 63));
  }
  auto res = propose({0, lease_grant_request{id, ttl}});
  if (!res) return cairn::unexpected(res.error());
  return take<lease_grant_result>(std::move(res->value));
}

cairn::expected<std::int64_t, base::errc> server::lease_revoke(std::int64_t id,
                                                               const auth::auth_info& who) {
  auto res = propose(as_user({0, lease_revoke_request{id}}, who));
  if (!res) return cairn::unexpected(res.error());
  auto r = take<lease_revoked>(std::move(res->value));
  if (!r) return cairn::unexpected(r.error());
  return r->revision;
}

cairn::expected<std::int64_t, base::errc> server::lease_renew(std::int64_t id) {
  // The leader renews on its own lessor; a follower forwards to the leader over the peer URL,
  // as etcd does.
  const std::uint64_t leader = leader_.load();
  if (leader == 0) return cairn::unexpected(base::errc::no_leader);
  if (leader != member_id_) {
    if (cfg_.peers == nullptr) return cairn::unexpected(base::errc::not_leader);
    return cfg_.peers->lease_renew(leader, id);
  }
  auto r = lessor_->renew(lease::lease_id{id});
  if (!r) return cairn::unexpected(r.error());
  if (r->clear_checkpoint) propose_no_wait({0, lease_checkpoint_request{{{id, 0}}}});
  return r->ttl;
}

std::optional<lease::lease_status> server::lease_time_to_live(std::int64_t id, bool keys) const {
  return lessor_->time_to_live(lease::lease_id{id}, keys);
}

cairn::expected<std::optional<lease::lease_status>, base::errc> server::leader_lease_time_to_live(
    std::int64_t id, bool keys) const {
  const std::uint64_t leader = leader_.load();
  if (leader == 0) return cairn::unexpected(base::errc::no_leader);
#ifndef CAIRN_PLANTED_BUG_TTL_FROM_FOLLOWER_LESSOR
  if (leader != member_id_ && cfg_.peers != nullptr) {
    return cfg_.peers->lease_time_to_live(leader, id, keys);
  }
#endif
  return lease_time_to_live(id, keys);
}

std::vector<std::int64_t> server::lease_ids() const {
  std::vector<std::int64_t> out;
  for (auto id : lessor_->leases()) out.push_back(id.value());
  return out;
}

void server::lease_loop() {
  const auto interval = cfg_.lease_loop_interval;
  // etcd revokes at most leaseRevokeRate a second, half of it per 500 ms round.
  const auto limit = static_cast<std::size_t>(std::max<std::int64_t>(
      1, static_cast<std::int64_t>(cfg_.lease_revoke_rate) * interval.count() / 1000));
  while (true) {
    {
      std::unique_lock lock(lease_mu_);
      if (lease_cv_.wait_for(lock, interval, [&] { return stop_lease_; })) return;
    }
    if (!lessor_->is_primary()) continue;
    // The leader expires v2 TTLs for everyone (etcd's SYNC every 500 ms).
    if (auto due = v2_->next_expiry(); due && *due <= v2store::clock::now()) {
      v2_request sync;
      sync.method = "SYNC";
      sync.time = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      v2store::clock::now().time_since_epoch())
                      .count();
      propose_no_wait({0, std::move(sync)});
    }
    auto expired = lessor_->expired(limit);
    // etcd #15247: a leader that was stalled (a paused process, a stuck disk) still believes it
    // leads when it wakes, and its lessor sees leases expire that the new leader kept alive. Its
    // revoke, once it has stepped down, would be forwarded to the new leader and committed.
    // A ReadIndex round first proves that this member still leads (etcd's ensureLeadership).
#ifndef CAIRN_PLANTED_BUG_STALE_LEADER_REVOKES
    if (!expired.empty() && !still_leads()) {
      spdlog::warn("etcdserver: not revoking {} expired leases: this member no longer leads",
                   expired.size());
      continue;
    }
#endif
    for (auto id : expired) {
      spdlog::debug("etcdserver: lease {:x} expired: revoking", id.value());
      propose_no_wait({0, lease_revoke_request{id.value()}});
    }
    auto cps = lessor_->due_checkpoints(1000);  // etcd's maxLeaseCheckpointBatchSize
    if (!cps.empty()) {
      lease_checkpoint_request req;
      for (const auto& c : cps) req.checkpoints.push_back({c.id.value(), c.remaining_ttl});
      propose_no_wait({0, std::move(req)});
    }
  }
}

std::vector<alarm_member> server::alarms() const {
  std::lock_guard lock(alarm_mu_);
  return {alarms_.begin(), alarms_.end()};
}

bool server::still_leads() {
  if (!wait_read_index()) return false;
  return leader_.load() == member_id_;
}

namespace {
std::string hex(std::uint64_t id) { return fmt::format("{:x}", id); }
}  // namespace

cairn::expected<void, server_error> server::check_initial_hash_kv() {
  if (!restarted_ || cfg_.peers == nullptr) return {};
  CAIRN_LOG(info, "starting initial corruption check", {"local-member-id", hex(member_id_)},
            {"timeout", fmt::format("{}ms", cfg_.request_timeout.count())});
  auto mine = store_->hash_kv(0);
  if (!mine) {
    return cairn::unexpected(server_error{fmt::format(
        "{} failed to fetch hash ({})", hex(member_id_), mvcc::to_string(mine.error()))});
  }
  int mismatch = 0;
  for (const auto& m : members_.list()) {
    if (m.id == member_id_) continue;
    auto p = cfg_.peers->hash_kv(m.id, mine->revision);
    if (!p) {
      if (p.error() == base::errc::future_rev) {
        CAIRN_LOG(warn, "cannot fetch hash from slow remote peer",
                  {"local-member-id", hex(member_id_)}, {"remote-peer-id", hex(m.id)},
                  {"local-member-revision", mine->revision});
      } else if (p.error() == base::errc::compacted) {
        CAIRN_LOG(warn, "cannot fetch hash from remote peer; local member is behind",
                  {"local-member-id", hex(member_id_)}, {"remote-peer-id", hex(m.id)},
                  {"local-member-revision", mine->revision});
      } else {
        CAIRN_LOG(warn, "cannot fetch hash from remote peer", {"local-member-id", hex(member_id_)},
                  {"remote-peer-id", hex(m.id)}, {"error", base::message(p.error())});
      }
      continue;
    }
    if (p->hash == mine->hash) continue;
    if (p->compact_revision == mine->compact_revision) {
      CAIRN_LOG(warn, "found different hash values from remote peer",
                {"local-member-id", hex(member_id_)}, {"local-member-revision", mine->revision},
                {"local-member-compact-revision", mine->compact_revision},
                {"local-member-hash", mine->hash}, {"remote-peer-id", hex(p->member_id)},
                {"remote-peer-hash", p->hash});
      ++mismatch;
    } else {
      CAIRN_LOG(warn, "found different compact revision values from remote peer",
                {"local-member-id", hex(member_id_)},
                {"local-member-compact-revision", mine->compact_revision},
                {"remote-peer-id", hex(p->member_id)},
                {"remote-peer-compact-revision", p->compact_revision});
    }
  }
#ifdef CAIRN_PLANTED_BUG_INITIAL_CHECK_PASSES
  mismatch = 0;
#endif
  if (mismatch > 0) {
    return cairn::unexpected(
        server_error{fmt::format("{} found data inconsistency with peers", hex(member_id_))});
  }
  CAIRN_LOG(info, "initial corruption checking passed; no corruption",
            {"local-member-id", hex(member_id_)});
  return {};
}

void server::corrupt_check_loop() {
  while (true) {
    {
      std::unique_lock lock(lease_mu_);
      if (lease_cv_.wait_for(lock, cfg_.corrupt_check_interval, [&] { return stop_lease_; })) {
        return;
      }
    }
    if (leader_.load() != member_id_) continue;
    (void)check_hash_kv();
  }
}

std::optional<std::uint64_t> server::check_hash_kv() {
  if (cfg_.peers == nullptr) return std::nullopt;
  auto h1 = store_->hash_kv(0);
  if (!h1) return std::nullopt;
  std::vector<peer_hash> peers;
  for (const auto& m : members_.list()) {
    if (m.id == member_id_) continue;
    auto p = cfg_.peers->hash_kv(m.id, h1->revision);
    if (p) {
      peers.push_back(*p);
    } else {
      CAIRN_LOG(warn, "failed to get hashKV from remote peer", {"local-member-id", hex(member_id_)},
                {"remote-peer-id", hex(m.id)}, {"error", base::message(p.error())});
    }
  }
  if (auto r = wait_read_index(); !r) {
    CAIRN_LOG(warn, "failed to check hash KV", {"error", base::message(r.error())});
    return std::nullopt;
  }
  auto h2 = store_->hash_kv(0);
  if (!h2) return std::nullopt;
  std::optional<std::uint64_t> alarmed;
  auto mismatch = [&](std::uint64_t id) {
    if (alarmed) return;
    alarmed = id;
    (void)alarm({alarm_action::activate, id, alarm_type::corrupt});
  };
  if (h2->hash != h1->hash && h2->revision == h1->revision &&
      h2->compact_revision == h1->compact_revision) {
    CAIRN_LOG(warn, "found hash mismatch", {"revision-1", h1->revision},
              {"compact-revision-1", h1->compact_revision}, {"hash-1", h1->hash},
              {"revision-2", h2->revision}, {"compact-revision-2", h2->compact_revision},
              {"hash-2", h2->hash});
    mismatch(member_id_);
  }
#ifdef CAIRN_PLANTED_BUG_CORRUPT_CHECK_SKIPS_PEERS
  peers.clear();
#endif
  for (const auto& p : peers) {
    // A follower cannot be ahead of the leader once the ReadIndex round is done.
    if (p.revision > h2->revision) {
      CAIRN_LOG(warn, "revision from follower must be less than or equal to leader's",
                {"leader-revision", h2->revision}, {"follower-revision", p.revision},
                {"follower-peer-id", hex(p.member_id)});
      mismatch(p.member_id);
    }
    if (p.compact_revision > h2->compact_revision) {
      CAIRN_LOG(warn, "compact revision from follower must be less than or equal to leader's",
                {"leader-compact-revision", h2->compact_revision},
                {"follower-compact-revision", p.compact_revision},
                {"follower-peer-id", hex(p.member_id)});
      mismatch(p.member_id);
    }
    if (p.compact_revision == h1->compact_revision && p.hash != h1->hash) {
      CAIRN_LOG(warn, "same compact revision then hashes must match",
                {"leader-compact-revision", h2->compact_revision}, {"leader-hash", h1->hash},
                {"follower-compact-revision", p.compact_revision}, {"follower-hash", p.hash},
                {"follower-peer-id", hex(p.member_id)});
      mismatch(p.member_id);
    }
  }
  CAIRN_LOG(info, "finished peer corruption check",
            {"number-of-peers-checked", static_cast<std::int64_t>(peers.size())});
  return alarmed;
}

cairn::expected<void, base::errc> server::wait_read_index() {
  auto p = std::make_shared<std::promise<cairn::expected<void, base::errc>>>();
  auto fut = p->get_future();
  read_index_async([p](cairn::expected<void, base::errc> r) { p->set_value(r); });
  return fut.get();  // every path ends: an answer, a timeout (expire_waiters) or the stop
}

void server::read_index_async(std::function<void(cairn::expected<void, base::errc>)> ready) {
#ifdef CAIRN_PLANTED_BUG_STALE_LOCAL_READ
  return ready({});  // planted: linearizable reads served from this member's state as it is
#endif
  const auto deadline = std::chrono::steady_clock::now() + cfg_.request_timeout;
  auto rw = std::make_shared<read_waiter>();
  rw->deadline = deadline;
  rw->index = [this, deadline, ready](cairn::expected<std::uint64_t, base::errc> index) {
    if (!index) {
      stats_.read_indexes_failed.fetch_add(1, std::memory_order_relaxed);
      if (index.error() == base::errc::timeout) {
        stats_.slow_read_indexes.fetch_add(1, std::memory_order_relaxed);
      }
      return ready(cairn::unexpected(index.error()));
    }
    {
      std::lock_guard lock(applied_mu_);
      if (applied_.load() < *index) {
        applied_waiters_.emplace(*index, applied_waiter{deadline, ready});
        return;
      }
    }
    ready({});
  };
  {
    std::lock_guard lock(loop_mu_);
    if (!stop_loop_) {
      inbox_.push_back({rw});
      rw.reset();
    }
  }
  if (rw) return ready(cairn::unexpected(base::errc::stopped));
  loop_cv_.notify_one();
}

void server::release_applied_waiters() {
  std::vector<applied_waiter> due;
  {
    std::lock_guard lock(applied_mu_);
    const std::uint64_t applied = applied_.load();
    auto end = applied_waiters_.upper_bound(applied);
    for (auto it = applied_waiters_.begin(); it != end; ++it) due.push_back(std::move(it->second));
    applied_waiters_.erase(applied_waiters_.begin(), end);
  }
  for (auto& w : due) w.ready({});
}

cairn::expected<mvcc::range_response, base::errc> server::range(const mvcc::range_request& r,
                                                                bool serializable,
                                                                const auth::auth_info& who) {
  if (who.revision != 0) {
    if (auto ok = auth_->check(who, r.key, r.range_end, auth::perm_type::read); !ok) {
      return cairn::unexpected(ok.error());
    }
  }
  if (!serializable) {
    if (auto ok = wait_read_index(); !ok) return cairn::unexpected(ok.error());
  }
  auto res = store_->range(r);
  if (!res) return cairn::unexpected(from_mvcc(res.error()));
  return std::move(*res);
}

status_info server::status() {
  status_info s;
  s.member_id = member_id_;
  s.cluster_id = cluster_id_;
  s.leader = leader_.load();
  s.raft_index = last_index_.load();
  s.raft_term = term_.load();
  s.applied_index = applied_.load();
  s.db_size = backend_->size();
  s.db_size_in_use = backend_->size_in_use();
  s.revision = store_->rev();
  s.alarms = alarms();
  return s;
}

cairn::expected<std::vector<member>, std::string> server::initial_members() const {
  // "name=url,name=url2,other=url3": one member per name, in order of first appearance.
  std::vector<member> out;
  std::string text = cfg_.initial_cluster;
  if (text.empty()) {
    for (const auto& u : cfg_.advertise_peer_urls) {
      if (!text.empty()) text += ',';
      absl::StrAppend(&text, cfg_.name, "=", u);
    }
  }
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::string_view item(piece.data(), piece.size());
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return cairn::unexpected(absl::StrCat("--initial-cluster: entry \"", std::string(item),
                                            "\" is not of the form name=url"));
    }
    std::string name(item.substr(0, eq));
    std::string url(item.substr(eq + 1));
    auto it = std::find_if(out.begin(), out.end(), [&](const member& m) { return m.name == name; });
    if (it == out.end()) {
      member m;
      m.name = std::move(name);
      m.peer_urls.push_back(std::move(url));
      out.push_back(std::move(m));
    } else {
      it->peer_urls.push_back(std::move(url));
    }
  }
  if (out.empty()) {
    // No peer URLs at all (a test's in-process node): this member alone, on a name-based id.
    member m;
    m.name = cfg_.name;
    m.id = fnv1a(absl::StrCat(cfg_.name, "\0", cfg_.initial_cluster_token));
    if (m.id == 0) m.id = 1;
    out.push_back(std::move(m));
    return out;
  }
  auto self =
      std::find_if(out.begin(), out.end(), [&](const member& m) { return m.name == cfg_.name; });
  if (self == out.end()) {
    return cairn::unexpected(absl::StrCat("couldn't find local name \"", cfg_.name,
                                          "\" in the initial cluster configuration"));
  }
  if (!cfg_.advertise_peer_urls.empty()) {
    // etcd's advertiseMatchesCluster.
    std::vector<std::string> in_cluster = self->peer_urls, advertised = cfg_.advertise_peer_urls;
    std::sort(in_cluster.begin(), in_cluster.end());
    std::sort(advertised.begin(), advertised.end());
    std::vector<std::string> missing;
    for (const auto& u : in_cluster) {
      if (!std::binary_search(advertised.begin(), advertised.end(), u)) {
        missing.push_back(absl::StrCat(cfg_.name, "=", u));
      }
    }
    if (!missing.empty()) {
      return cairn::unexpected(absl::StrCat(
          "--initial-cluster has ", absl::StrJoin(missing, ","),
          " but missing from --initial-advertise-peer-urls=", absl::StrJoin(advertised, ",")));
    }
    for (const auto& u : advertised) {
      if (!std::binary_search(in_cluster.begin(), in_cluster.end(), u)) missing.push_back(u);
    }
    if (!missing.empty()) {
      std::vector<std::string> mine;
      for (const auto& u : advertised) mine.push_back(absl::StrCat(cfg_.name, "=", u));
      return cairn::unexpected(
          absl::StrCat("--initial-advertise-peer-urls has ", absl::StrJoin(missing, ","),
                       " but missing from --initial-cluster=", absl::StrJoin(mine, ",")));
    }
  }
  std::set<std::uint64_t> ids;
  for (auto& m : out) {
    m.id = compute_member_id(m.peer_urls, cfg_.initial_cluster_token);
    if (!ids.insert(m.id).second) {
      return cairn::unexpected(absl::StrCat("--initial-cluster: member ", m.name,
                                            " has the same peer URLs as another member"));
    }
  }
  return out;
}

void server::report_unreachable(std::uint64_t peer) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(peer);
  step(std::move(m));
}

// ---------------------------------------------------------------- membership changes

namespace {

constexpr auto health_interval = std::chrono::seconds(5);  // etcd's HealthInterval

}  // namespace

bool server::run_on_raft(std::function<void(raft::raw_node&)> fn) {
  auto done = std::make_shared<std::promise<bool>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(loop_mu_);
    if (stop_loop_) return false;
    inbox_.push_back({loop_input::call{[fn = std::move(fn), done](raft::raw_node& n) {
      fn(n);
      done->set_value(true);
    }}});
  }
  loop_cv_.notify_one();
  // A push that raced the stop is dropped with the inbox at shutdown: a broken promise.
  try {
    return fut.get();
  } catch (const std::future_error&) {
    return false;
  }
}

cairn::expected<void, base::errc> server::move_leader(std::uint64_t target) {
  const auto deadline = std::chrono::steady_clock::now() + cfg_.request_timeout;
  CAIRN_LOG(info, "leadership transfer starting",
            {"local-member-id", fmt::format("{:x}", member_id_)},
            {"current-leader-member-id", fmt::format("{:x}", leader_.load())},
            {"transferee-member-id", fmt::format("{:x}", target)});
  if (!run_on_raft([&](raft::raw_node& n) { n.transfer_leader(raft::node_id{target}); })) {
    return cairn::unexpected(base::errc::stopped);
  }
  while (leader_.load() != target) {
    if (std::chrono::steady_clock::now() > deadline) {
      return cairn::unexpected(base::errc::timeout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

void server::mark_removed() {
  if (removed_.exchange(true)) return;
  CAIRN_LOG(warn, "the member has been permanently removed from the cluster",
            {"local-member-id", fmt::format("{:x}", member_id_)});
  CAIRN_LOG(warn, "the data-dir used by this member must be removed", {"data-dir", cfg_.data_dir});
}

cairn::expected<std::vector<member>, base::errc> server::configure(raftpb::ConfChange cc) {
  if (removed_.load()) return cairn::unexpected(base::errc::stopped);
  cc.set_id(++next_id_);
  std::promise<apply_result> p;
  auto fut = p.get_future();
  const std::uint64_t id = cc.id();
  submit(id, {loop_input::conf_proposal{id, std::move(cc)}},
         [&p](apply_result res) { p.set_value(std::move(res)); });
  apply_result res = fut.get();
  if (!res.value) return cairn::unexpected(res.value.error());
  return std::get<std::vector<member>>(*res.value);
}

namespace {

// Voters that have published their attributes (etcd's IsStarted: a name).
std::pair<int, int> started_voters(const std::vector<member>& ms, std::uint64_t skip) {
  int n = 0, started = 0;
  for (const auto& m : ms) {
    if (m.is_learner || m.id == skip) continue;
    ++n;
    if (!m.name.empty()) ++started;
  }
  return {n, started};
}

}  // namespace

cairn::expected<server::member_added, base::errc> server::add_member(
    std::vector<std::string> peer_urls, bool learner) {
  member m;
  m.peer_urls = std::move(peer_urls);
  m.is_learner = learner;
  // etcd's NewMember for a runtime addition: no cluster token, the time in seconds instead.
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  m.id = compute_member_id(m.peer_urls, std::to_string(now));
  const auto ms = members_.list();
  if (cfg_.strict_reconfig_check) {
    if (!learner) {
      // etcd's IsReadyToAddVotingMember: the new member counts, unstarted; a second voter
      // for a one-member cluster is always allowed (growing it, restoring its data elsewhere).
      auto [n, started] = started_voters(ms, 0);
      const bool grows_one = n == 1 && started == 1;
      if (!grows_one && started < (n + 1) / 2 + 1) {
        return cairn::unexpected(base::errc::member_not_enough_started);
      }
    }
    // isConnectedFullySince: every voter connected for a health interval.
    const auto since = std::chrono::steady_clock::now() - health_interval;
    for (const auto& v : ms) {
      if (v.is_learner || v.id == member_id_) continue;
      auto t = cfg_.peers ? cfg_.peers->active_since(v.id) : std::nullopt;
      if (!t || *t > since) return cairn::unexpected(base::errc::unhealthy);
    }
  }
  raftpb::ConfChange cc;
  cc.set_type(learner ? raftpb::CONF_ADD_LEARNER_NODE : raftpb::CONF_ADD_NODE);
  cc.set_node_id(m.id);
  cc.set_context(encode_member(m));
  auto r = configure(std::move(cc));
  if (!r) return cairn::unexpected(r.error());
  return member_added{m, std::move(*r)};
}

cairn::expected<std::vector<member>, base::errc> server::remove_member(std::uint64_t id) {
  const auto ms = members_.list();
  if (cfg_.strict_reconfig_check) {
    auto it = std::find_if(ms.begin(), ms.end(), [&](const member& m) { return m.id == id; });
    const bool is_learner = it != ms.end() && it->is_learner;
    if (!is_learner) {
      auto [n, started] = started_voters(ms, id);
      if (started < n / 2 + 1) return cairn::unexpected(base::errc::member_not_enough_started);
      const bool down =
          id != member_id_ && (!cfg_.peers || !cfg_.peers->active_since(id).has_value());
      if (!down) {
        // Quorum must hold among the members connected for a health interval.
        const auto since = std::chrono::steady_clock::now() - health_interval;
        int voters = 0, active = 0;
        for (const auto& v : ms) {
          if (v.is_learner) continue;
          ++voters;
          if (v.id == member_id_) {
            ++active;
            continue;
          }
          auto t = cfg_.peers ? cfg_.peers->active_since(v.id) : std::nullopt;
          if (t && *t <= since) ++active;
        }
        if (active - 1 < 1 + (voters - 1) / 2) return cairn::unexpected(base::errc::unhealthy);
      }
    }
  }
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_REMOVE_NODE);
  cc.set_node_id(id);
  return configure(std::move(cc));
}

cairn::expected<std::vector<member>, base::errc> server::update_member(
    std::uint64_t id, std::vector<std::string> peer_urls) {
  member m;
  m.id = id;
  m.peer_urls = std::move(peer_urls);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_UPDATE_NODE);
  cc.set_node_id(id);
  cc.set_context(encode_member(m));
  return configure(std::move(cc));
}

cairn::expected<std::vector<member>, base::errc> server::promote_member_here(std::uint64_t id) {
  // etcd's isLearnerReady: only the leader knows the learner's progress.
  std::optional<base::errc> refused;
  if (!run_on_raft([&](raft::raw_node& n) {
        auto st = n.status();
        if (st.role != raft::role_kind::leader) {
          refused = base::errc::not_leader;
          return;
        }
        auto it = st.peers.find(raft::node_id{id});
        if (it == st.peers.end()) return;  // not a member: the change is refused at apply
        auto self = st.peers.find(raft::node_id{member_id_});
        const double leader_match =
            self == st.peers.end() ? 0.0 : static_cast<double>(self->second.match);
        if (static_cast<double>(it->second.match) < leader_match * 0.9) {
          refused = base::errc::learner_not_ready;
        }
      })) {
    return cairn::unexpected(base::errc::stopped);
  }
  if (refused) return cairn::unexpected(*refused);
  if (cfg_.strict_reconfig_check) {
    // IsReadyToPromoteMember: the learner counts as a started voter.
    auto [n, started] = started_voters(members_.list(), id);
    if (started + 1 < (n + 1) / 2 + 1) {
      return cairn::unexpected(base::errc::member_not_enough_started);
    }
  }
  raftpb::MemberRecord ctx;
  ctx.set_id(id);
  ctx.set_promote(true);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_NODE);
  cc.set_node_id(id);
  cc.set_context(ctx.SerializeAsString());
  return configure(std::move(cc));
}

cairn::expected<std::vector<member>, base::errc> server::promote_member(std::uint64_t id) {
  auto r = promote_member_here(id);
  if (r || r.error() != base::errc::not_leader) return r;
  const std::uint64_t leader = leader_.load();
  if (leader == 0) return cairn::unexpected(base::errc::no_leader);
  if (cfg_.peers == nullptr) return cairn::unexpected(base::errc::not_leader);
  if (auto f = cfg_.peers->promote_on_leader(leader, id); !f) return cairn::unexpected(f.error());
  return members_.list();
}

// etcd's ValidateConfigurationChange, against the members as they are before the change.
std::optional<base::errc> server::validate_conf_change(
    const raftpb::ConfChange& cc, const raftpb::MemberRecord& ctx,
    const std::optional<member>& existing) const {
  const auto ms = members_.list();
  // Another member (not `skip`) already has one of the change's peer URLs.
  auto url_taken = [&](std::uint64_t skip) {
    for (const auto& m : ms) {
      if (m.id == skip) continue;
      for (const auto& u : ctx.peer_urls()) {
        if (std::find(m.peer_urls.begin(), m.peer_urls.end(), u) != m.peer_urls.end()) return true;
      }
    }
    return false;
  };
  switch (cc.type()) {
    case raftpb::CONF_ADD_NODE:
    case raftpb::CONF_ADD_LEARNER_NODE:
      if (ctx.promote()) {
        if (!existing) return base::errc::member_not_found;
        if (!existing->is_learner) return base::errc::member_not_learner;
        return std::nullopt;
      }
      if (existing) return base::errc::member_exist;
      if (url_taken(0)) return base::errc::peer_url_exist;
      if (cc.type() == raftpb::CONF_ADD_LEARNER_NODE &&
          std::count_if(ms.begin(), ms.end(), [](const member& m) { return m.is_learner; }) >= 1) {
        return base::errc::too_many_learners;  // etcd's maxLearners: 1
      }
      return std::nullopt;
    case raftpb::CONF_REMOVE_NODE:
      if (!existing) return base::errc::member_not_found;
      return std::nullopt;
    case raftpb::CONF_UPDATE_NODE:
      if (!existing) return base::errc::member_not_found;
      if (url_taken(cc.node_id())) return base::errc::peer_url_exist;
      return std::nullopt;
    default:
      fatal(absl::StrCat("unknown conf change type ", static_cast<int>(cc.type())));
  }
}

void server::apply_conf_change(const raftpb::Entry& e, bool replay) {
  raftpb::ConfChange cc;
  if (!cc.ParseFromString(e.data())) fatal(absl::StrCat("undecodable conf change at ", e.index()));
  raftpb::MemberRecord ctx;
  if (!cc.context().empty() && !ctx.ParseFromString(cc.context())) {
    fatal(absl::StrCat("undecodable conf change context at ", e.index()));
  }
  const std::uint64_t id = cc.node_id();
  std::optional<base::errc> invalid;
  auto existing = members_.get(id);
  if (replay) {
    // Already validated and recorded: the members bucket says whether it took effect.
    const bool took =
        cc.type() == raftpb::CONF_REMOVE_NODE ? members_.is_removed(id) : existing.has_value();
    if (!took) invalid = base::errc::member_not_found;
  } else if (members_.is_removed(id)) {
    invalid = base::errc::member_not_found;  // etcd's ErrIDRemoved
  } else {
    invalid = validate_conf_change(cc, ctx, existing);
  }
  raftpb::ConfChange to_raft = cc;
  if (invalid) to_raft.set_node_id(0);  // raft only forgets the pending change (etcd: None)
  raftpb::ConfState cs;
  if (!run_on_raft([&](raft::raw_node& n) { cs = n.apply_conf_change(to_raft); })) return;
  {
    std::lock_guard lock(conf_mu_);
    conf_ = cs;
  }
  if (!invalid && !replay) {
    switch (cc.type()) {
      case raftpb::CONF_ADD_NODE:
      case raftpb::CONF_ADD_LEARNER_NODE:
        if (ctx.promote()) {
          existing->is_learner = false;
          members_.put(*backend_, *existing);
          CAIRN_LOG(info, "promote member", {"promoted-member-id", fmt::format("{:x}", id)});
        } else {
          member m;
          m.id = id;
          m.peer_urls.assign(ctx.peer_urls().begin(), ctx.peer_urls().end());
          m.is_learner = cc.type() == raftpb::CONF_ADD_LEARNER_NODE;
          members_.put(*backend_, m);
          CAIRN_LOG(info, "added member", {"added-peer-id", fmt::format("{:x}", id)},
                    {"added-peer-peer-urls", absl::StrJoin(m.peer_urls, ",")},
                    {"added-peer-is-learner", m.is_learner});
        }
        break;
      case raftpb::CONF_REMOVE_NODE:
        members_.remove(*backend_, id);
        CAIRN_LOG(info, "removed member", {"removed-remote-peer-id", fmt::format("{:x}", id)});
        break;
      case raftpb::CONF_UPDATE_NODE:
        existing->peer_urls.assign(ctx.peer_urls().begin(), ctx.peer_urls().end());
        members_.put(*backend_, *existing);
        CAIRN_LOG(info, "updated member", {"updated-remote-peer-id", fmt::format("{:x}", id)},
                  {"updated-remote-peer-urls", absl::StrJoin(existing->peer_urls, ",")});
        break;
      default:
        break;
    }
  }
  publish_applied(e.index(), e.term());
  if (auto w = take_waiter(cc.id())) {
    if (invalid) {
      w->done({cairn::unexpected(*invalid)});
    } else {
      w->done({apply_value(members_.list())});
    }
  }
  if (!invalid && cc.type() == raftpb::CONF_REMOVE_NODE && id == member_id_) mark_removed();
}

void server::report_snapshot(std::uint64_t peer, bool ok) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(peer);
  m.set_reject(!ok);
  step(std::move(m));
}

void server::publish_attributes() {
  // etcd's publish: the member's name and client URLs, through raft, until it sticks.
  member_attributes_request attrs{member_id_, cfg_.name, cfg_.advertise_client_urls};
  if (auto me = members_.get(member_id_);
      me && me->name == attrs.name && me->client_urls == attrs.client_urls) {
    return;  // already published with these values (a restart with the same flags)
  }
  while (true) {
    {
      std::unique_lock lock(lease_mu_);
      if (stop_lease_) return;
    }
    if (leader_.load() != 0) {
      auto r = propose({0, attrs});
      if (r) {
        CAIRN_LOG(info, "published local member to cluster through raft",
                  {"local-member-id", fmt::format("{:x}", member_id_)},
                  {"cluster-id", fmt::format("{:x}", cluster_id_)});
        return;
      }
      if (r.error() == base::errc::stopped) return;
    }
    std::unique_lock lock(lease_mu_);
    if (lease_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_lease_; })) {
      return;
    }
  }
}

void server::step(raftpb::Message m) {
  if (m.type() == raftpb::MSG_APP)
    stats_.recv_append_requests.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(loop_mu_);
    inbox_.push_back({std::move(m)});
  }
  loop_cv_.notify_one();
}

void server::pause_apply(bool paused) {
  {
    std::lock_guard lock(apply_mu_);
    apply_paused_ = paused;
  }
  apply_cv_.notify_all();
}

// ---------------------------------------------------------------- raft loop

void server::raft_loop() {
  if (conf_.voters_size() == 1 && conf_.voters(0) == member_id_) node_->campaign();
  auto next_tick = std::chrono::steady_clock::now() + cfg_.heartbeat;
  std::deque<loop_input> batch;
  while (true) {
    {
      std::unique_lock lock(loop_mu_);
      loop_cv_.wait_until(lock, next_tick, [&] { return stop_loop_ || !inbox_.empty(); });
      if (stop_loop_) break;
      batch.swap(inbox_);
    }
    if (const auto now = std::chrono::steady_clock::now(); now >= next_tick) {
      node_->tick();
      next_tick += cfg_.heartbeat;
      // Ticks missed while the loop was held up (a stuck disk, a paused process) are dropped,
      // as Go's ticker drops them for etcd: caught up one per pass, they would run out a
      // follower's election timeout at once and make it campaign against a live leader.
#ifndef CAIRN_PLANTED_BUG_TICK_BURST
      if (next_tick <= now) next_tick = now + cfg_.heartbeat;
#endif
      expire_waiters();
      expire_reads();
    }
    // Every proposal queued meanwhile joins the same Ready, hence the same fdatasync.
    std::vector<std::shared_ptr<read_waiter>> readers;
    for (auto& in : batch) {
      if (auto* p = std::get_if<loop_input::proposal>(&in.v)) {
        if (auto r = node_->propose(std::move(p->data)); !r) {
          std::shared_ptr<waiter> w = take_waiter(p->id);
          if (w) {
            w->done({cairn::unexpected(r.error() == raft::propose_error::no_leader
                                           ? base::errc::no_leader
                                           : base::errc::not_leader)});
          }
        }
      } else if (auto* rw = std::get_if<std::shared_ptr<read_waiter>>(&in.v)) {
        readers.push_back(std::move(*rw));
      } else if (auto* m = std::get_if<raftpb::Message>(&in.v)) {
        if (m->type() == raftpb::MSG_UNREACHABLE) {
          node_->report_unreachable(raft::node_id{m->from()});
        } else if (m->type() == raftpb::MSG_SNAP_STATUS) {
          node_->report_snapshot(raft::node_id{m->from()}, m->reject()
                                                               ? raft::snapshot_status::failure
                                                               : raft::snapshot_status::finished);
        } else if (auto r = node_->step(*m); !r) {
          spdlog::warn("etcdserver: dropped a raft message: {}", raft::to_string(r.error()));
        }
      } else if (auto* cp = std::get_if<loop_input::conf_proposal>(&in.v)) {
        if (auto r = node_->propose_conf_change(cp->cc); !r) {
          std::shared_ptr<waiter> w = take_waiter(cp->id);
          // A change still pending: etcd's raft drops the second one and etcd times out.
          if (w) {
            w->done({cairn::unexpected(r.error() == raft::propose_error::no_leader
                                           ? base::errc::no_leader
                                           : base::errc::timeout)});
          }
        }
      } else if (auto* fn = std::get_if<loop_input::call>(&in.v)) {
        (*fn)(*node_);
      } else {
        auto& sd = std::get<loop_input::snapshot_due>(in.v);
        take_snapshot(sd.index, sd.term, std::move(sd.conf));
      }
    }
    batch.clear();
    // One ReadIndex round answers every read that arrived since the last one.
    if (!readers.empty()) {
      std::string ctx = schema::encode_u64(++next_read_);
      if (auto r = node_->read_index(ctx); !r) {
        for (auto& rw : readers) rw->index(cairn::unexpected(base::errc::no_leader));
      } else {
        reads_[ctx] = std::move(readers);
      }
    }
    while (node_->has_ready()) handle_ready();
  }
  // Persist the latest commit index so a restart does not re-elect to learn it.
  if (!crash_) (void)wal_->save(hard_state_, {});
}

bool server::save_or_wait_for_disk(std::span<const raftpb::Entry> entries) {
  auto r = wal_->save(hard_state_, entries);
  if (r) return true;
  if (wal_->poisoned()) fatal(absl::StrCat("WAL save failed: ", r.error().message));
  // Nothing was written (a full disk, a failed write): refuse proposals with NOSPACE's error
  // and try the same save again until it goes in. Nothing is acknowledged meanwhile (the raft
  // loop waits here), so nothing acknowledged can be lost; as a leader this member stops
  // heartbeating and the others elect another.
  disk_full_ = true;
  spdlog::error("etcdserver: WAL write failed ({}): refusing writes until it succeeds",
                r.error().message);
  while (true) {
    {
      std::unique_lock lock(loop_mu_);
      if (loop_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_loop_; })) {
        return false;  // stopping: nothing of this Ready was saved; none of it may be used
      }
    }
    r = wal_->save(hard_state_, entries);
    if (r) break;
    if (wal_->poisoned()) fatal(absl::StrCat("WAL save failed: ", r.error().message));
  }
  disk_full_ = false;
  spdlog::warn("etcdserver: WAL writes succeed again; serving writes");
  return true;
}

void server::handle_ready() {
  raft::ready rd = node_->ready();
  if (rd.soft) {
    const std::uint64_t lead = rd.soft->lead.value();
    if (lead != leader_.load()) {
      if (lead != 0) {
        stats_.leader_changes.fetch_add(1, std::memory_order_relaxed);
        CAIRN_LOG(info, "elected leader", {"local-member-id", fmt::format("{:x}", member_id_)},
                  {"leader", fmt::format("{:x}", lead)}, {"term", node_->status().term.value()});
      } else {
        CAIRN_LOG(warn, "lost the leader", {"local-member-id", fmt::format("{:x}", member_id_)},
                  {"previous-leader", fmt::format("{:x}", leader_.load())});
      }
    }
    leader_ = lead;
    // The leader's lessor is the primary: it alone expires leases (etcd's Promote/Demote, with
    // the election timeout as the grace a new leader gives every lease).
    const bool leads = rd.soft->lead.value() == member_id_;
    if (leads && !lessor_primary_) {
      lessor_->promote(cfg_.election);
    } else if (!leads && lessor_primary_) {
      lessor_->demote();
    }
    lessor_primary_ = leads;
  }
  bool sync = rd.must_sync || !rd.entries.empty();
  if (rd.hard_state) {
    hard_state_ = *rd.hard_state;
    term_ = hard_state_.term();
    committed_ = hard_state_.commit();
  }
  if (rd.snapshot) {
    // A snapshot from the leader (its db is at received_snapshot_path): durable first (the
    // snapshot file, then its WAL mark), so that a crash before the install finds the db there
    // at the next start; then raft's storage; the apply thread installs the db in order.
    const auto& meta = rd.snapshot->metadata();
    if (auto r = snapshotter_->save(*rd.snapshot); !r) {
      fatal(absl::StrCat("saving the leader's snapshot: ", r.error().message));
    }
    if (auto r = wal_->save_snapshot({meta.index(), meta.term()}); !r) fatal(r.error().message);
    if (auto r = storage_.apply_snapshot(*rd.snapshot); !r) fatal("applying the leader's snapshot");
    snapshot_index_ = meta.index();
    CAIRN_LOG(info, "applied incoming snapshot", {"snapshot-index", meta.index()},
              {"snapshot-term", meta.term()});
  }
  // A commit-index-only change is not synced on its own (raft recovers the commit index), it
  // rides along with the next entries: one fdatasync per Ready that has something to promise.
#ifdef CAIRN_PLANTED_BUG_WAL_USER_BUFFER
  // Planted bug: entries wait in memory until 4096 have gathered, yet advance() below tells raft
  // they are durable, so they commit and are acknowledged; a kill -9 loses them.
  static thread_local std::vector<raftpb::Entry> held;
  held.insert(held.end(), rd.entries.begin(), rd.entries.end());
  if (held.size() >= 4096 || (sync && rd.entries.empty())) {
    if (auto r = wal_->save(hard_state_, held); !r) fatal(r.error().message);
    held.clear();
  }
  sync = false;
#endif
  CAIRN_FAILPOINT("raftBeforeSave");
  if (sync) {
#ifdef CAIRN_PLANTED_BUG_SYNC_PER_ENTRY
    for (std::size_t i = 0; i < rd.entries.size(); ++i) {
      if (auto r = wal_->save(hard_state_, std::span(rd.entries).subspan(i, 1)); !r) {
        fatal(absl::StrCat("WAL save failed: ", r.error().message));
      }
    }
    if (rd.entries.empty())
#endif
      if (!save_or_wait_for_disk(rd.entries)) return;
  }
  CAIRN_FAILPOINT("raftAfterSave");
  if (rd.hard_state) storage_.set_hard_state(hard_state_);
  if (!rd.entries.empty()) {
    storage_.append(rd.entries);
    last_index_ = storage_.last_index();
  }
  if (!rd.messages.empty()) {
    if (cfg_.peers != nullptr) {
      for (const auto& m : rd.messages) {
        if (m.type() == raftpb::MSG_APP) {
          stats_.send_append_requests.fetch_add(1, std::memory_order_relaxed);
        }
      }
      cfg_.peers->send(std::move(rd.messages));
    } else {
      spdlog::debug("etcdserver: no transport: dropping {} raft messages", rd.messages.size());
    }
  }
  if (rd.snapshot) {
    {
      std::lock_guard lock(apply_mu_);
      apply_queue_.push_back({{}, std::move(*rd.snapshot)});
    }
    apply_cv_.notify_one();
  }
  if (!rd.committed_entries.empty()) {
    {
      std::lock_guard lock(apply_mu_);
      apply_queue_.push_back({std::move(rd.committed_entries), std::nullopt});
    }
    apply_cv_.notify_one();
  }
  for (const auto& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end()) continue;
    for (auto& rw : it->second) rw->index(rs.index);
    reads_.erase(it);
  }
  for (const auto& ctx : rd.dropped_reads) {
    auto it = reads_.find(ctx);
    if (it == reads_.end()) continue;
    for (auto& rw : it->second) rw->index(cairn::unexpected(base::errc::leader_changed));
    reads_.erase(it);
  }
  node_->advance();
}

void server::take_snapshot(std::uint64_t index, std::uint64_t term, raftpb::ConfState conf) {
  // The WAL must hold a commit index covering the snapshot before the entries go.
  if (auto r = wal_->save(hard_state_, {}); !r) fatal(r.error().message);
  auto snap = storage_.create_snapshot(index, conf, "");
  if (!snap) {
    spdlog::warn("etcdserver: snapshot at {} skipped: {}", index, raft::to_string(snap.error()));
    return;
  }
  CAIRN_FAILPOINT("raftBeforeSaveSnap");
  if (auto r = snapshotter_->save(*snap); !r)
    fatal(absl::StrCat("saving snapshot: ", r.error().message));
  if (auto r = wal_->save_snapshot({index, term}); !r) fatal(r.error().message);
  CAIRN_FAILPOINT("raftAfterSaveSnap");
  // The backend was synced up to `index` by the apply thread before it asked for this.
  if (auto r = wal_->release_to(index); !r) fatal(r.error().message);
  if (index > cfg_.snapshot_catch_up_entries) {
    (void)storage_.compact(index - cfg_.snapshot_catch_up_entries);
  }
  snapshot_index_ = index;
  spdlog::info("etcdserver: saved snapshot at index {} (term {})", index, term);
}

// ---------------------------------------------------------------- apply

void server::apply_loop() {
  while (true) {
    std::vector<raftpb::Entry> batch;
    std::optional<raftpb::Snapshot> install;
    std::deque<std::function<void(bool)>> tasks;
    {
      std::unique_lock lock(apply_mu_);
      apply_cv_.wait_for(lock, cfg_.backend_batch_interval, [&] {
        return stop_apply_ || !tasks_.empty() || (!apply_queue_.empty() && !apply_paused_);
      });
      if (crash_) {
        for (auto& t : tasks_) t(false);
        tasks_.clear();
        // The watch sync loop reads the backend on its own thread: end it before the backend
        // goes away under it (this thread is the writer, so no write races the teardown).
        watchable_.reset();
        backend_->simulate_crash();
        return;
      }
      if (stop_apply_ && apply_queue_.empty() && tasks_.empty()) break;
      if (!apply_queue_.empty() && !apply_paused_) {
        batch = std::move(apply_queue_.front().entries);
        install = std::move(apply_queue_.front().install);
        apply_queue_.pop_front();
      }
      tasks.swap(tasks_);
    }
    if (install) {
      install_snapshot(*install);
      release_applied_waiters();
    }
    for (const auto& e : batch) {
      const auto start = std::chrono::steady_clock::now();
      apply_entry(e);
      const auto took = std::chrono::steady_clock::now() - start;
      if (took > std::chrono::milliseconds(100)) {
        stats_.slow_applies.fetch_add(1, std::memory_order_relaxed);
        // The request's shape (its kind and size), never its keys or values.
        CAIRN_LOG(warn, "apply request took too long", {"took", base::go_duration(took)},
                  {"expected-duration", "100ms"}, {"index", e.index()},
                  {"request-bytes", e.data().size()});
      }
    }
    if (!batch.empty()) release_applied_waiters();
    if (compaction_started_ && !store_->compaction_pending()) {
      CAIRN_LOG(
          info, "finished scheduled compaction", {"compact-revision", store_->compact_rev()},
          {"took", base::go_duration(std::chrono::steady_clock::now() - *compaction_started_)});
      compaction_started_.reset();
    }
    for (auto& t : tasks) t(true);
    if (store_->compaction_pending()) (void)store_->compaction_step();
    backend_->commit_if_due();
    std::uint64_t applied = applied_.load();
    if (applied >= last_snapshot_ + cfg_.snapshot_count) {
      // Everything up to `applied` must be durable in the db before the WAL lets it go.
      if (!backend_->sync()) continue;  // stopping with the disk still full
      last_snapshot_ = applied;
      {
        std::lock_guard lock(loop_mu_);
        std::lock_guard clock(conf_mu_);
        inbox_.push_back({loop_input::snapshot_due{applied, applied_term_, conf_}});
      }
      loop_cv_.notify_one();
    }
  }
  backend_->force_commit();
}

cairn::expected<void, server_error> server::defrag() {
  auto done = std::make_shared<std::promise<cairn::expected<void, server_error>>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(apply_mu_);
    if (stop_apply_) return cairn::unexpected(server_error{"etcdserver: server stopped"});
    tasks_.push_back([this, done](bool run) {
      if (!run) {
        done->set_value(cairn::unexpected(server_error{"etcdserver: server stopped"}));
        return;
      }
      auto before = backend_->size();
      auto r = backend_->defrag();
      if (!r) {
        done->set_value(cairn::unexpected(server_error{r.error().message}));
        return;
      }
      spdlog::info("etcdserver: defragmented the db: {} -> {} bytes", before, backend_->size());
      done->set_value({});
    });
  }
  apply_cv_.notify_all();
  return fut.get();
}

namespace {

// Replaces every bucket of `dst` with the contents of the db file at `src_path`, inside the open
// batch (the caller commits).
cairn::expected<void, std::string> replace_contents(backend::backend& dst,
                                                    const std::string& src_path) {
  backend::options o;
  o.quota_bytes = std::max<std::uint64_t>(dst.quota(), dst.map_size());
  auto src = schema::open_backend(src_path, o);
  if (!src) return cairn::unexpected(absl::StrCat(src_path, ": ", src.error().message));
  auto hold = dst.hold_commits();
  const auto n = static_cast<backend::bucket_id>(dst.buckets().size());
  for (backend::bucket_id b = 0; b < n; ++b) {
    dst.clear(b);
    auto view = (*src)->read_committed();
    view.scan(b, "", "", [&](std::string_view k, std::string_view v) {
      dst.put(b, k, v);
      return true;
    });
  }
  return {};
}

}  // namespace

std::string server::received_snapshot_path(std::uint64_t index) const {
  return base::join_path(base::join_path(base::join_path(cfg_.data_dir, "member"), "snap"),
                         absl::StrFormat("%016x.snap.db", index));
}

cairn::expected<server::outgoing_snapshot, std::string> server::snapshot_for(raftpb::Message m) {
  outgoing_snapshot out;
  std::string error;
  if (!run_on_writer([&] {
        backend_->force_commit();
        auto f = backend_->snapshot_to_file();
        if (!f) {
          error = f.error().message;
          return;
        }
        out.db = std::move(*f);
        auto* meta = m.mutable_snapshot()->mutable_metadata();
        const auto ci = store_->consistent_index();
        meta->set_index(ci.index);
        meta->set_term(ci.term);
        std::lock_guard lock(conf_mu_);
        *meta->mutable_conf_state() = conf_;
      })) {
    return cairn::unexpected(std::string("stopping"));
  }
  if (!error.empty()) return cairn::unexpected(error);
  out.msg = std::move(m);
  return out;
}

void server::install_snapshot(const raftpb::Snapshot& snap) {
  const auto& meta = snap.metadata();
  const std::string path = received_snapshot_path(meta.index());
  if (store_->consistent_index().index >= meta.index()) {
    // Already there (a restart found it installed).
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::filesystem::remove(path + "-lock", ec);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  // What this member applied before goes out in a commit of its own (a read-buffered bucket
  // takes one put per key and batch).
  backend_->force_commit();
  CAIRN_FAILPOINT("raftBeforeApplySnap");
  if (auto r = replace_contents(*backend_, path); !r) {
    fatal(absl::StrCat("installing the leader's snapshot: ", r.error()));
  }
  store_->set_consistent_index({meta.index(), meta.term()});
  backend_->force_commit();
  CAIRN_FAILPOINT("raftAfterApplySnap");
  // Stopping with the disk still full: the received db stays, and the next start installs it.
  if (!backend_->sync()) return;
  [[maybe_unused]] const std::int64_t old_rev = store_->rev();
  store_->reload();
  if (store_->consistent_index().index != meta.index()) {
    fatal(absl::StrCat("the leader's snapshot db holds index ", store_->consistent_index().index,
                       ", not ", meta.index()));
  }
#ifndef CAIRN_PLANTED_BUG_SNAPSHOT_NO_WATCH_RESYNC
  // Synced watchers wait for revisions after the old one: they catch up from the new store.
  watchable_->resync_all(old_rev);
#endif
  lessor_->recover();
  restore_lease_keys();
  auth_->recover();
  load_v2();
  members_.load(*backend_);
  load_alarms();
  {
    std::lock_guard lock(conf_mu_);
    conf_ = meta.conf_state();
  }
  publish_applied(meta.index(), meta.term());
  last_snapshot_ = meta.index();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::filesystem::remove(path + "-lock", ec);  // LMDB's lock file beside it
  CAIRN_LOG(info, "restored mvcc store from the leader's snapshot",
            {"snapshot-index", meta.index()}, {"revision", store_->rev()},
            {"took", base::go_duration(std::chrono::steady_clock::now() - start)});
}

bool server::run_on_writer(std::function<void()> fn) {
  auto done = std::make_shared<std::promise<bool>>();
  auto fut = done->get_future();
  {
    std::lock_guard lock(apply_mu_);
    if (stop_apply_) return false;
    tasks_.push_back([fn = std::move(fn), done](bool run) {
      if (run) fn();
      done->set_value(run);
    });
  }
  apply_cv_.notify_all();
  return fut.get();
}

cairn::expected<backend_hash, base::errc> server::hash() {
  std::optional<backend::read_view> view;
  backend_hash out;
  // Opened on the writer right after the commit, the view holds exactly what the revision says.
  if (!run_on_writer([&] {
        backend_->force_commit();
        out.revision = store_->rev();
        view.emplace(backend_->read_committed());
      })) {
    return cairn::unexpected(base::errc::stopped);
  }
  std::vector<std::pair<std::string_view, backend::bucket_id>> order;
  const auto& specs = backend_->buckets();
  for (backend::bucket_id b = 0; b < specs.size(); ++b) order.emplace_back(specs[b].name, b);
  std::sort(order.begin(), order.end());
  std::uint32_t crc = 0;
  auto u32 = [&](std::uint32_t v) {
    const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
    crc = base::crc32c_extend(crc, std::string_view(bytes, 4));
  };
  auto field = [&](std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    crc = base::crc32c_extend(crc, s);
  };
  for (const auto& [name, b] : order) {
    field(name);
    view->scan(b, "", "", [&](std::string_view k, std::string_view v) {
#ifndef CAIRN_PLANTED_BUG_HASH_KEYS_ONLY
      const bool skip =
          b == schema::meta && (k == schema::consistent_index_key || k == schema::term_key);
      if (!skip) {
        field(k);
        field(v);
      }
#else
      field(k);
      (void)v;
#endif
      return true;
    });
    u32(0xffffffffu);
  }
  out.hash = crc;
  return out;
}

cairn::expected<db_snapshot, server_error> server::snapshot() {
  db_snapshot out;
  if (!run_on_writer([&] {
        backend_->force_commit();
        out.revision = store_->rev();
      })) {
    return cairn::unexpected(server_error{std::string(base::message(base::errc::stopped))});
  }
  auto file = backend_->snapshot_to_file();
  if (!file) return cairn::unexpected(server_error{file.error().message});
  out.file = std::move(*file);
  return out;
}

void server::apply_entry(const raftpb::Entry& e) {
  auto publish = [&] { publish_applied(e.index(), e.term()); };
#ifndef CAIRN_PLANTED_BUG_APPLY_TWICE
  // Exactly once: the db already holds the effects of entries up to its consistent index.
  if (e.index() <= store_->consistent_index().index) {
    // Raft's configuration is not in the db: a restart re-applies the changes after the raft
    // snapshot to raft (the members bucket has them already).
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) apply_conf_change(e, true);
    return publish();
  }
#endif
#ifdef CAIRN_PLANTED_BUG_REPLAY_SKIPS_ENTRY
  // planted: the first request a process applies is skipped (after a restart: the first entry
  // the db lacks, which may have been acknowledged before the crash)
  static bool skipped = false;
  if (!skipped && e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) {
    skipped = true;
    store_->set_consistent_index({e.index(), e.term()});
    return publish();
  }
#endif
  store_->set_consistent_index({e.index(), e.term()});
  if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) {
    auto req = decode_request(e.data());
    if (!req) fatal(absl::StrCat("undecodable request in raft entry ", e.index()));
    apply_result res = apply_request(*req);
    // The applied index moves before the proposer hears back (as etcd sets it before
    // triggering the wait), so whoever got the answer sees an applied index that covers it.
    publish();
    std::shared_ptr<waiter> w = take_waiter(req->id);
    if (w) w->done(std::move(res));
    return;
  }
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    apply_conf_change(e, false);
    return;
  }
  publish();
}

server::apply_result server::apply_request(const request& r) {
  // An alarm of any member caps the whole cluster (etcd's appliers): every member applies the
  // same entries alike, or their stores would part. NOSPACE refuses writes that add data;
  // CORRUPT refuses every write (reads are served, and alarms can still be disarmed).
  bool nospace = false, corrupt = false;
  {
    std::lock_guard lock(alarm_mu_);
    for (const auto& a : alarms_) {
#ifdef CAIRN_PLANTED_BUG_OWN_ALARMS_ONLY
      if (a.member_id != member_id_) continue;
#endif
      nospace = nospace || a.alarm == alarm_type::nospace;
      corrupt = corrupt || a.alarm == alarm_type::corrupt;
    }
  }
  if (auto ok = check_apply_auth(r); !ok) return {cairn::unexpected(ok.error())};
  if (const auto* a = std::get_if<auth_request>(&r.op)) return apply_auth(r, *a);
  if (const auto* v = std::get_if<v2_request>(&r.op)) return apply_v2(*v);
  const bool write = std::visit(
      [](const auto& op) {
        using T = std::decay_t<decltype(op)>;
        return std::is_same_v<T, mvcc::put_request> ||
               std::is_same_v<T, mvcc::delete_range_request> ||
               std::is_same_v<T, mvcc::txn_request> || std::is_same_v<T, lease_grant_request> ||
               std::is_same_v<T, lease_revoke_request> || std::is_same_v<T, compact_request>;
      },
      r.op);
#ifndef CAIRN_PLANTED_BUG_CORRUPT_ALLOWS_WRITES
  if (corrupt && write) return {cairn::unexpected(base::errc::corrupt)};
#else
  (void)write;
  (void)corrupt;
#endif
  return std::visit(
      [&](const auto& op) -> apply_result {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, mvcc::put_request>) {
          // While NOSPACE is raised writes that add data are refused (etcd's capped applier).
          if (nospace) return {cairn::unexpected(base::errc::no_space)};
          auto res = store_->put(op);
          if (!res) return {cairn::unexpected(from_mvcc(res.error()))};
          return {apply_value(std::move(*res))};
        } else if constexpr (std::is_same_v<T, mvcc::delete_range_request>) {
          auto res = store_->delete_range(op);
          if (!res) return {cairn::unexpected(from_mvcc(res.error()))};
          return {apply_value(std::move(*res))};
        } else if constexpr (std::is_same_v<T, mvcc::txn_request>) {
          if (nospace && quota_cost(op) > 0) return {cairn::unexpected(base::errc::no_space)};
          auto res = store_->txn(op);
          if (!res) return {cairn::unexpected(from_mvcc(res.error()))};
          return {apply_value(std::move(*res))};
        } else if constexpr (std::is_same_v<T, lease_grant_request>) {
          if (nospace) return {cairn::unexpected(base::errc::no_space)};
          auto g = lessor_->grant(lease::lease_id{op.id}, op.ttl);
          if (!g) return {cairn::unexpected(g.error())};
          return {apply_value(lease_grant_result{op.id, g->granted_ttl, store_->rev()})};
        } else if constexpr (std::is_same_v<T, lease_revoke_request>) {
          const lease::lease_id id{op.id};
          if (!lessor_->exists(id)) return {cairn::unexpected(base::errc::lease_not_found)};
          // The keys go in one write transaction (one revision, so a watcher sees them vanish
          // together), and the lease record in the same commit.
          auto hold = backend_->hold_commits();
          auto keys = lessor_->keys(id);
#ifndef CAIRN_PLANTED_BUG_REVOKE_SEPARATE_REVISIONS
          if (!keys.empty()) {
            mvcc::txn_request t;
            for (auto& k : keys) t.success.push_back({mvcc::delete_range_request{std::move(k)}});
            if (auto res = store_->txn(t); !res)
              fatal("revoking a lease: deleting its keys failed");
          }
#else
          // Planted bug: one revision per key; caught by
          // LeaseServerTest.RevokeDeletesKeysInOneRevision.
          for (auto& k : keys) (void)store_->delete_range({std::move(k)});
#endif
          if (auto r = lessor_->revoke(id); !r) fatal("revoking a lease that exists failed");
          return {apply_value(lease_revoked{store_->rev()})};
        } else if constexpr (std::is_same_v<T, lease_checkpoint_request>) {
          std::vector<lease::checkpoint> cps;
          for (const auto& c : op.checkpoints)
            cps.push_back({lease::lease_id{c.id}, c.remaining_ttl});
          lessor_->apply_checkpoints(cps);
          return {apply_value(lease_checkpointed{})};
        } else if constexpr (std::is_same_v<T, compact_request>) {
          auto res = store_->compact(op.revision);
          if (!res) return {cairn::unexpected(from_mvcc(res.error()))};
          CAIRN_LOG(info, "scheduled compaction", {"compact-revision", op.revision},
                    {"physical", op.physical});
          compaction_started_ = std::chrono::steady_clock::now();
          if (op.physical) store_->finish_compaction();
          return {apply_value(compact_response{store_->rev()})};
        } else if constexpr (std::is_same_v<T, auth_request> || std::is_same_v<T, v2_request>) {
          return {cairn::unexpected(base::errc::invalid_auth_mgmt)};  // taken above
        } else if constexpr (std::is_same_v<T, member_attributes_request>) {
          auto m = members_.get(op.member_id);
          if (m) {
            m->name = op.name;
            m->client_urls = op.client_urls;
            members_.put(*backend_, *m);
          }
          return {apply_value(lease_checkpointed{})};
        } else {
          std::vector<alarm_member> out;
          alarm_member m{op.member_id, op.alarm};
          // Only this thread changes alarms_, so the set can be read here and changed after the
          // backend write; alarm_mu_ is never held across a backend call (LMDB's writer lock
          // would then order against it).
          bool present;
          {
            std::lock_guard lock(alarm_mu_);
            present = alarms_.contains(m);
            if (op.action == alarm_action::get) {
              for (const auto& a : alarms_) {
                if (op.alarm == alarm_type::none || a.alarm == op.alarm) out.push_back(a);
              }
            }
          }
          if (op.action == alarm_action::activate && op.alarm != alarm_type::none) {
            if (!present) {
              backend_->put(schema::alarm, alarm_key(m), "");
              CAIRN_LOG(warn, "alarm raised", {"alarm", alarm_name(op.alarm)},
                        {"member-id", fmt::format("{:x}", op.member_id)});
              std::lock_guard lock(alarm_mu_);
              alarms_.insert(m);
            }
            out.push_back(m);
          } else if (op.action == alarm_action::deactivate && present) {
            backend_->del(schema::alarm, alarm_key(m));
            CAIRN_LOG(info, "alarm disarmed", {"alarm", alarm_name(op.alarm)},
                      {"member-id", fmt::format("{:x}", op.member_id)});
            {
              std::lock_guard lock(alarm_mu_);
              alarms_.erase(m);
            }
            out.push_back(m);
          }
          return {apply_value(std::move(out))};
        }
      },
      r.op);
}

cairn::expected<void, base::errc> check_txn_auth(const auth::store& st, const auth::auth_info& who,
                                                 const mvcc::txn_request& t) {
  using auth::perm_type;
  for (const auto& c : t.compares) {
    if (auto ok = st.check(who, c.key, c.range_end, perm_type::read); !ok) return ok;
  }
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const auto& op : *branch) {
      cairn::expected<void, base::errc> ok;
      if (const auto* q = std::get_if<mvcc::range_request>(&op.op)) {
        ok = st.check(who, q->key, q->range_end, perm_type::read);
      } else if (const auto* p = std::get_if<mvcc::put_request>(&op.op)) {
        ok = st.check(who, p->key, "", perm_type::write);
        if (ok && p->prev_kv) ok = st.check(who, p->key, "", perm_type::read);
      } else if (const auto* d = std::get_if<mvcc::delete_range_request>(&op.op)) {
        ok = st.check(who, d->key, d->range_end, perm_type::write);
        if (ok && d->prev_kv) ok = st.check(who, d->key, d->range_end, perm_type::read);
      } else if (const auto* n = std::get_if<mvcc::box<mvcc::txn_request>>(&op.op)) {
        // etcd 3.4 does not look into nested txns; their ops need rights all the same.
        ok = check_txn_auth(st, who, **n);
      }
      if (!ok) return ok;
    }
  }
  return {};
}

cairn::expected<void, base::errc> server::check_apply_auth(const request& r) const {
  if (r.auth_revision == 0 || !auth_->enabled()) return {};
  const auth::auth_info who{r.user, r.auth_revision};
  using auth::perm_type;
  // Every key on a lease must be writable to attach to it or revoke it (checkLeasePuts).
  auto lease_keys = [&](std::int64_t id) -> cairn::expected<void, base::errc> {
    if (id == 0) return {};
    for (const auto& k : lessor_->keys(lease::lease_id{id})) {
      if (auto ok = auth_->check(who, k, "", perm_type::write); !ok) return ok;
    }
    return {};
  };
  if (const auto* p = std::get_if<mvcc::put_request>(&r.op)) {
    if (auto ok = auth_->check(who, p->key, "", perm_type::write); !ok) return ok;
    if (auto ok = lease_keys(p->lease); !ok) return ok;
    if (p->prev_kv) return auth_->check(who, p->key, "", perm_type::read);
  } else if (const auto* d = std::get_if<mvcc::delete_range_request>(&r.op)) {
    if (auto ok = auth_->check(who, d->key, d->range_end, perm_type::write); !ok) return ok;
    if (d->prev_kv) return auth_->check(who, d->key, d->range_end, perm_type::read);
  } else if (const auto* t = std::get_if<mvcc::txn_request>(&r.op)) {
    return check_txn_auth(*auth_, who, *t);
  } else if (const auto* l = std::get_if<lease_revoke_request>(&r.op)) {
    return lease_keys(l->id);
  } else if (const auto* a = std::get_if<auth_request>(&r.op)) {
    if (a->op != auth_op::authenticate) return auth_->check_admin(who);
  }
  return {};
}

server::apply_result server::apply_auth(const request&, const auth_request& a) {
  auto& st = *auth_;
  cairn::expected<void, base::errc> r;
  std::string token;
  switch (a.op) {
    case auth_op::enable:
      r = st.enable();
      break;
    case auth_op::disable:
      st.disable();
      break;
    case auth_op::user_add:
      r = st.user_add(a.name, a.secret, a.no_password);
      break;
    case auth_op::user_delete:
      r = st.user_delete(a.name);
      break;
    case auth_op::user_change_password:
      r = st.user_change_password(a.name, a.secret);
      break;
    case auth_op::user_grant_role:
      r = st.user_grant_role(a.name, a.role);
      break;
    case auth_op::user_revoke_role:
      r = st.user_revoke_role(a.name, a.role);
      break;
    case auth_op::role_add:
      r = st.role_add(a.name);
      break;
    case auth_op::role_delete:
      r = st.role_delete(a.name);
      break;
    case auth_op::role_grant_permission:
      r = st.role_grant_permission(a.name,
                                   {static_cast<auth::perm_type>(a.perm_type), a.key, a.range_end});
      break;
    case auth_op::role_revoke_permission:
      r = st.role_revoke_permission(a.name, a.key, a.range_end);
      break;
    case auth_op::authenticate: {
      auto issued =
          st.issue_token(a.name, absl::StrCat(a.secret, ".", store_->consistent_index().index));
      if (!issued) return {cairn::unexpected(issued.error())};
      token = std::move(*issued);
      break;
    }
  }
  if (!r) return {cairn::unexpected(r.error())};
  return {apply_value(auth_applied{std::move(token)})};
}

cairn::expected<std::string, base::errc> server::auth_change(auth_request a,
                                                             const auth::auth_info& who) {
  auto res = propose(as_user({0, std::move(a)}, who));
  if (!res) return cairn::unexpected(res.error());
  auto r = take<auth_applied>(std::move(res->value));
  if (!r) return cairn::unexpected(r.error());
  return std::move(r->token);
}

void server::load_v2() {
  auto view = backend_->read();
  auto blob = view.get(schema::meta, v2store_key);
  if (!blob) {
    v2_->recover("cairn-v2store 1\n0\n");
    return;
  }
  if (!v2_->recover(*blob)) fatal("the v2 store in the db cannot be read");
}

server::apply_result server::apply_v2(const v2_request& v) {
  v2store::ttl_options ttl;
  if (v.expiration != 0) {
    ttl.expire = v2store::clock::time_point(std::chrono::duration_cast<v2store::clock::duration>(
        std::chrono::nanoseconds(v.expiration)));
  }
  ttl.refresh = v.refresh;
  auto& st = *v2_;
  cairn::expected<v2store::event, v2store::error> r =
      cairn::unexpected(v2store::error{v2store::ecode::invalid_form, "unknown method", st.index()});
  if (v.method == "POST") {
    r = st.create(v.path, v.dir, v.value, true, ttl);
  } else if (v.method == "PUT") {
    if (v.prev_exist) {
      if (*v.prev_exist) {
        r = v.prev_index == 0 && v.prev_value.empty()
                ? st.update(v.path, v.value, ttl)
                : st.compare_and_swap(v.path, v.prev_value, v.prev_index, v.value, ttl);
      } else {
        r = st.create(v.path, v.dir, v.value, false, ttl);
      }
    } else if (v.prev_index > 0 || !v.prev_value.empty()) {
      r = st.compare_and_swap(v.path, v.prev_value, v.prev_index, v.value, ttl);
    } else {
      r = st.set(v.path, v.dir, v.value, ttl);
    }
  } else if (v.method == "DELETE") {
    r = v.prev_index > 0 || !v.prev_value.empty()
            ? st.compare_and_delete(v.path, v.prev_value, v.prev_index)
            : st.remove(v.path, v.dir, v.recursive);
  } else if (v.method == "QGET") {
    r = st.get(v.path, v.recursive, v.sorted);
  } else if (v.method == "SYNC") {
    st.delete_expired(v2store::clock::time_point(
        std::chrono::duration_cast<v2store::clock::duration>(std::chrono::nanoseconds(v.time))));
    r = cairn::unexpected(v2store::error{v2store::ecode::key_not_found, "", st.index()});
  }
  if (v.method != "QGET") v2_dirty_ = true;
  return {apply_value(std::move(r))};
}

cairn::expected<v2store::event, v2store::error> server::v2(const v2_request& r) {
  auto res = propose({0, r});
  if (!res) {
    const base::errc e = res.error();
    const bool election = e == base::errc::no_leader || e == base::errc::leader_changed;
    return cairn::unexpected(
        v2store::error{election ? v2store::ecode::leader_elect : v2store::ecode::raft_internal,
                       std::string(base::message(e)), 0});  // etcd: index 0
  }
  auto v = take<cairn::expected<v2store::event, v2store::error>>(std::move(res->value));
  if (!v) {
    return cairn::unexpected(v2store::error{v2store::ecode::raft_internal,
                                            std::string(base::message(v.error())), v2_->index()});
  }
  return std::move(*v);
}

}  // namespace cairn::etcdserver
