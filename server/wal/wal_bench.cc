// Micro-benchmarks: appending a batch of 256-byte entries with its one fdatasync, at batch sizes
// 1, 10, 100 and 1000, beside the disk's raw fdatasync latency (4 KiB write + fdatasync, to one
// block or advancing through a preallocated file). Real disk, through the POSIX file layer.
//
// The directory is CAIRN_BENCH_DIR if set (it must be on the disk to measure), else the
// system temporary directory.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/file.h"
#include "wal/wal.h"

namespace {

using namespace cairn;

std::string make_temp_dir() {
  const char* base = std::getenv("CAIRN_BENCH_DIR");
  std::string templ =
      (std::filesystem::path(base != nullptr ? base : std::filesystem::temp_directory_path()) /
       "cairn-wal-bench-XXXXXX")
          .string();
  if (::mkdtemp(templ.data()) == nullptr) std::abort();
  return templ;
}

void BM_raw_fdatasync(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  auto& fs = base::posix_file_system();
  auto f = fs.open(dir + "/f", base::open_mode::create_truncate);
  if (!f || !(*f)->preallocate(64 << 20) || !(*f)->sync_data()) {
    state.SkipWithError("setup failed");
    return;
  }
  // Arg 0: rewrite one 4 KiB block (the data sync alone). Arg 1: write the next 4 KiB block of
  // the preallocated file each time, as a log does (the first write to a preallocated block
  // also commits the file system's note that the block now holds data).
  const bool advance = state.range(0) == 1;
  const std::string block(4096, 'x');
  uint64_t offset = 0;
  for (auto _ : state) {
    if (!(*f)->write_at(offset, block) || !(*f)->sync_data()) {
      state.SkipWithError("write failed");
      break;
    }
    if (advance) offset = (offset + block.size()) % (64 << 20);
  }
  (*f)->close();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_raw_fdatasync)->Arg(0)->Arg(1)->UseRealTime();

void BM_wal_append(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  auto& fs = base::posix_file_system();
  auto w = wal::wal::create(fs, dir + "/wal", "bench");
  if (!w) {
    state.SkipWithError(w.error().message.c_str());
    return;
  }
  const auto batch_size = static_cast<uint64_t>(state.range(0));
  std::vector<raftpb::Entry> batch(batch_size);
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  uint64_t next = 1;
  for (auto _ : state) {
    for (auto& e : batch) {
      e.set_index(next++);
      e.set_term(1);
      e.set_data(std::string(256, 'v'));
    }
    hs.set_commit(next - 1);
    if (auto r = (*w)->save(hs, batch); !r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch_size * 256));
  state.counters["segments"] = static_cast<double>((*w)->segment_names().size());
  w->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_wal_append)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
