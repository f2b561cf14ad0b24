// mvcc/watchable_store.h: watchers over the store (etcd's watchable store).
//
// A watcher follows a key or a range from a start revision and receives every put and delete
// in it, in revision order, each exactly once, the events of one revision always in the same
// response. Watchers live on watch streams (one per gRPC Watch stream); a stream buffers at most
// `stream_capacity` responses for its reader.
//
// Watchers are in one of three groups:
//   - synced: caught up; the writer hands them each transaction's events as it ends;
//   - unsynced: behind (started in the past, or back from being a victim); the sync loop reads
//     their events from the backend, `batch_max_revs` revisions at a time, until they catch up;
//   - victims: their stream's buffer was full when events were due. The response that did not
//     fit is kept aside and retried; meanwhile the watcher falls behind and later catches up
//     from the backend. The writer never waits for a reader and no event is ever dropped.
// A watcher that is behind the last compaction (it needs a revision below it; with prev_kv, at
// or below it, because the key's value just before the compaction revision is gone) gets one
// response with `compact_revision` set and is removed.
//
// Progress: a watcher that is synced (and not waiting for a future start revision) can be told
// the current revision (a response without events), which then promises that every event up
// to it was delivered. A stream-wide progress request (watch id -1) is answered only when every
// watcher of the stream is synced.
//
// Threads. The writer thread calls on_write (through the store). Streams are used from any
// threads. The sync loop runs on the store's own thread (`background`) or when the owner calls
// sync_round(). One mutex (`mu_`) guards the groups and every watcher; each stream's buffer has
// its own mutex, taken after `mu_` when both are needed. The backend is read without `mu_`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "base/expected.h"
#include "mvcc/kv.h"
#include "mvcc/store.h"

namespace cairn::mvcc {

struct watch_request {
  std::string key;
  std::string range_end;            // as in range_request
  std::int64_t start_revision = 0;  // 0: from the next revision
  bool prev_kv = false;
  bool no_put = false;  // filters
  bool no_delete = false;
  std::optional<std::int64_t> watch_id;  // the client's choice, else the stream picks
};

struct watch_response {
  std::int64_t watch_id = 0;  // -1: a stream-wide progress notification
  std::int64_t revision = 0;  // the store's revision when the response was made
  std::vector<event> events;  // empty: a progress notification (or a compaction notice)
  // Set when the watcher was compacted: it is removed, and nothing follows for it.
  std::int64_t compact_revision = 0;
  friend bool operator==(const watch_response&, const watch_response&) = default;
};

struct watchable_options {
  std::size_t stream_capacity = 128;        // responses a stream buffers (etcd: 128)
  std::size_t max_watchers_per_sync = 512;  // unsynced watchers one round serves (etcd: 512)
  std::int64_t batch_max_revs = 1000;       // revisions one catch-up response carries (etcd: 1000)
  std::chrono::milliseconds sync_interval{100};
  bool background = true;  // run the sync loop on a thread of its own
};

class watchable_store;
struct watcher;
enum class watcher_state { synced, unsynced, syncing, victim };

class watch_stream {
 public:
  ~watch_stream();  // cancels its watchers
  watch_stream(const watch_stream&) = delete;
  watch_stream& operator=(const watch_stream&) = delete;

  cairn::expected<std::int64_t, errc> watch(const watch_request& r);
  cairn::expected<void, errc> cancel(std::int64_t id);
  // Queues a progress notification for a synced watcher; false if it is not synced (or the
  // buffer is full, or there is no such watcher).
  bool request_progress(std::int64_t id);
  // Queues one with watch id -1 if every watcher of the stream is synced; false otherwise (ask
  // again later).
  bool request_progress_all();

  std::optional<watch_response> try_next();
  // Waits up to `timeout` for a response.
  std::optional<watch_response> next(std::chrono::milliseconds timeout);
  std::size_t buffered() const;
  // Called when a response lands in an empty buffer, with locks held: it may only schedule
  // work (wake a reactor), never call back into the stream or the store.
  void set_on_ready(std::function<void()> fn);

 private:
  friend class watchable_store;
  explicit watch_stream(watchable_store* ws) : ws_(ws) {}
  // Under ws_->mu_. Moves `r` into the buffer if there is room.
  bool try_push(watch_response& r);

  watchable_store* ws_;
  std::int64_t next_id_ = 0;
  mutable std::mutex buf_mu_;
  std::condition_variable buf_cv_;
  std::deque<watch_response> buf_;  // guarded by buf_mu_
  std::function<void()> on_ready_;  // guarded by buf_mu_
  // The stream's watchers by id; guarded by ws_->mu_.
  absl::flat_hash_map<std::int64_t, watcher*> watchers_;
};

class watchable_store final : public write_observer {
 public:
  // Registers itself as `s`'s observer. `s` must outlive it; streams must end before it.
  watchable_store(store& s, watchable_options opts = {});
  ~watchable_store() override;
  watchable_store(const watchable_store&) = delete;
  watchable_store& operator=(const watchable_store&) = delete;

  std::unique_ptr<watch_stream> new_stream();
  // Writer thread, after store::reload: every synced watcher, which has had every revision up
  // to `synced_through` (the store's revision before the reload), catches up from the new store
  // after it, as etcd's restore makes them unsynced.
  void resync_all(std::int64_t synced_through);

  // One round of the sync loop: retries victims, then catches up unsynced watchers (at most
  // `max_watchers_per_sync`, one window of `batch_max_revs` revisions). Returns true while
  // watchers are still behind. Any thread; rounds do not overlap.
  bool sync_round();

  struct counts {
    std::size_t synced = 0, unsynced = 0, victims = 0;
  };
  counts group_sizes() const;
  // Watch streams open now (etcd_debugging_mvcc_watch_stream_total).
  std::size_t streams() const { return streams_.load(std::memory_order_relaxed); }

  void on_write(std::int64_t rev, const std::vector<change>& changes,
                const std::function<void()>& publish) override;

 private:
  friend class watch_stream;
  using state = watcher_state;

  void add_synced(watcher* w);
  void remove_synced(watcher* w);
  void remove(watcher* w);  // from its group and its stream; frees it (under mu_)
  void kick();
  void loop();
  void sync_victims();
  bool sync_unsynced();

  store& store_;
  watchable_options opts_;

  mutable std::mutex mu_;
  // Synced watchers: single keys by key, ranges in a list.
  absl::flat_hash_map<std::string, std::vector<watcher*>> synced_keys_;
  std::vector<watcher*> synced_ranges_;
  std::size_t synced_count_ = 0;
  absl::flat_hash_set<watcher*> unsynced_;
  std::vector<watcher*> victims_;
  std::size_t syncing_ = 0;
  std::atomic<std::size_t> streams_{0};

  std::mutex round_mu_;  // one sync round at a time
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool kicked_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::mvcc
