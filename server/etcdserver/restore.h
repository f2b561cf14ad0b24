// etcdserver/restore.h: a snapshot's database becomes the data directory of a fresh member of a
// new cluster (what `etcdctl snapshot restore` does for etcd).
//
// The snapshot file is what Maintenance.Snapshot streams: the database's bytes, then the SHA-256
// of those bytes. The restore checks the hash as etcd does (a file whose size is whole 512-byte
// blocks plus 32 bytes has one; without one, or to take it unchecked, --skip-hash-check), copies
// the database under <data-dir>/member/db, and removes what belonged to the old cluster: its
// members, removed members and alarms. Every key, revision, lease, auth setting and the
// compaction state stay. Then the member is bootstrapped exactly as a new member of the cluster
// `initial_cluster` is (member and cluster ids from the peer URLs and the token, a raft snapshot
// at index 1 naming every member a voter, an empty WAL), so every member restored from the same
// file with the same flags starts at the same state and they form one cluster.
//
// A snapshot saved from a real etcd (a bbolt file, recognized by its meta page) is migrated
// instead of copied: its hash is checked the same way, then its key history, leases and
// compaction state are written into a new Cairn database (etcd_import.h) and the member is
// bootstrapped over it as above.
//
// Thread-safety: a plain function; the data directory must not be in use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/expected.h"

namespace cairn::etcdserver {

struct restore_config {
  std::string snapshot_path;
  bool skip_hash_check = false;
  std::string name = "default";
  std::string data_dir;  // must not exist yet
  std::string initial_cluster;
  std::string initial_cluster_token = "etcd-cluster";
  std::vector<std::string> advertise_peer_urls;
};

struct restore_result {
  std::uint64_t member_id = 0;
  std::uint64_t cluster_id = 0;
  std::int64_t revision = 0;  // the store's revision, the snapshot's
};

// Errors are etcd's where etcd has one: `data-dir "x" exists`, `snapshot missing hash but
// --skip-hash-check=false`, `expected sha256 [..], got [..]`; then Cairn's for a file that is
// not a Cairn database. On error, a data directory the restore created is removed again.
cairn::expected<restore_result, std::string> restore_snapshot(const restore_config& cfg);

}  // namespace cairn::etcdserver
