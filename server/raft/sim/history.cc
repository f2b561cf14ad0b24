#include "raft/sim/history.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "raft/describe.h"

namespace cairn::raft::sim {

// ---------------------------------------------------------------- registers

// "reg:write_id:index;" per written register; unwritten registers are left out.
std::string registers::encode() const {
  std::string out;
  for (int r = 0; r < register_count; ++r) {
    const register_value& v = values[static_cast<std::size_t>(r)];
    if (v.write_id != 0) absl::StrAppend(&out, r, ":", v.write_id, ":", v.index, ";");
  }
  return out;
}

std::optional<registers> registers::decode(std::string_view data) {
  registers out;
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(data.data(), data.size()), ';', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(item, ':');
    int r = 0;
    register_value v;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &r) || !absl::SimpleAtoi(f[1], &v.write_id) ||
        !absl::SimpleAtoi(f[2], &v.index) || r < 0 || r >= register_count) {
      return std::nullopt;
    }
    out.values[static_cast<std::size_t>(r)] = v;
  }
  return out;
}

std::string registers::describe() const {
  std::string out = "{";
  for (int r = 0; r < register_count; ++r) {
    const register_value& v = values[static_cast<std::size_t>(r)];
    absl::StrAppend(&out, r == 0 ? "" : " ", "r", r, "=");
    if (v.write_id == 0) {
      out += "-";
    } else {
      absl::StrAppend(&out, "w", v.write_id, "@", v.index);
    }
  }
  return out + "}";
}

std::string encode_write(const write_op& w) { return absl::StrCat("w", w.write_id, " r", w.reg); }

std::optional<write_op> decode_write(std::string_view data) {
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(data.data(), data.size()), ' ');
  write_op w;
  if (f.size() != 2 || f[0].size() < 2 || f[0][0] != 'w' || f[1].size() < 2 || f[1][0] != 'r' ||
      !absl::SimpleAtoi(f[0].substr(1), &w.write_id) || !absl::SimpleAtoi(f[1].substr(1), &w.reg) ||
      w.reg < 0 || w.reg >= register_count || w.write_id == 0) {
    return std::nullopt;
  }
  return w;
}

std::uint64_t content_hash(const raftpb::Entry& e) {
  // FNV-1a over the type and the data: stable across runs and platforms.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  mix(static_cast<unsigned char>(e.type()));
  for (char c : e.data()) mix(static_cast<unsigned char>(c));
  return h;
}

// ---------------------------------------------------------------- history

verdict history::on_leader(raft_term term, node_id id) {
  auto [it, inserted] = leaders_.try_emplace(term, id);
  if (!inserted && it->second != id) {
    return absl::StrFormat("election safety: nodes %d and %d both became leader of term %d",
                           it->second.value(), id.value(), term.value());
  }
  return std::nullopt;
}

verdict history::on_log_entry(node_id by, const raftpb::Entry& e, std::optional<raft_term> prev) {
  const std::uint64_t content = content_hash(e);
  auto [it, inserted] =
      logged_.try_emplace(entry_key{e.index(), e.term()}, logged_entry{content, prev});
  if (inserted) return std::nullopt;
  logged_entry& seen = it->second;
  if (seen.content != content) {
    return absl::StrFormat(
        "log matching: node %d holds %s whose content differs from another "
        "node's entry %d@%d",
        by.value(), describe_entry(e), e.index(), e.term());
  }
  if (prev && seen.prev && *prev != *seen.prev) {
    return absl::StrFormat(
        "log matching: node %d holds %d@%d after an entry of term %d, another "
        "node holds it after term %d",
        by.value(), e.index(), e.term(), prev->value(), seen.prev->value());
  }
  if (!seen.prev) seen.prev = prev;
  return std::nullopt;
}

verdict history::on_committed(node_id by, log_index index, raft_term term, raft_term now) {
  if (committed_.size() <= index) committed_.resize(index + 1);
  committed_entry& c = committed_[index];
  if (c.known_in.is_zero() || now < c.known_in) c.known_in = now;
  if (c.term.is_zero()) {
    c.term = term;
  } else if (c.term != term) {
    return absl::StrFormat(
        "state machine safety: node %d has %d@%d committed, but %d@%d was "
        "committed before",
        by.value(), index, term.value(), index, c.term.value());
  }
  max_committed_ = std::max(max_committed_, index);
  return std::nullopt;
}

verdict history::on_applied(node_id by, const raftpb::Entry& e, raft_term now) {
  if (auto v = on_committed(by, e.index(), raft_term{e.term()}, now)) return v;
  committed_entry& c = committed_[e.index()];
  const std::uint64_t content = content_hash(e);
  if (!c.has_content) {
    c.has_content = true;
    c.content = content;
    if (e.type() == raftpb::ENTRY_NORMAL) {
      if (auto w = decode_write(e.data())) {
        writes_[static_cast<std::size_t>(w->reg)][e.index()] = w->write_id;
      }
    }
  } else if (c.content != content) {
    return absl::StrFormat(
        "state machine safety: node %d applied %s, another node applied "
        "different content at index %d",
        by.value(), describe_entry(e), e.index());
  }
  return std::nullopt;
}

std::optional<raft_term> history::committed_term(log_index i) const {
  if (i >= committed_.size() || committed_[i].term.is_zero()) return std::nullopt;
  return committed_[i].term;
}

std::optional<raft_term> history::committed_in(log_index i) const {
  if (i >= committed_.size() || committed_[i].term.is_zero()) return std::nullopt;
  return committed_[i].known_in;
}

registers history::state_at(log_index i) const {
  registers out;
  for (std::size_t r = 0; r < writes_.size(); ++r) {
    auto it = writes_[r].upper_bound(i);
    if (it == writes_[r].begin()) continue;
    --it;
    out.values[r] = {it->second, it->first};
  }
  return out;
}

}  // namespace cairn::raft::sim
