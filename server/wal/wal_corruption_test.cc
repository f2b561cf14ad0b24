// A damaged log never yields wrong entries: flipped bytes, truncation and zeroed pages either
// read back as a prefix of complete batches (damage that a crash could have caused at the
// tail) or are refused with an error naming the file and the offset.
#include <gtest/gtest.h>

#include <map>

#include "base/sim_file.h"
#include "wal/segment.h"
#include "wal/wal.h"
#include "wal/wal_test_util.h"

namespace cairn::wal {
namespace {

using namespace cairn::wal::testing;

constexpr uint64_t segment_size = 64 * 1024;
const std::string dir = "wal";

// A log of several segments, kept as bytes so each case starts from a fresh copy.
struct golden_log {
  std::map<std::string, std::string> files;  // name → bytes
  std::vector<std::string> names;            // segments, oldest first
  std::vector<raftpb::Entry> entries;
  std::vector<size_t> batch_ends;  // entries.size() after each batch
  uint64_t tail_last_batch_offset = 0;
  uint64_t tail_end = 0;
};

const golden_log& golden() {
  static const golden_log g = [] {
    golden_log g;
    base::sim_file_system fs;
    const options opts{.segment_size = segment_size, .seed = 9};
    auto w = wal::create(fs, dir, "meta", opts);
    EXPECT_TRUE(w);
    std::mt19937 rng(5);
    uint64_t next = 1;
    g.batch_ends.push_back(0);
    while (next < 700) {
      const uint64_t n = 1 + rng() % 12;
      auto batch = make_entries(next, next + n - 1, 1, rng() % 900);
      EXPECT_TRUE((*w)->save(make_state(1, 1, next), batch));
      g.entries.insert(g.entries.end(), batch.begin(), batch.end());
      g.batch_ends.push_back(g.entries.size());
      next += n;
    }
    g.names = (*w)->segment_names();
    for (const auto& n : g.names) g.files[n] = *fs.contents(dir + "/" + n);
    auto scan = scan_segment(g.files[g.names.back()], true);
    EXPECT_TRUE(scan);
    g.tail_end = scan->end;
    for (const auto& r : scan->records) {
      if (r.batch == scan->last_batch) {
        g.tail_last_batch_offset = r.offset;
        break;
      }
    }
    return g;
  }();
  return g;
}

// A file system holding the golden log with `change` applied to one segment.
std::unique_ptr<base::sim_file_system> damaged(size_t segment,
                                               const std::function<void(std::string&)>& change) {
  auto fs = std::make_unique<base::sim_file_system>();
  const auto& g = golden();
  EXPECT_TRUE(fs->create_dir(dir));
  for (size_t i = 0; i < g.names.size(); ++i) {
    const std::string path = dir + "/" + g.names[i];
    EXPECT_TRUE(fs->open(path, base::open_mode::create_exclusive));
    std::string bytes = g.files.at(g.names[i]);
    if (i == segment) change(bytes);
    fs->set_contents(path, std::move(bytes));
  }
  EXPECT_TRUE(fs->sync_dir(dir));
  EXPECT_TRUE(fs->sync_dir("/"));
  return fs;
}

result<wal::opened> open(base::file_system& fs) {
  return wal::open(fs, dir, {}, {.segment_size = segment_size, .seed = 3});
}

// The outcome of opening a damaged log is acceptable: an error naming the file and offset, or
// the entries of a whole number of batches, exactly as written.
::testing::AssertionResult refused_or_prefix(const result<wal::opened>& o, size_t segment) {
  const auto& g = golden();
  if (!o) {
    if (o.error().code != errc::corrupt) {
      return ::testing::AssertionFailure() << "unexpected error kind: " << o.error().message;
    }
    if (o.error().message.find(g.names[segment]) == std::string::npos ||
        o.error().message.find("offset") == std::string::npos) {
      return ::testing::AssertionFailure() << "error lacks file or offset: " << o.error().message;
    }
    return ::testing::AssertionSuccess();
  }
  const auto& got = o->data.entries;
  if (std::find(g.batch_ends.begin(), g.batch_ends.end(), got.size()) == g.batch_ends.end()) {
    return ::testing::AssertionFailure() << got.size() << " entries is not a batch boundary";
  }
  const std::vector<raftpb::Entry> want(g.entries.begin(),
                                        g.entries.begin() + static_cast<ptrdiff_t>(got.size()));
  if (auto d = diff_entries(got, want); !d.empty()) return ::testing::AssertionFailure() << d;
  return ::testing::AssertionSuccess();
}

TEST(wal_corruption, golden_log_is_sane) {
  const auto& g = golden();
  ASSERT_GE(g.names.size(), 4u);
  auto fs = damaged(0, [](std::string&) {});
  auto o = open(*fs);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(diff_entries(o->data.entries, g.entries), "");
}

TEST(wal_corruption, any_flipped_byte_in_an_older_segment_is_refused) {
  const auto& g = golden();
  const size_t seg = 1;
  const size_t size = g.files.at(g.names[seg]).size();
  int cases = 0;
  for (size_t at = 0; at < size; at += 37) {
    auto fs = damaged(seg, [&](std::string& b) { b[at] ^= 0x10; });
    auto o = open(*fs);
    ASSERT_FALSE(o) << "flip at " << at << " was accepted";
    EXPECT_EQ(o.error().code, errc::corrupt);
    EXPECT_NE(o.error().message.find(g.names[seg]), std::string::npos) << o.error().message;
    ++cases;
  }
  EXPECT_GT(cases, 1000);
}

TEST(wal_corruption, flipped_byte_error_names_the_exact_offset) {
  const auto& g = golden();
  auto scan = scan_segment(g.files.at(g.names[1]), false);
  ASSERT_TRUE(scan);
  const uint64_t frame = scan->records[10].offset;
  auto fs = damaged(1, [&](std::string& b) { b[frame + frame_header_size + 3] ^= 1; });
  auto o = open(*fs);
  ASSERT_FALSE(o);
  const std::string want =
      "wal: wal/" + g.names[1] + ": offset " + std::to_string(frame) + ": record checksum mismatch";
  EXPECT_EQ(o.error().message.substr(0, want.size()), want);
}

TEST(wal_corruption, flips_in_the_newest_segment_never_yield_wrong_entries) {
  const auto& g = golden();
  const size_t seg = g.names.size() - 1;
  int refused = 0, accepted = 0;
  for (size_t at = 0; at < g.tail_end; at += 7) {
    auto fs = damaged(seg, [&](std::string& b) { b[at] ^= 0x04; });
    auto o = open(*fs);
    ASSERT_TRUE(refused_or_prefix(o, seg)) << "flip at " << at;
    // Damage before the last batch lies in synced data (a later batch follows it): refused.
    if (at < g.tail_last_batch_offset) {
      ASSERT_FALSE(o) << "flip at " << at << " before the last batch was accepted";
    }
    o ? ++accepted : ++refused;
  }
  EXPECT_GT(refused, 100);
}

TEST(wal_corruption, junk_after_the_end_of_the_newest_segment_is_cut_off) {
  const auto& g = golden();
  const size_t seg = g.names.size() - 1;
  auto fs = damaged(seg, [&](std::string& b) { b[g.tail_end + 100] = 'x'; });
  auto o = open(*fs);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(diff_entries(o->data.entries, g.entries), "");
}

TEST(wal_corruption, truncation) {
  const auto& g = golden();
  // The newest segment, cut anywhere: a prefix of whole batches.
  const size_t tail = g.names.size() - 1;
  for (size_t len = 0; len <= g.tail_end; len += 13) {
    auto fs = damaged(tail, [&](std::string& b) { b.resize(len); });
    auto o = open(*fs);
    ASSERT_TRUE(refused_or_prefix(o, tail)) << "cut at " << len;
    if (len >= file_header_size + 4 * frame_header_size + 64) {
      // Past the prelude a cut tail is a crash's signature: it opens.
      if (!o) {
        // Only when the cut lands inside the prelude batch can it fail.
        auto scan = scan_segment(g.files.at(g.names[tail]).substr(0, len), true);
        ASSERT_TRUE(!scan || scan->records.size() < 4) << o.error().message;
      }
    }
  }
  // An older segment cut inside its records: refused.
  auto scan = scan_segment(g.files.at(g.names[1]), false);
  ASSERT_TRUE(scan);
  for (size_t len = 0; len < scan->end; len += 101) {
    auto fs = damaged(1, [&](std::string& b) { b.resize(len); });
    auto o = open(*fs);
    ASSERT_FALSE(o) << "older segment cut at " << len << " was accepted";
    EXPECT_EQ(o.error().code, errc::corrupt);
  }
}

TEST(wal_corruption, zeroed_pages) {
  const auto& g = golden();
  const size_t tail = g.names.size() - 1;
  for (uint64_t page = 0; page < g.tail_end; page += 4096) {
    auto fs = damaged(tail, [&](std::string& b) {
      std::fill(b.begin() + static_cast<ptrdiff_t>(page),
                b.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(page + 4096, b.size())),
                '\0');
    });
    auto o = open(*fs);
    ASSERT_TRUE(refused_or_prefix(o, tail)) << "page at " << page;
    if (page + 4096 <= g.tail_last_batch_offset) {
      ASSERT_FALSE(o) << "zeroed page at " << page << " before the last batch was accepted";
    }
    if (!o && page > 0) {
      EXPECT_NE(o.error().message.find("synced past"), std::string::npos) << o.error().message;
    }
  }
  auto scan = scan_segment(g.files.at(g.names[1]), false);
  ASSERT_TRUE(scan);
  for (uint64_t page = 0; page < scan->end; page += 4096) {
    auto fs = damaged(1, [&](std::string& b) {
      std::fill(b.begin() + static_cast<ptrdiff_t>(page),
                b.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(page + 4096, b.size())),
                '\0');
    });
    ASSERT_FALSE(open(*fs)) << "zeroed page at " << page << " of an older segment was accepted";
  }
}

TEST(wal_corruption, missing_or_foreign_segment_is_refused) {
  const auto& g = golden();
  {
    auto fs = damaged(0, [](std::string&) {});
    ASSERT_TRUE(fs->remove(dir + "/" + g.names[2]));
    auto o = open(*fs);
    ASSERT_FALSE(o);
    EXPECT_NE(o.error().message.find("missing"), std::string::npos) << o.error().message;
  }
  {
    // Segment 2 replaced by segment 2 of another log with the same shape.
    base::sim_file_system other;
    auto w = wal::create(other, dir, "meta", {.segment_size = segment_size, .seed = 77});
    ASSERT_TRUE(w);
    std::mt19937 rng(6);
    for (uint64_t next = 1; next < 700;) {
      const uint64_t n = 1 + rng() % 12;
      ASSERT_TRUE(
          (*w)->save(make_state(1, 1, next), make_entries(next, next + n - 1, 2, rng() % 900)));
      next += n;
    }
    const auto names = (*w)->segment_names();
    ASSERT_GT(names.size(), 2u);
    auto fs = damaged(0, [](std::string&) {});
    ASSERT_TRUE(fs->remove(dir + "/" + g.names[2]));
    ASSERT_TRUE(fs->open(dir + "/" + names[2], base::open_mode::create_exclusive));
    fs->set_contents(dir + "/" + names[2], *other.contents(dir + "/" + names[2]));
    auto o = open(*fs);
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().code, errc::corrupt);
  }
}

TEST(wal_corruption, repaired_tail_takes_new_batches) {
  const auto& g = golden();
  const size_t tail = g.names.size() - 1;
  // The first header of the last batch never reached the disk (a crash while writing it); the
  // rest of the batch did.
  auto fs = damaged(tail, [&](std::string& b) {
    std::fill(b.begin() + static_cast<ptrdiff_t>(g.tail_last_batch_offset),
              b.begin() + static_cast<ptrdiff_t>(g.tail_last_batch_offset + frame_header_size),
              '\0');
  });
  auto o = open(*fs);
  ASSERT_TRUE(o) << o.error().message;
  const size_t kept = o->data.entries.size();
  ASSERT_EQ(kept, g.batch_ends[g.batch_ends.size() - 2]);
  const uint64_t next = o->log->last_index() + 1;
  ASSERT_EQ(next, kept + 1);
  ASSERT_TRUE(o->log->save(make_state(2, 1, next), make_entries(next, next + 4, 2)));
  o->log.reset();
  fs->crash();
  auto again = open(*fs);
  ASSERT_TRUE(again) << again.error().message;
  auto want = std::vector<raftpb::Entry>(g.entries.begin(),
                                         g.entries.begin() + static_cast<ptrdiff_t>(kept));
  for (auto& e : make_entries(next, next + 4, 2)) want.push_back(e);
  EXPECT_EQ(diff_entries(again->data.entries, want), "");
}

}  // namespace
}  // namespace cairn::wal
