// Micro-benchmarks of mvcc over the LMDB backend (results: docs/benchmarks.md).
//   put                 one Put of a 256-byte value (batched commits, the default 100 ms / 10,000)
//   range_1             Range of one key in a store of 1M keys
//   range_10000         Range of 10,000 consecutive keys in that store
//   count_only_1M       Range count_only over all 1M keys
//   key_index_lookup    tree_index::get of a random key among 1M
//   compaction_1M_revs  compact() plus the whole physical removal of 1M revisions
//                       (100,000 keys x 10 revisions; 900,000 entries removed)
//   watch_fanout_10000  one Put delivered to 10,000 watchers of its key (100 streams)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>

#include "mvcc/store.h"
#include "mvcc/testing.h"
#include "mvcc/watchable_store.h"

namespace cairn::mvcc {
namespace {

using testing::db;
using testing::temp_dir;

std::string key_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/registry/pods/k%08d", i);
  return buf;
}

constexpr int million = 1000000;

// One store of 1M keys, built once and shared by the read benchmarks.
struct big_store {
  big_store() : d(dir) {
    std::string value(100, 'v');
    for (int i = 0; i < million; ++i) d.st->put(put_request{key_of(i), value});
    d.be->force_commit();
  }
  temp_dir dir;
  db d;
};

big_store& big() {
  static big_store* b = new big_store();
  return *b;
}

void put(benchmark::State& state) {
  temp_dir dir;
  db d(dir);
  std::string value(256, 'x');
  int i = 0;
  for (auto _ : state) {
    auto r = d.st->put(put_request{key_of(i++ % million), value});
    benchmark::DoNotOptimize(r);
  }
  d.be->force_commit();
  state.SetItemsProcessed(state.iterations());
  state.counters["commits"] = static_cast<double>(d.be->commits());
}
BENCHMARK(put);

void range_1(benchmark::State& state) {
  auto& b = big();
  std::mt19937 rng(1);
  for (auto _ : state) {
    auto r = b.d.st->range(range_request{.key = key_of(static_cast<int>(rng() % million))});
    if (!r || r->kvs.size() != 1) state.SkipWithError("range failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(range_1);

void range_10000(benchmark::State& state) {
  auto& b = big();
  std::mt19937 rng(2);
  for (auto _ : state) {
    int from = static_cast<int>(rng() % (million - 10000));
    auto r = b.d.st->range(range_request{.key = key_of(from), .range_end = key_of(from + 10000)});
    if (!r || r->kvs.size() != 10000) state.SkipWithError("range failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(range_10000)->Unit(benchmark::kMillisecond);

void count_only_1M(benchmark::State& state) {
  auto& b = big();
  for (auto _ : state) {
    auto r = b.d.st->range(range_request{
        .key = std::string(1, '\0'), .range_end = std::string(1, '\0'), .count_only = true});
    if (!r || r->count != million) state.SkipWithError("count failed");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(count_only_1M)->Unit(benchmark::kMillisecond);

void key_index_lookup(benchmark::State& state) {
  auto& b = big();
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back(key_of((i * 7919) % million));
  const std::int64_t rev = b.d.st->rev();
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = b.d.st->index().get(keys[i++ & 4095], rev);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(key_index_lookup);

void compaction_1M_revs(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<temp_dir>();
    auto d = std::make_unique<db>(*dir);
    std::string value(100, 'c');
    for (int round = 0; round < 10; ++round) {
      for (int k = 0; k < 100000; ++k) d->st->put(put_request{key_of(k), value});
    }
    d->be->force_commit();
    const std::int64_t at = d->st->rev();
    state.ResumeTiming();
    if (!d->st->compact(at)) state.SkipWithError("compact failed");
    int steps = 0;
    while (d->st->compaction_step()) ++steps;
    d->be->force_commit();
    state.PauseTiming();
    state.counters["steps"] = steps + 1;
    d.reset();
    dir.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 1000000);
}
BENCHMARK(compaction_1M_revs)->Unit(benchmark::kMillisecond)->Iterations(1);

void watch_fanout_10000(benchmark::State& state) {
  temp_dir dir;
  db d(dir);
  watchable_options o;
  o.background = false;
  o.stream_capacity = 1024;
  watchable_store ws(*d.st, o);
  std::vector<std::unique_ptr<watch_stream>> streams;
  for (int s = 0; s < 100; ++s) {
    streams.push_back(ws.new_stream());
    for (int w = 0; w < 100; ++w) {
      if (!streams.back()->watch(watch_request{.key = "hot"})) state.SkipWithError("watch");
    }
  }
  std::string value(256, 'w');
  for (auto _ : state) {
    d.st->put(put_request{"hot", value});
    state.PauseTiming();
    std::size_t got = 0;
    for (auto& s : streams) {
      while (auto r = s->try_next()) got += r->events.size();
    }
    if (got != 10000) state.SkipWithError("lost events");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(watch_fanout_10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cairn::mvcc

BENCHMARK_MAIN();
