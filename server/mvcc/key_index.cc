#include "mvcc/key_index.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace cairn::mvcc {

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "cairn mvcc key index: %s\n", what);
  std::abort();
}

// How many keys one compaction chunk handles under the write lock.
constexpr std::size_t compaction_chunk = 10000;

}  // namespace

void key_index::put(revision rev) {
  if (!(modified_ < rev)) broken("put with a revision not above the key's last one");
  if (gens_.empty()) gens_.emplace_back();
  generation& g = gens_.back();
  if (g.revs.empty()) g.created = revision{rev.main, 0};
  g.revs.push_back(rev);
  ++g.version;
  modified_ = rev;
}

bool key_index::tombstone(revision rev) {
  if (gens_.empty() || gens_.back().revs.empty()) return false;
  put(rev);
  gens_.emplace_back();
  return true;
}

void key_index::restore(revision created, revision modified, std::int64_t version) {
  if (!gens_.empty()) broken("restore into a non-empty key index");
  gens_.push_back(generation{version, created, {modified}});
  modified_ = modified;
}

void key_index::restore_tombstone(revision rev) {
  if (!gens_.empty()) broken("restore into a non-empty key index");
  // All that compaction left of a generation: its tombstone at the compaction revision. Its
  // version and creation are unknown and never asked for (get never returns a tombstone).
  gens_.push_back(generation{1, rev, {rev}});
  gens_.emplace_back();
  modified_ = rev;
}

std::optional<key_index::state> key_index::get(std::int64_t at) const {
  for (std::size_t gi = gens_.size(); gi-- > 0;) {
    const generation& g = gens_[gi];
    if (g.revs.empty()) continue;
    // A closed generation whose tombstone is at or before `at`: the key was deleted then (any
    // later generation started after `at`, or we would have stopped there).
    if (gi != gens_.size() - 1 && g.revs.back().main <= at) return std::nullopt;
    if (g.revs.front().main > at) continue;
    for (std::size_t i = g.revs.size(); i-- > 0;) {
      if (g.revs[i].main <= at) {
        return state{g.revs[i], g.created,
                     g.version - static_cast<std::int64_t>(g.revs.size() - 1 - i)};
      }
    }
  }
  return std::nullopt;
}

std::pair<std::size_t, std::ptrdiff_t> key_index::compaction_point(std::int64_t at) const {
  // Skip the generations that ended before `at`. One that ended exactly at `at` stays: its
  // tombstone is the key's state at `at`, and watchers starting at `at` must see it.
  std::size_t gi = 0;
  while (gi + 1 < gens_.size()) {
    std::int64_t tomb = gens_[gi].revs.back().main;
#ifdef CAIRN_PLANTED_BUG_MVCC_COMPACT_OFF_BY_ONE
    if (tomb > at) break;  // planted: drops the tombstone at exactly the compaction revision
#else
    if (tomb >= at) break;
#endif
    ++gi;
  }
  const generation& g = gens_[gi];
  for (std::size_t i = g.revs.size(); i-- > 0;) {
    if (g.revs[i].main <= at) return {gi, static_cast<std::ptrdiff_t>(i)};
  }
  return {gi, -1};
}

void key_index::compact(std::int64_t at, revision_set* kept) {
  if (gens_.empty()) broken("compact of an empty key index");
  auto [gi, ri] = compaction_point(at);
  generation& g = gens_[gi];
  if (ri > 0) g.revs.erase(g.revs.begin(), g.revs.begin() + ri);
  if (ri >= 0 && kept != nullptr) kept->insert(g.revs.front());
  gens_.erase(gens_.begin(), gens_.begin() + static_cast<std::ptrdiff_t>(gi));
  // A closed generation reduced to its tombstone looks exactly as a restart rebuilds it
  // (restore_tombstone), so the index after a restart equals the one before.
  if (gens_.size() > 1 && gens_[0].revs.size() == 1) {
    gens_[0].version = 1;
    gens_[0].created = gens_[0].revs[0];
  }
}

void key_index::keep(std::int64_t at, revision_set& kept) const {
  if (gens_.empty()) return;
  auto [gi, ri] = compaction_point(at);
  if (ri >= 0) kept.insert(gens_[gi].revs[static_cast<std::size_t>(ri)]);
}

bool key_range::contains(std::string_view k) const {
  if (single()) return k == key;
  if (k < key) return false;
  if (range_end.size() == 1 && range_end[0] == '\0') return true;
  return k < range_end;
}

bool tree_index::visit(
    key_range r, std::int64_t at,
    const std::function<bool(std::string_view, const key_index::state&)>& fn) const {
  std::shared_lock lock(mu_);
  if (at < compacted_) return false;
  if (r.single()) {
    auto it = tree_.find(r.key);
    if (it == tree_.end()) return true;
    if (auto s = it->second.get(at)) fn(it->first, *s);
    return true;
  }
  bool to_end = r.range_end.size() == 1 && r.range_end[0] == '\0';
  for (auto it = tree_.lower_bound(r.key); it != tree_.end(); ++it) {
    if (!to_end && std::string_view(it->first) >= r.range_end) break;
    if (auto s = it->second.get(at)) {
      if (!fn(it->first, *s)) break;
    }
  }
  return true;
}

std::optional<std::int64_t> tree_index::count(key_range r, std::int64_t at) const {
  std::int64_t n = 0;
  if (!visit(r, at, [&](std::string_view, const key_index::state&) {
        ++n;
        return true;
      })) {
    return std::nullopt;
  }
  return n;
}

std::optional<key_index::state> tree_index::get(std::string_view key, std::int64_t at) const {
  std::shared_lock lock(mu_);
  auto it = tree_.find(key);
  if (it == tree_.end()) return std::nullopt;
  return it->second.get(at);
}

void tree_index::put(std::string_view key, revision rev) {
  std::unique_lock lock(mu_);
  auto it = tree_.find(key);
  if (it == tree_.end()) it = tree_.emplace(std::string(key), key_index{}).first;
  it->second.put(rev);
}

bool tree_index::tombstone(std::string_view key, revision rev) {
  std::unique_lock lock(mu_);
  auto it = tree_.find(key);
  if (it == tree_.end()) return false;
  return it->second.tombstone(rev);
}

void tree_index::replay(std::string_view key, revision rev, bool tombstone,
                        std::int64_t create_revision, std::int64_t version) {
  std::unique_lock lock(mu_);
  auto it = tree_.find(key);
  if (it == tree_.end()) {
    it = tree_.emplace(std::string(key), key_index{}).first;
    if (tombstone) {
      it->second.restore_tombstone(rev);
    } else {
      it->second.restore(revision{create_revision, 0}, rev, version);
    }
    return;
  }
  if (tombstone) {
    if (!it->second.tombstone(rev)) broken("a tombstone on disk for a key that was not live");
  } else {
    it->second.put(rev);
  }
}

revision_set tree_index::compact(std::int64_t at) {
  revision_set kept;
  begin_compaction(at);
  std::optional<std::string> next = std::string();
  while (next) next = compact_chunk(at, *next, compaction_chunk, &kept);
  return kept;
}

void tree_index::begin_compaction(std::int64_t at) {
  std::unique_lock lock(mu_);
  compacted_ = at;
}

std::optional<std::string> tree_index::compact_chunk(std::int64_t at, std::string_view from,
                                                     std::size_t limit, revision_set* kept) {
  std::unique_lock lock(mu_);
  auto it = tree_.lower_bound(from);
  for (std::size_t n = 0; it != tree_.end() && n < limit; ++n) {
    it->second.compact(at, kept);
    if (it->second.empty()) {
      it = tree_.erase(it);
    } else {
      ++it;
    }
  }
  if (it == tree_.end()) return std::nullopt;
  return it->first;
}

revision_set tree_index::keep(std::int64_t at) const {
  revision_set kept;
  std::shared_lock lock(mu_);
  for (const auto& [key, ki] : tree_) ki.keep(at, kept);
  return kept;
}

std::pair<std::int64_t, revision_set> tree_index::compacted_and_kept() const {
  std::pair<std::int64_t, revision_set> out;
  std::shared_lock lock(mu_);
  out.first = compacted_;
  for (const auto& [key, ki] : tree_) ki.keep(compacted_, out.second);
  return out;
}

std::int64_t tree_index::compacted() const {
  std::shared_lock lock(mu_);
  return compacted_;
}

void tree_index::clear() {
  std::unique_lock lock(mu_);
  tree_.clear();
  compacted_ = -1;
}

std::size_t tree_index::size() const {
  std::shared_lock lock(mu_);
  return tree_.size();
}

absl::btree_map<std::string, key_index, std::less<>> tree_index::snapshot() const {
  std::shared_lock lock(mu_);
  return tree_;
}

}  // namespace cairn::mvcc
