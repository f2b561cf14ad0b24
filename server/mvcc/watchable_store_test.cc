#include "mvcc/watchable_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "mvcc/testing.h"

namespace cairn::mvcc {
namespace {

using testing::db;
using testing::temp_dir;

class watch_test : public ::testing::Test {
 protected:
  explicit watch_test(std::size_t capacity = 128) {
    watchable_options o;
    o.background = false;
    o.stream_capacity = capacity;
    o.batch_max_revs = 1000;
    ws = std::make_unique<watchable_store>(*d.st, o);
    stream = ws->new_stream();
  }
  ~watch_test() override {
    stream.reset();
    ws.reset();
  }
  store& s() { return *d.st; }
  std::int64_t put(const std::string& k, const std::string& v) {
    return s().put(put_request{k, v})->revision;
  }
  std::int64_t del(const std::string& k, const std::string& end = {}) {
    return s().delete_range(delete_range_request{k, end})->revision;
  }
  std::int64_t watch(watch_request r) {
    auto id = stream->watch(r);
    EXPECT_TRUE(id);
    return id.value_or(-2);
  }
  // Everything the stream holds now, after letting the sync loop run dry.
  std::vector<watch_response> drain() {
    std::vector<watch_response> out;
    for (int i = 0; i < 1000; ++i) {
      bool more = ws->sync_round();
      bool got = false;
      while (auto r = stream->try_next()) {
        out.push_back(std::move(*r));
        got = true;
      }
      if (!more && !got) break;
    }
    return out;
  }
  static std::vector<event> events_of(const std::vector<watch_response>& rs) {
    std::vector<event> out;
    for (const auto& r : rs) out.insert(out.end(), r.events.begin(), r.events.end());
    return out;
  }
  static std::vector<std::string> summary(const std::vector<event>& evs) {
    std::vector<std::string> out;
    for (const auto& e : evs) {
      out.push_back((e.type == event_type::put ? "put " : "del ") + e.kv.key + "@" +
                    std::to_string(e.kv.mod_revision) +
                    (e.prev_kv ? " prev=" + e.prev_kv->value : ""));
    }
    return out;
  }

  temp_dir dir;
  db d{dir};
  std::unique_ptr<watchable_store> ws;
  std::unique_ptr<watch_stream> stream;
};

using strings = std::vector<std::string>;

TEST_F(watch_test, a_synced_watcher_gets_puts_and_deletes_with_prev_kv_when_asked) {
  put("k", "0");
  auto plain = watch({.key = "k"});
  auto with_prev = watch({.key = "k", .prev_kv = true});
  put("k", "1");
  put("other", "x");
  del("k");
  auto rs = drain();
  std::vector<event> a, b;
  for (const auto& r : rs) {
    ASSERT_TRUE(r.watch_id == plain || r.watch_id == with_prev);
    auto& to = r.watch_id == plain ? a : b;
    to.insert(to.end(), r.events.begin(), r.events.end());
  }
  EXPECT_EQ(summary(a), (strings{"put k@3", "del k@5"}));
  EXPECT_EQ(summary(b), (strings{"put k@3 prev=0", "del k@5 prev=1"}));
  EXPECT_EQ(b[1].kv, (key_value{"k", 0, 5, 0, "", 0}));
  EXPECT_EQ(*b[1].prev_kv, (key_value{"k", 2, 3, 2, "1", 0}));
}

TEST_F(watch_test, a_watcher_from_the_past_catches_up_from_the_backend_then_follows) {
  put("a", "1");  // 2
  put("b", "1");  // 3
  put("a", "2");  // 4
  auto id = watch({.key = "a", .range_end = "c", .start_revision = 3, .prev_kv = true});
  EXPECT_EQ(ws->group_sizes().unsynced, 1u);
  auto rs = drain();
  EXPECT_EQ(summary(events_of(rs)), (strings{"put b@3", "put a@4 prev=1"}));
  EXPECT_EQ(ws->group_sizes().synced, 1u);
  put("a", "3");
  rs = drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].watch_id, id);
  EXPECT_EQ(rs[0].revision, 5);
  EXPECT_EQ(summary(rs[0].events), (strings{"put a@5 prev=2"}));
}

TEST_F(watch_test, ranges_prefixes_and_from_key) {
  watch({.key = "p/", .range_end = prefix_range_end("p/")});
  watch({.key = "m", .range_end = std::string(1, '\0')});
  for (auto k : {"a", "p/1", "p0", "q", "p/2/x"}) put(k, "v");
  std::map<std::int64_t, strings> by;
  for (const auto& r : drain()) {
    for (const auto& e : r.events) by[r.watch_id].push_back(e.kv.key);
  }
  EXPECT_EQ(by[0], (strings{"p/1", "p/2/x"}));
  EXPECT_EQ(by[1], (strings{"p/1", "p0", "q", "p/2/x"}));
}

TEST_F(watch_test, filters_drop_puts_or_deletes) {
  watch({.key = "k", .no_put = true});
  watch({.key = "k", .no_delete = true});
  put("k", "1");
  del("k");
  std::map<std::int64_t, strings> by;
  for (const auto& r : drain()) by[r.watch_id] = summary(r.events);
  EXPECT_EQ(by[0], (strings{"del k@3"}));
  EXPECT_EQ(by[1], (strings{"put k@2"}));
}

TEST_F(watch_test, the_events_of_one_revision_come_in_one_response) {
  watch({.key = "a", .range_end = "z"});
  txn_request t;
  t.success = {request_op{put_request{"a", "1"}}, request_op{put_request{"b", "1"}},
               request_op{delete_range_request{"zz"}}};
  s().txn(t);
  s().delete_range(delete_range_request{"a", "c"});
  auto rs = drain();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(summary(rs[0].events), (strings{"put a@2", "put b@2"}));
  EXPECT_EQ(summary(rs[1].events), (strings{"del a@3", "del b@3"}));
  // Caught up from the backend, revisions are not split either.
  watch({.key = "a", .range_end = "z", .start_revision = 2});
  rs = drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].events.size(), 4u);
}

TEST_F(watch_test, a_watcher_behind_the_compaction_is_told_its_revision_and_removed) {
  put("k", "1");  // 2
  put("k", "2");  // 3
  del("k");       // 4
  put("x", "1");  // 5
  ASSERT_TRUE(s().compact(4));
  s().finish_compaction();
  d.be->force_commit();  // so that views no longer see the removed entries in the read buffer
  auto behind = watch({.key = "k", .start_revision = 3});
  auto at_prev = watch({.key = "k", .start_revision = 4, .prev_kv = true});
  auto at = watch({.key = "k", .start_revision = 4});
  auto rs = drain();
  std::map<std::int64_t, std::vector<watch_response>> by;
  for (auto& r : rs) by[r.watch_id].push_back(r);
  ASSERT_EQ(by[behind].size(), 1u);
  EXPECT_EQ(by[behind][0].compact_revision, 4);
  // With prev_kv, the value before the compaction revision is gone: compacted too, and told to
  // start one later (the robustness harness found watchers told 4 coming back at 4 forever).
  ASSERT_EQ(by[at_prev].size(), 1u);
  EXPECT_EQ(by[at_prev][0].compact_revision, 5);
  // Without, the delete at exactly the compaction revision still comes (etcd #18089, #19179).
  ASSERT_EQ(by[at].size(), 1u);
  EXPECT_EQ(summary(by[at][0].events), (strings{"del k@4"}));
  EXPECT_EQ(ws->group_sizes().synced, 1u);
  EXPECT_EQ(ws->group_sizes().unsynced, 0u);
  EXPECT_EQ(stream->cancel(behind).error(), errc::watch_not_found);
  // Resumed where it was told, it is served.
  watch({.key = "k", .start_revision = by[at_prev][0].compact_revision, .prev_kv = true});
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(ws->group_sizes().synced, 2u);
}

TEST_F(watch_test, progress_only_for_synced_watchers) {
  put("k", "1");
  auto now = watch({.key = "k"});
  ASSERT_TRUE(stream->request_progress(now));
  auto r = stream->try_next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id, now);
  EXPECT_EQ(r->revision, 2);
  EXPECT_TRUE(r->events.empty());
  auto past = watch({.key = "k", .start_revision = 2});
  EXPECT_FALSE(stream->request_progress(past));
  EXPECT_FALSE(stream->request_progress_all());
  drain();
  EXPECT_TRUE(stream->request_progress(past));
  EXPECT_TRUE(stream->request_progress_all());
  auto rs = drain();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].watch_id, -1);
  EXPECT_EQ(rs[1].revision, 2);
  // A watcher waiting for a future revision has no progress to report yet (etcd #20221).
  auto future = watch({.key = "k", .start_revision = 10});
  EXPECT_FALSE(stream->request_progress(future));
  EXPECT_FALSE(stream->request_progress(12345));
  // Nor a stream-wide notification while it waits: it comes once the store is one short of it.
  EXPECT_FALSE(stream->request_progress_all());
  for (int i = 0; i < 6; ++i) put("x", "v");  // revision 8
  EXPECT_FALSE(stream->request_progress_all());
  put("x", "v");  // 9
  drain();
  EXPECT_TRUE(stream->request_progress_all());
  rs = drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].revision, 9);
}

TEST_F(watch_test, a_negative_start_revision_means_from_the_beginning) {
  put("k", "1");
  put("k", "2");
  watch({.key = "k", .start_revision = -5});
  EXPECT_EQ(summary(events_of(drain())), (strings{"put k@2", "put k@3"}));
}

TEST_F(watch_test, a_future_start_revision_skips_earlier_events) {
  watch({.key = "k", .start_revision = 4});
  put("k", "1");  // 2
  put("k", "2");  // 3
  put("k", "3");  // 4
  put("k", "4");  // 5
  EXPECT_EQ(summary(events_of(drain())), (strings{"put k@4", "put k@5"}));
}

TEST_F(watch_test, watch_ids_from_the_client_and_cancel) {
  auto a = stream->watch({.key = "k", .watch_id = 7});
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 7);
  EXPECT_EQ(stream->watch({.key = "k", .watch_id = 7}).error(), errc::watch_id_exists);
  auto b = watch({.key = "k"});
  EXPECT_NE(b, 7);
  ASSERT_TRUE(stream->cancel(7));
  EXPECT_EQ(stream->cancel(7).error(), errc::watch_not_found);
  put("k", "1");
  auto rs = drain();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].watch_id, b);
}

TEST_F(watch_test, catch_up_responses_carry_at_most_batch_max_revs_revisions) {
  stream.reset();
  ws.reset();
  watchable_options o;
  o.background = false;
  o.batch_max_revs = 3;
  ws = std::make_unique<watchable_store>(*d.st, o);
  stream = ws->new_stream();
  for (int i = 0; i < 10; ++i) put("k", std::to_string(i));  // 2..11
  watch({.key = "k", .start_revision = 2});
  auto rs = drain();
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].events.size(), 3u);
  EXPECT_EQ(rs[3].events.size(), 1u);
  EXPECT_EQ(events_of(rs).back().kv.mod_revision, 11);
}

class slow_watch_test : public watch_test {
 protected:
  slow_watch_test() : watch_test(1) {}
};

TEST_F(slow_watch_test, a_full_buffer_makes_a_victim_that_never_loses_or_reorders_events) {
  auto id = watch({.key = "k", .prev_kv = true});
  for (int i = 0; i < 50; ++i) put("k", std::to_string(i));  // never blocks
  EXPECT_EQ(stream->buffered(), 1u);
  EXPECT_EQ(ws->group_sizes().victims, 1u);
  std::vector<event> got;
  for (int i = 0; i < 1000 && got.size() < 50; ++i) {
    if (auto r = stream->try_next()) {
      EXPECT_EQ(r->watch_id, id);
      got.insert(got.end(), r->events.begin(), r->events.end());
    }
    ws->sync_round();
    if (i % 7 == 0) put("other", "x");  // writes keep coming meanwhile
  }
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[i].kv.value, std::to_string(i));
    EXPECT_EQ(got[i].kv.mod_revision, i + 2);
    if (i > 0) {
      EXPECT_EQ(got[i].prev_kv->value, std::to_string(i - 1));
    }
  }
  EXPECT_EQ(ws->group_sizes().synced, 1u);
  put("k", "last");
  auto r = stream->try_next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->events[0].kv.value, "last");
}

TEST(watch_threads, a_background_loop_delivers_everything_to_readers_on_other_threads) {
  temp_dir dir;
  db d{dir};
  watchable_options o;
  o.stream_capacity = 4;
  o.sync_interval = std::chrono::milliseconds(5);
  watchable_store ws(*d.st, o);
  constexpr int streams = 4, writes = 3000;
  std::vector<std::unique_ptr<watch_stream>> ss;
  std::atomic<int> ready_calls{0};
  for (int i = 0; i < streams; ++i) {
    ss.push_back(ws.new_stream());
    ss.back()->set_on_ready([&] { ready_calls.fetch_add(1); });
    // Half of them start in the past.
    ASSERT_TRUE(ss.back()->watch({.key = "k", .range_end = "l", .start_revision = i % 2 ? 1 : 0}));
  }
  std::vector<std::thread> readers;
  std::vector<std::vector<std::int64_t>> seen(streams);
  for (int i = 0; i < streams; ++i) {
    readers.emplace_back([&, i] {
      while (seen[i].size() < writes) {
        auto r = ss[i]->next(std::chrono::milliseconds(100));
        if (!r) continue;
        for (const auto& e : r->events) seen[i].push_back(e.kv.mod_revision);
        if (i == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));  // a slow one
      }
    });
  }
  for (int i = 0; i < writes; ++i) d.st->put(put_request{"k" + std::to_string(i % 10), "v"});
  for (auto& t : readers) t.join();
  for (int i = 0; i < streams; ++i) {
    ASSERT_EQ(seen[i].size(), static_cast<std::size_t>(writes)) << i;
    for (int j = 0; j < writes; ++j) ASSERT_EQ(seen[i][j], j + 2) << "stream " << i;
  }
  EXPECT_GT(ready_calls.load(), 0);
  ss.clear();
}

}  // namespace
}  // namespace cairn::mvcc
