#include "schema/schema.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

namespace cairn::schema {
namespace {

TEST(schema, every_bucket_has_a_distinct_name_and_only_the_key_bucket_is_read_buffered) {
  auto list = buckets();
  ASSERT_EQ(list.size(), static_cast<std::size_t>(bucket_count));
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_TRUE(names.insert(list[i].name).second) << list[i].name;
    EXPECT_EQ(list[i].name, bucket_name(static_cast<bucket>(i)));
    EXPECT_EQ(list[i].read_buffered, i == key);
  }
  // etcd's names for the buckets mvcc and the lessor use (facts from etcd's schema).
  EXPECT_EQ(bucket_name(key), "key");
  EXPECT_EQ(bucket_name(meta), "meta");
  EXPECT_EQ(bucket_name(lease), "lease");
  EXPECT_EQ(bucket_name(auth_users), "authUsers");
  EXPECT_EQ(bucket_name(auth_roles), "authRoles");
}

TEST(schema, u64_values_are_8_bytes_big_endian) {
  EXPECT_EQ(encode_u64(0x0102030405060708ull), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(decode_u64(encode_u64(~0ull)), ~0ull);
  EXPECT_EQ(decode_u64("short"), std::nullopt);
}

TEST(schema, the_consistent_index_is_committed_with_the_batch_and_read_back) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-schema-XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  {
    auto b = open_backend(dir + "/db", {});
    ASSERT_TRUE(b);
    {
      auto v = (*b)->read();
      EXPECT_EQ(read_consistent_index(v), (consistent_index{0, 0}));
    }
    write_consistent_index(**b, {42, 7});
    (*b)->force_commit();
    write_consistent_index(**b, {43, 7});
    (*b)->simulate_crash();
  }
  {
    auto b = open_backend(dir + "/db", {});
    ASSERT_TRUE(b);
    auto v = (*b)->read();
    EXPECT_EQ(read_consistent_index(v), (consistent_index{42, 7}));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::schema
