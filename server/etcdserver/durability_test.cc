// Durability under a power cut at a random moment, in-process: concurrent callers put distinct
// keys while the node runs on the simulated file layer; at a random acknowledgement count the
// power goes (in-flight writes still arriving, their WAL bytes never synced), the file layer
// throws away or tears everything unsynced, and the node reopens. Every write that was
// acknowledged must be there, with the revision it was acknowledged at, and the revisions must
// form one unbroken history. Then the remaining keys are written and everything is checked again.
//
// How the cut is staged, so that "acknowledged" and "synced" are never confused by the test
// itself: the apply thread (which answers callers) is paused first, so nothing is acknowledged
// from then on; then the disk stops taking anything (cuttable_fs below) while the node runs on:
// the raft loop keeps "writing" the proposals of callers still waiting, and the simulated layer
// keeps only what came before the cut, the last batch perhaps unsynced. The crash loses or tears
// that unsynced tail, depending on the seed.
//
// Planted bugs that must fail this test: WAL_NO_FSYNC (wal/wal.cc), WAL_USER_BUFFER
// (etcdserver/server.cc). Run one seed with CAIRN_TEST_SEED=<n> (gtest filter on the seed).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/file_size_limit.h"
#include "base/sim_file.h"
#include "etcdserver/server.h"
#include "mvcc/kv.h"

namespace cairn::etcdserver {
namespace {

using namespace std::chrono_literals;

// A file layer over the simulated one that models the moment the power goes: from `cut` on,
// nothing reaches the disk any more, yet the host runs on for a moment and every call still
// claims success (writes, syncs, renames, removals are dropped; opens hand out files that keep
// nothing). The simulated layer thus holds exactly what was written before the cut: everything
// synced, plus at most the one batch the raft loop had written but not yet synced, which
// crash() then loses or tears.
class cuttable_fs final : public base::file_system {
 public:
  explicit cuttable_fs(base::sim_file_system& inner) : inner_(inner) {}
  std::atomic<bool> cut{false};
  // Cut inside the next fdatasync (which is then dropped): its batch stays unsynced.
  std::atomic<bool> cut_at_next_sync{false};
  std::atomic<std::uint64_t> dropped{0};  // calls dropped after the cut

  base::file_result<std::unique_ptr<base::file>> open(const std::string& path,
                                                      base::open_mode mode) override {
    if (drop()) return std::unique_ptr<base::file>(new dead_file(path));
    auto f = inner_.open(path, mode);
    if (!f) return f;
    return std::unique_ptr<base::file>(new cuttable_file(std::move(*f), this));
  }
  base::file_result<void> rename(const std::string& a, const std::string& b) override {
    if (drop()) return {};
    return inner_.rename(a, b);
  }
  base::file_result<void> remove(const std::string& p) override {
    if (drop()) return {};
    return inner_.remove(p);
  }
  base::file_result<void> create_dir(const std::string& p) override {
    if (drop()) return {};
    return inner_.create_dir(p);
  }
  base::file_result<void> sync_dir(const std::string& p) override {
    if (drop()) return {};
    return inner_.sync_dir(p);
  }
  base::file_result<std::vector<std::string>> list_dir(const std::string& p) override {
    return inner_.list_dir(p);
  }
  base::file_result<uint64_t> file_size(const std::string& p) override {
    return inner_.file_size(p);
  }
  base::file_result<bool> exists(const std::string& p) override { return inner_.exists(p); }
  base::file_result<bool> is_dir(const std::string& p) override { return inner_.is_dir(p); }

 private:
  bool drop() {
    if (!cut.load()) return false;
    ++dropped;
    return true;
  }
  class cuttable_file final : public base::file {
   public:
    cuttable_file(std::unique_ptr<base::file> f, cuttable_fs* fs) : f_(std::move(f)), fs_(fs) {}
    const std::string& path() const override { return f_->path(); }
    base::file_result<size_t> read_at(uint64_t o, std::span<char> out) override {
      return f_->read_at(o, out);
    }
    base::file_result<void> write_at(uint64_t o, std::string_view d) override {
      if (fs_->drop()) return {};
      return f_->write_at(o, d);
    }
    base::file_result<void> sync_data() override {
      if (fs_->cut_at_next_sync.exchange(false)) fs_->cut = true;
      if (fs_->drop()) return {};
      return f_->sync_data();
    }
    base::file_result<void> preallocate(uint64_t n) override {
      if (fs_->drop()) return {};
      return f_->preallocate(n);
    }
    base::file_result<void> truncate(uint64_t n) override {
      if (fs_->drop()) return {};
      return f_->truncate(n);
    }
    base::file_result<uint64_t> size() override { return f_->size(); }
    base::file_result<void> close() override { return f_->close(); }

   private:
    std::unique_ptr<base::file> f_;
    cuttable_fs* fs_;
  };
  // Opened after the cut: accepts everything, keeps nothing.
  class dead_file final : public base::file {
   public:
    explicit dead_file(std::string path) : path_(std::move(path)) {}
    const std::string& path() const override { return path_; }
    base::file_result<size_t> read_at(uint64_t, std::span<char>) override { return size_t{0}; }
    base::file_result<void> write_at(uint64_t o, std::string_view d) override {
      size_ = std::max<uint64_t>(size_, o + d.size());
      return {};
    }
    base::file_result<void> sync_data() override { return {}; }
    base::file_result<void> preallocate(uint64_t n) override {
      size_ = std::max(size_, n);
      return {};
    }
    base::file_result<void> truncate(uint64_t n) override {
      size_ = n;
      return {};
    }
    base::file_result<uint64_t> size() override { return size_; }
    base::file_result<void> close() override { return {}; }

   private:
    std::string path_;
    uint64_t size_ = 0;
  };

  base::sim_file_system& inner_;
};

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "dur/%06d", i);
  return buf;
}

// Distinct per key, so a value landing under the wrong key shows.
std::string value_of(int i) {
  return "value-" + std::to_string(i) + "-" + std::string(40, static_cast<char>('a' + i % 26));
}

// One seed's choices, drawn from the seed so that a failure replays with the same seed.
struct scenario {
  std::uint64_t seed = 0;
  int keys = 0;
  int threads = 16;
  int crash_after_acks = 0;  // 1..keys
  base::crash_mode mode = base::crash_mode::lose_unsynced;
  // The backend never commits on its own (only at snapshots): every acknowledged write since
  // the last snapshot lives only in the WAL.
  bool hold_db_batch = false;
  std::uint64_t snapshot_count = 100000;

  static scenario from_seed(std::uint64_t seed, int keys) {
    std::mt19937_64 rng(seed);
    scenario s;
    s.seed = seed;
    s.keys = keys;
    s.crash_after_acks = std::uniform_int_distribution<int>(1, keys)(rng);
    s.mode = rng() % 2 == 0 ? base::crash_mode::lose_unsynced : base::crash_mode::torn;
    s.hold_db_batch = rng() % 2 == 0;
    const std::uint64_t counts[] = {1000, 7000, 100000};
    s.snapshot_count = counts[rng() % 3];
    return s;
  }
  std::string describe() const {
    return "seed " + std::to_string(seed) + ": " + std::to_string(keys) + " keys, " +
           std::to_string(threads) + " callers, crash after " + std::to_string(crash_after_acks) +
           " acks, " + (mode == base::crash_mode::torn ? "torn" : "lose_unsynced") +
           (hold_db_batch ? ", db batch held" : ", db batch 100 ms") + ", snapshot every " +
           std::to_string(snapshot_count);
  }
};

struct seed_case {
  std::uint64_t seed;
  int keys;
};
void PrintTo(const seed_case& c, std::ostream* os) {
  *os << "seed " << c.seed << ", " << c.keys << " keys";
}

class DurabilityTest : public ::testing::TestWithParam<seed_case> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-durability-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    srv_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    auto s = server::start(cfg_);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    srv_ = std::move(*s);
  }

  // Every key under the prefix, paged, all pages read at the revision of the first.
  std::vector<mvcc::key_value> read_all(std::int64_t* revision) {
    std::vector<mvcc::key_value> out;
    mvcc::range_request r;
    r.key = "dur/";
    r.range_end = mvcc::prefix_range_end("dur/");
    r.limit = 10000;
    while (true) {
      auto res = srv_->range(r);
      EXPECT_TRUE(res.has_value());
      if (!res) return out;
      if (r.revision == 0) {
        r.revision = res->revision;
        *revision = res->revision;
      }
      for (auto& kv : res->kvs) out.push_back(std::move(kv));
      if (!res->more || out.empty()) return out;
      r.key = out.back().key + '\0';
    }
  }

  // Checks what the store holds against what was acknowledged; fills `present` (by key number).
  // Every key was written once, so the revisions 2..rev must be exactly the keys' mod revisions.
  void verify(const std::vector<std::int64_t>& acked_rev, std::vector<char>& present,
              const char* when) {
    SCOPED_TRACE(when);
    std::int64_t rev = 0;
    auto kvs = read_all(&rev);
    present.assign(acked_rev.size(), 0);
    std::vector<std::int64_t> mods;
    int bad = 0;
    for (const auto& kv : kvs) {
      int i = std::atoi(kv.key.c_str() + 4);
      if (kv.key != key_of(i) || i < 0 || i >= static_cast<int>(acked_rev.size())) {
        ADD_FAILURE() << "unexpected key " << kv.key;
        continue;
      }
      present[i] = 1;
      mods.push_back(kv.mod_revision);
      if (kv.value != value_of(i) || kv.version != 1 || kv.create_revision != kv.mod_revision) {
        if (++bad <= 10) {
          ADD_FAILURE() << kv.key << ": value '" << kv.value << "' version " << kv.version
                        << " create " << kv.create_revision << " mod " << kv.mod_revision;
        }
      }
      if (acked_rev[i] != 0 && kv.mod_revision != acked_rev[i] && ++bad <= 10) {
        ADD_FAILURE() << kv.key << " acknowledged at revision " << acked_rev[i]
                      << " but holds mod revision " << kv.mod_revision;
      }
    }
    int missing = 0;
    std::string first_missing;
    for (std::size_t i = 0; i < acked_rev.size(); ++i) {
      if (acked_rev[i] != 0 && !present[i]) {
        if (missing++ < 5) first_missing += " " + key_of(static_cast<int>(i));
      }
    }
    EXPECT_EQ(missing, 0) << "acknowledged writes lost, first:" << first_missing;
    std::sort(mods.begin(), mods.end());
    EXPECT_EQ(rev, 1 + static_cast<std::int64_t>(kvs.size()))
        << "the store's revision does not match the keys it holds";
    for (std::size_t j = 0; j < mods.size(); ++j) {
      if (mods[j] != static_cast<std::int64_t>(j) + 2) {
        ADD_FAILURE() << "revision history has a hole or a repeat near " << mods[j];
        break;
      }
    }
  }

  std::string dir_;
  server_config cfg_;
  // The file layers outlive the server (declared before it).
  std::unique_ptr<base::sim_file_system> sim_fs_;
  std::unique_ptr<cuttable_fs> fs_;
  std::unique_ptr<server> srv_;
};

TEST_P(DurabilityTest, PowerCutAtRandomMomentKeepsEveryAcknowledgedWrite) {
  std::uint64_t seed = GetParam().seed;
  if (const char* s = std::getenv("CAIRN_TEST_SEED"); s != nullptr && *s != '\0') {
    seed = std::strtoull(s, nullptr, 10);
  }
  const scenario sc = scenario::from_seed(seed, GetParam().keys);
  SCOPED_TRACE(sc.describe());
  std::printf("%s\n", sc.describe().c_str());

  cfg_.data_dir = dir_ + "/data";
  cfg_.name = "n1";
  cfg_.initial_cluster = "n1=http://127.0.0.1:1";
  cfg_.heartbeat = 10ms;
  cfg_.election = 100ms;
  sim_fs_ = std::make_unique<base::sim_file_system>(seed);
  fs_ = std::make_unique<cuttable_fs>(*sim_fs_);
  cfg_.fs = fs_.get();
  cfg_.wal_segment_size = 256 * 1024;
  cfg_.snapshot_count = sc.snapshot_count;
  cfg_.snapshot_catch_up_entries = 500;
  if (sc.hold_db_batch) {
    cfg_.backend_batch_interval = std::chrono::milliseconds{3600 * 1000};
    cfg_.backend_batch_limit = 10000000;
  }
  start();
  ASSERT_TRUE(srv_);

  // --- phase 1: concurrent puts until the power cut ---
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::int64_t> acked_rev(sc.keys, 0);  // slot i written only by the thread owning i
  std::atomic<int> next{0};
  std::atomic<int> acks{0};
  std::atomic<int> in_put{0};  // callers between their `crashing` check and put()'s return
  std::atomic<bool> crashing{false};
  std::atomic<int> writers_done{0};
  std::mutex err_mu;
  std::vector<std::string> errors;  // guarded by err_mu
  server* srv = srv_.get();
  auto writer = [&] {
    while (true) {
      ++in_put;
      if (crashing.load()) {
        --in_put;
        break;
      }
      const int i = next.fetch_add(1);
      if (i >= sc.keys) {
        --in_put;
        break;
      }
      mvcc::put_request p;
      p.key = key_of(i);
      p.value = value_of(i);
      auto r = srv->put(p);
      if (r) {
        acked_rev[i] = r->revision;
        ++acks;
      } else if (!crashing.load()) {
        std::lock_guard lock(err_mu);
        errors.push_back(key_of(i) + ": " + std::string(base::message(r.error())));
      }
      --in_put;
    }
    ++writers_done;
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < sc.threads; ++t) writers.emplace_back(writer);

  while (acks.load() < sc.crash_after_acks && writers_done.load() < sc.threads) {
    std::this_thread::sleep_for(100us);
  }
  // Nothing is acknowledged from here on: the apply thread takes no further batch.
  crashing = true;
  srv_->pause_apply(true);
  // The power goes during the next fdatasync: the disk takes nothing more, the node runs on
  // with the callers still waiting (their proposals go nowhere).
  fs_->cut_at_next_sync = true;
  // Before the node goes away, every caller still inside put() must be waiting for its answer
  // (past the point where put() touches the backend): then each has a committed, unapplied entry.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (in_put.load() != static_cast<int>(srv_->committed_index() - srv_->applied_index()) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(in_put.load(), static_cast<int>(srv_->committed_index() - srv_->applied_index()))
      << "callers did not settle before the crash";
  fs_->cut = true;  // if no sync came (no caller left waiting)
  srv_->simulate_crash();
  for (auto& t : writers) t.join();
  srv_.reset();
  const std::uint64_t unsynced = sim_fs_->unsynced_bytes();
  sim_fs_->crash(sc.mode);
  fs_->cut = false;
  const auto t1 = std::chrono::steady_clock::now();
  // (The apply thread may have finished the batch it held when paused after the cut moment:
  // those entries were committed, hence synced, before it, so they count as acknowledged.)
  const int acked_at_cut = acks.load();
  {
    std::lock_guard lock(err_mu);
    EXPECT_TRUE(errors.empty()) << errors.size()
                                << " puts failed before the cut, first: " << errors.front();
  }

  // --- restart: every acknowledged write is there ---
  start();
  ASSERT_TRUE(srv_);
  const auto t2 = std::chrono::steady_clock::now();
  std::vector<char> present;
  verify(acked_rev, present, "after the crash");
  const int survived = static_cast<int>(std::count(present.begin(), present.end(), 1));
  if (HasFailure()) return;

  // --- phase 2: write the keys that are not there, check everything ---
  std::vector<int> todo;
  for (int i = 0; i < sc.keys; ++i) {
    if (!present[i]) todo.push_back(i);
  }
  std::atomic<std::size_t> next_todo{0};
  srv = srv_.get();
  auto finisher = [&] {
    while (true) {
      const std::size_t j = next_todo.fetch_add(1);
      if (j >= todo.size()) break;
      const int i = todo[j];
      mvcc::put_request p;
      p.key = key_of(i);
      p.value = value_of(i);
      auto r = srv->put(p);
      if (r) {
        acked_rev[i] = r->revision;
      } else {
        std::lock_guard lock(err_mu);
        errors.push_back(key_of(i) + " (after restart): " + std::string(base::message(r.error())));
      }
    }
  };
  writers.clear();
  for (int t = 0; t < sc.threads; ++t) writers.emplace_back(finisher);
  for (auto& t : writers) t.join();
  {
    std::lock_guard lock(err_mu);
    ASSERT_TRUE(errors.empty()) << errors.size()
                                << " puts failed after the restart, first: " << errors.front();
  }
  verify(acked_rev, present, "after writing the rest");
  EXPECT_EQ(std::count(present.begin(), present.end(), 1), sc.keys);
  const auto t3 = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf(
      "acked %d before the cut (%lld ms), %d keys present after restart (%lld ms), %zu written "
      "after (%lld ms); the crash dropped or tore %llu unsynced bytes\n",
      acked_at_cut, static_cast<long long>(ms(t1 - t0)), survived,
      static_cast<long long>(ms(t2 - t1)), todo.size(), static_cast<long long>(ms(t3 - t2)),
      static_cast<unsigned long long>(unsynced));
}

// A disk that fills up (or fails writes) under the WAL: the write whose entry cannot be saved
// waits, every later one is refused at once with NOSPACE's error, reads go on; once the disk
// takes writes again everything resumes, and a power cut afterwards loses nothing acknowledged.
class DiskFullTest : public DurabilityTest {
 protected:
  void full_then_free(int code) {
    cfg_.data_dir = dir_ + "/data";
    cfg_.name = "n1";
    cfg_.initial_cluster = "n1=http://127.0.0.1:1";
    cfg_.heartbeat = 10ms;
    cfg_.election = 100ms;
    sim_fs_ = std::make_unique<base::sim_file_system>(7);
    fs_ = std::make_unique<cuttable_fs>(*sim_fs_);
    cfg_.fs = fs_.get();
    cfg_.wal_segment_size = 64 * 1024;  // segments are cut (and preallocated) while full too
    start();
    ASSERT_TRUE(srv_);
    constexpr int keys = 300;
    std::vector<std::int64_t> acked_rev(keys, 0);
    auto put = [&](int i) -> cairn::expected<mvcc::put_response, base::errc> {
      mvcc::put_request p;
      p.key = key_of(i);
      p.value = value_of(i);
      auto r = srv_->put(p);
      if (r) acked_rev[i] = r->revision;
      return r;
    };
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(put(i)) << i;

    sim_fs_->inject({.op = base::sim_op::write,
                     .code = code,
                     .path_contains = ".wal",
                     .sticky = true,
                     .partial_bytes = 10});
    sim_fs_->inject(
        {.op = base::sim_op::preallocate, .code = code, .path_contains = ".wal", .sticky = true});
    std::optional<cairn::expected<mvcc::put_response, base::errc>> waiting;
    std::thread blocked([&] { waiting = put(100); });
    for (auto until = std::chrono::steady_clock::now() + 5s;
         !srv_->disk_full() && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(srv_->disk_full()) << "the failed WAL write was not noticed";
    const auto t0 = std::chrono::steady_clock::now();
    auto refused = put(101);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), base::errc::no_space);
    EXPECT_EQ(base::message(refused.error()), "etcdserver: mvcc: database space exceeded");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "refused at once, not timed out";
    mvcc::range_request r;
    r.key = key_of(5);
    auto read = srv_->range(r, /*serializable=*/true);
    ASSERT_TRUE(read.has_value());
    ASSERT_EQ(read->kvs.size(), 1u);
    std::this_thread::sleep_for(300ms);  // a few retries while full
    EXPECT_TRUE(srv_->disk_full());

    sim_fs_->clear_faults();
    blocked.join();
    ASSERT_TRUE(waiting.has_value());
    // The waiting put was saved once the disk took it: answered (or timed out, still applied).
    if (!*waiting) {
      EXPECT_EQ(waiting->error(), base::errc::timeout);
    }
    EXPECT_FALSE(srv_->disk_full());
    for (int i = 102; i < keys; ++i) ASSERT_TRUE(put(i)) << i;

    srv_->simulate_crash();
    srv_.reset();
    sim_fs_->crash();
    start();
    ASSERT_TRUE(srv_);
    std::vector<char> present;
    verify(acked_rev, present, "after the disk was full, freed and the power cut");
    EXPECT_EQ(present[101], 0) << "a refused write was applied";
  }

  // The db file may not grow (its commits fail with EFBIG, as with ENOSPC on a full disk)
  // while the WAL goes on: writes go on until a commit is refused, then every proposal is
  // refused with NOSPACE's error and reads go on. Then either the file may grow again and
  // writes resume, or the member crashes while refused; a power cut after either loses nothing.
  void db_refused_then(bool crash_while_refused) {
    cfg_.data_dir = dir_ + "/data";
    cfg_.name = "n1";
    cfg_.initial_cluster = "n1=http://127.0.0.1:1";
    cfg_.heartbeat = 10ms;
    cfg_.election = 100ms;
    sim_fs_ = std::make_unique<base::sim_file_system>(8);
    cfg_.fs = sim_fs_.get();  // the WAL and snapshots, in memory: only the db is on disk
    start();
    ASSERT_TRUE(srv_);
    constexpr int keys = 5000;
    std::vector<std::int64_t> acked_rev(keys, 0);
    std::atomic<int> next{0}, odd_errors{0};
    auto put = [&]() -> cairn::expected<mvcc::put_response, base::errc> {
      const int i = next++;
      mvcc::put_request p;
      p.key = key_of(i);
      p.value = value_of(i);
      auto r = srv_->put(p);
      if (r) acked_rev[i] = r->revision;
      return r;
    };
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(put()) << i;
    const std::string db = cfg_.data_dir + "/member/db";
    auto limit = std::make_unique<base::file_size_limit>(std::filesystem::file_size(db));
    // Acknowledged (they are in the WAL) until a commit is refused; the put whose write found
    // the batch due then waits for the commit (or the crash) to answer it.
    std::thread writer([&] {
      while (!srv_->disk_full() && next < keys - 1000) {
        auto r = put();
        if (!r && r.error() != base::errc::no_space && r.error() != base::errc::stopped) {
          ++odd_errors;
        }
      }
    });
    for (auto until = std::chrono::steady_clock::now() + 5s;
         !srv_->disk_full() && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(1ms);
    }
    if (!srv_->disk_full()) {
      writer.join();
      FAIL() << "the refused commit was not noticed";
    }
    const auto t0 = std::chrono::steady_clock::now();
    const int refused_key = next;
    auto refused = put();
    // (No ASSERT until the writer is joined: it may be waiting for the refused commit.)
    if (refused) {
      ADD_FAILURE() << "a write was taken while the db refused commits";
    } else {
      EXPECT_EQ(refused.error(), base::errc::no_space);
      EXPECT_EQ(base::message(refused.error()), "etcdserver: mvcc: database space exceeded");
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "refused at once, not timed out";
    mvcc::range_request r;
    r.key = key_of(5);
    auto read = srv_->range(r, /*serializable=*/true);
    EXPECT_TRUE(read.has_value() && read->kvs.size() == 1u) << "a serializable read failed";
    std::this_thread::sleep_for(300ms);  // a few retries while refused
    EXPECT_TRUE(srv_->disk_full());

    if (!crash_while_refused) {
      limit->lift();
      for (auto until = std::chrono::steady_clock::now() + 5s;
           srv_->disk_full() && std::chrono::steady_clock::now() < until;) {
        std::this_thread::sleep_for(1ms);
      }
      EXPECT_FALSE(srv_->disk_full()) << "writes did not resume once the file could grow";
      writer.join();
      while (!srv_->disk_full() && next < keys) ASSERT_TRUE(put()) << next;
      EXPECT_EQ(next, keys);
      // Served from the db the refused batch went into (the WAL covers it after a restart).
      std::vector<char> present;
      verify(acked_rev, present, "once writes resumed");
    }
    srv_->simulate_crash();  // answers a put still waiting with "stopped"
    if (writer.joinable()) writer.join();
    EXPECT_EQ(odd_errors, 0);
    srv_.reset();
    limit.reset();
    sim_fs_->crash();
    start();
    ASSERT_TRUE(srv_);
    std::vector<char> present;
    verify(acked_rev, present, "after the refused commit and the power cut");
    EXPECT_EQ(present[refused_key], 0) << "a refused write was applied";
  }
};

TEST_F(DiskFullTest, AFullDiskRefusesWritesLosesNothingAndResumesWhenFreed) {
  full_then_free(ENOSPC);
}

TEST_F(DiskFullTest, FailingWritesAreRefusedLikeAFullDiskAndResume) { full_then_free(EIO); }

TEST_F(DiskFullTest, ARefusedDbCommitRefusesWritesLosesNothingAndResumes) {
  db_refused_then(/*crash_while_refused=*/false);
}

TEST_F(DiskFullTest, ACrashWhileADbCommitIsRefusedLosesNothing) {
  db_refused_then(/*crash_while_refused=*/true);
}

// The first case is the full 100,000 keys; the others are smaller and vary the crash point,
// the crash mode, the db batching and the snapshot interval (all drawn from the seed).
INSTANTIATE_TEST_SUITE_P(Seeds, DurabilityTest,
                         ::testing::Values(seed_case{1, 100000}, seed_case{2, 20000},
                                           seed_case{3, 20000}, seed_case{4, 20000},
                                           seed_case{5, 20000}, seed_case{6, 20000},
                                           seed_case{7, 20000}, seed_case{8, 20000},
                                           seed_case{9, 20000}, seed_case{10, 20000}),
                         [](const ::testing::TestParamInfo<seed_case>& info) {
                           return "seed" + std::to_string(info.param.seed);
                         });

}  // namespace
}  // namespace cairn::etcdserver
