// The POSIX file layer against a real temporary directory.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/file.h"

namespace cairn::base {
namespace {

class posix_file_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / "cairn-file-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  file_system& fs_ = posix_file_system();
  std::string dir_;
};

TEST_F(posix_file_test, write_sync_read_back) {
  const std::string path = join_path(dir_, "a");
  auto f = fs_.open(path, open_mode::create_exclusive);
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE((*f)->write_at(0, "hello"));
  ASSERT_TRUE((*f)->write_at(10, "world"));
  ASSERT_TRUE((*f)->sync_data());
  EXPECT_EQ(*(*f)->size(), 15u);
  ASSERT_TRUE((*f)->close());
  auto data = read_file(fs_, path);
  ASSERT_TRUE(data);
  EXPECT_EQ(*data, std::string("hello\0\0\0\0\0world", 15));
  EXPECT_EQ(*fs_.file_size(path), 15u);
}

TEST_F(posix_file_test, create_exclusive_refuses_existing) {
  const std::string path = join_path(dir_, "a");
  ASSERT_TRUE(fs_.open(path, open_mode::create_exclusive));
  auto again = fs_.open(path, open_mode::create_exclusive);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EEXIST);
  EXPECT_NE(again.error().message.find(path), std::string::npos);
}

TEST_F(posix_file_test, missing_file_is_enoent) {
  auto f = fs_.open(join_path(dir_, "nope"), open_mode::read_only);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ENOENT);
  EXPECT_FALSE(*fs_.exists(join_path(dir_, "nope")));
}

TEST_F(posix_file_test, preallocate_grows_and_truncate_cuts) {
  auto f = fs_.open(join_path(dir_, "p"), open_mode::create_truncate);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->preallocate(1 << 16));
  EXPECT_EQ(*(*f)->size(), 1u << 16);
  ASSERT_TRUE((*f)->preallocate(100));  // never shrinks
  EXPECT_EQ(*(*f)->size(), 1u << 16);
  ASSERT_TRUE((*f)->truncate(100));
  EXPECT_EQ(*(*f)->size(), 100u);
  std::string buf(200, 'x');
  auto n = (*f)->read_at(0, buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 100u);
  EXPECT_EQ(buf.substr(0, 100), std::string(100, '\0'));
}

TEST_F(posix_file_test, rename_remove_list_sync_dir) {
  ASSERT_TRUE(create_dirs(fs_, join_path(dir_, "x/y/z")));
  EXPECT_TRUE(*fs_.is_dir(join_path(dir_, "x/y/z")));
  ASSERT_TRUE(write_file_atomically(fs_, join_path(dir_, "x/f"), "one"));
  ASSERT_TRUE(write_file_atomically(fs_, join_path(dir_, "x/f"), "two"));
  EXPECT_EQ(*read_file(fs_, join_path(dir_, "x/f")), "two");
  ASSERT_TRUE(fs_.rename(join_path(dir_, "x/f"), join_path(dir_, "x/g")));
  ASSERT_TRUE(fs_.sync_dir(join_path(dir_, "x")));
  auto names = fs_.list_dir(join_path(dir_, "x"));
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"g", "y"}));
  ASSERT_TRUE(fs_.remove(join_path(dir_, "x/g")));
  EXPECT_EQ(*fs_.list_dir(join_path(dir_, "x")), std::vector<std::string>{"y"});
  auto bad = fs_.remove(join_path(dir_, "x/y"));  // not empty
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ENOTEMPTY);
}

TEST_F(posix_file_test, closed_file_fails_with_ebadf) {
  auto f = fs_.open(join_path(dir_, "c"), open_mode::create_truncate);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->close());
  ASSERT_TRUE((*f)->close());
  auto w = (*f)->write_at(0, "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EBADF);
}

TEST(path_helpers, join_parent_base) {
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
  EXPECT_EQ(parent_dir("a/b/c"), "a/b");
  EXPECT_EQ(parent_dir("c"), ".");
  EXPECT_EQ(parent_dir("/c"), "/");
  EXPECT_EQ(parent_dir("a/b/"), "a");
  EXPECT_EQ(base_name("a/b/c"), "c");
  EXPECT_EQ(base_name("c"), "c");
}

}  // namespace
}  // namespace cairn::base
