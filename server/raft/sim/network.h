// The simulated network's shape: which links are cut (partitions) and the weather every message
// meets (loss, duplication, delay). Delivery itself is scheduled by the cluster's event queue;
// this class only answers "may a message from a reach b now" and "what happens to one sent now".
// Owned by one simulation; not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/sim/rng.h"
#include "raft/types.h"

namespace cairn::raft::sim {

// Logical time. A raft tick is ticks_to_time(1) units, so messages can arrive between ticks.
using sim_time = std::uint64_t;
inline constexpr sim_time units_per_tick = 10;
constexpr sim_time ticks_to_time(std::uint64_t ticks) { return ticks * units_per_tick; }

struct weather {
  double drop = 0;         // a message is lost
  double duplicate = 0;    // a message arrives twice (each copy with its own delay)
  sim_time min_delay = 1;  // ordinary delay range, in time units
  sim_time max_delay = 5;
  double slow = 0;  // a message is held back long enough to arrive after many later ones
  sim_time slow_delay = ticks_to_time(30);

  static weather perfect() { return {0, 0, 1, 3, 0, 0}; }
  std::string describe() const;
};

// What the network does with one message sent now: the delays of each copy delivered (empty if
// lost).
std::vector<sim_time> fate(const weather& w, rng& r);

class network {
 public:
  bool connected(node_id a, node_id b) const;
  bool partitioned() const { return !cut_.empty(); }
  // Cuts every link between two different groups (nodes in no group keep all their links).
  void split(const std::vector<std::vector<node_id>>& groups);
  // `left` and `right` cannot talk to each other, but `bridge` talks to both.
  void bridge(const std::vector<node_id>& left, const std::vector<node_id>& right);
  void heal() { cut_.clear(); }
  std::string describe() const;

  ::cairn::raft::sim::weather weather;

 private:
  static std::pair<std::uint64_t, std::uint64_t> link(node_id a, node_id b);
  std::set<std::pair<std::uint64_t, std::uint64_t>> cut_;
};

}  // namespace cairn::raft::sim
