// ctl/snapshot_file.h: Cairn snapshot files as cairnctl reads and writes them.
//
// A snapshot file is what Maintenance.Snapshot streams: the bytes of a consistent copy of the
// member's LMDB database, then the 32-byte SHA-256 of those bytes (the layout etcd uses, so a
// file saved by `etcdctl snapshot save` from Cairn is the same file). `status` opens a private
// copy of the database (LMDB would write its lock state into the original) and reads what the
// mvcc store says of it.
//
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>

#include "base/expected.h"

namespace cairn::ctl {

struct snapshot_status {
  std::uint32_t hash = 0;        // CRC-32C of the database bytes (not etcd's number)
  std::int64_t revision = 0;     // the store's revision
  std::int64_t total_keys = 0;   // keys live at that revision
  std::uint64_t total_size = 0;  // database bytes (without the SHA-256)
  std::int64_t compact_revision = 0;
  bool has_sha256 = false;  // the file ends with a SHA-256 that matched
  // A snapshot of a real etcd (bbolt): hash, revision, keys and size are then the numbers
  // `etcdctl snapshot status` gives (keys of every bucket, etcd's CRC-32C over them).
  bool from_etcd = false;
};

// Checks the trailing SHA-256 (when the file has one) and reads the database's status.
// Errors say what is wrong: "snapshot file integrity check failed: ...", not a database, ...
cairn::expected<snapshot_status, std::string> read_status(const std::string& path);

// SHA-256 of `data`, raw 32 bytes.
std::string sha256(const std::string& data);

}  // namespace cairn::ctl
