#include "mvcc/store.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "mvcc/record.h"
#include "mvcc/testing.h"

namespace cairn::mvcc {
namespace {

using testing::db;
using testing::temp_dir;

class store_test : public ::testing::Test {
 protected:
  store& s() { return *d.st; }
  std::int64_t put(const std::string& k, const std::string& v, std::int64_t lease = 0) {
    auto r = s().put(put_request{k, v, lease});
    EXPECT_TRUE(r);
    return r->revision;
  }
  std::int64_t del(const std::string& k, const std::string& end = {}) {
    auto r = s().delete_range(delete_range_request{k, end});
    EXPECT_TRUE(r);
    return r->revision;
  }
  range_response get(range_request r) {
    auto out = s().range(r);
    EXPECT_TRUE(out) << (out ? "" : to_string(out.error()));
    return out ? *out : range_response{};
  }
  std::vector<std::string> keys(const range_response& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs) out.push_back(kv.key);
    return out;
  }
  // Keys on disk, as revision keys.
  std::vector<std::string> on_disk() {
    d.be->force_commit();
    std::vector<std::string> out;
    auto v = d.be->read();
    v.scan(schema::bucket::key, {}, {}, [&](std::string_view k, std::string_view val) {
      auto pk = parse_revision_key(k);
      auto rec = decode_record(val);
      out.push_back(std::string(rec->key) + "@" + std::to_string(pk->rev.main) +
                    (pk->tombstone ? "t" : ""));
      return true;
    });
    return out;
  }

  temp_dir dir;
  db d{dir};
};

TEST_F(store_test, an_empty_store_is_at_revision_1_and_each_write_takes_the_next) {
  EXPECT_EQ(s().rev(), 1);
  EXPECT_EQ(s().compact_rev(), -1);
  EXPECT_EQ(put("a", "1"), 2);
  EXPECT_EQ(put("b", "1"), 3);
  EXPECT_EQ(del("a"), 4);
  // Deleting nothing changes nothing.
  EXPECT_EQ(del("zzz"), 4);
  EXPECT_EQ(s().rev(), 4);
}

TEST_F(store_test, put_tracks_create_revision_and_version_across_generations) {
  put("k", "1");
  put("k", "2");
  auto r = get({.key = "k"});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0], (key_value{"k", 2, 3, 2, "2", 0}));
  del("k");
  EXPECT_TRUE(get({.key = "k"}).kvs.empty());
  put("k", "3", 77);
  r = get({.key = "k"});
  EXPECT_EQ(r.kvs[0], (key_value{"k", 5, 5, 1, "3", 77}));
  // The past stays readable.
  r = get({.key = "k", .revision = 3});
  EXPECT_EQ(r.kvs[0], (key_value{"k", 2, 3, 2, "2", 0}));
  EXPECT_TRUE(get({.key = "k", .revision = 4}).kvs.empty());
  EXPECT_EQ(r.revision, 5);
}

TEST_F(store_test, put_prev_kv_ignore_value_and_ignore_lease) {
  put("k", "v1", 5);
  auto r = s().put(put_request{.key = "k", .value = "v2", .lease = 6, .prev_kv = true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->prev_kv, (key_value{"k", 2, 2, 1, "v1", 5}));
  r = s().put(put_request{.key = "k", .value = "ignored", .lease = 9, .ignore_value = true});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->prev_kv);
  EXPECT_EQ(get({.key = "k"}).kvs[0], (key_value{"k", 2, 4, 3, "v2", 9}));
  r = s().put(put_request{.key = "k", .value = "v3", .lease = 1, .ignore_lease = true});
  EXPECT_EQ(get({.key = "k"}).kvs[0], (key_value{"k", 2, 5, 4, "v3", 9}));
  // Both flags need the key to exist; nothing is written then.
  auto bad = s().put(put_request{.key = "nope", .value = "x", .ignore_value = true});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), errc::key_not_found);
  bad = s().put(put_request{.key = "nope", .ignore_lease = true});
  EXPECT_EQ(bad.error(), errc::key_not_found);
  EXPECT_EQ(s().rev(), 5);
  // No prev_kv for a new key.
  r = s().put(put_request{.key = "new", .value = "x", .prev_kv = true});
  EXPECT_FALSE(r->prev_kv);
}

TEST_F(store_test, for_each_leased_visits_the_live_keys_with_a_lease_in_key_order) {
  put("b", "1", 7);
  put("a", "1", 5);
  put("c", "1", 7);
  put("c", "2");  // no lease any more
  put("d", "1", 9);
  del("d");  // gone
  put("e", "1", 0);
  put("\xff", "1", 3);
  std::vector<std::pair<std::string, std::int64_t>> seen;
  s().for_each_leased([&](std::string_view k, std::int64_t l) { seen.emplace_back(k, l); });
  EXPECT_EQ(seen,
            (std::vector<std::pair<std::string, std::int64_t>>{{"a", 5}, {"b", 7}, {"\xff", 3}}));
}

TEST_F(store_test, delete_range_with_prev_kv) {
  for (auto k : {"a", "b", "c", "d"}) put(k, std::string("v") + k);
  auto r = s().delete_range(delete_range_request{"b", "d", true});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deleted, 2);
  EXPECT_EQ(r->revision, 6);
  ASSERT_EQ(r->prev_kvs.size(), 2u);
  EXPECT_EQ(r->prev_kvs[0], (key_value{"b", 3, 3, 1, "vb", 0}));
  EXPECT_EQ(r->prev_kvs[1], (key_value{"c", 4, 4, 1, "vc", 0}));
  EXPECT_EQ(keys(get({.key = "a", .range_end = std::string(1, '\0')})),
            (std::vector<std::string>{"a", "d"}));
  // A tombstone per key, all at one main revision.
  auto disk = on_disk();
  EXPECT_EQ(disk.back(), "c@6t");
  EXPECT_EQ(disk[disk.size() - 2], "b@6t");
}

TEST_F(store_test, range_single_key_range_end_prefix_and_from_key) {
  for (auto k : {"a", "ab", "abc", "b", "ba", "c"}) put(k, "x");
  EXPECT_EQ(keys(get({.key = "ab"})), (std::vector<std::string>{"ab"}));
  EXPECT_EQ(keys(get({.key = "ab", .range_end = "b"})), (std::vector<std::string>{"ab", "abc"}));
  EXPECT_EQ(keys(get({.key = "a", .range_end = prefix_range_end("a")})),
            (std::vector<std::string>{"a", "ab", "abc"}));
  EXPECT_EQ(keys(get({.key = "b", .range_end = std::string(1, '\0')})),
            (std::vector<std::string>{"b", "ba", "c"}));
  EXPECT_EQ(get({.key = std::string(1, '\0'), .range_end = std::string(1, '\0')}).count, 6);
  EXPECT_TRUE(get({.key = "c", .range_end = "a"}).kvs.empty());
  EXPECT_EQ(prefix_range_end("a\xff"), "b");
  EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
}

TEST_F(store_test, limit_keeps_the_full_count_and_sets_more) {
  for (int i = 0; i < 10; ++i) put("k" + std::to_string(i), "x");
  auto r = get({.key = "k", .range_end = "l", .limit = 3});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"k0", "k1", "k2"}));
  EXPECT_EQ(r.count, 10);
  EXPECT_TRUE(r.more);
  r = get({.key = "k", .range_end = "l", .limit = 10});
  EXPECT_EQ(r.kvs.size(), 10u);
  EXPECT_FALSE(r.more);
  r = get({.key = "k", .range_end = "l", .count_only = true});
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 10);
  EXPECT_FALSE(r.more);
  r = get({.key = "k", .range_end = "l", .limit = 2, .keys_only = true});
  EXPECT_EQ(r.kvs[0].value, "");
  EXPECT_EQ(r.kvs[0].mod_revision, 2);
}

TEST_F(store_test, revision_reads_see_the_past_and_refuse_the_future) {
  put("a", "1");
  put("a", "2");
  EXPECT_EQ(get({.key = "a", .revision = 2}).kvs[0].value, "1");
  EXPECT_EQ(get({.key = "a", .revision = 1}).kvs.size(), 0u);
  auto r = s().range({.key = "a", .revision = 4});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::future_rev);
}

TEST_F(store_test, filters_by_mod_and_create_revision_keep_the_unfiltered_count) {
  put("a", "1");  // 2
  put("b", "1");  // 3
  put("a", "2");  // 4
  put("c", "1");  // 5
  const std::string all(1, '\0');
  auto r = get({.key = "a", .range_end = all, .min_mod_revision = 4});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r.count, 3);
  r = get({.key = "a", .range_end = all, .max_mod_revision = 3});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"b"}));
  r = get({.key = "a", .range_end = all, .min_create_revision = 3});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"b", "c"}));
  r = get({.key = "a", .range_end = all, .max_create_revision = 2});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"a"}));
  // With a filter the limit applies after filtering.
  r = get({.key = "a", .range_end = all, .limit = 1, .min_create_revision = 3});
  EXPECT_EQ(keys(r), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(r.more);
}

TEST_F(store_test, sort_by_every_target_both_ways) {
  put("b", "3");  // 2
  put("a", "1");  // 3
  put("c", "2");  // 4
  put("a", "4");  // 5: a has version 2
  const std::string all(1, '\0');
  auto sorted = [&](sort_target t, sort_order o, std::int64_t limit = 0) {
    return keys(get({.key = "a", .range_end = all, .limit = limit, .order = o, .target = t}));
  };
  using v = std::vector<std::string>;
  EXPECT_EQ(sorted(sort_target::key, sort_order::descend), (v{"c", "b", "a"}));
  EXPECT_EQ(sorted(sort_target::key, sort_order::ascend), (v{"a", "b", "c"}));
  EXPECT_EQ(sorted(sort_target::create, sort_order::ascend), (v{"b", "a", "c"}));
  EXPECT_EQ(sorted(sort_target::create, sort_order::descend), (v{"c", "a", "b"}));
  EXPECT_EQ(sorted(sort_target::mod, sort_order::descend), (v{"a", "c", "b"}));
  EXPECT_EQ(sorted(sort_target::value, sort_order::ascend), (v{"c", "b", "a"}));
  EXPECT_EQ(sorted(sort_target::value, sort_order::descend), (v{"a", "b", "c"}));
  // Equal versions keep key order; a target with no order sorts ascending.
  EXPECT_EQ(sorted(sort_target::version, sort_order::descend), (v{"a", "b", "c"}));
  EXPECT_EQ(sorted(sort_target::version, sort_order::none), (v{"b", "c", "a"}));
  // Sorting happens before the limit.
  auto r = get({.key = "a",
                .range_end = all,
                .limit = 1,
                .order = sort_order::descend,
                .target = sort_target::mod});
  EXPECT_EQ(keys(r), (v{"a"}));
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, 3);
}

compare cmp(std::string key, compare_target t, compare_result res, std::int64_t n,
            std::string value = {}, std::string end = {}) {
  return compare{std::move(key), std::move(end), t, res, n, std::move(value)};
}

TEST_F(store_test, txn_compares_every_target_with_every_operator) {
  put("k", "m", 8);  // rev 2, version 1, lease 8
  put("k", "m", 8);  // rev 3, version 2
  using t = compare_target;
  using r = compare_result;
  struct tc {
    compare c;
    bool want;
  };
  std::vector<tc> cases = {
      {cmp("k", t::value, r::equal, 0, "m"), true},
      {cmp("k", t::value, r::greater, 0, "l"), true},
      {cmp("k", t::value, r::less, 0, "l"), false},
      {cmp("k", t::value, r::not_equal, 0, "m"), false},
      {cmp("k", t::version, r::equal, 2), true},
      {cmp("k", t::version, r::greater, 1), true},
      {cmp("k", t::version, r::less, 2), false},
      {cmp("k", t::create, r::equal, 2), true},
      {cmp("k", t::create, r::less, 3), true},
      {cmp("k", t::mod, r::equal, 3), true},
      {cmp("k", t::mod, r::not_equal, 3), false},
      {cmp("k", t::lease, r::equal, 8), true},
      {cmp("k", t::lease, r::greater, 8), false},
      // A missing key compares as zeros, except a value compare, which fails.
      {cmp("missing", t::version, r::equal, 0), true},
      {cmp("missing", t::create, r::less, 1), true},
      {cmp("missing", t::mod, r::equal, 0), true},
      {cmp("missing", t::lease, r::equal, 0), true},
      {cmp("missing", t::value, r::equal, 0, ""), false},
      {cmp("missing", t::value, r::not_equal, 0, "x"), false},
  };
  for (const auto& c : cases) {
    txn_request req;
    req.compares = {c.c};
    auto out = s().txn(req);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->succeeded, c.want) << c.c.key << " target " << static_cast<int>(c.c.target)
                                      << " result " << static_cast<int>(c.c.result);
    EXPECT_EQ(out->revision, 3);  // read-only
    auto ro = s().read_txn(req);
    ASSERT_TRUE(ro);
    EXPECT_EQ(*ro, *out);
  }
}

// read_txn answers a txn without writes exactly as txn does, from a read view: ranges in the
// branch taken (with their options), nested read-only txns, and the same errors.
TEST_F(store_test, read_txn_answers_like_txn) {
  put("a", "1");
  put("b", "2");
  put("a", "3");
  del("b");
  put("c", "4", 0);
  txn_request inner;
  inner.compares = {cmp("c", compare_target::version, compare_result::equal, 1)};
  inner.success = {request_op{range_request{.key = "a", .revision = 2}}};
  inner.failure = {request_op{range_request{.key = "zzz"}}};
  for (const bool holds : {true, false}) {
    txn_request req;
    req.compares = {cmp("a", compare_target::value, compare_result::equal, 0, holds ? "3" : "x")};
    req.success = {request_op{range_request{.key = "a", .range_end = "d", .limit = 1}},
                   request_op{box<txn_request>(inner)},
                   request_op{range_request{.key = "b", .revision = 3}}};
    req.failure = {
        request_op{range_request{
            .key = std::string(1, '\0'), .range_end = std::string(1, '\0'), .count_only = true}},
        request_op{range_request{.key = "a", .keys_only = true}}};
    ASSERT_TRUE(is_read_only(req) == false);  // the nested txn: etcd's rule sends it to raft
    auto want = s().txn(req);
    auto got = s().read_txn(req);
    ASSERT_TRUE(want && got);
    EXPECT_EQ(*got, *want);
    EXPECT_EQ(got->succeeded, holds);
  }
  EXPECT_EQ(s().rev(), 6);  // nothing written
  txn_request bad;
  bad.success = {request_op{range_request{.key = "a", .revision = 99}}};
  ASSERT_TRUE(is_read_only(bad));
  EXPECT_EQ(s().read_txn(bad).error(), errc::future_rev);
  ASSERT_TRUE(s().compact(4));
  bad.success = {request_op{range_request{.key = "a", .revision = 3}}};
  EXPECT_EQ(s().read_txn(bad).error(), errc::compacted);
  EXPECT_EQ(s().txn(bad).error(), errc::compacted);
}

TEST_F(store_test, txn_range_compares_hold_for_every_key_in_the_range) {
  put("a1", "x");
  put("a2", "x");
  put("a3", "y");
  txn_request req;
  req.compares = {cmp("a", compare_target::value, compare_result::equal, 0, "x", "a3")};
  EXPECT_TRUE(s().txn(req)->succeeded);
  req.compares = {cmp("a", compare_target::value, compare_result::equal, 0, "x", "b")};
  EXPECT_FALSE(s().txn(req)->succeeded);
  req.compares = {
      cmp("a", compare_target::version, compare_result::greater, 0, {}, std::string(1, '\0'))};
  EXPECT_TRUE(s().txn(req)->succeeded);
  req.compares = {cmp("b", compare_target::create, compare_result::equal, 0, {}, "c")};
  EXPECT_TRUE(s().txn(req)->succeeded);  // an empty range compares as a zero key
}

TEST_F(store_test, txn_writes_share_one_revision_and_ops_see_earlier_ops) {
  put("a", "0");
  txn_request req;
  req.compares = {cmp("a", compare_target::value, compare_result::equal, 0, "0")};
  req.success = {
      request_op{put_request{.key = "a", .value = "1", .prev_kv = true}},
      request_op{range_request{.key = "a"}},
      request_op{put_request{.key = "b", .value = "2"}},
      request_op{delete_range_request{.key = "zzz"}},
  };
  req.failure = {request_op{put_request{.key = "never", .value = "x"}}};
  auto out = s().txn(req);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->succeeded);
  EXPECT_EQ(out->revision, 3);
  ASSERT_EQ(out->responses.size(), 4u);
  auto& p = std::get<put_response>(out->responses[0].op);
  EXPECT_EQ(p.revision, 3);
  EXPECT_EQ(p.prev_kv->value, "0");
  auto& rr = std::get<range_response>(out->responses[1].op);
  EXPECT_EQ(rr.kvs[0].value, "1");
  EXPECT_EQ(rr.revision, 3);
  EXPECT_EQ(std::get<delete_range_response>(out->responses[3].op).revision, 3);
  EXPECT_EQ(s().rev(), 3);
  auto disk = on_disk();
  EXPECT_EQ(disk, (std::vector<std::string>{"a@2", "a@3", "b@3"}));
  // The failure branch.
  out = s().txn(req);
  EXPECT_FALSE(out->succeeded);
  EXPECT_EQ(out->revision, 4);
  EXPECT_EQ(get({.key = "never"}).kvs.size(), 1u);
}

TEST_F(store_test, nested_txn_compares_see_the_state_before_the_outer_txn) {
  put("flag", "old");
  txn_request inner;
  inner.compares = {cmp("flag", compare_target::value, compare_result::equal, 0, "old")};
  inner.success = {request_op{put_request{.key = "inner", .value = "saw-old"}}};
  inner.failure = {request_op{put_request{.key = "inner", .value = "saw-new"}}};
  txn_request outer;
  outer.success = {request_op{put_request{.key = "flag", .value = "new"}},
                   request_op{box<txn_request>(inner)}, request_op{range_request{.key = "inner"}}};
  auto out = s().txn(outer);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->succeeded);
  auto& nested = *std::get<box<txn_response>>(out->responses[1].op);
  EXPECT_TRUE(nested.succeeded);
  EXPECT_EQ(get({.key = "inner"}).kvs[0].value, "saw-old");
  EXPECT_EQ(std::get<range_response>(out->responses[2].op).kvs[0].value, "saw-old");
  EXPECT_EQ(get({.key = "inner"}).kvs[0].mod_revision, 3);
}

TEST_F(store_test, txn_checks_fail_the_whole_txn_before_any_write) {
  put("a", "1");
  txn_request req;
  req.success = {request_op{put_request{.key = "b", .value = "1"}},
                 request_op{range_request{.key = "a", .revision = 99}}};
  auto out = s().txn(req);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error(), errc::future_rev);
  req.success = {request_op{put_request{.key = "b", .value = "1"}},
                 request_op{put_request{.key = "c", .ignore_value = true}}};
  out = s().txn(req);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error(), errc::key_not_found);
  EXPECT_EQ(s().rev(), 2);
  EXPECT_TRUE(get({.key = "b"}).kvs.empty());
  put("a", "2");
  ASSERT_TRUE(s().compact(3));
  req.success = {request_op{range_request{.key = "a", .revision = 2}}};
  out = s().txn(req);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error(), errc::compacted);
}

TEST_F(store_test, compaction_keeps_the_state_at_its_revision_and_refuses_older_reads) {
  put("live", "1");   // 2
  put("live", "2");   // 3
  put("gone", "1");   // 4
  del("gone");        // 5
  put("other", "1");  // 6
  put("live", "3");   // 7
  const std::string all(1, '\0');
  auto at6 = get({.key = "a", .range_end = all, .revision = 6});
  ASSERT_TRUE(s().compact(6));
  EXPECT_EQ(s().compact_rev(), 6);
  EXPECT_EQ(get({.key = "a", .range_end = all, .revision = 6}), at6);
  auto r = s().range({.key = "live", .revision = 5});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::compacted);
  EXPECT_EQ(s().compact(6).error(), errc::compacted);
  EXPECT_EQ(s().compact(5).error(), errc::compacted);
  EXPECT_EQ(s().compact(8).error(), errc::future_rev);
  s().finish_compaction();
  // On disk: the latest revision <= 6 of each live key, and everything above 6.
  EXPECT_EQ(on_disk(), (std::vector<std::string>{"live@3", "other@6", "live@7"}));
  EXPECT_EQ(get({.key = "a", .range_end = all, .revision = 6}), at6);
}

TEST_F(store_test, a_tombstone_at_the_compaction_revision_survives_until_a_later_compaction) {
  put("k", "1");  // 2
  del("k");       // 3
  put("x", "1");  // 4
  ASSERT_TRUE(s().compact(3));
  s().finish_compaction();
  // etcd #18089: a watcher starting at 3 must still see the delete.
  EXPECT_EQ(on_disk(), (std::vector<std::string>{"k@3t", "x@4"}));
  ASSERT_TRUE(s().compact(4));
  s().finish_compaction();
  EXPECT_EQ(on_disk(), (std::vector<std::string>{"x@4"}));
  EXPECT_EQ(s().index().size(), 1u);
}

TEST_F(store_test, physical_compaction_runs_in_batches_between_writes) {
  store_options so;
  so.compaction_batch_limit = 100;
  d.close();
  d.sopts = so;
  d.open();
  for (int i = 0; i < 1000; ++i) put("k" + std::to_string(i % 10), std::to_string(i));
  ASSERT_TRUE(s().compact(s().rev()));
  int steps = 0;
  while (s().compaction_pending()) {
    s().compaction_step();
    ++steps;
    // Writes and reads go on between steps.
    put("between", std::to_string(steps));
    EXPECT_EQ(get({.key = "between"}).kvs[0].value, std::to_string(steps));
  }
  // One step for the index (10 keys), ten or eleven on disk.
  EXPECT_GE(steps, 11);
  EXPECT_LE(steps, 12);
  auto disk = on_disk();
  // 10 live keys at the compaction revision, then the writes after it.
  EXPECT_EQ(disk.size(), 10u + static_cast<std::size_t>(steps));
}

TEST_F(store_test, writes_and_reads_between_index_compaction_steps_see_the_compacted_store) {
  store_options so;
  so.index_compaction_chunk = 2;
  d.close();
  d.sopts = so;
  d.open();
  temp_dir dir2;
  db other{dir2};  // compacts at once (finish_compaction right after compact)
  auto both = [&](auto f) {
    f(*d.st);
    f(*other.st);
  };
  for (int i = 0; i < 60; ++i) {
    both([&](store& st) {
      st.put(put_request{"k" + std::to_string(i % 9), std::to_string(i)});
      if (i % 7 == 0) st.delete_range(delete_range_request{"k" + std::to_string(i % 4)});
    });
  }
  const std::int64_t at = d.st->rev() - 10;
  both([&](store& st) { ASSERT_TRUE(st.compact(at)); });
  other.st->finish_compaction();
  int steps = 0;
  while (d.st->compaction_pending()) {
    // Reads below the compaction fail from the start; reads at or above it agree with the store
    // that compacted at once, and so does the hash.
    EXPECT_EQ(d.st->range({.key = "k", .range_end = "l", .revision = at - 1}).error(),
              errc::compacted);
    for (std::int64_t r : {at, at + 3, std::int64_t{0}}) {
      auto a = d.st->range({.key = "k", .range_end = "l", .revision = r});
      auto b = other.st->range({.key = "k", .range_end = "l", .revision = r});
      ASSERT_TRUE(a && b);
      EXPECT_EQ(a->kvs, b->kvs) << "revision " << r << " after " << steps << " steps";
      EXPECT_EQ(a->count, b->count);
    }
    EXPECT_EQ(*d.st->hash_kv(0), *other.st->hash_kv(0)) << steps;
    d.st->compaction_step();
    ++steps;
    // A write between steps, to a key compacted already or not yet.
    both([&](store& st) {
      st.put(put_request{"k" + std::to_string(steps % 9), "between"});
      if (steps % 3 == 0) st.delete_range(delete_range_request{"k" + std::to_string(steps % 5)});
    });
  }
  // 9 keys in chunks of 2: five index steps before the disk steps.
  EXPECT_GT(steps, 5);
  EXPECT_TRUE(d.st->index().snapshot() == other.st->index().snapshot());
  EXPECT_EQ(*d.st->hash_kv(0), *other.st->hash_kv(0));
}

TEST_F(store_test, hash_kv_is_the_same_whether_or_not_compaction_finished_on_disk) {
  temp_dir dir2;
  db other{dir2};
  auto both = [&](auto f) {
    f(*d.st);
    f(*other.st);
  };
  for (int i = 0; i < 50; ++i) {
    both([&](store& st) {
      st.put(put_request{"k" + std::to_string(i % 7), std::to_string(i)});
      if (i % 5 == 0) st.delete_range(delete_range_request{"k" + std::to_string(i % 3)});
    });
  }
  both([&](store& st) { ASSERT_TRUE(st.compact(30)); });
  d.st->finish_compaction();  // `other` keeps its garbage on disk for now
  auto a = d.st->hash_kv(0);
  auto b = other.st->hash_kv(0);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->compact_revision, 30);
  EXPECT_EQ(a->hash_revision, d.st->rev());
  EXPECT_EQ(*d.st->hash_kv(40), *other.st->hash_kv(40));
  EXPECT_NE(d.st->hash_kv(40)->hash, d.st->hash_kv(41)->hash);
  // Different data, different hash.
  other.st->put(put_request{"extra", "1"});
  d.st->put(put_request{"extra", "2"});
  EXPECT_NE(d.st->hash_kv(0)->hash, other.st->hash_kv(0)->hash);
  EXPECT_EQ(d.st->hash_kv(30).error(), errc::compacted);
  EXPECT_EQ(d.st->hash_kv(999).error(), errc::future_rev);
  // A reopened store (index rebuilt from disk) hashes the same.
  auto before = *d.st->hash_kv(45);
  d.reopen();
  EXPECT_EQ(*d.st->hash_kv(45), before);
}

TEST_F(store_test, reopen_rebuilds_the_same_index_revision_and_compaction) {
  for (int i = 0; i < 200; ++i) {
    put("k" + std::to_string(i % 13), std::to_string(i));
    if (i % 7 == 0) del("k" + std::to_string(i % 5));
    if (i == 120) {
      ASSERT_TRUE(s().compact(s().rev() - 3));
      s().finish_compaction();
    }
  }
  del("k1");
  ASSERT_TRUE(s().compact(s().rev()));  // a tombstone right at the compaction revision
  s().finish_compaction();
  auto index = s().index().snapshot();
  auto rev = s().rev();
  auto crev = s().compact_rev();
  auto all = get({.key = "a", .range_end = std::string(1, '\0')});
  d.reopen();
  EXPECT_EQ(s().rev(), rev);
  EXPECT_EQ(s().compact_rev(), crev);
  EXPECT_TRUE(s().index().snapshot() == index);
  EXPECT_EQ(get({.key = "a", .range_end = std::string(1, '\0')}), all);
}

TEST_F(store_test, a_crash_during_physical_compaction_resumes_it_at_open) {
  store_options so;
  so.compaction_batch_limit = 50;
  d.close();
  d.sopts = so;
  d.open();
  for (int i = 0; i < 500; ++i) put("k" + std::to_string(i % 20), std::to_string(i));
  ASSERT_TRUE(s().compact(400));
  d.be->force_commit();  // the schedule is on disk
  s().compaction_step();
  s().compaction_step();
  d.be->force_commit();  // part of the garbage is gone
  s().compaction_step();
  d.crash();
  d.open();
  EXPECT_EQ(s().compact_rev(), 400);
  EXPECT_EQ(s().rev(), 501);
  EXPECT_TRUE(s().compaction_pending());
  s().finish_compaction();
  // 20 keys at revision 400, then the 101 writes above it.
  EXPECT_EQ(on_disk().size(), 20u + 101u);
  EXPECT_EQ(s().range({.key = "k1", .revision = 399}).error(), errc::compacted);
}

TEST_F(store_test, the_revision_never_goes_back_after_compacting_everything) {
  put("k", "1");
  del("k");
  ASSERT_TRUE(s().compact(3));
  s().finish_compaction();
  d.reopen();
  EXPECT_EQ(s().rev(), 3);
  EXPECT_EQ(put("k", "2"), 4);
}

TEST_F(store_test, the_consistent_index_is_committed_with_the_data_it_covers) {
  s().set_consistent_index({10, 2});
  put("a", "1");
  d.be->force_commit();
  s().set_consistent_index({11, 2});
  put("b", "1");
  d.crash();  // entry 11 was never committed
  d.open();
  EXPECT_EQ(s().consistent_index(), (schema::consistent_index{10, 2}));
  EXPECT_EQ(get({.key = "b"}).kvs.size(), 0u);
  EXPECT_EQ(get({.key = "a"}).kvs.size(), 1u);
}

TEST_F(store_test, readers_on_other_threads_see_a_consistent_revision_while_writes_go_on) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop.load()) {
      // Every write is a txn putting the same value under both keys.
      auto r = s().range({.key = "a", .range_end = "c"});
      if (!r) continue;  // compacted between revision pick and read: fine
      if (r->kvs.size() == 2 && r->kvs[0].value != r->kvs[1].value) bad.fetch_add(1);
      if (r->kvs.size() == 1) bad.fetch_add(1);
    }
  });
  for (int i = 0; i < 3000; ++i) {
    txn_request t;
    t.success = {request_op{put_request{"a", std::to_string(i)}},
                 request_op{put_request{"b", std::to_string(i)}}};
    ASSERT_TRUE(s().txn(t));
    if (i % 500 == 499) {
      ASSERT_TRUE(s().compact(s().rev() - 10));
      s().finish_compaction();
    }
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(record, revision_keys_sort_by_revision_and_round_trip) {
  EXPECT_LT(revision_key({1, 5}), revision_key({2, 0}));
  EXPECT_LT(revision_key({2, 0}), revision_key({2, 0}, true));
  EXPECT_LT(revision_key({2, 0}, true), revision_key({2, 1}));
  EXPECT_EQ(revision_key({258, 1}).size(), 17u);
  auto p = parse_revision_key(revision_key({1ll << 40, 7}, true));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->rev, (revision{1ll << 40, 7}));
  EXPECT_TRUE(p->tombstone);
  EXPECT_FALSE(parse_revision_key("short"));
}

TEST(record, entries_round_trip_and_garbage_is_refused) {
  auto e = encode_put("key", 5, 3, -1, revision{4, 2}, std::string("v\0al", 4));
  auto r = decode_record(e);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->tombstone);
  EXPECT_EQ(r->key, "key");
  EXPECT_EQ(r->create_revision, 5);
  EXPECT_EQ(r->version, 3);
  EXPECT_EQ(r->lease, -1);
  EXPECT_EQ(r->prev, (revision{4, 2}));
  EXPECT_EQ(r->value, std::string("v\0al", 4));
  auto t = decode_record(encode_delete("key", revision{9, 0}));
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->tombstone);
  EXPECT_EQ(t->prev, (revision{9, 0}));
  EXPECT_FALSE(decode_record(""));
  EXPECT_FALSE(decode_record("\x03"));
  EXPECT_FALSE(decode_record(e.substr(0, 3)));
  EXPECT_FALSE(decode_record(encode_delete("key", {}) + "x"));
}

}  // namespace
}  // namespace cairn::mvcc
