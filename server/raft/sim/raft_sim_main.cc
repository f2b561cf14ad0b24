// raft_sim: runs the raft cluster simulation (cluster.h) for one seed or a range of seeds.
//
//   raft_sim --seed 42 --nodes 5 -v          one run, traced event by event
//   raft_sim --first-seed 1 --seeds 1000     a range; stops at the first failing seed
//
// A failing seed prints the violation and the exact command that reproduces it; the exit status
// is 1. The coverage counters of all runs are printed at the end.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "raft/sim/cluster.h"

namespace {

using cairn::raft::sim::coverage;
using cairn::raft::sim::options;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Deterministic simulation of raft clusters under faults"};
  std::uint64_t seed = 0;
  std::uint64_t seeds = 1;
  std::uint64_t first_seed = 1;
  options base;
  bool keep_going = false;
  unsigned jobs = 1;
  auto* seed_opt = app.add_option("--seed", seed, "run exactly this seed");
  app.add_option("--seeds", seeds, "number of seeds to run")->excludes(seed_opt);
  app.add_option("--first-seed", first_seed, "first seed of the range")->excludes(seed_opt);
  app.add_option("--nodes", base.nodes, "voters at the start")->check(CLI::IsMember({3, 5}));
  app.add_option("--ticks", base.ticks, "ticks of faults before the final heal")
      ->check(CLI::Range(100, 10000000));
  app.add_flag("-v,--verbose", base.verbose, "trace every event to stderr");
  bool consequences_only = false;
  app.add_flag("--no-protocol-checks", consequences_only,
               "check only the consequences of broken rules, not the rules themselves");
  app.add_flag("--keep-going", keep_going, "run every seed even after a failure");
  app.add_option("-j,--jobs", jobs, "seeds simulated in parallel")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  base.protocol_checks = !consequences_only;
  if (*seed_opt) {
    first_seed = seed;
    seeds = 1;
  }
  cairn::raft::sim::install_abort_reporter();

  std::mutex mu;
  coverage total;
  std::uint64_t failures = 0;
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> stop{false};
  auto worker = [&] {
    for (;;) {
      const std::uint64_t k = next.fetch_add(1);
      if (k >= seeds || stop.load()) return;
      options o = base;
      o.seed = first_seed + k;
      cairn::raft::sim::set_current_run(o);
      const auto r = cairn::raft::sim::run(o);
      std::lock_guard lock(mu);
      total.add(r.cov);
      if (!r.ok) {
        ++failures;
        std::printf("FAIL seed %llu: %s\n  reproduce: %s\n",
                    static_cast<unsigned long long>(o.seed), r.failure.c_str(),
                    o.command().c_str());
        std::fflush(stdout);
        if (!keep_going) stop = true;
      } else if (seeds == 1) {
        std::printf("ok seed %llu\n", static_cast<unsigned long long>(o.seed));
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  std::printf("coverage: %s\n", total.describe().c_str());
  std::printf("%llu of %llu runs failed\n", static_cast<unsigned long long>(failures),
              static_cast<unsigned long long>(total.runs));
  return failures == 0 ? 0 : 1;
}
