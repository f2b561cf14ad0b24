#include "etcdserver/etcd_import.h"

#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "etcdserver/bbolt.h"
#include "lease/lessor.h"
#include "mvcc/record.h"
#include "mvccpb/kv.pb.h"
#include "schema/schema.h"

namespace cairn::etcdserver {
namespace {

std::uint64_t big_endian_u64(std::string_view b) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
  return v;
}

// A protobuf varint at `at`, advancing it; nullopt if it runs past the end or past 10 bytes.
std::optional<std::uint64_t> varint(std::string_view b, std::size_t& at) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64 && at < b.size(); shift += 7) {
    const auto c = static_cast<unsigned char>(b[at++]);
    v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) return v;
  }
  return std::nullopt;
}

struct etcd_lease {
  std::int64_t id = 0, ttl = 0, remaining_ttl = 0;
};

// leasepb.Lease: three int64 varint fields; anything else is skipped as protobuf allows.
std::optional<etcd_lease> parse_lease(std::string_view b) {
  etcd_lease l;
  std::size_t at = 0;
  while (at < b.size()) {
    auto tag = varint(b, at);
    if (!tag) return std::nullopt;
    const auto field = *tag >> 3;
    const auto wire = *tag & 7;
    if (wire == 0) {
      auto v = varint(b, at);
      if (!v) return std::nullopt;
      const auto s = static_cast<std::int64_t>(*v);
      if (field == 1) l.id = s;
      if (field == 2) l.ttl = s;
      if (field == 3) l.remaining_ttl = s;
    } else if (wire == 2) {
      auto n = varint(b, at);
      if (!n || *n > b.size() - at) return std::nullopt;
      at += static_cast<std::size_t>(*n);
    } else if (wire == 1 || wire == 5) {
      const std::size_t n = wire == 1 ? 8 : 4;
      if (n > b.size() - at) return std::nullopt;
      at += n;
    } else {
      return std::nullopt;
    }
  }
  return l;
}

// A compaction revision of etcd's meta bucket: a 17-byte revision key; its main revision.
std::optional<std::int64_t> meta_revision(const bbolt::file& db, std::string_view key,
                                          std::string& error) {
  std::optional<std::int64_t> out;
  auto r = db.for_each("meta", [&](std::string_view k, std::string_view v, bool) {
    if (k != key) return;
    auto rev = mvcc::parse_revision_key(v);
    if (!rev) {
      error = absl::StrCat("etcd meta ", std::string(key), " is not a revision");
      return;
    }
    out = rev->rev.main;
  });
  if (!r) error = r.error();
  return out;
}

}  // namespace

cairn::expected<etcd_db_status, std::string> read_etcd_db_status(const std::string& path,
                                                                 std::uint64_t size) {
  auto db = bbolt::file::open(path, size);
  if (!db) return cairn::unexpected(db.error());
  std::vector<std::string> names;
  if (auto r = db->for_each_bucket([&](std::string_view n) { names.emplace_back(n); }); !r) {
    return cairn::unexpected(r.error());
  }
  etcd_db_status st;
  st.total_size = db->size();
  std::string error;
  for (const auto& name : names) {
    st.hash = base::crc32c_extend(st.hash, name);
    const bool key_bucket = name == "key";
    auto r = db->for_each(name, [&](std::string_view k, std::string_view v, bool bucket) {
      st.hash = base::crc32c_extend(st.hash, k);
      if (!bucket) st.hash = base::crc32c_extend(st.hash, v);  // bbolt gives a nested bucket nil
      if (key_bucket) {
        auto rev = mvcc::parse_revision_key(k);
        if (!rev) {
          error = "a key of etcd's key bucket is not a revision";
        } else {
          st.revision = rev->rev.main;
        }
      }
      ++st.total_keys;
    });
    if (!r) return cairn::unexpected(r.error());
  }
  if (!error.empty()) return cairn::unexpected(absl::StrCat(path, ": ", error));
  return st;
}

cairn::expected<etcd_import_result, std::string> import_etcd_db(const std::string& path,
                                                                std::uint64_t size,
                                                                backend::backend& into) {
  auto db = bbolt::file::open(path, size);
  if (!db) return cairn::unexpected(db.error());
  bool auth_enabled = false;
  auto auth = db->for_each("auth", [&](std::string_view k, std::string_view v, bool) {
    if (k == "authEnabled" && v.size() == 1 && v[0] == 1) auth_enabled = true;
  });
  if (!auth) return cairn::unexpected(auth.error());
  if (auth_enabled) {
    return cairn::unexpected(absl::StrCat(
        path,
        ": authentication is enabled in this etcd snapshot, and Cairn does not carry etcd's "
        "users and roles yet (the cluster would be open to everyone); run `etcdctl auth "
        "disable` and save the snapshot again"));
  }

  etcd_import_result res;
  std::string error;
  // Each key's last put in its current generation: the `prev` of Cairn's next record.
  absl::flat_hash_map<std::string, mvcc::revision> last_put;
  mvccpb::KeyValue kv;
  auto keys = db->for_each("key", [&](std::string_view k, std::string_view v, bool bucket) {
    if (!error.empty()) return;
    auto rk = mvcc::parse_revision_key(k);
    if (bucket || !rk) {
      error = absl::StrCat("entry ", res.entries, " of etcd's key bucket is not a revision");
      return;
    }
    if (!kv.ParseFromArray(v.data(), static_cast<int>(v.size())) || kv.key().empty()) {
      error = absl::StrCat("the key-value at revision ", rk->rev.main, "_", rk->rev.sub,
                           " does not decode");
      return;
    }
    if (!rk->tombstone && kv.mod_revision() != rk->rev.main) {
      error = absl::StrCat("the key-value at revision ", rk->rev.main, " says it was modified at ",
                           kv.mod_revision());
      return;
    }
    auto it = last_put.find(kv.key());
    const mvcc::revision prev = it == last_put.end() ? mvcc::revision{} : it->second;
    if (rk->tombstone) {
#ifdef CAIRN_PLANTED_BUG_ETCD_IMPORT_DROPS_DELETES
      return;
#endif
      into.put(schema::key, k, mvcc::encode_delete(kv.key(), prev));
      if (it != last_put.end()) last_put.erase(it);
    } else {
      into.put(schema::key, k,
               mvcc::encode_put(kv.key(), kv.create_revision(), kv.version(), kv.lease(), prev,
                                kv.value()));
      last_put[kv.key()] = rk->rev;
    }
    res.revision = rk->rev.main;
    ++res.entries;
    (void)into.commit_if_due();
  });
  if (!keys) return cairn::unexpected(keys.error());
  if (!*keys)
    return cairn::unexpected(absl::StrCat(path, ": not an etcd database (no key bucket)"));
  if (!error.empty()) return cairn::unexpected(absl::StrCat(path, ": ", error));

  auto leases = db->for_each("lease", [&](std::string_view k, std::string_view v, bool) {
    if (!error.empty()) return;
    auto l = parse_lease(v);
    if (k.size() != 8 || !l || l->id != static_cast<std::int64_t>(big_endian_u64(k))) {
      error = absl::StrCat("lease entry ", res.leases, " does not decode");
      return;
    }
    into.put(schema::lease, lease::encode_lease_key(lease::lease_id{l->id}),
             lease::encode_lease_value(l->ttl, l->remaining_ttl));
    ++res.leases;
  });
  if (!leases) return cairn::unexpected(leases.error());
  if (!error.empty()) return cairn::unexpected(absl::StrCat(path, ": ", error));

  auto scheduled = meta_revision(*db, "scheduledCompactRev", error);
  auto finished = meta_revision(*db, "finishedCompactRev", error);
  if (!error.empty()) return cairn::unexpected(absl::StrCat(path, ": ", error));
  if (scheduled) {
    schema::write_meta_u64(into, schema::scheduled_compact_key,
                           static_cast<std::uint64_t>(*scheduled));
  }
  if (finished) {
    schema::write_meta_u64(into, schema::finished_compact_key,
                           static_cast<std::uint64_t>(*finished));
    res.compact_revision = *finished;
  }
  if (!into.sync()) return cairn::unexpected(std::string("committing the imported data failed"));
  return res;
}

}  // namespace cairn::etcdserver
