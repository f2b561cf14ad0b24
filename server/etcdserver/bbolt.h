// etcdserver/bbolt.h: a read-only reader of bbolt database files, the backend of etcd, so that a
// snapshot saved from a real etcd can be inspected and imported (etcd_import.h).
//
// Written from the file format (facts: go.etcd.io/bbolt's page, meta and element layouts):
//   - Pages of `page_size` bytes. Every page starts with a 16-byte header: id (u64), flags (u16:
//     0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist), count (u16), overflow (u32: how many
//     further pages the page spans).
//   - Pages 0 and 1 are metas: after the header, magic 0xED0CDAED (u32), version 2 (u32),
//     page size (u32), flags (u32), the root bucket (root page u64, sequence u64), freelist page
//     (u64), high-water page id (u64), txid (u64), then the FNV-1a 64 checksum of those 56 bytes.
//     The valid meta with the larger txid is the current one.
//   - A branch page holds `count` 16-byte elements: pos (u32), key size (u32), child page (u64);
//     a leaf page `count` elements: flags (u32: 0x01 a nested bucket), pos (u32), key size (u32),
//     value size (u32). `pos` counts from the element itself; the value follows the key.
//   - A bucket's value is its root page (u64) and sequence (u64); root 0 means the bucket is
//     inline: its single leaf page follows in the value itself.
// Integers are little-endian. Every offset read from the file is checked against the file and
// the page it belongs to, so a damaged file gives an error, never a crash or a loop.
//
// Thread-safety: a `file` is immutable once open; any number of threads may read it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/expected.h"

namespace cairn::etcdserver::bbolt {

// Whether `head` (the first 20 bytes or more of a file) is a bbolt file's first meta page.
bool looks_like_bbolt(std::string_view head);

class file {
 public:
  // Maps the first `size` bytes of `path` (0: the whole file) read only. Errors name the file
  // and what is wrong with it.
  static cairn::expected<file, std::string> open(const std::string& path, std::uint64_t size = 0);
  file(file&& other) noexcept;
  file& operator=(file&& other) noexcept;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file();

  std::uint32_t page_size() const { return page_size_; }
  std::uint64_t txid() const { return txid_; }
  // bbolt's Tx.Size(): the high-water page id times the page size.
  std::uint64_t size() const { return high_water_ * page_size_; }

  // One key of a bucket; `bucket` is set for a nested bucket (its value is then the bucket's
  // header: root page and sequence, and an inline page).
  using visit = std::function<void(std::string_view key, std::string_view value, bool bucket)>;
  // Every top-level bucket's name, in key order.
  cairn::expected<void, std::string> for_each_bucket(
      const std::function<void(std::string_view name)>& fn) const;
  // Every key of the top-level bucket `name`, in key order. False: there is no such bucket.
  cairn::expected<bool, std::string> for_each(std::string_view name, const visit& fn) const;

 private:
  file() = default;
  // Walks the tree under `page` (an id in the file) or, for an inline bucket, the page at
  // `inline_page`, calling `fn` for each leaf element in order.
  // Pages already walked (each page of a sound tree is reached once).
  struct seen_pages;
  cairn::expected<void, std::string> walk(std::uint64_t page, std::string_view inline_page,
                                          const visit& fn, seen_pages& seen, int depth) const;
  cairn::expected<void, std::string> walk_page(std::string_view page, const visit& fn,
                                               seen_pages& seen, int depth) const;
  // The bytes of page `id` with its overflow, or why they are not in the file.
  cairn::expected<std::string_view, std::string> page_bytes(std::uint64_t id) const;
  // The root page (or inline page) of top-level bucket `name`.
  cairn::expected<bool, std::string> find_bucket(std::string_view name, std::uint64_t& root,
                                                 std::string_view& inline_page) const;

  std::string path_;
  const char* data_ = nullptr;
  std::uint64_t mapped_ = 0;  // bytes mapped
  std::uint64_t size_ = 0;    // bytes that are the database
  std::uint32_t page_size_ = 0;
  std::uint64_t root_ = 0;
  std::uint64_t high_water_ = 0;
  std::uint64_t txid_ = 0;
};

}  // namespace cairn::etcdserver::bbolt
