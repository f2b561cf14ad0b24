// Throughput of the raft core: proposals of 100-byte entries through a simulated 3-node cluster
// on a perfect network (every message delivered at once, in order, nothing lost), each node driven
// as the server drives it (persist into memory storage, send, apply, advance). What it measures
// is the library plus the minimum any caller must do (copying entries into storage), so it is an
// upper bound for the server and must stay far above what disks and networks allow.
//
//   raft_sim_bench --benchmark_filter=propose
//
// Each iteration proposes `batch` entries on the leader (as the server batches the proposals that
// arrive between two Readys) and runs the cluster until every node has applied them.
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace cairn::raft {
namespace {

constexpr std::size_t entry_bytes = 100;

class cluster3 {
 public:
  cluster3() {
    raftpb::Snapshot boot;
    boot.mutable_metadata()->set_index(1);
    boot.mutable_metadata()->set_term(1);
    for (std::uint64_t id = 1; id <= 3; ++id)
      boot.mutable_metadata()->mutable_conf_state()->add_voters(id);
    raftpb::HardState hs;
    hs.set_term(1);
    hs.set_commit(1);
    for (std::uint64_t id = 1; id <= 3; ++id) {
      auto n = std::make_unique<member>();
      (void)n->storage.apply_snapshot(boot);
      n->storage.set_hard_state(hs);
      config c;
      c.id = node_id{id};
      c.election_tick = 10;
      c.heartbeat_tick = 1;
      c.max_inflight_msgs = 256;
      c.max_size_per_msg = 1024 * 1024;
      n->node = std::make_unique<raw_node>(c, n->storage);
      n->applied = 1;
      members_.push_back(std::move(n));
    }
    members_[0]->node->campaign();
    run();
  }

  raw_node& leader() { return *members_[0]->node; }
  log_index min_applied() const {
    log_index m = members_[0]->applied;
    for (const auto& n : members_) m = std::min(m, n->applied);
    return m;
  }

  // Runs until nothing moves: every Ready handled, every message delivered.
  void run() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& n : members_) {
        while (n->node->has_ready()) {
          busy = true;
          handle_ready(*n);
        }
      }
      while (!network_.empty()) {
        busy = true;
        raftpb::Message m = std::move(network_.front());
        network_.pop_front();
        const std::uint64_t to = m.to();
        (void)members_[to - 1]->node->step(std::move(m));
      }
    }
  }

 private:
  struct member {
    memory_storage storage;
    std::unique_ptr<raw_node> node;
    log_index applied = 0;
  };

  void handle_ready(member& n) {
    ready rd = n.node->ready();
    if (rd.snapshot) (void)n.storage.apply_snapshot(*rd.snapshot);
    n.storage.append(std::move(rd.entries));
    if (rd.hard_state) n.storage.set_hard_state(*rd.hard_state);
    for (auto& m : rd.messages) network_.push_back(std::move(m));
    std::size_t bytes = 0;
    for (const auto& e : rd.committed_entries) bytes += e.data().size();
    benchmark::DoNotOptimize(bytes);
    if (!rd.committed_entries.empty()) n.applied = rd.committed_entries.back().index();
    n.node->advance();
    // Keep memory flat over millions of entries: drop what every member has applied.
    if (n.applied >= n.storage.first_index() + 20000) (void)n.storage.compact(n.applied - 10000);
  }

  std::vector<std::unique_ptr<member>> members_;
  std::deque<raftpb::Message> network_;
};

void propose(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  cluster3 c;
  const std::string payload(entry_bytes, 'x');
  for (auto _ : state) {
    const log_index want = c.min_applied() + batch;
    for (std::size_t i = 0; i < batch; ++i) {
      if (!c.leader().propose(payload)) state.SkipWithError("proposal refused");
    }
    c.run();
    if (c.min_applied() < want) state.SkipWithError("entries not applied everywhere");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * entry_bytes));
}
BENCHMARK(propose)->Arg(1)->Arg(16)->Arg(256)->Arg(4096);

}  // namespace
}  // namespace cairn::raft

BENCHMARK_MAIN();
