// The log's behaviour on a healthy disk: create, append, cut, replay, snapshots, release.
#include "wal/wal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <filesystem>

#include "base/sim_file.h"
#include "wal/segment.h"
#include "wal/wal_test_util.h"

namespace cairn::wal {
namespace {

using namespace cairn::wal::testing;

constexpr uint64_t small_segment = 64 * 1024;

class wal_test : public ::testing::Test {
 public:  // for the helpers below
  options opts_{.segment_size = small_segment, .seed = 42};
  base::sim_file_system fs_{1};
  const std::string dir_ = "data/member/wal";

  std::unique_ptr<wal> create(std::string_view metadata = "meta") {
    auto w = wal::create(fs_, dir_, metadata, opts_);
    EXPECT_TRUE(w) << (w ? "" : w.error().message);
    return w ? std::move(*w) : nullptr;
  }
  wal::opened open(snapshot_mark from = {}) {
    auto o = wal::open(fs_, dir_, from, opts_);
    EXPECT_TRUE(o) << (o ? "" : o.error().message);
    return o ? std::move(*o) : wal::opened{};
  }
};

TEST_F(wal_test, create_then_open_gives_metadata_and_nothing_else) {
  create("member 1 of cluster 7")->close();
  auto o = open();
  ASSERT_TRUE(o.log);
  EXPECT_EQ(o.data.metadata, "member 1 of cluster 7");
  EXPECT_TRUE(same_state(o.data.state, raftpb::HardState{}));
  EXPECT_TRUE(o.data.entries.empty());
  EXPECT_EQ(o.log->segment_names(),
            std::vector<std::string>{"0000000000000000-0000000000000001.wal"});
}

TEST_F(wal_test, create_refuses_an_existing_directory_and_open_a_missing_one) {
  auto missing = wal::open(fs_, dir_, {}, opts_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::not_found);
  create();
  auto again = wal::create(fs_, dir_, "m", opts_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, errc::already_exists);
}

TEST_F(wal_test, saved_entries_and_state_replay) {
  auto w = create();
  const auto first = make_entries(1, 10, 1);
  ASSERT_TRUE(w->save(make_state(1, 1, 3), first));
  const auto second = make_entries(11, 12, 1);
  ASSERT_TRUE(w->save(make_state(1, 1, 11), second));
  ASSERT_TRUE(w->save(make_state(2, 0, 12), {}));  // state only
  w.reset();
  auto o = open();
  auto want = first;
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(diff_entries(o.data.entries, want), "");
  EXPECT_TRUE(same_state(o.data.state, make_state(2, 0, 12)));
  EXPECT_EQ(o.log->last_index(), 12u);
}

TEST_F(wal_test, conflicting_entries_replace_the_tail) {
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 2), make_entries(1, 5, 1)));
  ASSERT_TRUE(w->save(make_state(2, 2, 2), make_entries(3, 4, 2)));
  w.reset();
  auto o = open();
  auto want = make_entries(1, 2, 1);
  for (auto& e : make_entries(3, 4, 2)) want.push_back(e);
  EXPECT_EQ(diff_entries(o.data.entries, want), "");
  EXPECT_EQ(o.log->last_index(), 4u);
}

TEST_F(wal_test, nothing_new_writes_nothing) {
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 1, 1)));
  const uint64_t calls = fs_.mutating_calls();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), {}));
  EXPECT_EQ(fs_.mutating_calls(), calls);
}

TEST_F(wal_test, one_fdatasync_per_batch) {
  auto w = create();
  const uint64_t calls = fs_.mutating_calls();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 100, 1, 10)));
  EXPECT_EQ(fs_.mutating_calls(), calls + 2);  // one write, one fdatasync
  EXPECT_EQ(fs_.unsynced_bytes(), 0u);
}

TEST_F(wal_test, full_segments_are_cut_and_all_replay) {
  auto w = create();
  std::vector<raftpb::Entry> all;
  for (uint64_t i = 1; i <= 600; i += 10) {
    auto batch = make_entries(i, i + 9, 1, 1000);
    ASSERT_TRUE(w->save(make_state(1, 1, i), batch));
    all.insert(all.end(), batch.begin(), batch.end());
  }
  const auto names = w->segment_names();
  ASSERT_GE(names.size(), 8u);
  for (size_t i = 0; i < names.size(); ++i) {
    uint64_t seq, index;
    ASSERT_TRUE(parse_segment_file_name(names[i], &seq, &index));
    EXPECT_EQ(seq, i);
    // Every segment is preallocated; a batch may push one past the size, never a new one.
    const uint64_t size = *fs_.file_size(dir_ + "/" + names[i]);
    EXPECT_GE(size, small_segment) << names[i];
  }
  EXPECT_EQ(*fs_.list_dir(dir_), names);
  w.reset();
  auto o = open();
  EXPECT_EQ(diff_entries(o.data.entries, all), "");
  EXPECT_TRUE(same_state(o.data.state, make_state(1, 1, 591)));
}

TEST_F(wal_test, reopened_log_appends_where_it_ended) {
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 50, 1, 2000)));
  w.reset();
  for (uint64_t round = 1; round <= 3; ++round) {
    auto o = open();
    ASSERT_TRUE(o.log);
    const uint64_t next = o.log->last_index() + 1;
    ASSERT_TRUE(
        o.log->save(make_state(1 + round, 1, next), make_entries(next, next + 29, 1, 2000)));
  }
  auto o = open();
  EXPECT_EQ(diff_entries(o.data.entries, make_entries(1, 140, 1, 2000)), "");
  EXPECT_TRUE(same_state(o.data.state, make_state(4, 1, 111)));
}

TEST_F(wal_test, snapshot_replay_starts_after_the_mark) {
  auto w = create();
  for (uint64_t i = 1; i <= 300; i += 20) {
    ASSERT_TRUE(w->save(make_state(3, 1, i + 19), make_entries(i, i + 19, 3, 1000)));
  }
  ASSERT_TRUE(w->save_snapshot({150, 3}));
  ASSERT_TRUE(w->save(make_state(3, 1, 305), make_entries(301, 305, 3, 1000)));
  w.reset();
  auto o = open({150, 3});
  EXPECT_EQ(diff_entries(o.data.entries, make_entries(151, 305, 3, 1000)), "");
  EXPECT_TRUE(same_state(o.data.state, make_state(3, 1, 305)));

  auto wrong_term = wal::open(fs_, dir_, {150, 2}, opts_);
  ASSERT_FALSE(wrong_term);
  EXPECT_EQ(wrong_term.error().code, errc::snapshot_not_found);
  auto unknown = wal::open(fs_, dir_, {160, 3}, opts_);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, errc::snapshot_not_found);
}

TEST_F(wal_test, snapshot_ahead_of_the_log_then_entries_after_it) {
  // A follower that installs a leader's snapshot past its own log.
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 5), make_entries(1, 5, 1)));
  ASSERT_TRUE(w->save_snapshot({100, 4}));
  ASSERT_TRUE(w->save(make_state(4, 2, 100), make_entries(101, 103, 4)));
  w.reset();
  auto o = open({100, 4});
  EXPECT_EQ(diff_entries(o.data.entries, make_entries(101, 103, 4)), "");
}

TEST_F(wal_test, release_removes_only_covered_segments) {
  auto w = create();
  for (uint64_t i = 1; i <= 600; i += 10) {
    ASSERT_TRUE(w->save(make_state(1, 1, i + 9), make_entries(i, i + 9, 1, 1000)));
  }
  const auto before = w->segment_names();
  ASSERT_TRUE(w->save_snapshot({400, 1}));
  ASSERT_TRUE(w->release_to(400));
  const auto after = w->segment_names();
  ASSERT_LT(after.size(), before.size());
  uint64_t seq, first_kept;
  ASSERT_TRUE(parse_segment_file_name(after.front(), &seq, &first_kept));
  EXPECT_LE(first_kept, 401u);
  // The next older segment would have started at or before the kept one.
  EXPECT_EQ(*fs_.list_dir(dir_), after);
  w.reset();
  auto o = open({400, 1});
  EXPECT_EQ(diff_entries(o.data.entries, make_entries(401, 600, 1, 1000)), "");
  // The segments holding the start of the log are gone, so replay from nothing fails.
  auto from_start = wal::open(fs_, dir_, {}, opts_);
  ASSERT_FALSE(from_start);
  EXPECT_EQ(from_start.error().code, errc::snapshot_not_found);
}

TEST_F(wal_test, release_survives_a_crash_and_keeps_replay_working) {
  auto w = create();
  for (uint64_t i = 1; i <= 400; i += 10) {
    ASSERT_TRUE(w->save(make_state(1, 1, i + 9), make_entries(i, i + 9, 1, 1000)));
  }
  ASSERT_TRUE(w->save_snapshot({300, 1}));
  ASSERT_TRUE(w->release_to(300));
  w.reset();
  fs_.crash();
  auto o = open({300, 1});
  EXPECT_EQ(diff_entries(o.data.entries, make_entries(301, 400, 1, 1000)), "");
}

TEST_F(wal_test, leftover_temporary_files_are_removed_on_open) {
  create()->close();
  {
    auto f = fs_.open(dir_ + "/0000000000000001-0000000000000001.wal.tmp",
                      base::open_mode::create_exclusive);
    ASSERT_TRUE(f);
    ASSERT_TRUE((*f)->write_at(0, "half a segment"));
  }
  open();
  EXPECT_EQ(*fs_.list_dir(dir_), std::vector<std::string>{"0000000000000000-0000000000000001.wal"});
}

// A write failing with `code` on a full (or failing) disk, then space again.
void failed_write_then_space_again(wal_test& t, int code) {
  auto& fs_ = t.fs_;
  {
    auto w = t.create();
    ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 3, 1)));
    // A full disk: part of the batch lands, then the write fails, and keeps failing.
    fs_.inject({.op = base::sim_op::write, .code = code, .sticky = true, .partial_bytes = 100});
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto r = w->save(make_state(1, 1, 1), make_entries(4, 6, 1));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, errc::io);
      EXPECT_EQ(r.error().sys_errno, code);
      EXPECT_NE(r.error().message.find("0000000000000000-0000000000000001.wal"), std::string::npos);
      EXPECT_FALSE(w->poisoned());
      EXPECT_EQ(w->last_index(), 3u);
    }
    fs_.clear_faults();
    // Space again: the same batch goes in, and the next one after it.
    ASSERT_TRUE(w->save(make_state(1, 1, 1), make_entries(4, 6, 1)));
    ASSERT_TRUE(w->save(make_state(1, 1, 5), make_entries(7, 7, 1)));
    w.reset();
    fs_.crash();  // only what was synced
    auto o = t.open();
    EXPECT_EQ(diff_entries(o.data.entries, make_entries(1, 7, 1)), "");
    EXPECT_TRUE(same_state(o.data.state, make_state(1, 1, 5)));
  }
}

TEST_F(wal_test, a_write_failing_for_a_full_disk_leaves_the_log_as_it_was_and_is_tried_again) {
  failed_write_then_space_again(*this, ENOSPC);
}

TEST_F(wal_test, a_write_failing_with_eio_leaves_the_log_as_it_was_and_is_tried_again) {
  failed_write_then_space_again(*this, EIO);
}

TEST_F(wal_test, a_failed_fdatasync_poisons_the_log) {
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 3, 1)));
  fs_.inject({.op = base::sim_op::sync, .code = EIO});
  auto r = w->save(make_state(1, 1, 1), make_entries(4, 4, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, EIO);
  EXPECT_TRUE(w->poisoned());
  // The disk works again, but the log stays failed: nothing is known about what landed.
  auto again = w->save(make_state(1, 1, 1), make_entries(4, 4, 1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno, EIO);
}

TEST_F(wal_test, a_segment_that_cannot_be_made_yet_is_made_later) {
  auto w = create();
  fs_.inject({.op = base::sim_op::preallocate, .code = ENOSPC, .sticky = true});
  std::vector<raftpb::Entry> all;
  uint64_t i = 1;
  for (; i <= 200; i += 10) {  // well past one segment: it grows instead
    auto batch = make_entries(i, i + 9, 1, 1000);
    ASSERT_TRUE(w->save(make_state(1, 1, i), batch)) << i;
    all.insert(all.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(w->segment_names().size(), 1u);
  EXPECT_FALSE(w->poisoned());
  fs_.clear_faults();
  auto batch = make_entries(i, i + 9, 1, 1000);
  ASSERT_TRUE(w->save(make_state(1, 1, i), batch));
  all.insert(all.end(), batch.begin(), batch.end());
  EXPECT_EQ(w->segment_names().size(), 2u);
  EXPECT_EQ(*fs_.list_dir(dir_), w->segment_names());  // no temporary file left behind
  w.reset();
  auto o = open();
  EXPECT_EQ(diff_entries(o.data.entries, all), "");
}

TEST_F(wal_test, appending_with_a_gap_is_a_broken_invariant) {
  auto w = create();
  ASSERT_TRUE(w->save(make_state(1, 1, 0), make_entries(1, 3, 1)));
  EXPECT_DEATH((void)w->save(make_state(1, 1, 0), make_entries(5, 6, 1)), "after last index 3");
  EXPECT_DEATH(
      (void)w->save(make_state(1, 1, 0), std::vector{make_entry(4, 1, ""), make_entry(6, 1, "")}),
      "not contiguous");
}

TEST(segment_name, round_trip_and_rejects) {
  EXPECT_EQ(segment_file_name(1, 0x1f), "0000000000000001-000000000000001f.wal");
  uint64_t seq, index;
  ASSERT_TRUE(parse_segment_file_name("00000000000000ff-0000000000000100.wal", &seq, &index));
  EXPECT_EQ(seq, 255u);
  EXPECT_EQ(index, 256u);
  EXPECT_FALSE(parse_segment_file_name("00000000000000ff-0000000000000100.wal.tmp", &seq, &index));
  EXPECT_FALSE(parse_segment_file_name("00000000000000FF-0000000000000100.wal", &seq, &index));
  EXPECT_FALSE(parse_segment_file_name("0-1.wal", &seq, &index));
}

TEST(wal_posix, round_trip_on_a_real_directory) {
  std::string templ = (std::filesystem::temp_directory_path() / "cairn-wal-XXXXXX").string();
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  const std::string dir = templ + "/member/wal";
  auto& fs = base::posix_file_system();
  const options opts{.segment_size = small_segment};
  {
    auto w = wal::create(fs, dir, "posix", opts);
    ASSERT_TRUE(w) << w.error().message;
    for (uint64_t i = 1; i <= 200; i += 10) {
      ASSERT_TRUE((*w)->save(make_state(1, 1, i), make_entries(i, i + 9, 1, 1000)));
    }
    EXPECT_GE((*w)->segment_names().size(), 3u);
  }
  auto o = wal::open(fs, dir, {}, opts);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->data.metadata, "posix");
  EXPECT_EQ(diff_entries(o->data.entries, make_entries(1, 200, 1, 1000)), "");
  o->log.reset();
  std::filesystem::remove_all(templ);
}

}  // namespace
}  // namespace cairn::wal
