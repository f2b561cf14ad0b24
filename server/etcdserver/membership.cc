#include "etcdserver/membership.h"

#include <openssl/sha.h>

#include <algorithm>

#include "raftpb/peer.pb.h"
#include "schema/schema.h"

namespace cairn::etcdserver {
namespace {

std::uint64_t first_8_be(const unsigned char* d) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return v;
}

}  // namespace

std::uint64_t compute_member_id(std::vector<std::string> peer_urls, std::string_view token) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string b;
  for (const auto& u : peer_urls) b += u;
  b += token;
  unsigned char h[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), h);
  return first_8_be(h);
}

std::uint64_t compute_cluster_id(std::vector<std::uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  std::string b;
  for (auto id : ids) {
    for (int i = 7; i >= 0; --i) b.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  }
  unsigned char h[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), h);
  return first_8_be(h);
}

std::string encode_member(const member& m) {
  raftpb::MemberRecord r;
  r.set_id(m.id);
  r.set_name(m.name);
  for (const auto& u : m.peer_urls) r.add_peer_urls(u);
  for (const auto& u : m.client_urls) r.add_client_urls(u);
  r.set_is_learner(m.is_learner);
  return r.SerializeAsString();
}

std::optional<member> decode_member(std::string_view bytes) {
  raftpb::MemberRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  member m;
  m.id = r.id();
  m.name = r.name();
  m.peer_urls.assign(r.peer_urls().begin(), r.peer_urls().end());
  m.client_urls.assign(r.client_urls().begin(), r.client_urls().end());
  m.is_learner = r.is_learner();
  return m;
}

void membership::load(backend::backend& be) {
  std::vector<member> ms;
  std::set<std::uint64_t> removed;
  auto view = be.read();
  view.scan(schema::members, "", "", [&](std::string_view, std::string_view v) {
    if (auto m = decode_member(v)) ms.push_back(std::move(*m));
    return true;
  });
  view.scan(schema::members_removed, "", "", [&](std::string_view k, std::string_view) {
    if (auto id = schema::decode_u64(k)) removed.insert(*id);
    return true;
  });
  std::sort(ms.begin(), ms.end(), [](const member& a, const member& b) { return a.id < b.id; });
  std::lock_guard lock(mu_);
  members_ = std::move(ms);
  removed_ = std::move(removed);
}

void membership::put(backend::backend& be, const member& m) {
  be.put(schema::members, schema::encode_u64(m.id), encode_member(m));
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(members_.begin(), members_.end(), m.id,
                             [](const member& a, std::uint64_t id) { return a.id < id; });
  if (it != members_.end() && it->id == m.id) {
    *it = m;
  } else {
    members_.insert(it, m);
  }
}

void membership::remove(backend::backend& be, std::uint64_t id) {
  be.del(schema::members, schema::encode_u64(id));
  be.put(schema::members_removed, schema::encode_u64(id), "");
  std::lock_guard lock(mu_);
  std::erase_if(members_, [&](const member& m) { return m.id == id; });
  removed_.insert(id);
}

std::vector<member> membership::list() const {
  std::lock_guard lock(mu_);
  return members_;
}

std::optional<member> membership::get(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_) {
    if (m.id == id) return m;
  }
  return std::nullopt;
}

bool membership::is_removed(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  return removed_.contains(id);
}

bool membership::is_learner(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const member& m, std::uint64_t v) { return m.id < v; });
  return it != members_.end() && it->id == id && it->is_learner;
}

std::vector<std::uint64_t> membership::voters() const {
  std::lock_guard lock(mu_);
  std::vector<std::uint64_t> out;
  for (const auto& m : members_) {
    if (!m.is_learner) out.push_back(m.id);
  }
  return out;
}

}  // namespace cairn::etcdserver
