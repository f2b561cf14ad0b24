// mvcc/key_index.h: the in-memory history of every key.
//
// key_index: the revisions of one key as generations. A generation runs from the put that
// created the key to the delete (tombstone) that ended it; the current generation is either live
// or empty (the key is deleted now). Plain value, no locking.
//
// tree_index: key -> key_index in an ordered map (an Abseil B-tree), shared by the writer and
// any number of readers. Every method takes the internal reader/writer lock itself; only the
// writer thread calls the mutating ones.
//
// Compaction at C keeps, for every key, the latest revision with main <= C if it is a put (the
// key's value at C) or if it is a tombstone at exactly C (so a watcher starting at C still sees
// that delete: etcd #18089), and every revision above C. Everything else <= C is dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "mvcc/kv.h"

namespace cairn::mvcc {

struct revision_hash {
  std::size_t operator()(const revision& r) const {
    return std::hash<std::int64_t>{}(r.main * 1000003 + r.sub);
  }
};
using revision_set = absl::flat_hash_set<revision, revision_hash>;

struct generation {
  std::int64_t version = 0;    // changes in this generation so far, compacted ones included
  revision created;            // the put that started it (main only: sub is not kept on disk)
  std::vector<revision> revs;  // ascending; in a closed generation the last one is the tombstone
  friend bool operator==(const generation&, const generation&) = default;
};

class key_index {
 public:
  struct state {
    revision modified;  // the revision holding the key's value
    revision created;
    std::int64_t version = 0;
  };

  // A put at `rev`, which must be above every revision the key has.
  void put(revision rev);
  // A delete at `rev`; false (and no change) if the key is not live.
  bool tombstone(revision rev);
  // Rebuilding from disk: the first entry seen for the key.
  void restore(revision created, revision modified, std::int64_t version);
  void restore_tombstone(revision rev);

  // The key at revision `at` (main), if it was live then.
  std::optional<state> get(std::int64_t at) const;
  // Applies compaction at `at`; adds the kept revisions <= at to `kept` if given.
  void compact(std::int64_t at, revision_set* kept);
  // What compact(at) would keep, without changing anything.
  void keep(std::int64_t at, revision_set& kept) const;
  // True when nothing is left (the key can leave the tree).
  bool empty() const { return gens_.empty() || (gens_.size() == 1 && gens_[0].revs.empty()); }

  revision modified() const { return modified_; }
  const std::vector<generation>& generations() const { return gens_; }
  friend bool operator==(const key_index&, const key_index&) = default;

 private:
  // The generation compaction at `at` starts from, and in it the index of the latest revision
  // <= at (or -1).
  std::pair<std::size_t, std::ptrdiff_t> compaction_point(std::int64_t at) const;

  revision modified_;
  std::vector<generation> gens_;
};

// A set of keys: `range_end` empty is the single key; "\0" is every key >= key.
struct key_range {
  std::string_view key;
  std::string_view range_end;
  bool single() const { return range_end.empty(); }
  bool contains(std::string_view k) const;
};

class tree_index {
 public:
  // Calls fn(key, state) for each key in the range live at `at`, in key order, until it returns
  // false. Fails with compacted if `at` is below the last compaction (checked under the lock,
  // so the answer is consistent with the compaction).
  bool visit(key_range r, std::int64_t at,
             const std::function<bool(std::string_view, const key_index::state&)>& fn) const;
  // Keys in the range live at `at`, or nullopt if `at` is compacted.
  std::optional<std::int64_t> count(key_range r, std::int64_t at) const;
  std::optional<key_index::state> get(std::string_view key, std::int64_t at) const;

  // Writer only.
  void put(std::string_view key, revision rev);
  bool tombstone(std::string_view key, revision rev);
  // Rebuilding from disk, one entry at a time in revision order.
  void replay(std::string_view key, revision rev, bool tombstone, std::int64_t create_revision,
              std::int64_t version);
  // Compacts every key at `at` (in chunks, so readers get in between) and returns the kept
  // revisions <= at. Readers asking for revisions below `at` fail from the first chunk on.
  revision_set compact(std::int64_t at);
  // The same in steps, so that the writer can interleave writes: begin_compaction(at) makes
  // reads below `at` fail; each compact_chunk compacts up to `limit` keys from `from` on, adds
  // what they keep to `kept`, and returns the key to resume at (nullopt when every key is done).
  // Keys not yet compacted answer reads at or above `at` as compacted ones do.
  void begin_compaction(std::int64_t at);
  std::optional<std::string> compact_chunk(std::int64_t at, std::string_view from,
                                           std::size_t limit, revision_set* kept);
  // The revisions <= at that compaction at `at` keeps.
  revision_set keep(std::int64_t at) const;
  // The last compaction and what it kept, read together.
  std::pair<std::int64_t, revision_set> compacted_and_kept() const;

  std::int64_t compacted() const;
  std::size_t size() const;
  // Writer only: forgets every key (before a rebuild from a new backend, store::reload).
  void clear();
  // Tests: a copy of the whole tree.
  absl::btree_map<std::string, key_index, std::less<>> snapshot() const;

 private:
  mutable std::shared_mutex mu_;
  absl::btree_map<std::string, key_index, std::less<>> tree_;
  std::int64_t compacted_ = -1;
};

}  // namespace cairn::mvcc
