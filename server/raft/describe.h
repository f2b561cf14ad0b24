// One-line, human-readable renderings of raft values, for the interaction transcripts, the
// core's narration and debugging. Pure functions; thread-safe.
//
// Notation: an entry is `index@term`, followed by its content: `empty` (the no-op a new leader
// appends), a quoted payload, or `conf(add 4)`. A message is `from->to type term=T ...`.
#pragma once

#include <string>
#include <string_view>

#include "raftpb/raft.pb.h"

namespace cairn::raft {

std::string_view message_type_name(raftpb::MessageType t);
// Quoted, with non-printable bytes escaped.
std::string describe_bytes(std::string_view data);
std::string describe_conf_change(const raftpb::ConfChange& cc);
// Only the content: `empty`, `"data"` or `conf(...)`.
std::string describe_entry_content(const raftpb::Entry& e);
std::string describe_entry(const raftpb::Entry& e);
std::string describe_conf_state(const raftpb::ConfState& cs);
std::string describe_snapshot(const raftpb::Snapshot& s);
std::string describe_hard_state(const raftpb::HardState& hs);
std::string describe_message(const raftpb::Message& m);

}  // namespace cairn::raft
