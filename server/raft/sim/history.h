// The cluster-wide record the simulator checks every node against, and the replicated state
// machine the simulated clients use. Owned by one simulation; not thread-safe.
//
// The state machine is a handful of registers. Every client write is unique (a fresh write id to
// one register), so a read names exactly which write it observed and where that write sits in the
// log; that makes the linearizability check a comparison of log indexes:
//   - a write is acknowledged when the node the client sent it to applies it;
//   - `floor` is the highest log index the clients have reason to expect: the index of every
//     acknowledged write, and of every write a completed read observed;
//   - a read remembers the floor when it was issued, and must be served from a state that has
//     applied at least that far, and that state must be the one the committed log defines.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "raft/types.h"
#include "raftpb/raft.pb.h"

namespace cairn::raft::sim {

inline constexpr int register_count = 4;

struct register_value {
  std::uint64_t write_id = 0;  // 0: never written
  log_index index = 0;         // where that write sits in the log
  friend bool operator==(const register_value&, const register_value&) = default;
};

// The application state of one node (or of a snapshot).
struct registers {
  std::array<register_value, register_count> values;
  std::string encode() const;
  static std::optional<registers> decode(std::string_view data);
  std::string describe() const;
  friend bool operator==(const registers&, const registers&) = default;
};

// A client write as it travels in an entry's data.
struct write_op {
  std::uint64_t write_id = 0;
  int reg = 0;
};
std::string encode_write(const write_op& w);
std::optional<write_op> decode_write(std::string_view data);

// A violation found, or nullopt.
using verdict = std::optional<std::string>;

class history {
 public:
  // Election Safety (§3.6.3): at most one leader per term.
  verdict on_leader(raft_term term, node_id id);
  // Log Matching (§3.5): two entries with the same index and term have the same content and the
  // same predecessor term (so, by induction, identical logs up to there). `prev` is unknown when
  // the predecessor is compacted.
  verdict on_log_entry(node_id by, const raftpb::Entry& e, std::optional<raft_term> prev);
  // A node at term `now` learned that (index, term) is committed (State Machine Safety on the
  // commit index).
  verdict on_committed(node_id by, log_index index, raft_term term, raft_term now);
  // A node at term `now` applied an entry: same term and same content as whatever any node
  // applied there.
  verdict on_applied(node_id by, const raftpb::Entry& e, raft_term now);

  // Highest index known committed, and the term of the entry there (nullopt if never recorded).
  log_index max_committed() const { return max_committed_; }
  std::optional<raft_term> committed_term(log_index i) const;
  // The lowest term in which some node knew entry i committed: Leader Completeness promises it to
  // the leaders of later terms only (a late vote can still make a leader of an earlier term).
  std::optional<raft_term> committed_in(log_index i) const;

  // The register state the committed log defines after applying index i.
  registers state_at(log_index i) const;

  void on_acknowledged(log_index index) { floor_ = std::max(floor_, index); }
  void on_observed(log_index write_index) { floor_ = std::max(floor_, write_index); }
  log_index floor() const { return floor_; }

  std::size_t leaders() const { return leaders_.size(); }

 private:
  struct committed_entry {
    raft_term term;
    raft_term known_in;  // lowest term of a node that knew it committed
    bool has_content = false;
    std::uint64_t content = 0;
  };
  struct logged_entry {
    std::uint64_t content = 0;
    std::optional<raft_term> prev;
  };
  struct entry_key {
    log_index index;
    std::uint64_t term;
    friend bool operator==(const entry_key&, const entry_key&) = default;
  };
  struct entry_key_hash {
    std::size_t operator()(const entry_key& k) const {
      return static_cast<std::size_t>(k.index * 0x9e3779b97f4a7c15ULL ^ k.term);
    }
  };

  std::map<raft_term, node_id> leaders_;
  std::unordered_map<entry_key, logged_entry, entry_key_hash> logged_;
  std::vector<committed_entry> committed_;  // by index; term 0 = not recorded yet
  log_index max_committed_ = 0;
  std::array<std::map<log_index, std::uint64_t>, register_count> writes_;
  log_index floor_ = 0;
};

// A stable fingerprint of an entry's type and data.
std::uint64_t content_hash(const raftpb::Entry& e);

}  // namespace cairn::raft::sim
