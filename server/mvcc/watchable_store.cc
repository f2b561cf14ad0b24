#include "mvcc/watchable_store.h"
#include "base/failpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "mvcc/record.h"
#include "schema/schema.h"

namespace cairn::mvcc {

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "cairn mvcc watch: %s\n", what);
  std::abort();
}

}  // namespace

// Everything about a watcher is guarded by watchable_store::mu_.
struct watcher {
  watch_stream* stream = nullptr;
  std::int64_t id = 0;
  std::string key;
  std::string range_end;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  // The next revision it needs. For a synced watcher, the revision it became synced at (later
  // revisions are handed over as they happen); above the store's revision for a watcher
  // waiting for a future start.
  std::int64_t min_rev = 0;
  watcher_state st = watcher_state::unsynced;
  bool cancelled = false;                 // cancelled while a sync round had it out of the lock
  std::optional<watch_response> pending;  // a victim's response that did not fit

  key_range range() const { return key_range{key, range_end}; }
  bool wants(const event& e) const { return !(e.type == event_type::put ? no_put : no_delete); }
};

// ---------------------------------------------------------------------------------------------
// watch_stream

bool watch_stream::try_push(watch_response& r) {
  std::function<void()> ready;
  {
    std::lock_guard lock(buf_mu_);
    if (buf_.size() >= ws_->opts_.stream_capacity) return false;
    buf_.push_back(std::move(r));
    if (buf_.size() == 1) ready = on_ready_;
  }
  buf_cv_.notify_one();
  if (ready) ready();
  return true;
}

std::optional<watch_response> watch_stream::try_next() {
  std::optional<watch_response> out;
  bool was_full = false;
  {
    std::lock_guard lock(buf_mu_);
    if (buf_.empty()) return std::nullopt;
    was_full = buf_.size() >= ws_->opts_.stream_capacity;
    out = std::move(buf_.front());
    buf_.pop_front();
  }
  // Room again: victims on this stream may go on.
  if (was_full) ws_->kick();
  return out;
}

std::optional<watch_response> watch_stream::next(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(buf_mu_);
    buf_cv_.wait_for(lock, timeout, [&] { return !buf_.empty(); });
  }
  return try_next();
}

std::size_t watch_stream::buffered() const {
  std::lock_guard lock(buf_mu_);
  return buf_.size();
}

void watch_stream::set_on_ready(std::function<void()> fn) {
  std::lock_guard lock(buf_mu_);
  on_ready_ = std::move(fn);
}

cairn::expected<std::int64_t, errc> watch_stream::watch(const watch_request& r) {
  auto w = std::make_unique<watcher>();
  w->stream = this;
  w->key = r.key;
  w->range_end = r.range_end;
  w->prev_kv = r.prev_kv;
  w->no_put = r.no_put;
  w->no_delete = r.no_delete;
  bool behind = false;
  std::int64_t id;
  {
    std::lock_guard lock(ws_->mu_);
    if (r.watch_id && *r.watch_id > 0) {
      id = *r.watch_id;
      if (watchers_.contains(id)) return cairn::unexpected(errc::watch_id_exists);
    } else {
      while (watchers_.contains(next_id_)) ++next_id_;
      id = next_id_++;
    }
    w->id = id;
    // The writer publishes revisions under mu_, so `cur` and the synced group agree.
    const std::int64_t cur = ws_->store_.rev();
    if (r.start_revision == 0 || r.start_revision > cur) {
      w->min_rev = std::max(cur + 1, r.start_revision);
      ws_->add_synced(w.get());
    } else {
      w->min_rev = std::max<std::int64_t>(r.start_revision, 1);  // negative: from the start
      w->st = watcher_state::unsynced;
      ws_->unsynced_.insert(w.get());
      behind = true;
    }
    watchers_.emplace(id, w.release());
  }
  if (behind) ws_->kick();
  return id;
}

cairn::expected<void, errc> watch_stream::cancel(std::int64_t id) {
  std::lock_guard lock(ws_->mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return cairn::unexpected(errc::watch_not_found);
  ws_->remove(it->second);
  return {};
}

bool watch_stream::request_progress(std::int64_t id) {
  std::lock_guard lock(ws_->mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return false;
  watcher* w = it->second;
  const std::int64_t cur = ws_->store_.rev();
  // A watcher waiting for a future start has nothing to promise yet: a notification below its
  // start would look like time going backwards (etcd #20221).
  if (w->st != watcher_state::synced || w->min_rev > cur + 1) return false;
  watch_response r{w->id, cur, {}, 0};
  return try_push(r);
}

bool watch_stream::request_progress_all() {
  std::lock_guard lock(ws_->mu_);
  const std::int64_t cur = ws_->store_.rev();
  for (const auto& [id, w] : watchers_) {
    if (w->st != watcher_state::synced) return false;
    // Nor while a watcher waits for a future start (etcd #20221): a client resuming from
    // revision R on a member still behind R would otherwise be told of a revision it has
    // already seen past (the robustness harness found this).
    if (w->min_rev > cur + 1) return false;
  }
  watch_response r{-1, ws_->store_.rev(), {}, 0};
  return try_push(r);
}

watch_stream::~watch_stream() {
  std::lock_guard lock(ws_->mu_);
  while (!watchers_.empty()) ws_->remove(watchers_.begin()->second);
  ws_->streams_.fetch_sub(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// watchable_store

watchable_store::watchable_store(store& s, watchable_options opts) : store_(s), opts_(opts) {
  store_.set_observer(this);
  if (opts_.background) thread_ = std::thread([this] { loop(); });
}

watchable_store::~watchable_store() {
  {
    std::lock_guard lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  store_.set_observer(nullptr);
}

std::unique_ptr<watch_stream> watchable_store::new_stream() {
  streams_.fetch_add(1, std::memory_order_relaxed);
  return std::unique_ptr<watch_stream>(new watch_stream(this));
}

watchable_store::counts watchable_store::group_sizes() const {
  std::lock_guard lock(mu_);
  return counts{synced_count_, unsynced_.size() + syncing_, victims_.size()};
}

void watchable_store::resync_all(std::int64_t synced_through) {
  {
    std::lock_guard lock(mu_);
    auto demote = [&](watcher* w) {
      // A synced watcher's min_rev is only its start; it has had everything published since.
      w->min_rev = std::max(w->min_rev, synced_through + 1);
      w->st = state::unsynced;
      unsynced_.insert(w);
    };
    for (auto& [key, ws] : synced_keys_) {
      for (watcher* w : ws) demote(w);
    }
    for (watcher* w : synced_ranges_) demote(w);
    synced_keys_.clear();
    synced_ranges_.clear();
    synced_count_ = 0;
  }
  kick();
}

void watchable_store::add_synced(watcher* w) {
  w->st = state::synced;
  if (w->range().single()) {
    synced_keys_[w->key].push_back(w);
  } else {
    synced_ranges_.push_back(w);
  }
  ++synced_count_;
}

void watchable_store::remove_synced(watcher* w) {
  auto drop = [w](std::vector<watcher*>& v) {
    auto it = std::find(v.begin(), v.end(), w);
    if (it == v.end()) broken("synced watcher missing from its group");
    *it = v.back();
    v.pop_back();
  };
  if (w->range().single()) {
    auto it = synced_keys_.find(w->key);
    if (it == synced_keys_.end()) broken("synced watcher missing from its key");
    drop(it->second);
    if (it->second.empty()) synced_keys_.erase(it);
  } else {
    drop(synced_ranges_);
  }
  --synced_count_;
}

void watchable_store::remove(watcher* w) {
  switch (w->st) {
    case state::synced:
      remove_synced(w);
      break;
    case state::unsynced:
      unsynced_.erase(w);
      break;
    case state::victim:
      std::erase(victims_, w);
      break;
    case state::syncing:
      // A sync round holds it outside the lock; the round frees it when it comes back.
      w->cancelled = true;
      w->stream->watchers_.erase(w->id);
      w->stream = nullptr;
      return;
  }
  w->stream->watchers_.erase(w->id);
  delete w;
}

void watchable_store::kick() {
  {
    std::lock_guard lock(loop_mu_);
    kicked_ = true;
  }
  loop_cv_.notify_one();
}

void watchable_store::loop() {
  for (;;) {
    bool more = sync_round();
    std::unique_lock lock(loop_mu_);
    if (stop_) return;
    if (!more) {
      loop_cv_.wait_for(lock, opts_.sync_interval, [&] { return kicked_ || stop_; });
      if (stop_) return;
    }
    kicked_ = false;
  }
}

bool watchable_store::sync_round() {
  std::lock_guard round(round_mu_);
  sync_victims();
  bool more = sync_unsynced();
  std::lock_guard lock(mu_);
  return more || !victims_.empty();
}

void watchable_store::on_write(std::int64_t rev, const std::vector<change>& changes,
                               const std::function<void()>& publish) {
  std::lock_guard lock(mu_);
  publish();
  if (synced_count_ == 0) return;
  // Events in change order; prev_kv read lazily (inside the writer's batch) for watchers that
  // want it.
  std::vector<event> events(changes.size());
  std::vector<bool> prev_loaded(changes.size(), false);
  auto prev_of = [&](std::size_t i) -> const std::optional<key_value>& {
    if (!prev_loaded[i]) {
      prev_loaded[i] = true;
      if (changes[i].prev.main != 0) {
        events[i].prev_kv = store_.read_put(changes[i].prev);
        if (!events[i].prev_kv) broken("a change's previous revision is missing");
      }
    }
    return events[i].prev_kv;
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    events[i].type = changes[i].type;
    events[i].kv = changes[i].kv;
  }
  // Each watcher's share, in the order watchers are first matched.
  std::vector<std::pair<watcher*, std::vector<std::size_t>>> shares;
  absl::flat_hash_map<watcher*, std::size_t> slot;
  auto give = [&](watcher* w, std::size_t i) {
    if (w->min_rev > rev) return;  // waiting for a future start revision
    auto [it, fresh] = slot.try_emplace(w, shares.size());
    if (fresh) shares.emplace_back(w, std::vector<std::size_t>{});
    shares[it->second].second.push_back(i);
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const std::string& k = changes[i].kv.key;
    if (auto it = synced_keys_.find(k); it != synced_keys_.end()) {
      for (watcher* w : it->second) give(w, i);
    }
    for (watcher* w : synced_ranges_) {
      if (w->range().contains(k)) give(w, i);
    }
  }
  for (auto& [w, idx] : shares) {
    watch_response resp{w->id, rev, {}, 0};
    for (std::size_t i : idx) {
      if (!w->wants(events[i])) continue;
      event e{events[i].type, events[i].kv, std::nullopt};
      if (w->prev_kv) e.prev_kv = prev_of(i);
      resp.events.push_back(std::move(e));
    }
    if (resp.events.empty()) continue;  // all filtered out
    if (w->stream->try_push(resp)) continue;
#ifdef CAIRN_PLANTED_BUG_MVCC_DROP_SLOW_WATCH_EVENT
    // Planted: a full buffer drops the response and the watcher stays synced.
    continue;
#else
    // Its buffer is full: keep the response aside and let the watcher fall behind.
    remove_synced(w);
    w->st = state::victim;
    w->pending = std::move(resp);
    w->min_rev = rev + 1;
    victims_.push_back(w);
#endif
  }
  if (!victims_.empty()) kick();
}

void watchable_store::sync_victims() {
  std::lock_guard lock(mu_);
  const std::int64_t cur = store_.rev();
  std::vector<watcher*> still;
  for (watcher* w : victims_) {
    if (!w->stream->try_push(*w->pending)) {
      still.push_back(w);
      continue;
    }
    w->pending.reset();
    if (w->min_rev <= cur) {
      w->st = state::unsynced;
      unsynced_.insert(w);
    } else {
      add_synced(w);
    }
  }
  victims_ = std::move(still);
}

bool watchable_store::sync_unsynced() {
  CAIRN_FAILPOINT("beforeSyncWatchers");
  // Order matters. The revision first: every entry up to it was written before the view opens,
  // so the view has it. The view before the compaction revision: entries a later compaction
  // removes are still in the view, and the compaction checks below use a revision at least as
  // new as any compaction the view missed.
  const std::int64_t cur = store_.rev();
  backend::read_view view = store_.backend().read();
  std::vector<watcher*> chosen;
  std::int64_t lo = 0;
  {
    std::lock_guard lock(mu_);
    if (unsynced_.empty()) return false;
    const std::int64_t compacted = store_.compact_rev();
    std::vector<watcher*> all(unsynced_.begin(), unsynced_.end());
    // Oldest first, so the slowest watchers are never starved; ties by id for determinism.
    std::sort(all.begin(), all.end(), [](const watcher* a, const watcher* b) {
      return a->min_rev != b->min_rev ? a->min_rev < b->min_rev : a->id < b->id;
    });
    for (watcher* w : all) {
      if (chosen.size() >= opts_.max_watchers_per_sync) break;
      const bool gone =
          compacted > 0 && (w->min_rev < compacted || (w->prev_kv && w->min_rev <= compacted));
      if (gone) {
        // The revision it can start from: a prev_kv watcher cannot start at the compaction
        // revision itself, so telling it that one would have it come back there forever.
        const std::int64_t resume = compacted + (w->prev_kv ? 1 : 0);
        watch_response notice{w->id, store_.rev(), {}, resume};
        if (w->stream->try_push(notice)) {
          unsynced_.erase(w);
          w->stream->watchers_.erase(w->id);
          delete w;
        }
        continue;  // a full buffer: tell it next round
      }
      if (w->min_rev > cur) continue;  // nothing this round can read for it yet
      unsynced_.erase(w);
      w->st = state::syncing;
      ++syncing_;
      chosen.push_back(w);
    }
    if (chosen.empty()) return !unsynced_.empty();
    lo = chosen.front()->min_rev;
  }
  // One window of revisions [lo, hi), read without the lock.
  const std::int64_t hi = std::min(cur + 1, lo + opts_.batch_max_revs);
  struct rec_event {
    event ev;
    revision prev;
  };
  std::vector<rec_event> events;
  view.scan(schema::bucket::key, revision_key(revision{lo, 0}), revision_key(revision{hi, 0}),
            [&](std::string_view k, std::string_view v) {
              auto pk = parse_revision_key(k);
              if (!pk) broken("malformed revision key in the key bucket");
              record rec = must_decode(v);
              // Skip entries no chosen watcher wants before copying anything.
              bool wanted = std::any_of(chosen.begin(), chosen.end(), [&](const watcher* w) {
                return w->range().contains(rec.key);
              });
              if (!wanted) return true;
              rec_event re;
              if (rec.tombstone) {
                re.ev.type = event_type::del;
                re.ev.kv.key = std::string(rec.key);
                re.ev.kv.mod_revision = pk->rev.main;
              } else {
                re.ev.kv = to_key_value(rec, pk->rev);
              }
              re.prev = rec.prev;
              events.push_back(std::move(re));
              return true;
            });
  auto prev_of = [&](const rec_event& re) -> std::optional<key_value> {
    if (re.prev.main == 0) return std::nullopt;
    auto bytes = view.get(schema::bucket::key, revision_key(re.prev));
    if (!bytes) broken("catch-up: a previous revision the compaction rules keep is missing");
    return to_key_value(must_decode(*bytes), re.prev);
  };
  std::vector<watch_response> out(chosen.size());
  for (std::size_t j = 0; j < chosen.size(); ++j) {
    const watcher* w = chosen[j];
    out[j] = watch_response{w->id, cur, {}, 0};
    for (const auto& re : events) {
#ifdef CAIRN_PLANTED_BUG_WATCH_CATCHUP_SKIPS_FIRST
      // planted: the catch-up starts one revision late (a resumed watch misses an event)
      if (re.ev.kv.mod_revision <= w->min_rev || !w->range().contains(re.ev.kv.key)) continue;
#else
      if (re.ev.kv.mod_revision < w->min_rev || !w->range().contains(re.ev.kv.key)) continue;
#endif
      if (!w->wants(re.ev)) continue;
      event e = re.ev;
      if (w->prev_kv) e.prev_kv = prev_of(re);
      out[j].events.push_back(std::move(e));
    }
#ifdef CAIRN_PLANTED_BUG_WATCH_CATCHUP_REORDERS
    // planted: a catch-up response holding two revisions delivers the first two events swapped
    auto& evs = out[j].events;
    if (evs.size() >= 2 && evs[0].kv.mod_revision != evs[1].kv.mod_revision)
      std::swap(evs[0], evs[1]);
#endif
  }
  std::lock_guard lock(mu_);
  const std::int64_t now = store_.rev();
  for (std::size_t j = 0; j < chosen.size(); ++j) {
    watcher* w = chosen[j];
    --syncing_;
    if (w->cancelled) {
      delete w;
      continue;
    }
    w->min_rev = std::max(w->min_rev, hi);
    if (!out[j].events.empty() && !w->stream->try_push(out[j])) {
      w->st = state::victim;
      w->pending = std::move(out[j]);
      victims_.push_back(w);
      continue;
    }
    // Revisions published while the lock was free went only to synced watchers: a watcher
    // joins them only if it has read past the current revision.
    if (w->min_rev > now) {
      add_synced(w);
    } else {
      w->st = state::unsynced;
      unsynced_.insert(w);
    }
  }
  return !unsynced_.empty();
}

}  // namespace cairn::mvcc
