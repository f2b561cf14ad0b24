// Helpers shared by the WAL tests: building entries and comparing what a log replays.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "raftpb/raft.pb.h"
#include "wal/wal.h"

namespace cairn::wal::testing {

raftpb::Entry make_entry(uint64_t index, uint64_t term, std::string data);
raftpb::HardState make_state(uint64_t term, uint64_t vote, uint64_t commit);
// Entries first..last at one term, with data derived from index, term and size.
std::vector<raftpb::Entry> make_entries(uint64_t first, uint64_t last, uint64_t term,
                                        size_t size = 32);
bool same_entry(const raftpb::Entry& a, const raftpb::Entry& b);
bool same_state(const raftpb::HardState& a, const raftpb::HardState& b);
// "" when equal, else a description of the first difference.
std::string diff_entries(const std::vector<raftpb::Entry>& got,
                         const std::vector<raftpb::Entry>& want);

}  // namespace cairn::wal::testing
