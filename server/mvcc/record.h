// mvcc/record.h: the on-disk format of mvcc's key bucket, and its codec. Stateless.
//
// One LMDB entry per change (a put or a delete of one key in one write transaction).
//
// Key: the change's revision, 17 bytes, or 18 for a delete:
//     main (8 bytes, big-endian) '_' sub (8 bytes, big-endian) ['t']
//   so that byte order is revision order (the layout of etcd's revision keys).
//
// Value: Cairn's own encoding (not etcd's protobuf KeyValue). Integers are unsigned LEB128
// varints ("uv"); signed values are stored as their two's-complement uint64.
//     put:    0x01  uv(len(key)) key  uv(create_revision)  uv(version)  uv(lease)
//                   uv(prev.main) uv(prev.sub)  value (the rest of the entry)
//     delete: 0x02  uv(len(key)) key  uv(prev.main) uv(prev.sub)
//   mod_revision is the key's main revision and is not repeated. `prev` is the revision of the
//   key's previous change in the same generation (a put), or main 0 if the key did not exist
//   before this change: a watcher catching up from disk finds prev_kv with it, without the
//   in-memory index.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mvcc/kv.h"

namespace cairn::mvcc {

inline constexpr std::size_t revision_key_size = 17;

std::string revision_key(revision rev, bool tombstone = false);
// Appends to `out` (no allocation when it has room).
void append_revision_key(std::string& out, revision rev, bool tombstone = false);

struct parsed_revision_key {
  revision rev;
  bool tombstone = false;
};
std::optional<parsed_revision_key> parse_revision_key(std::string_view bytes);

// A decoded entry; views point into the encoded bytes.
struct record {
  bool tombstone = false;
  std::string_view key;
  std::int64_t create_revision = 0;  // put only
  std::int64_t version = 0;          // put only
  std::int64_t lease = 0;            // put only
  revision prev;                     // main 0: none
  std::string_view value;            // put only
};

std::string encode_put(std::string_view key, std::int64_t create_revision, std::int64_t version,
                       std::int64_t lease, revision prev, std::string_view value);
std::string encode_delete(std::string_view key, revision prev);
std::optional<record> decode_record(std::string_view bytes);

// Decodes or aborts: a malformed entry in our own bucket is a broken invariant.
record must_decode(std::string_view bytes);

// The key-value a put entry stores at revision `rev`.
key_value to_key_value(const record& r, revision rev);

}  // namespace cairn::mvcc
