// schema: every bucket of Cairn's backend and every key of the meta bucket, declared in one place,
// with the helpers that read and write the meta values (the consistent index above all).
// Stateless; the write helpers run on the backend's writer thread, the read helpers anywhere.
//
// Meta bucket values are 8-byte big-endian unsigned integers. The bucket and meta key names are
// etcd's (facts only), so a reader of etcd's schema finds the same names here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "base/expected.h"

namespace cairn::schema {

// Buckets by id; the order is the list `buckets()` gives the backend. Never reorder: ids are
// positions, names are what is on disk.
enum bucket : backend::bucket_id {
  key = 0,          // mvcc: revision key -> encoded key_value (mvcc/record.h); read-buffered
  meta,             // the keys below
  lease,            // lessor: lease id -> lease
  auth,             // auth: enabled flag, auth revision
  auth_users,       // auth: user name -> user
  auth_roles,       // auth: role name -> role
  members,          // membership: member id -> member
  members_removed,  // membership: ids of removed members
  cluster,          // cluster version
  alarm,            // active alarms
  bucket_count,
};

// Names on disk (LMDB named databases), indexed by `bucket`.
std::string_view bucket_name(bucket b);

// The bucket list to open the backend with.
std::vector<backend::bucket_spec> buckets();

// Meta keys.
inline constexpr std::string_view consistent_index_key = "consistent_index";
inline constexpr std::string_view term_key = "term";
inline constexpr std::string_view scheduled_compact_key = "scheduledCompactRev";
inline constexpr std::string_view finished_compact_key = "finishedCompactRev";

std::string encode_u64(std::uint64_t v);
std::optional<std::uint64_t> decode_u64(std::string_view bytes);

// The index of the last raft entry whose effects are in the backend, and its term. Written in
// the same batch as those effects, so after a crash replay starts right after it.
struct consistent_index {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  friend bool operator==(const consistent_index&, const consistent_index&) = default;
};

void write_consistent_index(backend::backend& b, consistent_index ci);
consistent_index read_consistent_index(const backend::read_view& view);

// Meta integers (0 when absent).
void write_meta_u64(backend::backend& b, std::string_view key, std::uint64_t v);
std::optional<std::uint64_t> read_meta_u64(const backend::read_view& view, std::string_view key);

// Opens a backend with Cairn's buckets.
cairn::expected<std::unique_ptr<backend::backend>, backend::error> open_backend(
    std::string path, backend::options opts);

}  // namespace cairn::schema
