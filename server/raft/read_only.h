// Linearizable reads without writing to the log (thesis §6.4, ReadIndex). Owned by a leader's
// role state; not thread-safe.
//
// A read is answered with the commit index the leader had when it confirmed its leadership by a
// heartbeat round acknowledged by a majority *after* the read arrived. One round serves every read
// that was waiting when it started; reads arriving during a round wait for the next one, which
// starts as soon as the current one completes (so at most one round is in flight and heartbeat
// traffic does not grow with the read rate). A round is named by a number that travels in the
// heartbeat's context and comes back in the response.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"

namespace cairn::raft {

// One read as the leader holds it: who asked (this node, or a follower that forwarded it) and the
// caller's opaque context.
struct read_request {
  node_id from;
  std::string context;
};

// A read that can be served once the application has applied up to `index`.
struct read_state {
  log_index index = 0;
  std::string context;
  friend bool operator==(const read_state&, const read_state&) = default;
};

class read_only {
 public:
  struct round {
    std::uint64_t id = 0;
    log_index index = 0;  // the leader's commit index when the round started
    std::set<node_id> acks;
    std::vector<read_request> requests;
  };

  void enqueue(read_request r) { queued_.push_back(std::move(r)); }
  // Starts a round for everything queued, when none is in flight. Returns the round started.
  const round* maybe_start(log_index commit, node_id self);
  // The in-flight round's id, for heartbeats that retransmit it.
  std::optional<std::uint64_t> in_flight_id() const;
  // Counts an acknowledgement; returns the round when it has just reached a majority of voters.
  std::optional<round> ack(std::uint64_t id, node_id from, const std::set<node_id>& voters);
  // Everything waiting, in arrival order (the leader is stepping down).
  std::vector<read_request> drain();
  std::size_t waiting() const;

  static std::string encode_context(std::uint64_t round_id);
  static std::optional<std::uint64_t> decode_context(std::string_view ctx);

 private:
  std::uint64_t next_id_ = 1;
  std::optional<round> in_flight_;
  std::vector<read_request> queued_;
};

}  // namespace cairn::raft
