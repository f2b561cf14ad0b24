// A deterministic simulation of whole raft clusters (3 or 5 voters, plus members added on the
// way) in one thread on logical time. Everything a run does follows from its seed: the network's
// losses, delays, duplicates and partitions, crashes and restarts (a crash loses every unsynced
// write), membership changes, leader transfers, and the clients' writes and linearizable reads.
// After every Ready the cluster-wide safety properties are checked; at the end the network heals,
// every node comes back, and a leader must emerge and finish every acknowledged write in a
// bounded number of ticks. Not thread-safe: one simulation per thread.
//
// What each node is: raw_node over a `disk` (crash model, disk.h), driven like the server drives
// it (persist, fsync when must_sync, send, apply, advance), with a register state machine
// (history.h) that snapshots itself every few entries.
#pragma once

#include <cstdint>
#include <string>

#include "raft/sim/network.h"

namespace cairn::raft::sim {

struct options {
  std::uint64_t seed = 1;
  int nodes = 3;         // voters at the start: 3 or 5
  int ticks = 2000;      // length of the fault phase; the final heal and liveness check follow
  bool verbose = false;  // trace every event and the core's narration to stderr
  // The checks that state a protocol rule directly (nothing leaves a node before what it
  // promises is on stable storage; at most one membership change in flight). Off, only the
  // consequences are checked (two leaders, diverging logs, lost writes, stale reads).
  bool protocol_checks = true;

  // The command line that reproduces this run exactly.
  std::string command() const;
};

struct coverage {
  std::uint64_t runs = 0;
  std::uint64_t ticks = 0;
  std::uint64_t elections = 0;  // a node became leader
  std::uint64_t partitions = 0;
  std::uint64_t crashes = 0;
  std::uint64_t conf_changes = 0;  // membership change entries committed and applied
  std::uint64_t transfers = 0;     // leader transfers requested
  std::uint64_t snapshots_sent = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t compactions = 0;
  std::uint64_t writes_acked = 0;
  std::uint64_t writes_failed = 0;  // refused, timed out or lost with a crash (outcome unknown)
  std::uint64_t reads_served = 0;
  std::uint64_t reads_failed = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_lost = 0;

  void add(const coverage& c);
  std::string describe() const;
};

struct result {
  bool ok = true;
  std::string failure;  // the first violation, with the node and the entries involved
  sim_time at = 0;      // when it was found
  coverage cov;
};

result run(const options& o);

// Prints the reproducing command of the run in progress if the process aborts (a broken
// invariant inside the raft core aborts with its own message first).
void install_abort_reporter();
void set_current_run(const options& o);

}  // namespace cairn::raft::sim
