#include "schema/schema.h"

#include <array>
#include <cstdio>
#include <cstdlib>

namespace cairn::schema {

namespace {

constexpr std::array<std::string_view, bucket_count> names = {
    "key",       "meta",    "lease",           "auth",    "authUsers",
    "authRoles", "members", "members_removed", "cluster", "alarm",
};

}  // namespace

std::string_view bucket_name(bucket b) { return names.at(b); }

std::vector<backend::bucket_spec> buckets() {
  std::vector<backend::bucket_spec> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    // Only the key bucket is read by concurrent readers between commits; the others are read
    // at start-up or by the writer itself.
    out.push_back(backend::bucket_spec{std::string(names[i]), i == key});
  }
  return out;
}

std::string encode_u64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::optional<std::uint64_t> decode_u64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

void write_meta_u64(backend::backend& b, std::string_view key, std::uint64_t v) {
  b.put(meta, key, encode_u64(v));
}

std::optional<std::uint64_t> read_meta_u64(const backend::read_view& view, std::string_view key) {
  auto v = view.get(meta, key);
  if (!v) return std::nullopt;
  auto d = decode_u64(*v);
  if (!d) {
    std::fprintf(stderr, "cairn schema: meta key %.*s is not an 8-byte integer\n",
                 static_cast<int>(key.size()), key.data());
    std::abort();
  }
  return d;
}

void write_consistent_index(backend::backend& b, consistent_index ci) {
  write_meta_u64(b, consistent_index_key, ci.index);
  write_meta_u64(b, term_key, ci.term);
}

consistent_index read_consistent_index(const backend::read_view& view) {
  return consistent_index{read_meta_u64(view, consistent_index_key).value_or(0),
                          read_meta_u64(view, term_key).value_or(0)};
}

cairn::expected<std::unique_ptr<backend::backend>, backend::error> open_backend(
    std::string path, backend::options opts) {
  return backend::backend::open(std::move(path), std::move(opts), buckets());
}

}  // namespace cairn::schema
