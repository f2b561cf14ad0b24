// Small value types shared by the raft core: strong ids for terms and members, the role a node
// plays, and the error values its calls return. Plain values; no state, so thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

#include "base/strong_id.h"

namespace cairn::raft {

// A raft term (thesis §3.3). Zero means "before any election".
using raft_term = base::strong_id<struct raft_term_tag>;
// A member id. Zero means "none" (no leader known, no vote cast).
using node_id = base::strong_id<struct node_id_tag>;
// Log positions stay plain integers: they are added to and subtracted from everywhere, and mixing
// them up with a term or an id is what the two strong types above already catch.
using log_index = std::uint64_t;

inline constexpr node_id no_node{};
inline constexpr std::uint64_t no_limit = std::numeric_limits<std::uint64_t>::max();

// The four roles. A pre-candidate (thesis §9.6) asks for votes without raising its term.
enum class role_kind { follower, pre_candidate, candidate, leader };
std::string_view to_string(role_kind r);

// Why a proposal, read or campaign was not taken. `no_leader` is what the server turns into
// "etcdserver: no leader".
enum class propose_error {
  no_leader,                    // follower/candidate that knows no leader
  forwarding_disabled,          // follower with disable_proposal_forwarding
  leader_transfer_in_progress,  // leader handing over (thesis §3.10): proposals would be lost
  not_a_member,                 // this node was removed from the configuration
  conf_change_pending,          // an earlier membership change is not applied yet (§4.1)
};
std::string_view to_string(propose_error e);

// Outcome of a snapshot send, reported by the transport (report_snapshot).
enum class snapshot_status { finished, failure };

}  // namespace cairn::raft
