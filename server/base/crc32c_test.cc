#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace cairn::base {
namespace {

TEST(crc32c, known_vectors) {
  // The check value of CRC-32C, and the vectors of RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46dd794eu);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(crc32c, extend_equals_whole) {
  std::mt19937 rng(7);
  std::string data(1000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (size_t cut : {0, 1, 7, 8, 9, 100, 999, 1000}) {
    const std::string_view v = data;
    EXPECT_EQ(crc32c_extend(crc32c(v.substr(0, cut)), v.substr(cut)), crc32c(v)) << cut;
  }
}

TEST(crc32c, hardware_and_portable_agree) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string data(rng() % 300, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    const uint32_t seed = rng();
    // Unaligned starts exercise the byte-at-a-time head of both paths.
    const size_t skip = data.empty() ? 0 : rng() % data.size();
    const std::string_view v = std::string_view(data).substr(skip);
    EXPECT_EQ(crc32c_extend(seed, v), crc32c_extend_portable(seed, v));
  }
}

}  // namespace
}  // namespace cairn::base
