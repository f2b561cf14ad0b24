#include "snap/snapshotter.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <random>
#include <sstream>

#include "base/sim_file.h"

namespace cairn::snap {
namespace {

raftpb::Snapshot make_snapshot(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Snapshot s;
  s.set_data(data.empty() ? "state at " + std::to_string(index) : std::move(data));
  s.mutable_metadata()->set_index(index);
  s.mutable_metadata()->set_term(term);
  s.mutable_metadata()->mutable_conf_state()->add_voters(1);
  s.mutable_metadata()->mutable_conf_state()->add_voters(2);
  s.mutable_metadata()->mutable_conf_state()->add_learners(3);
  return s;
}

bool same(const raftpb::Snapshot& a, const raftpb::Snapshot& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

// Captures what the default logger prints while alive.
class log_capture {
 public:
  log_capture() : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~log_capture() { spdlog::set_default_logger(old_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> old_;
};

class snap_test : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(base::create_dirs(fs_, dir_)); }
  base::sim_file_system fs_{1};
  const std::string dir_ = "data/member/snap";
};

TEST_F(snap_test, save_then_load_round_trips) {
  snapshotter s(fs_, dir_);
  const auto snap = make_snapshot(100, 3, std::string(10000, 'x'));
  ASSERT_TRUE(s.save(snap));
  EXPECT_EQ(*fs_.list_dir(dir_),
            std::vector<std::string>{"0000000000000003-0000000000000064.snap"});
  fs_.crash();  // saved means durable
  auto loaded = s.load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_TRUE(same(*loaded, snap));
}

TEST_F(snap_test, empty_directory_and_empty_snapshot) {
  snapshotter s(fs_, dir_);
  auto none = s.load();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, errc::no_snapshot);
  ASSERT_TRUE(s.save(raftpb::Snapshot{}));  // index 0: nothing to save
  EXPECT_TRUE(fs_.list_dir(dir_)->empty());
}

TEST_F(snap_test, keeps_the_newest_n) {
  snapshotter s(fs_, dir_, 3);
  for (uint64_t i = 1; i <= 7; ++i) ASSERT_TRUE(s.save(make_snapshot(i * 10, 1 + i / 3)));
  auto names = s.names();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"0000000000000003-0000000000000046.snap",
                                              "0000000000000003-000000000000003c.snap",
                                              "0000000000000002-0000000000000032.snap"}));
  EXPECT_EQ(s.load()->metadata().index(), 70u);
}

TEST_F(snap_test, broken_newest_is_skipped_and_logged) {
  snapshotter s(fs_, dir_);
  ASSERT_TRUE(s.save(make_snapshot(10, 1)));
  ASSERT_TRUE(s.save(make_snapshot(20, 1)));
  ASSERT_TRUE(s.save(make_snapshot(30, 2)));
  const std::string newest = dir_ + "/0000000000000002-000000000000001e.snap";
  std::string bytes = *fs_.contents(newest);
  bytes[bytes.size() / 2] ^= 0x40;
  fs_.set_contents(newest, bytes);
  // The next one down is cut short.
  const std::string second = dir_ + "/0000000000000001-0000000000000014.snap";
  fs_.set_contents(second, fs_.contents(second)->substr(0, 9));

  log_capture log;
  auto loaded = s.load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->metadata().index(), 10u);
  EXPECT_NE(log.text().find("skipping broken snapshot file " + newest), std::string::npos)
      << log.text();
  EXPECT_NE(log.text().find("skipping broken snapshot file " + second), std::string::npos)
      << log.text();
}

TEST_F(snap_test, all_broken_is_an_error_that_counts_them) {
  snapshotter s(fs_, dir_);
  ASSERT_TRUE(s.save(make_snapshot(10, 1)));
  fs_.set_contents(dir_ + "/0000000000000001-000000000000000a.snap", "");
  log_capture log;
  auto loaded = s.load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, errc::no_snapshot);
  EXPECT_NE(loaded.error().message.find("1 broken"), std::string::npos);
}

TEST_F(snap_test, a_file_under_the_wrong_name_is_skipped) {
  snapshotter s(fs_, dir_);
  ASSERT_TRUE(s.save(make_snapshot(10, 1)));
  ASSERT_TRUE(base::write_file_atomically(fs_, dir_ + "/0000000000000001-0000000000000063.snap",
                                          encode_snapshot_file(make_snapshot(11, 1))));
  log_capture log;
  EXPECT_EQ(s.load()->metadata().index(), 10u);
  EXPECT_NE(log.text().find("holds the snapshot at index 11"), std::string::npos) << log.text();
}

TEST_F(snap_test, load_newest_honours_the_filter) {
  snapshotter s(fs_, dir_);
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE(s.save(make_snapshot(i, 1)));
  auto loaded =
      s.load_newest([](uint64_t index, uint64_t term) { return index <= 2 && term == 1; });
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->metadata().index(), 2u);
}

TEST_F(snap_test, leftover_temporary_files_go_on_the_next_save) {
  snapshotter s(fs_, dir_);
  ASSERT_TRUE(base::write_file_atomically(fs_, dir_ + "/x.snap.tmp", "half"));
  ASSERT_TRUE(s.save(make_snapshot(5, 1)));
  EXPECT_EQ(*fs_.list_dir(dir_),
            std::vector<std::string>{"0000000000000001-0000000000000005.snap"});
}

TEST(snap_file, decode_rejects_damage) {
  const std::string good = encode_snapshot_file(make_snapshot(7, 2));
  ASSERT_TRUE(decode_snapshot_file(good));
  EXPECT_EQ(decode_snapshot_file("").error().code, errc::corrupt);
  EXPECT_EQ(decode_snapshot_file("\xff\xff").error().code, errc::corrupt);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    // Whatever the flip hits, the file never decodes to a different snapshot.
    auto d = decode_snapshot_file(bad);
    if (d) {
      ASSERT_TRUE(same(*d, make_snapshot(7, 2))) << "flip at " << i;
    }
  }
  for (size_t len = 0; len < good.size(); ++len) {
    ASSERT_FALSE(decode_snapshot_file(good.substr(0, len))) << "cut at " << len;
  }
}

TEST(snap_file, names) {
  EXPECT_EQ(snapshot_file_name(2, 255), "0000000000000002-00000000000000ff.snap");
  uint64_t term, index;
  ASSERT_TRUE(parse_snapshot_file_name("0000000000000002-00000000000000ff.snap", &term, &index));
  EXPECT_EQ(term, 2u);
  EXPECT_EQ(index, 255u);
  EXPECT_FALSE(
      parse_snapshot_file_name("0000000000000002-00000000000000ff.snap.tmp", &term, &index));
  EXPECT_FALSE(parse_snapshot_file_name("0000000000000002-00000000000000ff.wal", &term, &index));
}

// A power cut at any point of a sequence of saves: what loads is the last acknowledged
// snapshot or the one in flight, never a broken one, and no acknowledged snapshot is lost.
TEST(snap_crash, power_cut_at_random_points) {
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    base::sim_file_system fs(seed);
    ASSERT_TRUE(base::create_dirs(fs, "snap"));
    std::mt19937_64 rng(seed);
    snapshotter s(fs, "snap", 2);
    fs.crash_after(rng() % 60);
    uint64_t acked = 0, in_flight = 0;
    for (uint64_t i = 1; i <= 10; ++i) {
      in_flight = i;
      if (!s.save(make_snapshot(i, 1, std::string(rng() % 3000 + 1, static_cast<char>('a' + i))))) {
        break;
      }
      acked = i;
    }
    fs.crash(seed % 2 ? base::crash_mode::torn : base::crash_mode::lose_unsynced);
    log_capture quiet;
    auto loaded = s.load();
    if (acked == 0 && !loaded) continue;
    ASSERT_TRUE(loaded) << "seed " << seed << ": " << loaded.error().message;
    const uint64_t got = loaded->metadata().index();
    ASSERT_TRUE(got == acked || got == in_flight)
        << "seed " << seed << ": loaded " << got << ", acknowledged " << acked;
    ASSERT_EQ(loaded->data(), std::string(loaded->data().size(), static_cast<char>('a' + got)));
  }
}

TEST(snap_faults, enospc_and_eio_surface_and_keep_the_older_snapshot) {
  const base::sim_op ops[] = {base::sim_op::open, base::sim_op::write, base::sim_op::sync,
                              base::sim_op::rename, base::sim_op::sync_dir};
  for (const auto op : ops) {
    for (const int code : {ENOSPC, EIO}) {
      base::sim_file_system fs(3);
      ASSERT_TRUE(base::create_dirs(fs, "snap"));
      snapshotter s(fs, "snap");
      ASSERT_TRUE(s.save(make_snapshot(1, 1)));
      fs.inject({.op = op, .code = code});
      auto r = s.save(make_snapshot(2, 1));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, errc::io);
      EXPECT_EQ(r.error().sys_errno, code);
      EXPECT_NE(r.error().message.find("snap"), std::string::npos) << r.error().message;
      fs.crash();
      auto loaded = s.load();
      ASSERT_TRUE(loaded);
      EXPECT_EQ(loaded->metadata().index(), 1u);
    }
  }
}

TEST(snap_posix, round_trip_on_a_real_directory) {
  std::string templ = (std::filesystem::temp_directory_path() / "cairn-snap-XXXXXX").string();
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  snapshotter s(base::posix_file_system(), templ, 2);
  for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(s.save(make_snapshot(i, 1)));
  EXPECT_EQ(s.names()->size(), 2u);
  auto loaded = s.load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_TRUE(same(*loaded, make_snapshot(3, 1)));
  std::filesystem::remove_all(templ);
}

}  // namespace
}  // namespace cairn::snap
