// The model-based test of mvcc: long random sequences of puts, deletes, txns, ranges,
// compactions and watches (from random revisions, on streams with tiny buffers) run against the
// real store and against a plain in-memory model written independently below; every answer and
// every watch event must agree. A twin store applies the same writes with other batching,
// finishes its compactions at once, crashes now and then and replays from its consistent index;
// its answers and HashKV must equal the main store's.
//
// CAIRN_TEST_MVCC_SEEDS=<n> runs n seeds (default 20); CAIRN_TEST_MVCC_STEPS=<n> sets the steps
// per seed (default 2000); CAIRN_TEST_MVCC_SEED=<s> runs that one seed only.

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "mvcc/store.h"
#include "mvcc/testing.h"
#include "mvcc/watchable_store.h"

namespace cairn::mvcc {
namespace {

using testing::db;
using testing::temp_dir;

// ---------------------------------------------------------------------------------------------
// The model: the whole state at every revision, and the events of every revision.

const std::string everything(1, '\0');

bool in_range(const std::string& k, const std::string& key, const std::string& end) {
  if (end.empty()) return k == key;
  if (end == everything) return k >= key;
  return k >= key && k < end;
}

using state = std::map<std::string, key_value>;

class model {
 public:
  model() : states_(2), events_(2) {}

  std::int64_t rev() const { return static_cast<std::int64_t>(states_.size()) - 1; }
  std::int64_t compact_rev() const { return compact_; }
  const std::vector<event>& events_at(std::int64_t r) const { return events_[r]; }

  cairn::expected<range_response, errc> range(const range_request& r) const {
    return range_at(r, rev(), states_.back());
  }

  cairn::expected<put_response, errc> put(const put_request& r) {
    if ((r.ignore_value || r.ignore_lease) && !states_.back().contains(r.key)) {
      return cairn::unexpected(errc::key_not_found);
    }
    state next = states_.back();
    std::vector<event> evs;
    put_response out;
    out.prev_kv = put_into(next, r, rev() + 1, evs);
    if (!r.prev_kv) out.prev_kv.reset();
    out.revision = rev() + 1;
    commit(std::move(next), std::move(evs));
    return out;
  }

  cairn::expected<delete_range_response, errc> delete_range(const delete_range_request& r) {
    state next = states_.back();
    std::vector<event> evs;
    delete_range_response out;
    out.prev_kvs = delete_from(next, r.key, r.range_end, rev() + 1, evs);
    out.deleted = static_cast<std::int64_t>(out.prev_kvs.size());
    if (!r.prev_kv) out.prev_kvs.clear();
    out.revision = evs.empty() ? rev() : rev() + 1;
    if (!evs.empty()) commit(std::move(next), std::move(evs));
    return out;
  }

  cairn::expected<txn_response, errc> txn(const txn_request& r) {
    const state& before = states_.back();
    if (auto c = check(r, before); !c) return cairn::unexpected(c.error());
    state work = before;
    std::vector<event> evs;
    txn_response out = apply(r, before, work, evs);
    out.revision = evs.empty() ? rev() : rev() + 1;
    if (!evs.empty()) commit(std::move(work), std::move(evs));
    return out;
  }

  cairn::expected<void, errc> compact(std::int64_t at) {
    if (at <= compact_) return cairn::unexpected(errc::compacted);
    if (at > rev()) return cairn::unexpected(errc::future_rev);
    compact_ = at;
    return {};
  }

 private:
  static bool compare_ok(const compare& c, const state& s) {
    std::vector<key_value> hits;
    for (const auto& [k, kv] : s) {
      if (in_range(k, c.key, c.range_end)) hits.push_back(kv);
    }
    auto one = [&](const key_value& kv) {
      int res = 0;
      auto sign = [](auto a, auto b) { return a < b ? -1 : (b < a ? 1 : 0); };
      switch (c.target) {
        case compare_target::value:
          res = sign(kv.value, c.value);
          break;
        case compare_target::version:
          res = sign(kv.version, c.number);
          break;
        case compare_target::create:
          res = sign(kv.create_revision, c.number);
          break;
        case compare_target::mod:
          res = sign(kv.mod_revision, c.number);
          break;
        case compare_target::lease:
          res = sign(kv.lease, c.number);
          break;
      }
      switch (c.result) {
        case compare_result::equal:
          return res == 0;
        case compare_result::not_equal:
          return res != 0;
        case compare_result::less:
          return res < 0;
        case compare_result::greater:
          return res > 0;
      }
      return false;
    };
    if (hits.empty()) return c.target != compare_target::value && one(key_value{});
    return std::all_of(hits.begin(), hits.end(), one);
  }

  static bool compares_ok(const txn_request& r, const state& s) {
    return std::all_of(r.compares.begin(), r.compares.end(),
                       [&](const compare& c) { return compare_ok(c, s); });
  }

  cairn::expected<void, errc> check(const txn_request& r, const state& before) const {
    for (const auto& op : compares_ok(r, before) ? r.success : r.failure) {
      if (auto* t = std::get_if<box<txn_request>>(&op.op)) {
        if (auto c = check(**t, before); !c) return c;
      } else if (auto* rr = std::get_if<range_request>(&op.op)) {
        if (rr->revision > rev()) return cairn::unexpected(errc::future_rev);
        if (rr->revision > 0 && rr->revision < compact_) return cairn::unexpected(errc::compacted);
      } else if (auto* p = std::get_if<put_request>(&op.op)) {
        if ((p->ignore_value || p->ignore_lease) && !before.contains(p->key)) {
          return cairn::unexpected(errc::key_not_found);
        }
      }
    }
    return {};
  }

  txn_response apply(const txn_request& r, const state& before, state& work,
                     std::vector<event>& evs) {
    txn_response out;
    out.succeeded = compares_ok(r, before);
    for (const auto& op : out.succeeded ? r.success : r.failure) {
      response_op resp;
      const std::int64_t now = rev() + (evs.empty() ? 0 : 1);
      if (auto* rr = std::get_if<range_request>(&op.op)) {
        // range_at reads `work` at `now` and the history below it.
        resp.op = *range_at(*rr, now, work);
      } else if (auto* p = std::get_if<put_request>(&op.op)) {
        put_response pr;
        pr.prev_kv = put_into(work, *p, rev() + 1, evs);
        if (!p->prev_kv) pr.prev_kv.reset();
        pr.revision = rev() + 1;
        resp.op = std::move(pr);
      } else if (auto* d = std::get_if<delete_range_request>(&op.op)) {
        delete_range_response dr;
        dr.prev_kvs = delete_from(work, d->key, d->range_end, rev() + 1, evs);
        dr.deleted = static_cast<std::int64_t>(dr.prev_kvs.size());
        if (!d->prev_kv) dr.prev_kvs.clear();
        dr.revision = evs.empty() ? rev() : rev() + 1;
        resp.op = std::move(dr);
      } else {
        resp.op = box<txn_response>(apply(*std::get<box<txn_request>>(op.op), before, work, evs));
      }
      out.responses.push_back(std::move(resp));
    }
    return out;
  }

  cairn::expected<range_response, errc> range_at(const range_request& r, std::int64_t cur,
                                                 const state& latest) const {
    std::int64_t at = r.revision;
    if (at > cur) return cairn::unexpected(errc::future_rev);
    if (at <= 0) at = cur;
    if (at < compact_) return cairn::unexpected(errc::compacted);
    const state& s = (at == cur) ? latest : states_[at];
    range_response out;
    out.revision = cur;
    for (const auto& [k, kv] : s) {
      if (in_range(k, r.key, r.range_end)) out.kvs.push_back(kv);
    }
    out.count = static_cast<std::int64_t>(out.kvs.size());
    if (r.count_only) {
      out.kvs.clear();
      return out;
    }
    std::erase_if(out.kvs, [&](const key_value& kv) {
      return (r.min_mod_revision && kv.mod_revision < r.min_mod_revision) ||
             (r.max_mod_revision && kv.mod_revision > r.max_mod_revision) ||
             (r.min_create_revision && kv.create_revision < r.min_create_revision) ||
             (r.max_create_revision && kv.create_revision > r.max_create_revision);
    });
    auto field = [&](const key_value& kv) -> std::variant<std::int64_t, std::string> {
      switch (r.target) {
        case sort_target::key:
          return kv.key;
        case sort_target::version:
          return kv.version;
        case sort_target::create:
          return kv.create_revision;
        case sort_target::mod:
          return kv.mod_revision;
        case sort_target::value:
          return kv.value;
      }
      return 0;
    };
    sort_order order = r.order;
    if (order == sort_order::none && r.target != sort_target::key) order = sort_order::ascend;
    if (order == sort_order::ascend) {
      std::stable_sort(out.kvs.begin(), out.kvs.end(),
                       [&](const auto& a, const auto& b) { return field(a) < field(b); });
    } else if (order == sort_order::descend) {
      std::stable_sort(out.kvs.begin(), out.kvs.end(),
                       [&](const auto& a, const auto& b) { return field(b) < field(a); });
    }
    if (r.limit > 0 && static_cast<std::int64_t>(out.kvs.size()) > r.limit) {
      out.kvs.resize(r.limit);
      out.more = true;
    }
    if (r.keys_only) {
      for (auto& kv : out.kvs) kv.value.clear();
    }
    return out;
  }

  static std::optional<key_value> put_into(state& s, const put_request& r, std::int64_t rev,
                                           std::vector<event>& evs) {
    std::optional<key_value> prev;
    if (auto it = s.find(r.key); it != s.end()) prev = it->second;
    key_value kv{r.key,   prev ? prev->create_revision : rev,
                 rev,     prev ? prev->version + 1 : 1,
                 r.value, r.lease};
    if (prev && r.ignore_value) kv.value = prev->value;
    if (prev && r.ignore_lease) kv.lease = prev->lease;
    s[r.key] = kv;
    evs.push_back(event{event_type::put, kv, prev});
    return prev;
  }

  static std::vector<key_value> delete_from(state& s, const std::string& key,
                                            const std::string& end, std::int64_t rev,
                                            std::vector<event>& evs) {
    std::vector<key_value> gone;
    for (auto it = s.begin(); it != s.end();) {
      if (in_range(it->first, key, end)) {
        gone.push_back(it->second);
        key_value tomb;
        tomb.key = it->first;
        tomb.mod_revision = rev;
        evs.push_back(event{event_type::del, tomb, it->second});
        it = s.erase(it);
      } else {
        ++it;
      }
    }
    return gone;
  }

  void commit(state s, std::vector<event> evs) {
    states_.push_back(std::move(s));
    events_.push_back(std::move(evs));
  }

  // states_[r] is the state at revision r (r >= 1; index 0 unused).
  std::vector<state> states_;
  std::vector<std::vector<event>> events_;
  std::int64_t compact_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Watchers as the model sees them, and the checks on what the real ones deliver.

struct model_watcher {
  int stream = 0;
  std::int64_t id = 0;
  watch_request req;
  std::int64_t start = 0;  // resolved start revision
  // Verified progress through the expected events.
  std::size_t delivered = 0;
  std::int64_t last_rev = 0;  // revision of the last event delivered
  bool done = false;          // cancelled or compacted
  bool compacted = false;
};

std::vector<event> expected_events(const model& m, const model_watcher& w) {
  std::vector<event> out;
  for (std::int64_t r = std::max<std::int64_t>(w.start, 2); r <= m.rev(); ++r) {
    for (const event& e : m.events_at(r)) {
      if (!in_range(e.kv.key, w.req.key, w.req.range_end)) continue;
      if (e.type == event_type::put ? w.req.no_put : w.req.no_delete) continue;
      event copy = e;
      if (!w.req.prev_kv) copy.prev_kv.reset();
      out.push_back(std::move(copy));
    }
  }
  return out;
}

std::string describe(const std::vector<event>& evs) {
  std::ostringstream os;
  for (const auto& e : evs) os << "\n    @" << e.kv.mod_revision << " " << e;
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// The run.

// Runs functions on a thread of its own, one at a time: the twin store's writer. (One thread
// being the writer of two LMDB environments would hold both writer locks at once.)
class worker {
 public:
  worker() : thread_([this] { loop(); }) {}
  ~worker() {
    run([this] { stop_ = true; });
    thread_.join();
  }
  void run(const std::function<void()>& fn) {
    std::unique_lock lock(mu_);
    job_ = &fn;
    cv_.notify_all();
    cv_.wait(lock, [&] { return job_ == nullptr; });
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait(lock, [&] { return job_ != nullptr; });
      const auto* job = job_;
      lock.unlock();  // the job takes the twin's locks; never nest them inside ours
      (*job)();
      lock.lock();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  bool stop_ = false;
  std::thread thread_;
};

// A write as the log (and the twin's replay) keeps it.
struct compact_op {
  std::int64_t revision;
};
struct write_op {
  std::variant<put_request, delete_range_request, box<txn_request>, compact_op> op;
};

std::uint64_t env_u64(const char* name, std::uint64_t dflt) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : dflt;
}

class run {
 public:
  explicit run(std::uint64_t seed) : rng_(seed) {
    // The crashes here are process crashes (committed pages survive), so fsync only costs time.
    backend::options main_opts;
    main_opts.unsafe_no_fsync = true;
    main_opts.batch_limit = 1 + rng_() % 50;
    // Small compaction steps on the main store, so that reads, writes and watches run between
    // the steps of both phases (index, then disk).
    store_options main_store;
    main_store.compaction_batch_limit = 1 + static_cast<std::int64_t>(rng_() % 20);
    main_store.index_compaction_chunk = 1 + rng_() % 4;
    main_ = std::make_unique<db>(dir_main_, main_opts, main_store);
    backend::options twin_opts;
    twin_opts.unsafe_no_fsync = true;
    twin_opts.batch_limit = 1 + rng_() % 7;
    twin_thread_.run(
        [&] { twin_ = std::make_unique<db>(dir_twin_, twin_opts, store_options{1000}); });
    watchable_options wo;
    wo.background = false;
    wo.stream_capacity = 1 + rng_() % 4;
    wo.batch_max_revs = 1 + static_cast<std::int64_t>(rng_() % 8);
    wo.max_watchers_per_sync = 1 + rng_() % 6;
    ws_ = std::make_unique<watchable_store>(*main_->st, wo);
    for (int i = 0; i < 3; ++i) streams_.push_back(ws_->new_stream());
    for (const char* k : {"a", "b", "c", "d", "e", "f", "p/1", "p/2", "p/3", "q"})
      keys_.push_back(k);
  }

  ~run() {
    streams_.clear();
    ws_.reset();
    twin_thread_.run([&] { twin_.reset(); });
  }

  void step() {
    const int dice = static_cast<int>(rng_() % 100);
    if (std::getenv("CAIRN_TEST_MVCC_TRACE")) {
      auto g = ws_->group_sizes();
      std::fprintf(
          stderr,
          "step dice=%d rev=%ld compact=%ld synced=%zu unsynced=%zu victims=%zu buf=%zu/%zu/%zu\n",
          dice, (long)model_.rev(), (long)model_.compact_rev(), g.synced, g.unsynced, g.victims,
          streams_[0]->buffered(), streams_[1]->buffered(), streams_[2]->buffered());
    }
    if (dice < 22) {
      write(op_put());
    } else if (dice < 30) {
      write(op_delete());
    } else if (dice < 40) {
      write(op_txn());
    } else if (dice < 52) {
      check_range();
    } else if (dice < 55) {
      write(op_compact());
    } else if (dice < 62) {
      main_->st->compaction_step();
    } else if (dice < 68) {
      create_watch();
    } else if (dice < 70) {
      cancel_watch();
    } else if (dice < 80) {
      consume(static_cast<int>(streams_.size() > 0 ? rng_() % streams_.size() : 0),
              1 + static_cast<int>(rng_() % 3));
    } else if (dice < 88) {
      ws_->sync_round();
    } else if (dice < 92) {
      progress();
    } else if (dice < 95) {
      check_hash();
    } else if (dice < 97) {
      crash_twin();
    } else {
      main_->be->commit_if_due();
    }
  }

  // Lets every watcher catch up and drains every stream, then checks each delivered all.
  void finish() {
    for (int i = 0; i < 100000; ++i) {
      bool more = ws_->sync_round();
      bool any = false;
      for (std::size_t s = 0; s < streams_.size(); ++s) any |= consume(static_cast<int>(s), 1000);
      auto g = ws_->group_sizes();
      if (!more && !any && g.unsynced == 0 && g.victims == 0) break;
      if (::testing::Test::HasFatalFailure()) return;
    }
    auto g = ws_->group_sizes();
    ASSERT_EQ(g.unsynced + g.victims, 0u) << "watchers never caught up";
    for (auto& w : watchers_) {
      if (w.done) continue;
      auto want = expected_events(model_, w);
      ASSERT_EQ(w.delivered, want.size())
          << "watcher " << w.stream << "/" << w.id << " on [" << w.req.key << ", "
          << w.req.range_end << ") from " << w.start << " got " << w.delivered << " of "
          << want.size() << " events; missing:"
          << describe(std::vector<event>(
                 want.begin() + static_cast<std::ptrdiff_t>(std::min(w.delivered, want.size())),
                 want.end()));
    }
    check_hash();
  }

 private:
  // --- generators ---
  std::string some_key() { return keys_[rng_() % keys_.size()]; }
  std::string some_value() {
    return std::string(1 + rng_() % 3, static_cast<char>('m' + rng_() % 4));
  }
  std::string some_end(const std::string& key) {
    switch (rng_() % 5) {
      case 0:
        return {};
      case 1:
        return everything;
      case 2:
        return prefix_range_end(key.substr(0, 1));
      default: {
        std::string e = some_key();
        return e;  // may be below key: an empty range
      }
    }
  }
  std::int64_t some_rev() {
    std::int64_t lo = std::max<std::int64_t>(model_.compact_rev() - 2, -1);
    std::int64_t hi = model_.rev() + 2;
    return lo + static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(hi - lo + 1));
  }

  put_request op_put_req(const std::string& key) {
    put_request p{key, some_value(), static_cast<std::int64_t>(rng_() % 3)};
    p.prev_kv = rng_() % 3 == 0;
    p.ignore_value = rng_() % 10 == 0;
    p.ignore_lease = rng_() % 10 == 0;
    return p;
  }
  write_op op_put() { return write_op{op_put_req(some_key())}; }
  write_op op_delete() {
    std::string k = some_key();
    return write_op{
        delete_range_request{k, rng_() % 2 ? std::string() : some_end(k), rng_() % 2 == 0}};
  }
  range_request some_range() {
    range_request r;
    r.key = rng_() % 8 == 0 ? std::string() + '\0' : some_key();
    r.range_end = some_end(r.key);
    if (rng_() % 3 == 0) r.limit = static_cast<std::int64_t>(rng_() % 4);
    if (rng_() % 3 == 0) r.revision = some_rev();
    if (rng_() % 3 == 0) {
      r.order = static_cast<sort_order>(rng_() % 3);
      r.target = static_cast<sort_target>(rng_() % 5);
    }
    r.keys_only = rng_() % 6 == 0;
    r.count_only = rng_() % 8 == 0;
    if (rng_() % 6 == 0) r.min_mod_revision = some_rev();
    if (rng_() % 6 == 0) r.max_mod_revision = some_rev();
    if (rng_() % 6 == 0) r.min_create_revision = some_rev();
    if (rng_() % 6 == 0) r.max_create_revision = some_rev();
    return r;
  }
  compare some_compare() {
    compare c;
    c.key = some_key();
    if (rng_() % 4 == 0) c.range_end = some_end(c.key);
    c.target = static_cast<compare_target>(rng_() % 5);
    c.result = static_cast<compare_result>(rng_() % 4);
    c.number = static_cast<std::int64_t>(rng_() % 4) + (rng_() % 2 ? model_.rev() - 3 : 0);
    c.value = some_value();
    return c;
  }
  // Write ops of one txn use distinct keys (the API layer rejects duplicates).
  txn_request some_txn(std::vector<std::string>& free_keys, int depth) {
    txn_request t;
    for (int i = static_cast<int>(rng_() % 3); i > 0; --i) t.compares.push_back(some_compare());
    for (auto* branch : {&t.success, &t.failure}) {
      for (int i = static_cast<int>(rng_() % 4); i > 0; --i) {
        int kind = static_cast<int>(rng_() % 4);
        if (kind == 3 && depth < 2) {
          branch->push_back(request_op{box<txn_request>(some_txn(free_keys, depth + 1))});
        } else if (kind == 0 || free_keys.empty()) {
          range_request r = some_range();
          // Past revisions inside txns only where both stores can still read them.
          branch->push_back(request_op{r});
        } else {
          std::string k = free_keys.back();
          free_keys.pop_back();
          if (kind == 1) {
            branch->push_back(request_op{op_put_req(k)});
          } else {
            branch->push_back(request_op{delete_range_request{k, {}, rng_() % 2 == 0}});
          }
        }
      }
    }
    return t;
  }
  write_op op_txn() {
    std::vector<std::string> free_keys = keys_;
    std::shuffle(free_keys.begin(), free_keys.end(), rng_);
    return write_op{box<txn_request>(some_txn(free_keys, 0))};
  }
  write_op op_compact() {
    // Often right at a delete: the tombstone there is what a compaction most easily gets wrong.
    if (rng_() % 2 == 0) {
      for (std::int64_t r = model_.rev(); r > std::max<std::int64_t>(model_.compact_rev(), 1);
           --r) {
        const auto& evs = model_.events_at(r);
        if (std::any_of(evs.begin(), evs.end(),
                        [](const event& e) { return e.type == event_type::del; })) {
          return write_op{compact_op{r}};
        }
      }
    }
    return write_op{compact_op{some_rev()}};
  }

  // --- writes: main store, model and twin get the same op; all answers must agree ---
  template <class T>
  static std::string show(const cairn::expected<T, errc>& e) {
    return e ? "ok" : std::string(to_string(e.error()));
  }

  static cairn::expected<response_op, errc> apply_write(store& s, const write_op& op) {
    if (auto* p = std::get_if<put_request>(&op.op)) {
      auto r = s.put(*p);
      if (!r) return cairn::unexpected(r.error());
      return response_op{*r};
    }
    if (auto* d = std::get_if<delete_range_request>(&op.op)) {
      auto r = s.delete_range(*d);
      if (!r) return cairn::unexpected(r.error());
      return response_op{*r};
    }
    if (auto* t = std::get_if<box<txn_request>>(&op.op)) {
      auto r = s.txn(**t);
      if (!r) return cairn::unexpected(r.error());
      return response_op{box<txn_response>(*r)};
    }
    auto r = s.compact(std::get<compact_op>(op.op).revision);
    if (!r) return cairn::unexpected(r.error());
    return response_op{range_response{}};
  }

  cairn::expected<response_op, errc> apply_model(const write_op& op) {
    if (auto* p = std::get_if<put_request>(&op.op)) {
      auto r = model_.put(*p);
      if (!r) return cairn::unexpected(r.error());
      return response_op{*r};
    }
    if (auto* d = std::get_if<delete_range_request>(&op.op)) {
      auto r = model_.delete_range(*d);
      if (!r) return cairn::unexpected(r.error());
      return response_op{*r};
    }
    if (auto* t = std::get_if<box<txn_request>>(&op.op)) {
      auto r = model_.txn(**t);
      if (!r) return cairn::unexpected(r.error());
      return response_op{box<txn_response>(*r)};
    }
    auto r = model_.compact(std::get<compact_op>(op.op).revision);
    if (!r) return cairn::unexpected(r.error());
    return response_op{range_response{}};
  }

  void write(write_op op) {
    log_.push_back(op);
    const std::uint64_t index = log_.size();
    main_->st->set_consistent_index({index, 1});
    auto got = apply_write(*main_->st, op);
    auto want = apply_model(op);
    ASSERT_EQ(got.has_value(), want.has_value())
        << "op " << index << ": store " << show(got) << ", model " << show(want);
    if (got) {
      ASSERT_TRUE(*got == *want) << "op " << index << ": answers differ";
    } else {
      ASSERT_EQ(got.error(), want.error()) << "op " << index;
    }
    ASSERT_EQ(main_->st->rev(), model_.rev()) << "op " << index;
    cairn::expected<response_op, errc> twin = cairn::unexpected(errc::closed);
    twin_thread_.run([&] {
      twin_->st->set_consistent_index({index, 1});
      twin = apply_write(*twin_->st, op);
      twin_->st->finish_compaction();
    });
    ASSERT_EQ(twin.has_value(), got.has_value()) << "twin, op " << index;
    if (twin) {
      ASSERT_TRUE(*twin == *got) << "twin answers differ, op " << index;
    }
  }

  void check_range() {
    range_request r = some_range();
    auto got = main_->st->range(r);
    auto want = model_.range(r);
    ASSERT_EQ(got.has_value(), want.has_value()) << show(got) << " vs " << show(want);
    if (got) {
      ASSERT_EQ(got->kvs, want->kvs)
          << "range [" << r.key << ", " << r.range_end << ") at " << r.revision;
      ASSERT_EQ(got->count, want->count);
      ASSERT_EQ(got->more, want->more);
      ASSERT_EQ(got->revision, want->revision);
    } else {
      ASSERT_EQ(got.error(), want.error());
    }
  }

  void check_hash() {
    std::int64_t at = rng_() % 3 == 0 ? 0 : some_rev();
    auto a = main_->st->hash_kv(at);
    cairn::expected<hash_kv_result, errc> b = cairn::unexpected(errc::closed);
    twin_thread_.run([&] { b = twin_->st->hash_kv(at); });
    ASSERT_EQ(a.has_value(), b.has_value()) << "hash_kv(" << at << ")";
    if (a) {
      ASSERT_EQ(*a, *b) << "hash_kv(" << at << ")";
    } else {
      ASSERT_EQ(a.error(), b.error());
    }
  }

  // The twin loses its open batch and replays the log from its consistent index.
  void crash_twin() {
    std::uint64_t from = 0;
    twin_thread_.run([&] {
      twin_->crash();
      twin_->open();
      from = twin_->st->consistent_index().index + 1;
      for (std::uint64_t i = from; i <= log_.size(); ++i) {
        twin_->st->set_consistent_index({i, 1});
        (void)apply_write(*twin_->st, log_[i - 1]);
      }
      twin_->st->finish_compaction();
    });
    ASSERT_LE(from, log_.size() + 1);
    ASSERT_EQ(twin_->st->rev(), model_.rev()) << "replay from " << from;
    ASSERT_EQ(twin_->st->compact_rev(), model_.compact_rev());
  }

  // --- watches ---
  void create_watch() {
    model_watcher w;
    w.stream = static_cast<int>(rng_() % streams_.size());
    w.req.key = some_key();
    w.req.range_end = rng_() % 2 ? std::string() : some_end(w.req.key);
    w.req.prev_kv = rng_() % 2 == 0;
    switch (rng_() % 10) {
      case 0:
      case 1:
        w.req.start_revision = 0;
        break;
      case 2:
      case 3:
      case 4:
        // Right at the compaction revision: a delete there must come through (etcd #18089,
        // #19179). Mostly without prev_kv, which would make it a compacted watcher.
        w.req.start_revision = std::max<std::int64_t>(model_.compact_rev(), 1);
        w.req.prev_kv = rng_() % 4 == 0;
        if (rng_() % 2) {
          w.req.key = std::string(1, '\0');
          w.req.range_end = everything;
        }
        break;
      default:
        w.req.start_revision = std::max<std::int64_t>(some_rev(), 0);
    }
    w.req.no_put = rng_() % 10 == 0;
    w.req.no_delete = rng_() % 10 == 0;
    w.start = w.req.start_revision == 0 ? model_.rev() + 1 : w.req.start_revision;
    auto id = streams_[w.stream]->watch(w.req);
    ASSERT_TRUE(id);
    w.id = *id;
    watchers_.push_back(std::move(w));
  }

  model_watcher* find(int stream, std::int64_t id) {
    for (auto& w : watchers_) {
      if (w.stream == stream && w.id == id && !w.done) return &w;
    }
    return nullptr;
  }

  void cancel_watch() {
    std::vector<model_watcher*> live;
    for (auto& w : watchers_) {
      if (!w.done) live.push_back(&w);
    }
    if (live.empty()) return;
    model_watcher* w = live[rng_() % live.size()];
    auto r = streams_[w->stream]->cancel(w->id);
    // A compaction notice may be waiting in the buffer: then the watcher is already gone.
    w->done = true;
    (void)r;
  }

  // Everything up to revision p must have been delivered to w.
  void check_caught_up(const model_watcher& w, std::int64_t p, const char* what) {
    auto want = expected_events(model_, w);
    if (w.delivered < want.size()) {
      ASSERT_GT(want[w.delivered].kv.mod_revision, p)
          << what << " at " << p << " for watcher " << w.stream << "/" << w.id << " on ["
          << w.req.key << ", " << w.req.range_end << ") from " << w.start
          << (w.req.prev_kv ? " prev_kv" : "") << (w.req.no_put ? " no_put" : "")
          << (w.req.no_delete ? " no_delete" : "") << ", " << w.delivered
          << " delivered, before its events were delivered; next due:"
          << describe({want[w.delivered]});
    }
  }

  bool consume(int s, int n) {
    bool any = false;
    for (int i = 0; i < n; ++i) {
      auto r = streams_[s]->try_next();
      if (!r) break;
      any = true;
      if (r->watch_id == -1) {
        // It covers the watchers the stream had when it was asked for.
        if (progress_asked_[s].empty()) {
          ADD_FAILURE() << "a stream progress nobody asked for";
          return any;
        }
        for (std::size_t i : progress_asked_[s].front()) {
          if (!watchers_[i].done) check_caught_up(watchers_[i], r->revision, "stream progress");
        }
        progress_asked_[s].pop_front();
        continue;
      }
      model_watcher* w = find(s, r->watch_id);
      if (w == nullptr) continue;  // cancelled
      if (r->compact_revision != 0) {
        const std::int64_t c = r->compact_revision;
        // It must really have been behind that compaction.
        const std::int64_t next = std::max(w->start, w->last_rev + 1);
        // A prev_kv watcher cannot start at the compaction revision itself: it is told the one
        // after, where it can.
        EXPECT_LE(c, model_.compact_rev() + (w->req.prev_kv ? 1 : 0));
        EXPECT_LT(next, c) << "watcher from " << w->start << " (prev_kv " << w->req.prev_kv
                           << ") compacted at " << c;
        w->done = w->compacted = true;
        continue;
      }
      if (r->events.empty()) {
        check_caught_up(*w, r->revision, "progress");
        continue;
      }
      auto want = expected_events(model_, *w);
      for (const auto& e : r->events) {
        if (w->delivered >= want.size()) {
          ADD_FAILURE() << "an event nobody expects:" << describe({e});
          return any;
        }
        if (!(e == want[w->delivered])) {
          ADD_FAILURE() << "watcher " << s << "/" << w->id << " [" << w->req.key << ", "
                        << w->req.range_end << ") from " << w->start << ", event #" << w->delivered
                        << ":" << describe({e})
                        << "\n  expected:" << describe({want[w->delivered]});
          return any;
        }
        w->last_rev = e.kv.mod_revision;
        ++w->delivered;
      }
      // One revision is never split between responses.
      if (w->delivered < want.size() && want[w->delivered].kv.mod_revision == w->last_rev) {
        ADD_FAILURE() << "a revision was split between responses";
        return any;
      }
    }
    return any;
  }

  void progress() {
    int s = static_cast<int>(rng_() % streams_.size());
    if (rng_() % 2) {
      if (streams_[s]->request_progress_all()) {
        std::vector<std::size_t> live;
        for (std::size_t i = 0; i < watchers_.size(); ++i) {
          if (watchers_[i].stream == s && !watchers_[i].done) live.push_back(i);
        }
        progress_asked_[s].push_back(std::move(live));
      }
      return;
    }
    for (auto& w : watchers_) {
      if (w.stream == s && !w.done) {
        streams_[s]->request_progress(w.id);
        return;
      }
    }
  }

  std::mt19937_64 rng_;
  temp_dir dir_main_, dir_twin_;
  worker twin_thread_;
  std::unique_ptr<db> main_, twin_;  // twin_ is used on twin_thread_ only
  std::unique_ptr<watchable_store> ws_;
  std::vector<std::unique_ptr<watch_stream>> streams_;
  std::vector<std::string> keys_;
  model model_;
  std::vector<model_watcher> watchers_;
  std::map<int, std::deque<std::vector<std::size_t>>> progress_asked_;
  std::vector<write_op> log_;
};

TEST(mvcc_model, random_histories_agree_with_the_model) {
  std::uint64_t seeds = env_u64("CAIRN_TEST_MVCC_SEEDS", 20);
  std::uint64_t steps = env_u64("CAIRN_TEST_MVCC_STEPS", 2000);
  std::uint64_t first = 1;
  if (const char* one = std::getenv("CAIRN_TEST_MVCC_SEED")) {
    first = std::strtoull(one, nullptr, 10);
    seeds = 1;
  }
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " (CAIRN_TEST_MVCC_SEED=" + std::to_string(seed) +
                 " to rerun)");
    run r(seed);
    for (std::uint64_t i = 0; i < steps; ++i) {
      r.step();
      if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) {
        FAIL() << "at step " << i;
      }
    }
    r.finish();
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace cairn::mvcc
