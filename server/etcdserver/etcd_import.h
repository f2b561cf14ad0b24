// etcdserver/etcd_import.h: etcd's databases read into Cairn's, for migrating an etcd cluster
// with one snapshot (`cairnctl snapshot restore` of a file that `etcdctl snapshot save` wrote
// from a real etcd), and `cairnctl snapshot status` of such a file.
//
// etcd's schema, as facts: bucket "key" maps revision keys (the layout Cairn's mvcc uses,
// mvcc/record.h) to protobuf mvccpb.KeyValue (a delete's value holds only the key); "meta"
// holds scheduledCompactRev and finishedCompactRev as revision keys; "lease" maps a lease id
// (8 bytes big-endian) to leasepb.Lease {ID = 1, TTL = 2, RemainingTTL = 3}; "auth" holds
// authEnabled (one byte, 1 when on). Members, removed members, alarms and the cluster version
// belong to the old cluster and are not carried.
//
// Thread-safety: plain functions; `into` must be used by the caller's thread only meanwhile.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "base/expected.h"

namespace cairn::etcdserver {

// What `etcdctl snapshot status` reports for an etcd database, computed as it does: the
// CRC-32C of every bucket name, key and value in order, the main revision of the last key of
// bucket "key", the number of keys in all buckets, and bbolt's size of the database.
struct etcd_db_status {
  std::uint32_t hash = 0;
  std::int64_t revision = 0;
  std::int64_t total_keys = 0;
  std::uint64_t total_size = 0;
};
// `size`: the bytes of the file that are the database (0: all).
cairn::expected<etcd_db_status, std::string> read_etcd_db_status(const std::string& path,
                                                                 std::uint64_t size = 0);

struct etcd_import_result {
  std::int64_t revision = 0;  // the last revision in the key bucket
  std::int64_t entries = 0;   // revisions imported (puts and deletes)
  std::int64_t leases = 0;
  std::int64_t compact_revision = 0;
};
// Writes the key history, the leases and the compaction state of the etcd database at `path`
// into `into` (an empty Cairn backend), then syncs it. Refuses a database with authentication
// enabled (Cairn has no auth yet: the migrated cluster would be open to everyone).
cairn::expected<etcd_import_result, std::string> import_etcd_db(const std::string& path,
                                                                std::uint64_t size,
                                                                backend::backend& into);

}  // namespace cairn::etcdserver
