#include "mvcc/store.h"
#include "base/failpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "base/crc32c.h"
#include "mvcc/record.h"

namespace cairn::mvcc {

namespace {

using schema::bucket;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "cairn mvcc store: %s\n", what);
  std::abort();
}

key_range range_of(std::string_view key, std::string_view end) { return key_range{key, end}; }

bool needs_everything(const range_request& r) {
  return r.order != sort_order::none || r.target != sort_target::key || r.min_mod_revision != 0 ||
         r.max_mod_revision != 0 || r.min_create_revision != 0 || r.max_create_revision != 0;
}

int compare_by(sort_target t, const key_value& a, const key_value& b) {
  auto cmp = [](auto x, auto y) { return x < y ? -1 : (y < x ? 1 : 0); };
  switch (t) {
    case sort_target::key:
      return a.key.compare(b.key) < 0 ? -1 : (a.key == b.key ? 0 : 1);
    case sort_target::version:
      return cmp(a.version, b.version);
    case sort_target::create:
      return cmp(a.create_revision, b.create_revision);
    case sort_target::mod:
      return cmp(a.mod_revision, b.mod_revision);
    case sort_target::value:
      return a.value.compare(b.value) < 0 ? -1 : (a.value == b.value ? 0 : 1);
  }
  return 0;
}

// Range against the index at the revision the request names, reading stored entries through
// `bytes_at`. `cur` is the revision the reader stands at.
cairn::expected<range_response, errc> run_range(
    const tree_index& index, const range_request& r, std::int64_t cur,
    const std::function<std::string_view(revision)>& bytes_at) {
  std::int64_t at = r.revision;
  if (at > cur) return cairn::unexpected(errc::future_rev);
  if (at <= 0) at = cur;
  range_response out;
  out.revision = cur;
  const bool all = needs_everything(r);
  // Without sorting or filters, one key past the limit tells whether there are more.
  const std::int64_t fetch = (all || r.limit <= 0) ? -1 : r.limit + 1;
  std::vector<revision> found;
  std::int64_t count = 0;
  bool ok = index.visit(range_of(r.key, r.range_end), at,
                        [&](std::string_view, const key_index::state& s) {
                          ++count;
                          if (!r.count_only && (fetch < 0 || count <= fetch)) {
                            found.push_back(s.modified);
                          }
                          return true;
                        });
  if (!ok) return cairn::unexpected(errc::compacted);
  out.count = count;
  if (r.count_only) return out;
  // Entries are read after the index lock is released; the key comes from the entry.
  out.kvs.reserve(found.size());
  for (revision rev : found) out.kvs.push_back(to_key_value(must_decode(bytes_at(rev)), rev));
  auto prune = [&](auto drop) { std::erase_if(out.kvs, drop); };
  if (r.max_mod_revision != 0)
    prune([&](const key_value& kv) { return kv.mod_revision > r.max_mod_revision; });
  if (r.min_mod_revision != 0)
    prune([&](const key_value& kv) { return kv.mod_revision < r.min_mod_revision; });
  if (r.max_create_revision != 0)
    prune([&](const key_value& kv) { return kv.create_revision > r.max_create_revision; });
  if (r.min_create_revision != 0)
    prune([&](const key_value& kv) { return kv.create_revision < r.min_create_revision; });
  sort_order order = r.order;
  // The index answers in ascending key order; another target with no order means ascending.
  if (order == sort_order::none && r.target != sort_target::key) order = sort_order::ascend;
  if (order == sort_order::ascend && r.target != sort_target::key) {
    std::stable_sort(out.kvs.begin(), out.kvs.end(), [&](const key_value& a, const key_value& b) {
      return compare_by(r.target, a, b) < 0;
    });
  } else if (order == sort_order::descend) {
    // Stable, so equal targets stay in ascending key order.
    std::stable_sort(out.kvs.begin(), out.kvs.end(), [&](const key_value& a, const key_value& b) {
      return compare_by(r.target, a, b) > 0;
    });
  }
  if (r.limit > 0 && static_cast<std::int64_t>(out.kvs.size()) > r.limit) {
    out.kvs.resize(static_cast<std::size_t>(r.limit));
    out.more = true;
  }
  if (r.keys_only) {
    for (auto& kv : out.kvs) kv.value.clear();
  }
  return out;
}

bool holds(const compare& c, const key_value& kv) {
  int result = 0;
  auto cmp = [](std::int64_t a, std::int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case compare_target::value:
      result = kv.value.compare(c.value);
      result = result < 0 ? -1 : (result > 0 ? 1 : 0);
      break;
    case compare_target::create:
      result = cmp(kv.create_revision, c.number);
      break;
    case compare_target::mod:
      result = cmp(kv.mod_revision, c.number);
      break;
    case compare_target::version:
      result = cmp(kv.version, c.number);
      break;
    case compare_target::lease:
      result = cmp(kv.lease, c.number);
      break;
  }
  switch (c.result) {
    case compare_result::equal:
      return result == 0;
    case compare_result::not_equal:
      return result != 0;
    case compare_result::greater:
      return result > 0;
    case compare_result::less:
      return result < 0;
  }
  return false;
}

}  // namespace

struct store::write_ctx {
  std::int64_t begin = 0;
  std::vector<change> changes;
  // What reads inside the transaction see: its own changes once it has some.
  std::int64_t read_rev() const { return begin + (changes.empty() ? 0 : 1); }
  std::int64_t write_rev() const { return begin + 1; }
};

store::store(backend::backend& b, store_options opts) : be_(b), opts_(opts) {}

std::unique_ptr<store> store::open(backend::backend& b, store_options opts) {
  std::unique_ptr<store> s(new store(b, opts));
  s->restore();
  store* raw = s.get();
  s->hook_id_ = b.add_pre_commit_hook([raw] {
    if (raw->ci_dirty_) {
      schema::write_consistent_index(raw->be_, raw->ci_);
      raw->ci_dirty_ = false;
    }
  });
  return s;
}

store::~store() { be_.remove_pre_commit_hook(hook_id_); }

void store::restore() {
  std::int64_t current = 1;
  std::optional<std::uint64_t> scheduled, finished;
  {
    backend::read_view view = be_.read();
    ci_ = schema::read_consistent_index(view);
    scheduled = schema::read_meta_u64(view, schema::scheduled_compact_key);
    finished = schema::read_meta_u64(view, schema::finished_compact_key);
    view.scan(bucket::key, {}, {}, [&](std::string_view k, std::string_view v) {
      auto pk = parse_revision_key(k);
      if (!pk) broken("malformed revision key in the key bucket");
      record rec = must_decode(v);
      if (rec.tombstone != pk->tombstone) broken("entry kind differs from its revision key");
      index_.replay(rec.key, pk->rev, rec.tombstone, rec.create_revision, rec.version);
      current = std::max(current, pk->rev.main);
      return true;
    });
  }
  std::int64_t compact = -1;
  if (finished) {
    compact = static_cast<std::int64_t>(*finished);
    index_.compact(compact);
  }
  if (scheduled && static_cast<std::int64_t>(*scheduled) > compact) {
    // A compaction a crash interrupted: finish it (the disk may hold a part of its garbage).
    compact = static_cast<std::int64_t>(*scheduled);
    job_ = compaction_job{compact, index_.compact(compact), std::nullopt, {}};
  }
  // A compaction may have removed every entry up to its revision; never go below it.
  current = std::max(current, compact);
  current_.store(current, std::memory_order_release);
  compact_.store(compact, std::memory_order_release);
}

// ---------------------------------------------------------------------------------------------
// Reads

void store::for_each_leased(
    const std::function<void(std::string_view key, std::int64_t lease)>& fn) const {
  std::shared_lock reloading(reload_mu_);
  const std::int64_t cur = rev();
  backend::read_view view = be_.read();
  const std::string all(1, '\0');
  std::vector<revision> live;
  index_.visit(range_of(all, all), cur, [&](std::string_view, const key_index::state& s) {
    live.push_back(s.modified);
    return true;
  });
  for (revision rv : live) {
    auto bytes = view.get(bucket::key, revision_key(rv));
    if (!bytes) broken("an indexed revision is missing from the key bucket");
    const record rec = must_decode(*bytes);
    if (rec.lease != 0) fn(rec.key, rec.lease);
  }
}

void store::reload() {
  std::unique_lock lock(reload_mu_);
  index_.clear();
  job_.reset();
  ci_dirty_ = false;
  restore();
}

cairn::expected<range_response, errc> store::range(const range_request& r) const {
  std::shared_lock reloading(reload_mu_);
  stats_.ranges.fetch_add(1, std::memory_order_relaxed);
  // The revision first, then the view: everything up to it was written before the view opened,
  // so the view has it (committed, or in the backend's read buffer).
  std::int64_t cur = rev();
  backend::read_view view = be_.read();
  return run_range(index_, r, cur, [&](revision rv) {
    auto bytes = view.get(bucket::key, revision_key(rv));
    if (!bytes) broken("range: an indexed revision is missing from the key bucket");
    return *bytes;
  });
}

cairn::expected<hash_kv_result, errc> store::hash_kv(std::int64_t at) const {
  std::shared_lock reloading(reload_mu_);
  std::int64_t cur = rev();
  backend::read_view view = be_.read();
  auto [compacted, kept] = index_.compacted_and_kept();
  if (at > 0 && at <= compacted) return cairn::unexpected(errc::compacted);
  if (at > cur) return cairn::unexpected(errc::future_rev);
  if (at <= 0) at = cur;
  std::uint32_t crc = base::crc32c_extend(0, schema::bucket_name(bucket::key));
  std::string end = revision_key(revision{at + 1, 0});
  view.scan(bucket::key, {}, end, [&](std::string_view k, std::string_view v) {
    auto pk = parse_revision_key(k);
    if (!pk) broken("malformed revision key in the key bucket");
    // Garbage of the last compaction that is still on disk does not count.
    if (pk->rev.main <= compacted && !kept.contains(pk->rev)) return true;
    crc = base::crc32c_extend(crc, k);
    crc = base::crc32c_extend(crc, v);
    return true;
  });
  return hash_kv_result{crc, cur, compacted, at};
}

// ---------------------------------------------------------------------------------------------
// Writes

std::optional<key_value> store::read_put(revision rv) {
  auto bytes = be_.get(bucket::key, revision_key(rv));
  if (!bytes) return std::nullopt;
  record rec = must_decode(*bytes);
  if (rec.tombstone) return std::nullopt;
  return to_key_value(rec, rv);
}

void store::end_write(write_ctx& ctx) {
  if (!ctx.changes.empty()) {
    const std::int64_t rev = ctx.write_rev();
    auto publish = [this, rev] { current_.store(rev, std::memory_order_release); };
    if (observer_ != nullptr) {
      observer_->on_write(rev, ctx.changes, publish);
    } else {
      publish();
    }
  }
  if (opts_.commit_at_write_end) be_.commit_if_due();
}

key_value store::put_in(write_ctx& ctx, const put_request& r, std::optional<key_value>* prev_out) {
  const revision rv{ctx.write_rev(), static_cast<std::int64_t>(ctx.changes.size())};
  auto st = index_.get(r.key, rv.main);
  std::int64_t create = rv.main;
  std::int64_t version = 1;
  revision prev;
  std::string value = r.value;
  std::int64_t lease = r.lease;
  if (st) {
    create = st->created.main;
    version = st->version + 1;
    prev = st->modified;
    if (r.prev_kv || r.ignore_value || r.ignore_lease) {
      auto old = read_put(st->modified);
      if (!old) broken("put: the key's current revision is missing from the key bucket");
      if (r.ignore_value) value = old->value;
      if (r.ignore_lease) lease = old->lease;
      if (prev_out != nullptr && r.prev_kv) *prev_out = std::move(old);
    }
  }
  // With ignore_value/ignore_lease on a key an earlier op of the same txn deleted (the API
  // layer rejects such txns as duplicate keys), the request's own value and lease are used.
  std::string rk = revision_key(rv);
  be_.put(bucket::key, rk, encode_put(r.key, create, version, lease, prev, value));
  index_.put(r.key, rv);
  if (lease_hook_ != nullptr) lease_hook_->on_put(r.key, lease);
  key_value kv{r.key, create, rv.main, version, std::move(value), lease};
  ctx.changes.push_back(change{event_type::put, kv, rv, prev});
  return kv;
}

std::int64_t store::delete_in(write_ctx& ctx, std::string_view key, std::string_view end,
                              std::vector<key_value>* prevs) {
  std::vector<std::pair<std::string, revision>> victims;
  index_.visit(range_of(key, end), ctx.read_rev(),
               [&](std::string_view k, const key_index::state& s) {
                 victims.emplace_back(std::string(k), s.modified);
                 return true;
               });
  for (auto& [k, prev] : victims) {
    if (prevs != nullptr) {
      auto old = read_put(prev);
      if (!old) broken("delete: the key's current revision is missing from the key bucket");
      prevs->push_back(std::move(*old));
    }
    const revision rv{ctx.write_rev(), static_cast<std::int64_t>(ctx.changes.size())};
    be_.put(bucket::key, revision_key(rv, true), encode_delete(k, prev));
    if (!index_.tombstone(k, rv)) broken("delete: tombstone on a key that is not live");
    if (lease_hook_ != nullptr) lease_hook_->on_delete(k);
    key_value kv;
    kv.key = std::move(k);
    kv.mod_revision = rv.main;
    ctx.changes.push_back(change{event_type::del, std::move(kv), rv, prev});
  }
  return static_cast<std::int64_t>(victims.size());
}

range_response store::range_in(write_ctx& ctx, const range_request& r) {
  auto out = run_range(index_, r, ctx.read_rev(), [&](revision rv) {
    auto bytes = be_.get(bucket::key, revision_key(rv));
    if (!bytes) broken("txn range: an indexed revision is missing from the key bucket");
    return *bytes;
  });
  // Checked before the transaction started (txn_check).
  if (!out) broken("txn range failed after its checks passed");
  return std::move(*out);
}

bool store::lease_known(const put_request& r) const {
  return r.lease == 0 || r.ignore_lease || lease_hook_ == nullptr ||
         lease_hook_->lease_exists(r.lease);
}

cairn::expected<put_response, errc> store::put(const put_request& r) {
  write_ctx ctx{rev(), {}};
  if (r.ignore_value || r.ignore_lease) {
    if (!index_.get(r.key, ctx.begin)) return cairn::unexpected(errc::key_not_found);
  }
  if (!lease_known(r)) return cairn::unexpected(errc::lease_not_found);
  stats_.puts.fetch_add(1, std::memory_order_relaxed);
  put_response out;
  put_in(ctx, r, &out.prev_kv);
  out.revision = ctx.write_rev();
  end_write(ctx);
  return out;
}

cairn::expected<delete_range_response, errc> store::delete_range(const delete_range_request& r) {
  write_ctx ctx{rev(), {}};
  stats_.deletes.fetch_add(1, std::memory_order_relaxed);
  delete_range_response out;
  out.deleted = delete_in(ctx, r.key, r.range_end, r.prev_kv ? &out.prev_kvs : nullptr);
  out.revision = ctx.changes.empty() ? ctx.begin : ctx.write_rev();
  end_write(ctx);
  return out;
}

bool store::compare_holds(const compare& c, std::int64_t at, const bytes_fn& bytes_at) const {
  // The index answers first; the backend is read after its lock is released (the index lock is
  // never held while the backend's is taken).
  std::vector<key_index::state> found;
  index_.visit(range_of(c.key, c.range_end), at, [&](std::string_view, const key_index::state& s) {
    found.push_back(s);
    return true;
  });
  // No key: a value compare fails; the others compare against zeros (etcd's rules).
  if (found.empty()) return c.target != compare_target::value && holds(c, key_value{});
  const bool stored = c.target == compare_target::value || c.target == compare_target::lease;
  for (const auto& s : found) {
    key_value kv{{}, s.created.main, s.modified.main, s.version, {}, 0};
    if (stored) {
      record rec = must_decode(bytes_at(s.modified));
      if (rec.tombstone) broken("compare: the index names a tombstone as a key's last put");
      kv = to_key_value(rec, s.modified);
    }
    if (!holds(c, kv)) return false;
  }
  return true;
}

void store::txn_path(const txn_request& r, std::int64_t at, const bytes_fn& bytes_at,
                     std::vector<bool>& path) const {
  // Every compare, nested ones included, sees the state before the transaction (etcd's
  // compareToPath); the path lists the outcomes depth-first.
  bool ok = std::all_of(r.compares.begin(), r.compares.end(),
                        [&](const compare& c) { return compare_holds(c, at, bytes_at); });
  path.push_back(ok);
  for (const auto& op : ok ? r.success : r.failure) {
    if (auto* t = std::get_if<box<txn_request>>(&op.op)) txn_path(**t, at, bytes_at, path);
  }
}

cairn::expected<void, errc> store::txn_check(const txn_request& r, const std::vector<bool>& path,
                                             std::size_t& pos, std::int64_t at) const {
  bool ok = path[pos++];
  for (const auto& op : ok ? r.success : r.failure) {
    if (auto* t = std::get_if<box<txn_request>>(&op.op)) {
      if (auto c = txn_check(**t, path, pos, at); !c) return c;
    } else if (auto* rr = std::get_if<range_request>(&op.op)) {
      if (rr->revision > at) return cairn::unexpected(errc::future_rev);
      if (rr->revision > 0 && rr->revision < compact_rev()) {
        return cairn::unexpected(errc::compacted);
      }
    } else if (auto* p = std::get_if<put_request>(&op.op)) {
      if ((p->ignore_value || p->ignore_lease) && !index_.get(p->key, at)) {
        return cairn::unexpected(errc::key_not_found);
      }
      if (!lease_known(*p)) return cairn::unexpected(errc::lease_not_found);
    }
  }
  return {};
}

txn_response store::txn_apply(write_ctx& ctx, const txn_request& r, const std::vector<bool>& path,
                              std::size_t& pos) {
  txn_response out;
  out.succeeded = path[pos++];
  for (const auto& op : out.succeeded ? r.success : r.failure) {
    response_op resp;
    if (auto* rr = std::get_if<range_request>(&op.op)) {
      resp.op = range_in(ctx, *rr);
    } else if (auto* p = std::get_if<put_request>(&op.op)) {
      put_response pr;
      put_in(ctx, *p, &pr.prev_kv);
      pr.revision = ctx.write_rev();
      resp.op = std::move(pr);
    } else if (auto* d = std::get_if<delete_range_request>(&op.op)) {
      delete_range_response dr;
      dr.deleted = delete_in(ctx, d->key, d->range_end, d->prev_kv ? &dr.prev_kvs : nullptr);
      dr.revision = ctx.changes.empty() ? ctx.begin : ctx.write_rev();
      resp.op = std::move(dr);
    } else {
      const auto& t = std::get<box<txn_request>>(op.op);
      resp.op = box<txn_response>(txn_apply(ctx, *t, path, pos));
    }
    out.responses.push_back(std::move(resp));
  }
  return out;
}

cairn::expected<txn_response, errc> store::txn(const txn_request& r) {
  write_ctx ctx{rev(), {}};
  std::vector<bool> path;
  txn_path(
      r, ctx.begin,
      [&](revision rv) {
        auto bytes = be_.get(bucket::key, revision_key(rv));
        if (!bytes) broken("compare: an indexed revision is missing from the key bucket");
        return *bytes;
      },
      path);
  std::size_t pos = 0;
  if (auto c = txn_check(r, path, pos, ctx.begin); !c) return cairn::unexpected(c.error());
  pos = 0;
  txn_response out = txn_apply(ctx, r, path, pos);
  out.revision = ctx.changes.empty() ? ctx.begin : ctx.write_rev();
  end_write(ctx);
  count_txn(out);
  return out;
}

void store::count_txn(const txn_response& t) const {
  std::uint64_t ops = 0;
  std::function<void(const txn_response&)> walk = [&](const txn_response& x) {
    for (const auto& op : x.responses) {
      if (std::holds_alternative<range_response>(op.op)) {
        stats_.ranges.fetch_add(1, std::memory_order_relaxed);
        ++ops;
      } else if (std::holds_alternative<put_response>(op.op)) {
        stats_.puts.fetch_add(1, std::memory_order_relaxed);
        ++ops;
      } else if (std::holds_alternative<delete_range_response>(op.op)) {
        stats_.deletes.fetch_add(1, std::memory_order_relaxed);
        ++ops;
      } else {
        walk(*std::get<box<txn_response>>(op.op));
      }
    }
  };
  walk(t);
  if (ops > 1) stats_.txns.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// The branches a read-only txn takes, answered from `bytes_at` at revision `at`.
txn_response read_txn_in(const tree_index& index, const txn_request& r,
                         const std::vector<bool>& path, std::size_t& pos, std::int64_t at,
                         const std::function<std::string_view(revision)>& bytes_at) {
  txn_response out;
  out.succeeded = path[pos++];
  for (const auto& op : out.succeeded ? r.success : r.failure) {
    response_op resp;
    if (auto* rr = std::get_if<range_request>(&op.op)) {
      auto rng = run_range(index, *rr, at, bytes_at);
      // Checked before (txn_check), and the index cannot compact below `at` meanwhile
      // without the view still holding what the index found.
      if (!rng) broken("read-only txn range failed after its checks passed");
      resp.op = std::move(*rng);
    } else if (auto* t = std::get_if<box<txn_request>>(&op.op)) {
      resp.op = box<txn_response>(read_txn_in(index, **t, path, pos, at, bytes_at));
    } else {
      broken("read_txn: a txn with writes");
    }
    out.responses.push_back(std::move(resp));
  }
  return out;
}

}  // namespace

cairn::expected<txn_response, errc> store::read_txn(const txn_request& r) const {
  std::shared_lock reloading(reload_mu_);
  // As range(): the revision first, then the view, which therefore holds everything up to it.
  const std::int64_t cur = rev();
  backend::read_view view = be_.read();
  auto bytes_at = [&](revision rv) -> std::string_view {
    auto bytes = view.get(bucket::key, revision_key(rv));
    if (!bytes) broken("read-only txn: an indexed revision is missing from the key bucket");
    return *bytes;
  };
  std::vector<bool> path;
  txn_path(r, cur, bytes_at, path);
  std::size_t pos = 0;
  if (auto c = txn_check(r, path, pos, cur); !c) return cairn::unexpected(c.error());
  pos = 0;
  txn_response out = read_txn_in(index_, r, path, pos, cur, bytes_at);
  out.revision = cur;  // the outer response only, as txn() sets it
  count_txn(out);
  return out;
}

void store::set_consistent_index(schema::consistent_index ci) {
  ci_ = ci;
  ci_dirty_ = true;
}

// ---------------------------------------------------------------------------------------------
// Compaction

cairn::expected<void, errc> store::compact(std::int64_t at) {
  if (at <= compact_rev()) return cairn::unexpected(errc::compacted);
  if (at > rev()) return cairn::unexpected(errc::future_rev);
  // Recorded first: a crash before the disk work is done resumes it at open.
  schema::write_meta_u64(be_, schema::scheduled_compact_key, static_cast<std::uint64_t>(at));
  index_.begin_compaction(at);
  compact_.store(at, std::memory_order_release);
  // A newer compaction supersedes an unfinished one: its scans from the start cover both (keys
  // compacted at the older revision compact again at this one and keep what it keeps).
  job_ = compaction_job{at, {}, std::string(), {}};
  job_start_ = std::chrono::steady_clock::now();
  if (opts_.commit_at_write_end) be_.commit_if_due();
  return {};
}

bool store::compaction_step() {
  if (!job_) return false;
  const auto step_start = std::chrono::steady_clock::now();
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  if (job_->index_next) {
    job_->index_next = index_.compact_chunk(job_->rev, *job_->index_next,
                                            opts_.index_compaction_chunk, &job_->kept);
    stats_.index_compaction_pause_ms.observe(ms_since(step_start));
    return true;
  }
  const std::string stop = revision_key(revision{job_->rev + 1, 0});
  CAIRN_FAILPOINT("compactBeforeBatch");
  backend::write_cursor c = be_.cursor(bucket::key);
  c.seek(job_->next);
  bool done = false;
  for (std::int64_t n = 0; n < opts_.compaction_batch_limit; ++n) {
    if (!c.valid() || c.key() >= stop) {
      done = true;
      break;
    }
    auto pk = parse_revision_key(c.key());
    if (!pk) broken("malformed revision key in the key bucket");
    if (job_->kept.contains(pk->rev)) {
      c.next();
    } else {
      c.erase();
      stats_.compaction_keys.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!done && (!c.valid() || c.key() >= stop)) done = true;
  stats_.db_compaction_pause_ms.observe(ms_since(step_start));
  if (done) {
    schema::write_meta_u64(be_, schema::finished_compact_key,
                           static_cast<std::uint64_t>(job_->rev));
    stats_.db_compaction_total_ms.observe(ms_since(job_start_));
    job_.reset();
  } else {
    job_->next = std::string(c.key());
  }
  if (opts_.commit_at_write_end) be_.commit_if_due();
  CAIRN_FAILPOINT("compactAfterBatch");
  return job_.has_value();
}

void store::finish_compaction() {
  while (compaction_step()) {
  }
}

}  // namespace cairn::mvcc
