#include "wal/wal_test_util.h"

#include <fmt/format.h>

namespace cairn::wal::testing {

raftpb::Entry make_entry(uint64_t index, uint64_t term, std::string data) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

raftpb::HardState make_state(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState s;
  s.set_term(term);
  s.set_vote(vote);
  s.set_commit(commit);
  return s;
}

std::vector<raftpb::Entry> make_entries(uint64_t first, uint64_t last, uint64_t term, size_t size) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = first; i <= last; ++i) {
    std::string data = fmt::format("{}/{}:", i, term);
    while (data.size() < size) data.push_back(static_cast<char>('a' + (data.size() + i) % 26));
    data.resize(size);
    out.push_back(make_entry(i, term, std::move(data)));
  }
  return out;
}

bool same_entry(const raftpb::Entry& a, const raftpb::Entry& b) {
  return a.index() == b.index() && a.term() == b.term() && a.type() == b.type() &&
         a.data() == b.data();
}

bool same_state(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

std::string diff_entries(const std::vector<raftpb::Entry>& got,
                         const std::vector<raftpb::Entry>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!same_entry(got[i], want[i])) {
      return fmt::format(
          "entry #{} differs: got index {} term {} ({} bytes), want index {} term "
          "{} ({} bytes)",
          i, got[i].index(), got[i].term(), got[i].data().size(), want[i].index(), want[i].term(),
          want[i].data().size());
    }
  }
  if (got.size() != want.size()) {
    return fmt::format("got {} entries, want {}", got.size(), want.size());
  }
  return "";
}

}  // namespace cairn::wal::testing
