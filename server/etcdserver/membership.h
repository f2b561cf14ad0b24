// etcdserver/membership.h: who the cluster's members are (etcd's membership.RaftCluster).
//
// Ids are etcd's: a member's id is the first 8 bytes (big-endian) of the SHA-1 of its sorted
// peer URLs joined, then the cluster token; the cluster id the first 8 bytes of the SHA-1 of the
// sorted member ids, each 8 bytes big-endian. So every member of a new cluster computes the same
// ids from the same --initial-cluster and --initial-cluster-token, and they equal etcd's.
//
// The members live in the backend's `members` bucket (member id, 8 bytes big-endian, → a
// raftpb.MemberRecord); removed ids in `members_removed`. Changes are made by the apply thread
// (bootstrap, published attributes, conf changes) inside its batch; reads come from any thread.
//
// Thread-safety: a mutex guards the in-memory copy.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"

namespace cairn::etcdserver {

struct member {
  std::uint64_t id = 0;
  std::string name;  // empty until the member publishes it
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
  friend bool operator==(const member&, const member&) = default;
};

std::uint64_t compute_member_id(std::vector<std::string> peer_urls, std::string_view token);
std::uint64_t compute_cluster_id(std::vector<std::uint64_t> member_ids);

std::string encode_member(const member& m);
std::optional<member> decode_member(std::string_view bytes);

class membership {
 public:
  // Reads the buckets (at open).
  void load(backend::backend& be);
  // Writer thread: adds or replaces a member, in the open batch.
  void put(backend::backend& be, const member& m);
  // Writer thread: removes a member and remembers its id as removed.
  void remove(backend::backend& be, std::uint64_t id);

  std::vector<member> list() const;  // by id
  std::optional<member> get(std::uint64_t id) const;
  bool is_removed(std::uint64_t id) const;
  bool is_learner(std::uint64_t id) const;  // false for a member it does not know
  std::vector<std::uint64_t> voters() const;

 private:
  mutable std::mutex mu_;
  std::vector<member> members_;      // guarded by mu_, sorted by id
  std::set<std::uint64_t> removed_;  // guarded by mu_
};

}  // namespace cairn::etcdserver
