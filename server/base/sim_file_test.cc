// The crash model itself: what survives a simulated power cut, and failures on demand.
#include "base/sim_file.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace cairn::base {
namespace {

std::unique_ptr<file> must_open(file_system& fs, const std::string& path, open_mode mode) {
  auto f = fs.open(path, mode);
  EXPECT_TRUE(f) << (f ? "" : f.error().message);
  return f ? std::move(*f) : nullptr;
}

TEST(sim_file, unsynced_write_is_lost_synced_write_survives) {
  sim_file_system fs;
  ASSERT_TRUE(fs.create_dir("d"));
  auto f = must_open(fs, "d/f", open_mode::create_exclusive);
  ASSERT_TRUE(fs.sync_dir("d"));
  ASSERT_TRUE(fs.sync_dir("/"));
  ASSERT_TRUE(f->write_at(0, "synced"));
  ASSERT_TRUE(f->sync_data());
  ASSERT_TRUE(f->write_at(6, "-lost"));
  EXPECT_EQ(*fs.contents("d/f"), "synced-lost");
  EXPECT_EQ(fs.unsynced_bytes(), 5u);
  fs.crash();
  EXPECT_EQ(*fs.contents("d/f"), "synced");
  // The handle from before the crash is dead.
  auto w = f->write_at(0, "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EBADF);
}

TEST(sim_file, new_name_needs_directory_sync) {
  sim_file_system fs;
  {
    auto f = must_open(fs, "a", open_mode::create_exclusive);
    ASSERT_TRUE(f->write_at(0, "data"));
    ASSERT_TRUE(f->sync_data());  // the data is durable, the name is not
  }
  fs.crash();
  EXPECT_FALSE(*fs.exists("a"));

  {
    auto f = must_open(fs, "b", open_mode::create_exclusive);
    ASSERT_TRUE(f->write_at(0, "data"));
    ASSERT_TRUE(f->sync_data());
    ASSERT_TRUE(fs.sync_dir("/"));
  }
  fs.crash();
  EXPECT_EQ(*fs.contents("b"), "data");
}

TEST(sim_file, rename_and_remove_need_directory_sync) {
  sim_file_system fs;
  {
    auto f = must_open(fs, "old", open_mode::create_exclusive);
    ASSERT_TRUE(f->write_at(0, "x"));
    ASSERT_TRUE(f->sync_data());
  }
  ASSERT_TRUE(fs.sync_dir("/"));
  ASSERT_TRUE(fs.rename("old", "new"));
  fs.crash();
  EXPECT_TRUE(*fs.exists("old"));
  EXPECT_FALSE(*fs.exists("new"));

  ASSERT_TRUE(fs.rename("old", "new"));
  ASSERT_TRUE(fs.sync_dir("/"));
  ASSERT_TRUE(fs.remove("new"));
  fs.crash();
  EXPECT_EQ(*fs.contents("new"), "x");
}

TEST(sim_file, directory_sync_covers_only_that_directory) {
  sim_file_system fs;
  ASSERT_TRUE(fs.create_dir("p"));
  ASSERT_TRUE(fs.create_dir("p/c"));
  ASSERT_TRUE(fs.sync_dir("p"));  // c's name in p is durable, p's name in / is not
  fs.crash();
  EXPECT_FALSE(*fs.exists("p"));

  ASSERT_TRUE(create_dirs(fs, "p/c"));
  fs.crash();
  EXPECT_TRUE(*fs.is_dir("p/c"));
}

TEST(sim_file, truncate_and_preallocate_are_data_until_synced) {
  sim_file_system fs;
  auto f = must_open(fs, "f", open_mode::create_exclusive);
  ASSERT_TRUE(fs.sync_dir("/"));
  ASSERT_TRUE(f->write_at(0, std::string(1000, 'a')));
  ASSERT_TRUE(f->sync_data());
  ASSERT_TRUE(f->truncate(10));
  ASSERT_TRUE(f->preallocate(4096));
  EXPECT_EQ(*f->size(), 4096u);
  fs.crash();
  EXPECT_EQ(*fs.contents("f"), std::string(1000, 'a'));
  f = must_open(fs, "f", open_mode::read_write);
  ASSERT_TRUE(f->truncate(10));
  ASSERT_TRUE(f->preallocate(4096));
  ASSERT_TRUE(f->sync_data());
  fs.crash();
  EXPECT_EQ(*fs.contents("f"), std::string(10, 'a') + std::string(4086, '\0'));
}

TEST(sim_file, torn_crash_keeps_whole_sectors_of_new_or_old_bytes) {
  bool saw_mixed = false;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    sim_file_system fs(seed);
    auto f = must_open(fs, "f", open_mode::create_exclusive);
    ASSERT_TRUE(f->preallocate(8 * 512));
    ASSERT_TRUE(f->sync_data());
    ASSERT_TRUE(fs.sync_dir("/"));
    ASSERT_TRUE(f->write_at(0, std::string(8 * 512, 'n')));
    fs.crash(crash_mode::torn);
    const std::string after = *fs.contents("f");
    ASSERT_EQ(after.size(), 8u * 512);
    int new_sectors = 0;
    for (int s = 0; s < 8; ++s) {
      const std::string sector = after.substr(s * 512, 512);
      const bool all_new = sector == std::string(512, 'n');
      const bool all_old = sector == std::string(512, '\0');
      ASSERT_TRUE(all_new || all_old) << "sector " << s << " is torn inside, seed " << seed;
      new_sectors += all_new;
    }
    saw_mixed |= new_sectors > 0 && new_sectors < 8;
  }
  EXPECT_TRUE(saw_mixed);
}

TEST(sim_file, torn_crash_never_splits_a_rename) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    sim_file_system fs(seed);
    {
      auto f = must_open(fs, "a.tmp", open_mode::create_exclusive);
      ASSERT_TRUE(f->write_at(0, "v"));
      ASSERT_TRUE(f->sync_data());
    }
    ASSERT_TRUE(fs.rename("a.tmp", "a"));
    fs.crash(crash_mode::torn);
    // Either the create never stuck, or one of the two names, never both.
    EXPECT_FALSE(*fs.exists("a") && *fs.exists("a.tmp")) << seed;
  }
}

TEST(sim_file, injected_faults_fire_once_or_stick) {
  sim_file_system fs;
  auto f = must_open(fs, "f", open_mode::create_exclusive);
  fs.inject({.op = sim_op::write, .code = ENOSPC, .skip = 1});
  ASSERT_TRUE(f->write_at(0, "one"));
  auto w = f->write_at(3, "two");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ENOSPC);
  EXPECT_NE(w.error().message.find("No space left"), std::string::npos);
  ASSERT_TRUE(f->write_at(3, "two"));

  fs.inject({.op = sim_op::sync, .code = EIO, .sticky = true});
  EXPECT_EQ(f->sync_data().error().code, EIO);
  EXPECT_EQ(f->sync_data().error().code, EIO);
  fs.clear_faults();
  EXPECT_TRUE(f->sync_data());

  fs.inject({.op = sim_op::write, .code = ENOSPC, .partial_bytes = 2});
  ASSERT_FALSE(f->write_at(6, "three"));
  EXPECT_EQ(*fs.contents("f"), "onetwoth");

  fs.inject({.op = sim_op::open, .code = EIO, .path_contains = "other"});
  EXPECT_TRUE(fs.open("f", open_mode::read_only));
  EXPECT_EQ(fs.open("other", open_mode::create_truncate).error().code, EIO);
}

TEST(sim_file, crash_after_brings_the_machine_down) {
  sim_file_system fs;
  auto f = must_open(fs, "f", open_mode::create_exclusive);
  ASSERT_TRUE(fs.sync_dir("/"));
  const uint64_t before = fs.mutating_calls();
  fs.crash_after(2);
  ASSERT_TRUE(f->write_at(0, "a"));
  ASSERT_TRUE(f->sync_data());
  EXPECT_EQ(f->write_at(1, "b").error().code, EIO);
  EXPECT_TRUE(fs.down());
  EXPECT_EQ(f->sync_data().error().code, EIO);
  EXPECT_FALSE(fs.exists("f"));
  EXPECT_EQ(fs.mutating_calls(), before + 2);
  fs.crash();
  EXPECT_FALSE(fs.down());
  EXPECT_EQ(*fs.contents("f"), "a");
}

TEST(sim_file, errors_name_the_path) {
  sim_file_system fs;
  auto f = fs.open("missing/x", open_mode::create_truncate);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ENOENT);
  EXPECT_NE(f.error().message.find("missing/x"), std::string::npos);
  ASSERT_TRUE(fs.create_dir("d"));
  EXPECT_EQ(fs.create_dir("d").error().code, EEXIST);
  EXPECT_EQ(fs.open("d", open_mode::read_only).error().code, EISDIR);
  EXPECT_EQ(*fs.list_dir("/"), std::vector<std::string>{"d"});
}

}  // namespace
}  // namespace cairn::base
