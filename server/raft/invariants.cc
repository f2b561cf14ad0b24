#include "raft/invariants.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "raft/raft.h"

namespace cairn::raft {

invariant_checker::view invariant_checker::of(const raft& r) {
  view v;
  v.id = r.id();
  v.term = r.term();
  v.vote = r.vote();
  v.lead = r.lead();
  v.role = r.role();
  v.committed = r.log().committed();
  v.applied = r.log().applied();
  v.first_index = r.log().first_index();
  v.last_index = r.log().last_index();
  v.last_term = r.log().last_term();
  v.last_stable = r.log().last_stable_index();
  const raft_log* log = &r.log();
  v.term_at = [log](log_index i) -> std::optional<raft_term> {
    auto t = log->term(i);
    if (!t) return std::nullopt;
    return *t;
  };
  return v;
}

void invariant_checker::fail(const view& v, std::string_view after, const std::string& what) const {
  std::fprintf(stderr, "raft invariant violated on node %llu after %.*s: %s\n",
               static_cast<unsigned long long>(v.id.value()), static_cast<int>(after.size()),
               after.data(), what.c_str());
  std::abort();
}

void invariant_checker::check(const view& v, std::string_view after) {
  if (seen_) {
    if (v.term < term_)
      fail(v, after,
           absl::StrFormat("term went back from %d to %d", term_.value(), v.term.value()));
    if (v.term == term_ && !vote_.is_zero() && v.vote != vote_) {
      fail(v, after,
           absl::StrFormat("vote changed within term %d from %d to %d", v.term.value(),
                           vote_.value(), v.vote.value()));
    }
    if (v.committed < committed_) {
      fail(v, after,
           absl::StrFormat("commit index went back from %d to %d", committed_, v.committed));
    }
  }
  if (v.role == role_kind::leader && v.lead != v.id) {
    fail(v, after, absl::StrFormat("leader role but lead is %d", v.lead.value()));
  }
  if (!v.lead.is_zero()) {
    auto [it, inserted] = leaders_.try_emplace(v.term, v.lead);
    if (!inserted && it->second != v.lead) {
      fail(v, after,
           absl::StrFormat("two leaders in term %d: %d and %d", v.term.value(), it->second.value(),
                           v.lead.value()));
    }
  }
  if (v.applied > v.committed || v.committed > v.last_index) {
    fail(v, after,
         absl::StrFormat("cursors out of order: applied %d, committed %d, last %d", v.applied,
                         v.committed, v.last_index));
  }
  if (v.last_term > v.term) {
    fail(v, after,
         absl::StrFormat("last log term %d is beyond the current term %d", v.last_term.value(),
                         v.term.value()));
  }
  log_index from = 0;
  if (seen_ && ++since_full_ < full_every && v.first_index == last_.first_index &&
      v.last_index >= last_.last_index && v.term_at(last_.last_index) == last_.last_term) {
    from = std::min({dirty_from_, last_.last_stable + 1, last_.last_index + 1});
  } else {
    since_full_ = 0;
  }
  check_log(v, after, from);
  last_ = {v.first_index, v.last_index, v.last_term, v.last_stable};
  dirty_from_ = no_limit;
  seen_ = true;
  term_ = v.term;
  vote_ = v.vote;
  committed_ = v.committed;
}

void invariant_checker::check_log(const view& v, std::string_view after, log_index from) {
  // What raft considers stable must be what reached the disk.
  for (auto it = persisted_.lower_bound(from); it != persisted_.end();) {
    if (it->first + 1 < v.first_index) {
      it = persisted_.erase(it);  // compacted away
      continue;
    }
    if (it->first > v.last_stable) break;
    if (auto t = v.term_at(it->first); t && *t != it->second) {
      fail(v, after,
           absl::StrFormat("stable entry %d has term %d in the log but %d on disk", it->first,
                           t->value(), it->second.value()));
    }
    ++it;
  }
  // Remember newly committed entries, then check that no committed entry changed.
  const log_index fresh = std::max(seen_ ? committed_ + 1 : v.committed,
                                   v.committed >= window ? v.committed - window + 1 : 0);
  for (log_index i = std::max(fresh, v.first_index - 1); i <= v.committed && i > 0; ++i) {
    if (auto t = v.term_at(i)) committed_terms_.try_emplace(i, *t);
  }
  for (auto it = committed_terms_.lower_bound(from); it != committed_terms_.end();) {
    if (it->first + 1 < v.first_index) {
      it = committed_terms_.erase(it);
      continue;
    }
    if (auto t = v.term_at(it->first); t && *t != it->second) {
      fail(v, after,
           absl::StrFormat("committed entry %d changed term from %d to %d", it->first,
                           it->second.value(), t->value()));
    }
    ++it;
  }
  while (committed_terms_.size() > window) committed_terms_.erase(committed_terms_.begin());
}

void invariant_checker::on_persisted(std::span<const raftpb::Entry> ents,
                                     const raftpb::Snapshot* snap) {
  if (snap != nullptr && snap->metadata().index() > 0) {
    // A snapshot replaces the log; only its last entry is known from here on.
    persisted_.clear();
    persisted_[snap->metadata().index()] = raft_term{snap->metadata().term()};
  }
  if (!ents.empty()) {
    // Appending at i replaces whatever was persisted from i on.
    persisted_.erase(persisted_.lower_bound(ents.front().index()), persisted_.end());
    for (const auto& e : ents) persisted_[e.index()] = raft_term{e.term()};
  }
  while (persisted_.size() > window) persisted_.erase(persisted_.begin());
  if (snap != nullptr && snap->metadata().index() > 0)
    dirty_from_ = std::min(dirty_from_, snap->metadata().index());
  if (!ents.empty()) dirty_from_ = std::min(dirty_from_, ents.front().index());
}

}  // namespace cairn::raft
