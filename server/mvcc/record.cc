#include "mvcc/record.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::mvcc {

namespace {

constexpr char put_tag = 0x01;
constexpr char delete_tag = 0x02;

void put_u64_be(std::string& out, std::uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out.append(buf, 8);
}

std::uint64_t get_u64_be(std::string_view s) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

void put_uv(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_uv(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool get_iv(std::string_view& in, std::int64_t& v) {
  std::uint64_t u;
  if (!get_uv(in, u)) return false;
  v = static_cast<std::int64_t>(u);
  return true;
}

}  // namespace

void append_revision_key(std::string& out, revision rev, bool tombstone) {
  put_u64_be(out, static_cast<std::uint64_t>(rev.main));
  out.push_back('_');
  put_u64_be(out, static_cast<std::uint64_t>(rev.sub));
  if (tombstone) out.push_back('t');
}

std::string revision_key(revision rev, bool tombstone) {
  std::string out;
  out.reserve(revision_key_size + 1);
  append_revision_key(out, rev, tombstone);
  return out;
}

std::optional<parsed_revision_key> parse_revision_key(std::string_view b) {
  if (b.size() != revision_key_size && b.size() != revision_key_size + 1) return std::nullopt;
  if (b[8] != '_') return std::nullopt;
  parsed_revision_key out;
  out.rev.main = static_cast<std::int64_t>(get_u64_be(b.substr(0, 8)));
  out.rev.sub = static_cast<std::int64_t>(get_u64_be(b.substr(9, 8)));
  if (b.size() == revision_key_size + 1) {
    if (b[17] != 't') return std::nullopt;
    out.tombstone = true;
  }
  return out;
}

std::string encode_put(std::string_view key, std::int64_t create_revision, std::int64_t version,
                       std::int64_t lease, revision prev, std::string_view value) {
  std::string out;
  out.reserve(1 + 5 + key.size() + 5 * 10 + value.size());
  out.push_back(put_tag);
  put_uv(out, key.size());
  out.append(key);
  put_uv(out, static_cast<std::uint64_t>(create_revision));
  put_uv(out, static_cast<std::uint64_t>(version));
  put_uv(out, static_cast<std::uint64_t>(lease));
  put_uv(out, static_cast<std::uint64_t>(prev.main));
  put_uv(out, static_cast<std::uint64_t>(prev.sub));
  out.append(value);
  return out;
}

std::string encode_delete(std::string_view key, revision prev) {
  std::string out;
  out.reserve(1 + 5 + key.size() + 20);
  out.push_back(delete_tag);
  put_uv(out, key.size());
  out.append(key);
  put_uv(out, static_cast<std::uint64_t>(prev.main));
  put_uv(out, static_cast<std::uint64_t>(prev.sub));
  return out;
}

std::optional<record> decode_record(std::string_view in) {
  if (in.empty()) return std::nullopt;
  record r;
  char tag = in.front();
  in.remove_prefix(1);
  if (tag != put_tag && tag != delete_tag) return std::nullopt;
  r.tombstone = tag == delete_tag;
  std::uint64_t klen;
  if (!get_uv(in, klen) || klen > in.size()) return std::nullopt;
  r.key = in.substr(0, klen);
  in.remove_prefix(klen);
  if (!r.tombstone) {
    if (!get_iv(in, r.create_revision) || !get_iv(in, r.version) || !get_iv(in, r.lease)) {
      return std::nullopt;
    }
  }
  if (!get_iv(in, r.prev.main) || !get_iv(in, r.prev.sub)) return std::nullopt;
  if (r.tombstone) {
    if (!in.empty()) return std::nullopt;
  } else {
    r.value = in;
  }
  return r;
}

record must_decode(std::string_view bytes) {
  auto r = decode_record(bytes);
  if (!r) {
    std::fprintf(stderr, "cairn mvcc: malformed entry in the key bucket (%zu bytes)\n",
                 bytes.size());
    std::abort();
  }
  return *r;
}

key_value to_key_value(const record& r, revision rev) {
  return key_value{std::string(r.key), r.create_revision,    rev.main,
                   r.version,          std::string(r.value), r.lease};
}

}  // namespace cairn::mvcc
