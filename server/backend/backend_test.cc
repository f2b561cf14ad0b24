#include "backend/backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "base/file_size_limit.h"
#include "base/sim_file.h"

namespace cairn::backend {
namespace {

namespace fs = std::filesystem;

enum : bucket_id { plain = 0, buffered = 1 };

std::vector<bucket_spec> test_buckets() { return {{"plain", false}, {"buffered", true}}; }

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "cairn-backend-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<backend> must_open(const std::string& path, options opts = {}) {
  auto b = backend::open(path, std::move(opts), test_buckets());
  if (!b) {
    ADD_FAILURE() << b.error().message;
    return nullptr;
  }
  return std::move(*b);
}

std::map<std::string, std::string> dump(backend& b, bucket_id bucket) {
  std::map<std::string, std::string> out;
  auto v = b.read();
  v.scan(bucket, {}, {}, [&](std::string_view k, std::string_view val) {
    out.emplace(k, val);
    return true;
  });
  return out;
}

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%08d", i);
  return buf;
}

TEST(backend, committed_writes_are_seen_by_new_views_and_survive_reopen) {
  temp_dir dir;
  {
    auto b = must_open(dir.file("db"));
    b->put(plain, "a", "1");
    b->put(buffered, "x", "9");
    b->force_commit();
    auto v = b->read();
    EXPECT_EQ(v.get(plain, "a"), "1");
    EXPECT_EQ(v.get(buffered, "x"), "9");
    EXPECT_EQ(v.get(plain, "b"), std::nullopt);
  }
  auto b = must_open(dir.file("db"));
  EXPECT_EQ(dump(*b, plain), (std::map<std::string, std::string>{{"a", "1"}}));
  EXPECT_EQ(dump(*b, buffered), (std::map<std::string, std::string>{{"x", "9"}}));
}

TEST(backend, views_see_buffered_puts_before_commit_but_not_plain_ones) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  b->put(plain, "a", "1");
  b->put(buffered, "b", "2");
  {
    auto v = b->read();
    EXPECT_EQ(v.get(plain, "a"), std::nullopt);
    EXPECT_EQ(v.get(buffered, "b"), "2");
    // A put after the view opened is visible through the buffer too (same batch).
    b->put(buffered, "c", "3");
    EXPECT_EQ(v.get(buffered, "c"), "3");
  }
  // The writer's own reads see its batch.
  EXPECT_EQ(b->get(plain, "a"), "1");
  b->force_commit();
  auto v = b->read();
  EXPECT_EQ(v.get(plain, "a"), "1");
  EXPECT_EQ(v.get(buffered, "c"), "3");
}

TEST(backend, a_view_keeps_its_snapshot_across_later_commits) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  b->put(plain, "a", "old");
  b->force_commit();
  auto v = b->read();
  b->put(plain, "a", "new");
  b->del(plain, "a");
  b->put(plain, "z", "1");
  b->force_commit();
  EXPECT_EQ(v.get(plain, "a"), "old");
  EXPECT_EQ(v.get(plain, "z"), std::nullopt);
  auto w = b->read();
  EXPECT_EQ(w.get(plain, "a"), std::nullopt);
  EXPECT_EQ(w.get(plain, "z"), "1");
}

TEST(backend, a_view_holding_the_old_buffer_still_sees_a_batch_committed_after_it_opened) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  b->put(buffered, "a", "1");
  auto v = b->read();  // snapshot before the commit, buffer holding "a"
  b->force_commit();
  b->put(buffered, "b", "2");  // goes to the next batch's buffer
  EXPECT_EQ(v.get(buffered, "a"), "1");
  auto w = b->read();
  EXPECT_EQ(w.get(buffered, "a"), "1");
  EXPECT_EQ(w.get(buffered, "b"), "2");
}

TEST(backend, scan_merges_the_buffer_with_the_snapshot_in_key_order) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  for (int i = 0; i < 20; i += 2) b->put(buffered, key(i), "c" + std::to_string(i));
  b->force_commit();
  for (int i = 1; i < 20; i += 2) b->put(buffered, key(i), "u" + std::to_string(i));
  auto v = b->read();
  std::vector<std::string> seen;
  v.scan(buffered, key(3), key(11), [&](std::string_view k, std::string_view val) {
    seen.push_back(std::string(k) + "=" + std::string(val));
    return true;
  });
  std::vector<std::string> want;
  for (int i = 3; i < 11; ++i)
    want.push_back(key(i) + "=" + (i % 2 ? "u" : "c") + std::to_string(i));
  EXPECT_EQ(seen, want);
  // Stopping early.
  int n = 0;
  v.scan(buffered, {}, {}, [&](std::string_view, std::string_view) { return ++n < 5; });
  EXPECT_EQ(n, 5);
}

TEST(backend, commit_if_due_commits_by_count) {
  temp_dir dir;
  options opts;
  opts.batch_limit = 3;
  opts.batch_interval = std::chrono::hours(1);
  auto b = must_open(dir.file("db"), opts);
  b->put(plain, "a", "1");
  b->put(plain, "b", "1");
  EXPECT_FALSE(b->commit_if_due());
  EXPECT_EQ(b->pending(), 2u);
  b->put(plain, "c", "1");
  EXPECT_TRUE(b->commit_if_due());
  EXPECT_EQ(b->pending(), 0u);
  EXPECT_EQ(b->commits(), 1u);
  EXPECT_EQ(dump(*b, plain).size(), 3u);
}

TEST(backend, commit_if_due_commits_by_bytes) {
  temp_dir dir;
  options opts;
  opts.batch_bytes = 1000;
  opts.batch_interval = std::chrono::hours(1);
  auto b = must_open(dir.file("db"), opts);
  b->put(plain, "a", std::string(500, 'x'));
  EXPECT_FALSE(b->commit_if_due());
  b->put(plain, "b", std::string(500, 'x'));
  EXPECT_TRUE(b->commit_if_due());
}

TEST(backend, commit_if_due_commits_by_interval) {
  temp_dir dir;
  auto t = std::chrono::steady_clock::time_point{};
  options opts;
  opts.clock = [&] { return t; };
  auto b = must_open(dir.file("db"), opts);
  b->put(plain, "a", "1");
  t += std::chrono::milliseconds(99);
  EXPECT_FALSE(b->commit_if_due());
  t += std::chrono::milliseconds(1);
  EXPECT_TRUE(b->commit_if_due());
  // The interval counts from the first write of a batch, not from the last commit.
  t += std::chrono::seconds(5);
  b->put(plain, "b", "1");
  EXPECT_FALSE(b->commit_if_due());
}

TEST(backend, holds_keep_an_operation_in_one_commit_and_force_commit_overrides) {
  temp_dir dir;
  options opts;
  opts.batch_limit = 1;
  auto b = must_open(dir.file("db"), opts);
  {
    auto hold = b->hold_commits();
    b->put(plain, "a", "1");
    EXPECT_FALSE(b->commit_if_due());
    b->put(plain, "b", "1");
    EXPECT_FALSE(b->commit_if_due());
  }
  EXPECT_TRUE(b->commit_if_due());
  EXPECT_EQ(b->commits(), 1u);
  auto hold = b->hold_commits();
  b->put(plain, "c", "1");
  b->force_commit();
  EXPECT_EQ(b->commits(), 2u);
}

TEST(backend, pre_commit_hooks_write_into_the_committing_batch) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  int counter = 0;
  int id = b->add_pre_commit_hook([&] { b->put(plain, "hook", std::to_string(++counter)); });
  b->put(plain, "a", "1");
  b->force_commit();
  EXPECT_EQ(dump(*b, plain)["hook"], "1");
  // A hook's write alone is committed too.
  b->force_commit();
  EXPECT_EQ(dump(*b, plain)["hook"], "2");
  b->remove_pre_commit_hook(id);
  b->put(plain, "a", "2");
  b->force_commit();
  EXPECT_EQ(dump(*b, plain)["hook"], "2");
}

TEST(backend, a_crash_loses_exactly_the_uncommitted_batch) {
  temp_dir dir;
  {
    auto b = must_open(dir.file("db"));
    b->put(plain, "kept", "1");
    b->force_commit();
    b->put(plain, "lost", "1");
    b->put(buffered, "lost", "1");
    b->simulate_crash();
  }
  auto b = must_open(dir.file("db"));
  EXPECT_EQ(dump(*b, plain), (std::map<std::string, std::string>{{"kept", "1"}}));
  EXPECT_TRUE(dump(*b, buffered).empty());
}

// A database of committed data, and a batch of every kind of write on top whose commit the
// file system then refuses: puts to both kinds of bucket, deletes, a cursor's erases and a
// cleared bucket. The maps are what the database holds once the batch is committed.
class refused_commit : public ::testing::Test {
 protected:
  using contents = std::map<std::string, std::string>;

  std::unique_ptr<backend> open_with_retry() {
    options o;
    o.commit_failed = [this](std::string_view error) {
      errors_.emplace_back(error);
      return on_failure_ ? on_failure_() : false;
    };
    o.commit_resumed = [this] { ++resumed_; };
    return must_open(dir_.file("db"), std::move(o));
  }

  void commit_old_data(backend& b) {
    for (int i = 0; i < 1000; ++i) {
      b.put(plain, key(i), "old");
      b.put(buffered, key(i), "old");
      old_[key(i)] = "old";
    }
    b.force_commit();
    want_plain_ = old_;
  }

  void write_batch(backend& b) {
    b.clear(buffered);
    for (int i = 0; i < 2000; ++i) {
      b.put(buffered, key(i), "new");
      want_buffered_[key(i)] = "new";
    }
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(b.del(plain, key(i)));
      want_plain_.erase(key(i));
    }
    {
      auto c = b.cursor(plain);
      c.seek(key(100));
      for (int i = 100; i < 200; ++i) {
        ASSERT_TRUE(c.valid());
        ASSERT_EQ(c.key(), key(i));
        c.erase();
        want_plain_.erase(key(i));
      }
    }
    for (int i = 1000; i < 3000; ++i) {
      b.put(plain, key(i), std::string(100, 'v'));
      want_plain_[key(i)] = std::string(100, 'v');
    }
  }

  static std::uint64_t file_size(const std::string& path) { return fs::file_size(path); }

  temp_dir dir_;
  std::vector<std::string> errors_;
  std::function<bool()> on_failure_;
  int resumed_ = 0;
  contents old_, want_plain_, want_buffered_;
};

TEST_F(refused_commit, is_tried_again_until_the_disk_takes_it_and_loses_nothing) {
  {
    auto b = open_with_retry();
    commit_old_data(*b);
    base::file_size_limit limit(file_size(dir_.file("db")));
    write_batch(*b);
    on_failure_ = [&] {
      // Meanwhile reads see the last commit and the batch's buffered puts, as before.
      auto v = b->read();
      EXPECT_EQ(v.get(plain, key(0)), "old");
      EXPECT_EQ(v.get(buffered, key(1500)), "new");
      if (errors_.size() == 3) limit.lift();
      return true;
    };
    b->force_commit();
    EXPECT_EQ(errors_, std::vector<std::string>(3, "File too large"));
    EXPECT_EQ(resumed_, 1);
    EXPECT_EQ(b->pending(), 0u);
    EXPECT_EQ(dump(*b, plain), want_plain_);
    EXPECT_EQ(dump(*b, buffered), want_buffered_);
    EXPECT_TRUE(b->sync());
    EXPECT_EQ(resumed_, 1) << "only a commit after a failure resumes";
  }
  auto b = must_open(dir_.file("db"));
  EXPECT_EQ(dump(*b, plain), want_plain_);
  EXPECT_EQ(dump(*b, buffered), want_buffered_);
}

TEST_F(refused_commit, left_pending_it_is_redone_under_the_next_writes_and_commit) {
  {
    auto b = open_with_retry();
    commit_old_data(*b);
    base::file_size_limit limit(file_size(dir_.file("db")));
    write_batch(*b);
    b->force_commit();
    ASSERT_EQ(errors_.size(), 1u);
    EXPECT_FALSE(b->sync()) << "sync must not claim a batch that is not committed";
    EXPECT_EQ(errors_.size(), 2u);
    EXPECT_EQ(b->read().get(buffered, key(1999)), "new");
    // Later writes go on top of the failed batch, in order.
    ASSERT_TRUE(b->del(plain, key(2500)));
    want_plain_.erase(key(2500));
    b->put(plain, "after", "1");
    want_plain_["after"] = "1";
    EXPECT_EQ(b->get(plain, key(1500)), std::string(100, 'v'));
    limit.lift();
    b->force_commit();
    EXPECT_EQ(resumed_, 1);
    EXPECT_EQ(dump(*b, plain), want_plain_);
    EXPECT_EQ(dump(*b, buffered), want_buffered_);
  }
  auto b = must_open(dir_.file("db"));
  EXPECT_EQ(dump(*b, plain), want_plain_);
  EXPECT_EQ(dump(*b, buffered), want_buffered_);
}

TEST_F(refused_commit, a_crash_or_a_close_before_it_goes_in_loses_only_that_batch) {
  for (bool crash : {true, false}) {
    SCOPED_TRACE(crash ? "crash" : "close");
    fs::remove_all(dir_.path());
    fs::create_directories(dir_.path());
    {
      auto b = open_with_retry();
      commit_old_data(*b);
      base::file_size_limit limit(file_size(dir_.file("db")));
      write_batch(*b);
      b->force_commit();
      if (crash) b->simulate_crash();
      // Otherwise closing tries the batch once more, is refused, and drops it.
      b.reset();
    }
    EXPECT_EQ(errors_.size(), crash ? 1u : 2u);
    errors_.clear();
    auto b = must_open(dir_.file("db"));
    EXPECT_EQ(dump(*b, plain), old_);
    EXPECT_EQ(dump(*b, buffered), old_);
  }
}

TEST(backend_death, a_refused_commit_stops_the_process_without_a_retry_callback) {
  temp_dir dir;
  EXPECT_DEATH(
      {
        auto b = must_open(dir.file("db"));
        b->put(plain, "a", "1");
        b->force_commit();
        base::file_size_limit limit(fs::file_size(dir.file("db")));
        for (int i = 0; i < 3000; ++i) b->put(plain, key(i), std::string(100, 'v'));
        b->force_commit();
      },
      "cairn backend: commit: File too large");
}

TEST(backend, write_cursor_walks_and_erases) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  for (int i = 0; i < 3000; ++i) b->put(plain, key(i), std::string(100, 'v'));
  b->force_commit();
  {
    auto c = b->cursor(plain);
    int i = 0;
    for (c.seek(key(0)); c.valid(); ++i) {
      ASSERT_EQ(c.key(), key(i));
      if (i % 3 != 0) {
        c.erase();
      } else {
        c.next();
      }
    }
    EXPECT_EQ(i, 3000);
  }
  b->force_commit();
  auto left = dump(*b, plain);
  ASSERT_EQ(left.size(), 1000u);
  EXPECT_EQ(left.begin()->first, key(0));
  EXPECT_EQ(left.rbegin()->first, key(2997));
  // Erase everything from the middle on.
  {
    auto c = b->cursor(plain);
    for (c.seek(key(1500)); c.valid();) c.erase();
  }
  b->force_commit();
  EXPECT_EQ(dump(*b, plain).size(), 500u);
}

TEST(backend, map_size_is_quota_plus_headroom) {
  temp_dir dir;
  options opts;
  opts.quota_bytes = 64 << 20;
  opts.headroom_bytes = 16 << 20;
  auto b = must_open(dir.file("db"), opts);
  EXPECT_EQ(b->map_size(), std::uint64_t{80} << 20);
  options defaults;
  auto c = must_open(dir.file("db2"), defaults);
  EXPECT_EQ(c->map_size(), (std::uint64_t{2} << 30) + (std::uint64_t{512} << 20));
}

TEST(backend, size_in_use_drops_after_deletes_and_defrag_shrinks_the_file) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  for (int i = 0; i < 20000; ++i) b->put(plain, key(i), std::string(200, 'x'));
  b->force_commit();
  const auto full = b->size();
  const auto used_full = b->size_in_use();
  EXPECT_GT(full, 4u << 20);
  EXPECT_LE(used_full, full);
  // Deleting 90% of the keys (a contiguous run, so whole pages empty out) frees pages but the
  // file never shrinks by itself.
  for (int i = 2000; i < 20000; ++i) b->del(plain, key(i));
  b->force_commit();
  const auto used_after = b->size_in_use();
  EXPECT_GE(b->size(), full);
  EXPECT_LT(used_after, used_full / 4);
  auto r = b->defrag();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LT(b->size(), full / 4);
  EXPECT_LE(b->size_in_use(), b->size());
  auto left = dump(*b, plain);
  ASSERT_EQ(left.size(), 2000u);
  EXPECT_EQ(left.begin()->first, key(0));
  EXPECT_EQ(left.rbegin()->first, key(1999));
  // The backend goes on working after the swap.
  b->put(plain, "after", "1");
  b->force_commit();
  EXPECT_EQ(dump(*b, plain).size(), 2001u);
  EXPECT_FALSE(fs::exists(dir.file("db.defrag")));
}

TEST(backend, readers_on_other_threads_run_through_commits_and_a_defrag) {
  temp_dir dir;
  options opts;
  opts.batch_limit = 50;
  auto b = must_open(dir.file("db"), opts);
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        int n = written.load();
        auto v = b->read();
        // Every buffered key written before the view opened is visible.
        for (int i = std::max(0, n - 20); i < n; ++i) {
          if (!v.get(buffered, key(i))) bad.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < 3000; ++i) {
    b->put(buffered, key(i), "v");
    written.store(i + 1);
    b->commit_if_due();
    if (i == 1500) {
      ASSERT_TRUE(b->defrag());
    }
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(backend, the_snapshot_stream_is_a_database_holding_the_last_commit) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  for (int i = 0; i < 5000; ++i) b->put(i % 2 ? plain : buffered, key(i), std::to_string(i));
  b->force_commit();
  b->put(plain, "uncommitted", "1");
  {
    auto snap = b->open_snapshot();
    std::ofstream out(dir.file("copy"), std::ios::binary);
    std::vector<char> buf(7777);
    for (;;) {
      auto n = snap->read(buf.data(), buf.size());
      ASSERT_TRUE(n) << n.error().message;
      if (*n == 0) break;
      out.write(buf.data(), static_cast<std::streamsize>(*n));
    }
  }
  auto copy = must_open(dir.file("copy"));
  auto want_plain = dump(*b, plain);
  want_plain.erase("uncommitted");
  EXPECT_EQ(dump(*copy, plain), want_plain);
  EXPECT_EQ(dump(*copy, buffered).size(), 2500u);
  // A reader that stops early ends the copy without harm.
  { auto snap = b->open_snapshot(); }
  {
    auto snap = b->open_snapshot();
    char c[10];
    ASSERT_TRUE(snap->read(c, sizeof c));
  }
}

TEST(backend, the_snapshot_file_is_a_database_of_the_last_commit_left_alone_by_later_writes) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  for (int i = 0; i < 5000; ++i) b->put(i % 2 ? plain : buffered, key(i), std::to_string(i));
  b->force_commit();
  b->put(plain, "uncommitted", "1");
  auto snap = b->snapshot_to_file();
  ASSERT_TRUE(snap) << snap.error().message;
  // The copy is in no file of the directory (unnamed), and later commits do not reach it.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_FALSE(e.path().filename().string().starts_with("db" + std::string(snapshot_temp_infix)))
        << e.path();
  }
  for (int i = 0; i < 5000; ++i) b->put(plain, key(i), "overwritten");
  b->force_commit();
  const std::uint64_t size = (*snap)->size();
  ASSERT_GT(size, 0u);
  EXPECT_EQ(size % 4096, 0u);
  {
    std::ofstream out(dir.file("copy"), std::ios::binary);
    std::vector<char> buf(7777);
    std::uint64_t at = 0;
    while (at < size) {
      auto n = (*snap)->read_at(at, buf.data(), buf.size());
      ASSERT_TRUE(n) << n.error().message;
      ASSERT_GT(*n, 0u);
      out.write(buf.data(), static_cast<std::streamsize>(*n));
      at += *n;
    }
    auto end = (*snap)->read_at(size, buf.data(), buf.size());
    ASSERT_TRUE(end);
    EXPECT_EQ(*end, 0u);
  }
  snap->reset();
  auto copy = must_open(dir.file("copy"));
  auto plain_copy = dump(*copy, plain);
  EXPECT_EQ(plain_copy.size(), 2500u);
  EXPECT_FALSE(plain_copy.contains("uncommitted"));
  EXPECT_EQ(plain_copy[key(1)], "1");
  EXPECT_EQ(dump(*copy, buffered).size(), 2500u);
}

TEST(backend, open_removes_a_snapshot_copy_left_by_a_crash) {
  temp_dir dir;
  std::ofstream(dir.file("db" + std::string(snapshot_temp_infix) + "a1b2c3")) << "left over";
  std::ofstream(dir.file("other")) << "kept";
  auto b = must_open(dir.file("db"));
  EXPECT_FALSE(fs::exists(dir.file("db" + std::string(snapshot_temp_infix) + "a1b2c3")));
  EXPECT_TRUE(fs::exists(dir.file("other")));
}

TEST(backend, a_committed_view_does_not_see_the_open_batch) {
  temp_dir dir;
  auto b = must_open(dir.file("db"));
  b->put(buffered, "a", "1");
  b->force_commit();
  b->put(buffered, "b", "2");
  auto all = b->read();
  auto committed = b->read_committed();
  EXPECT_TRUE(all.get(buffered, "b"));
  EXPECT_FALSE(committed.get(buffered, "b"));
  EXPECT_EQ(committed.get(buffered, "a"), std::optional<std::string_view>("1"));
  int seen = 0;
  committed.scan(buffered, "", "", [&](std::string_view, std::string_view) {
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, 1);
}

TEST(backend, opening_something_that_is_not_lmdb_is_refused) {
  temp_dir dir;
  {
    std::ofstream out(dir.file("db"), std::ios::binary);
    out << std::string(1 << 16, 'b');  // say, a bbolt file
  }
  auto b = backend::open(dir.file("db"), {}, test_buckets());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, errc::corrupt);
}

TEST(backend, a_leftover_defrag_copy_is_removed_at_open) {
  temp_dir dir;
  { auto b = must_open(dir.file("db")); }
  { std::ofstream(dir.file("db.defrag")) << "partial copy"; }
  auto b = must_open(dir.file("db"));
  EXPECT_FALSE(fs::exists(dir.file("db.defrag")));
}

TEST(backend_death, writing_from_a_second_thread_into_an_open_batch_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  temp_dir dir;
  EXPECT_DEATH(
      {
        auto b = must_open(dir.file("db"));
        b->put(plain, "a", "1");
        std::thread([&] { b->put(plain, "b", "1"); }).join();
      },
      "second thread");
}

// ---------------------------------------------------------------------------------------------
// Defrag crash safety. The defrag's file operations go both to the real directory (LMDB needs
// real files) and to a simulated file system that knows what was made durable. A crash throws
// away what the simulation says was not durable and copies its surviving files back onto the
// real directory; then the database must open with all its data, old file or new.

class mirror_file final : public base::file {
 public:
  mirror_file(std::unique_ptr<base::file> real, std::unique_ptr<base::file> sim)
      : real_(std::move(real)), sim_(std::move(sim)) {}
  const std::string& path() const override { return real_->path(); }
  base::file_result<size_t> read_at(uint64_t offset, std::span<char> out) override {
    return real_->read_at(offset, out);
  }
  base::file_result<void> write_at(uint64_t offset, std::string_view data) override {
    if (auto r = sim_->write_at(offset, data); !r) return r;
    return real_->write_at(offset, data);
  }
  base::file_result<void> sync_data() override {
    if (auto r = sim_->sync_data(); !r) return r;
    return real_->sync_data();
  }
  base::file_result<void> preallocate(uint64_t length) override {
    if (auto r = sim_->preallocate(length); !r) return r;
    return real_->preallocate(length);
  }
  base::file_result<void> truncate(uint64_t length) override {
    if (auto r = sim_->truncate(length); !r) return r;
    return real_->truncate(length);
  }
  base::file_result<uint64_t> size() override { return real_->size(); }
  base::file_result<void> close() override {
    sim_->close();
    return real_->close();
  }

 private:
  std::unique_ptr<base::file> real_, sim_;
};

class mirror_fs final : public base::file_system {
 public:
  explicit mirror_fs(base::sim_file_system& sim) : sim_(sim) {}
  base::file_result<std::unique_ptr<base::file>> open(const std::string& path,
                                                      base::open_mode mode) override {
    auto s = sim_.open(path, mode);
    if (!s) return cairn::unexpected(s.error());
    auto r = real_.open(path, mode);
    if (!r) return cairn::unexpected(r.error());
    return std::unique_ptr<base::file>(new mirror_file(std::move(*r), std::move(*s)));
  }
  base::file_result<void> rename(const std::string& from, const std::string& to) override {
    if (auto r = sim_.rename(from, to); !r) return r;
    return real_.rename(from, to);
  }
  base::file_result<void> remove(const std::string& path) override {
    auto s = sim_.remove(path);
    auto r = real_.remove(path);
    return s ? r : s;
  }
  base::file_result<void> create_dir(const std::string& path) override {
    if (auto r = sim_.create_dir(path); !r) return r;
    return real_.create_dir(path);
  }
  base::file_result<void> sync_dir(const std::string& path) override {
    if (auto r = sim_.sync_dir(path); !r) return r;
    return real_.sync_dir(path);
  }
  base::file_result<std::vector<std::string>> list_dir(const std::string& path) override {
    return real_.list_dir(path);
  }
  base::file_result<uint64_t> file_size(const std::string& path) override {
    return real_.file_size(path);
  }
  base::file_result<bool> exists(const std::string& path) override { return real_.exists(path); }
  base::file_result<bool> is_dir(const std::string& path) override { return real_.is_dir(path); }

 private:
  base::sim_file_system& sim_;
  base::file_system& real_ = base::posix_file_system();
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Puts the simulation's view of `path` onto the real file (or removes it).
void materialize(base::sim_file_system& sim, const std::string& path) {
  auto data = sim.contents(path);
  if (!data) {
    fs::remove(path);
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data->data(), static_cast<std::streamsize>(data->size()));
}

// The database file after the crash. The simulation decides which file the name holds: the old
// one (the swap was lost), the compacted copy as written, or a part of it (its data was not
// durable). In the second case the real file stays, with whatever LMDB committed to it after
// the swap (LMDB syncs its own writes).
void materialize_db(base::sim_file_system& sim, const std::string& path, const std::string& old,
                    const std::optional<std::string>& copy_as_written) {
  auto now = sim.contents(path);
  if (now && copy_as_written && *now == *copy_as_written && *now != old) return;
  materialize(sim, path);
}

struct crash_case {
  std::optional<defrag_step> at;            // crash after this step
  std::optional<std::uint64_t> fail_after;  // or when the n-th file operation fails
  base::crash_mode mode = base::crash_mode::lose_unsynced;
};

// Mutating file operations a defrag makes up to the end of its copy (set by run_defrag_crash).
std::uint64_t calls_through_copy = 0;

void run_defrag_crash(const crash_case& cc, std::uint64_t seed) {
  temp_dir dir;
  const std::string db = dir.file("db");
  std::map<std::string, std::string> want;
  {
    auto b = must_open(db);
    for (int i = 0; i < 4000; ++i) b->put(plain, key(i), std::string(300, 'a' + i % 26));
    b->force_commit();
    for (int i = 0; i < 4000; i += 2) b->del(plain, key(i));
    b->force_commit();
    want = dump(*b, plain);
  }
  base::sim_file_system sim(seed);
  ASSERT_TRUE(base::create_dirs(sim, dir.path()));
  const std::string old_bytes = read_all(db);
  {
    auto f = sim.open(db, base::open_mode::create_truncate);
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write_at(0, old_bytes));
    ASSERT_TRUE((*f)->sync_data());
    ASSERT_TRUE(sim.sync_dir(dir.path()));
  }
  mirror_fs mfs(sim);
  options opts;
  opts.fs = &mfs;
  std::uint64_t calls_before = 0;
  opts.defrag_hook = [&](defrag_step s) {
    if (s == defrag_step::copied) calls_through_copy = sim.mutating_calls() - calls_before;
    return !(cc.at && *cc.at == s);
  };
  {
    auto b = must_open(db, opts);
    calls_before = sim.mutating_calls();
    if (cc.fail_after) sim.crash_after(*cc.fail_after);
    auto r = b->defrag();
    if (!cc.at && !cc.fail_after) {
      ASSERT_TRUE(r) << r.error().message;
    }
    if (r) {
      // Writes after the swap are committed (and synced by LMDB) to the new file; they must
      // survive, which they do only if the swap itself was made durable.
      for (int i = 0; i < 50; ++i) b->put(plain, "after" + std::to_string(i), "x");
      ASSERT_TRUE(b->sync());
      want = dump(*b, plain);
    } else if (r.error().code != errc::interrupted) {
      // A failed defrag (the plug pulled under its copy) leaves the old database in use.
      EXPECT_EQ(dump(*b, plain), want);
    }
    if (!r && r.error().code == errc::interrupted) {
      // The backend is gone as after a crash; nothing more goes through it.
    } else {
      b->simulate_crash();
    }
  }
  const auto copy_as_written = sim.contents(db);
  sim.crash(cc.mode);
  materialize_db(sim, db, old_bytes, copy_as_written);
  materialize(sim, db + ".defrag");
  auto b = backend::open(db, {}, test_buckets());
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(dump(**b, plain), want);
  EXPECT_FALSE(fs::exists(db + ".defrag"));
}

TEST(backend_defrag_crash, every_step_leaves_a_complete_database) {
  for (auto step : {defrag_step::copied, defrag_step::closed, defrag_step::renamed,
                    defrag_step::dir_synced, defrag_step::reopened}) {
    for (auto mode : {base::crash_mode::lose_unsynced, base::crash_mode::torn}) {
      SCOPED_TRACE(static_cast<int>(step));
      run_defrag_crash(crash_case{step, std::nullopt, mode}, 7);
    }
  }
  run_defrag_crash(crash_case{}, 1);
}

TEST(backend_defrag_crash, failing_file_operations_leave_a_complete_database) {
  run_defrag_crash(crash_case{}, 1);
  ASSERT_GT(calls_through_copy, 2u);
  // Pull the plug at every file operation of the copy, and at the rename after it. (A failed
  // directory sync after the rename aborts the process by design.)
  for (std::uint64_t n = 0; n <= calls_through_copy; ++n) {
    SCOPED_TRACE(n);
    run_defrag_crash(crash_case{std::nullopt, n, base::crash_mode::torn}, n + 1);
  }
}

}  // namespace
}  // namespace cairn::backend
