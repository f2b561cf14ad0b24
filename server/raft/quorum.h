// Majority arithmetic over a set of voters (thesis §3.4 elections, §3.6 commitment). Pure
// functions on values; thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>

#include "raft/types.h"

namespace cairn::raft {

enum class vote_result { pending, won, lost };
std::string_view to_string(vote_result r);

// The size of a majority of n voters.
constexpr std::size_t majority(std::size_t n) { return n / 2 + 1; }

// The highest index that a majority of `voters` have acknowledged; `acked(id)` gives each voter's
// match index (missing voters count as 0). With no voters there is nothing to protect, so
// the answer is the maximum index (etcd's convention), which callers never commit past their log.
log_index committed_index(const std::set<node_id>& voters,
                          const std::function<log_index(node_id)>& acked);

// Outcome of an election among `voters` given the answers in `votes` (true = granted). Answers
// from non-voters are ignored: a learner's vote never counts.
vote_result tally(const std::set<node_id>& voters, const std::map<node_id, bool>& votes);

}  // namespace cairn::raft
