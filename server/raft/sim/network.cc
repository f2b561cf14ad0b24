#include "raft/sim/network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cairn::raft::sim {

std::string weather::describe() const {
  return absl::StrFormat("drop=%.2f dup=%.2f delay=%d..%d slow=%.2f", drop, duplicate, min_delay,
                         max_delay, slow);
}

std::vector<sim_time> fate(const weather& w, rng& r) {
  std::vector<sim_time> out;
  if (r.chance(w.drop)) return out;
  const int copies = r.chance(w.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    sim_time d = static_cast<sim_time>(
        r.between(static_cast<std::int64_t>(w.min_delay), static_cast<std::int64_t>(w.max_delay)));
    if (r.chance(w.slow)) d += r.below(w.slow_delay) + 1;
    out.push_back(d);
  }
  return out;
}

std::pair<std::uint64_t, std::uint64_t> network::link(node_id a, node_id b) {
  return std::minmax(a.value(), b.value());
}

bool network::connected(node_id a, node_id b) const {
  return cut_.empty() || !cut_.contains(link(a, b));
}

void network::split(const std::vector<std::vector<node_id>>& groups) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t h = g + 1; h < groups.size(); ++h) {
      for (node_id a : groups[g]) {
        for (node_id b : groups[h]) cut_.insert(link(a, b));
      }
    }
  }
}

void network::bridge(const std::vector<node_id>& left, const std::vector<node_id>& right) {
  split({left, right});
}

std::string network::describe() const {
  if (cut_.empty()) return "fully connected";
  std::string out = "cut:";
  for (const auto& [a, b] : cut_) absl::StrAppend(&out, " ", a, "-", b);
  return out;
}

}  // namespace cairn::raft::sim
