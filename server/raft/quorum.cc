#include "raft/quorum.h"

#include <algorithm>
#include <vector>

namespace cairn::raft {

std::string_view to_string(vote_result r) {
  switch (r) {
    case vote_result::pending:
      return "pending";
    case vote_result::won:
      return "won";
    case vote_result::lost:
      return "lost";
  }
  return "?";
}

log_index committed_index(const std::set<node_id>& voters,
                          const std::function<log_index(node_id)>& acked) {
  if (voters.empty()) return no_limit;
  std::vector<log_index> idx;
  idx.reserve(voters.size());
  for (node_id v : voters) idx.push_back(acked(v));
  // Sorted descending, the entry at position majority-1 is acknowledged by at least a majority.
  std::sort(idx.begin(), idx.end(), std::greater<>());
  return idx[majority(idx.size()) - 1];
}

vote_result tally(const std::set<node_id>& voters, const std::map<node_id, bool>& votes) {
  if (voters.empty()) return vote_result::won;
  std::size_t granted = 0, missing = 0;
  for (node_id v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  const std::size_t need = majority(voters.size());
  if (granted >= need) return vote_result::won;
  if (granted + missing >= need) return vote_result::pending;
  return vote_result::lost;
}

}  // namespace cairn::raft
