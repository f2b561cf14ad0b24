// The world the interaction scripts (testdata/*.txt) run in: a set of raw_nodes over
// memory_storage, a network queue between them, and an "application" that persists each Ready,
// applies committed entries (and conf changes), then advances. Every command returns the
// transcript text it produced; testdata/README.md lists the commands. Test-only; single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/raw_node.h"
#include "raft/storage.h"

namespace cairn::raft::testing {

// One parsed script command: `name pos1 pos2 key=value key=(a,b)`.
struct command {
  std::string name;
  std::vector<std::string> args;            // positional
  std::map<std::string, std::string> opts;  // key=value (lists keep their parentheses)
  int line = 0;
};

// Parses one command line; a malformed line yields name "" and the problem in args[0].
command parse_command(const std::string& line, int line_no);

class interaction_env {
 public:
  interaction_env();
  ~interaction_env();

  // Runs one command and returns its transcript (never empty: "ok" when nothing happened).
  std::string handle(const command& cmd);

 private:
  struct node_env;

  void emit(const std::string& line);
  void add_nodes(const command& cmd);
  void process_ready(std::uint64_t id);
  bool deliver(std::uint64_t to);
  void stabilize(const std::set<std::uint64_t>& ids);
  void tick(std::uint64_t id, int n);
  void print_status(std::uint64_t id);
  void print_log(std::uint64_t id);
  void restart(std::uint64_t id);
  void compact(std::uint64_t id, log_index index);
  bool connected(std::uint64_t a, std::uint64_t b) const;
  node_env& node(std::uint64_t id);
  std::set<std::uint64_t> ids_or_all(const command& cmd) const;
  void make_node(std::uint64_t id, node_env& n);

  std::map<std::uint64_t, std::unique_ptr<node_env>> nodes_;
  std::deque<raftpb::Message> network_;
  std::vector<std::set<std::uint64_t>> partition_;  // empty: everyone connected
  std::string out_;
  int indent_ = 0;
};

}  // namespace cairn::raft::testing
