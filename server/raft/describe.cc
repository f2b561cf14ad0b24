#include "raft/describe.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/read_only.h"

namespace cairn::raft {

std::string_view message_type_name(raftpb::MessageType t) {
  switch (t) {
    case raftpb::MSG_HUP:
      return "hup";
    case raftpb::MSG_BEAT:
      return "beat";
    case raftpb::MSG_PROP:
      return "prop";
    case raftpb::MSG_APP:
      return "app";
    case raftpb::MSG_APP_RESP:
      return "app-resp";
    case raftpb::MSG_VOTE:
      return "vote";
    case raftpb::MSG_VOTE_RESP:
      return "vote-resp";
    case raftpb::MSG_SNAP:
      return "snap";
    case raftpb::MSG_HEARTBEAT:
      return "heartbeat";
    case raftpb::MSG_HEARTBEAT_RESP:
      return "heartbeat-resp";
    case raftpb::MSG_UNREACHABLE:
      return "unreachable";
    case raftpb::MSG_SNAP_STATUS:
      return "snap-status";
    case raftpb::MSG_CHECK_QUORUM:
      return "check-quorum";
    case raftpb::MSG_TRANSFER_LEADER:
      return "transfer-leader";
    case raftpb::MSG_TIMEOUT_NOW:
      return "timeout-now";
    case raftpb::MSG_READ_INDEX:
      return "read-index";
    case raftpb::MSG_READ_INDEX_RESP:
      return "read-index-resp";
    case raftpb::MSG_PRE_VOTE:
      return "pre-vote";
    case raftpb::MSG_PRE_VOTE_RESP:
      return "pre-vote-resp";
    default:
      return "unknown";
  }
}

std::string describe_bytes(std::string_view data) {
  return absl::StrCat("\"", absl::CHexEscape(absl::string_view(data.data(), data.size())), "\"");
}

std::string describe_conf_change(const raftpb::ConfChange& cc) {
  const char* kind = "?";
  switch (cc.type()) {
    case raftpb::CONF_ADD_NODE:
      kind = "add";
      break;
    case raftpb::CONF_REMOVE_NODE:
      kind = "remove";
      break;
    case raftpb::CONF_UPDATE_NODE:
      kind = "update";
      break;
    case raftpb::CONF_ADD_LEARNER_NODE:
      kind = "add-learner";
      break;
    default:
      break;
  }
  return absl::StrCat(kind, " ", cc.node_id());
}

std::string describe_entry_content(const raftpb::Entry& e) {
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    raftpb::ConfChange cc;
    if (!cc.ParseFromString(e.data())) return "conf(unparsable)";
    return absl::StrCat("conf(", describe_conf_change(cc), ")");
  }
  if (e.data().empty()) return "empty";
  return describe_bytes(e.data());
}

std::string describe_entry(const raftpb::Entry& e) {
  return absl::StrCat(e.index(), "@", e.term(), " ", describe_entry_content(e));
}

std::string describe_conf_state(const raftpb::ConfState& cs) {
  std::string out = absl::StrCat("voters=(", absl::StrJoin(cs.voters(), ","), ")");
  if (cs.learners_size() > 0)
    absl::StrAppend(&out, " learners=(", absl::StrJoin(cs.learners(), ","), ")");
  return out;
}

std::string describe_snapshot(const raftpb::Snapshot& s) {
  return absl::StrCat(s.metadata().index(), "@", s.metadata().term(), " ",
                      describe_conf_state(s.metadata().conf_state()),
                      " data=", describe_bytes(s.data()));
}

std::string describe_hard_state(const raftpb::HardState& hs) {
  return absl::StrCat("term=", hs.term(), " vote=", hs.vote(), " commit=", hs.commit());
}

namespace {

std::string describe_entries(const raftpb::Message& m, bool with_ids) {
  std::vector<std::string> parts;
  for (const auto& e : m.entries())
    parts.push_back(with_ids ? describe_entry(e) : describe_entry_content(e));
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

std::string describe_round(const std::string& ctx) {
  if (ctx.empty()) return "";
  if (auto id = read_only::decode_context(ctx)) return absl::StrCat(" read-round=", *id);
  return absl::StrCat(" ctx=", describe_bytes(ctx));
}

}  // namespace

std::string describe_message(const raftpb::Message& m) {
  std::string out =
      absl::StrCat(m.from(), "->", m.to(), " ", std::string(message_type_name(m.type())));
  if (m.term() != 0) absl::StrAppend(&out, " term=", m.term());
  switch (m.type()) {
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      absl::StrAppend(&out, " last=", m.index(), "@", m.log_term());
      if (!m.context().empty()) absl::StrAppend(&out, " (", m.context(), ")");
      break;
    case raftpb::MSG_VOTE_RESP:
    case raftpb::MSG_PRE_VOTE_RESP:
      absl::StrAppend(&out, m.reject() ? " rejected" : " granted");
      break;
    case raftpb::MSG_APP:
      absl::StrAppend(&out, " prev=", m.index(), "@", m.log_term(), " commit=", m.commit());
      if (m.entries_size() > 0) absl::StrAppend(&out, " entries=", describe_entries(m, true));
      break;
    case raftpb::MSG_APP_RESP:
      if (m.reject()) {
        absl::StrAppend(&out, " rejected prev=", m.index(), " hint=", m.reject_hint(), "@",
                        m.log_term());
      } else if (m.index() != 0) {
        absl::StrAppend(&out, " index=", m.index());
      }
      break;
    case raftpb::MSG_HEARTBEAT:
      absl::StrAppend(&out, " commit=", m.commit(), describe_round(m.context()));
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      absl::StrAppend(&out, describe_round(m.context()));
      break;
    case raftpb::MSG_SNAP:
      absl::StrAppend(&out, " snapshot=", describe_snapshot(m.snapshot()));
      break;
    case raftpb::MSG_PROP:
      absl::StrAppend(&out, " entries=", describe_entries(m, false));
      break;
    case raftpb::MSG_READ_INDEX:
      absl::StrAppend(&out, " ctx=", describe_bytes(m.context()));
      break;
    case raftpb::MSG_READ_INDEX_RESP:
      absl::StrAppend(&out, " index=", m.index(), " ctx=", describe_bytes(m.context()));
      break;
    case raftpb::MSG_SNAP_STATUS:
      absl::StrAppend(&out, m.reject() ? " failed" : " finished");
      break;
    default:
      break;
  }
  return out;
}

}  // namespace cairn::raft
