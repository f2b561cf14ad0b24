// Fuzz target: arbitrary bytes as a WAL segment. The scanner must never crash and must keep its
// own promises (offsets in range, complete batches only, a clean rescan of what it accepted);
// and when the bytes, as the only segment of a log, open, that log must take an append and
// read it back after the entries it replayed.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/sim_file.h"
#include "wal/segment.h"
#include "wal/wal.h"

namespace {

using namespace cairn;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "wal fuzz: property violated: %s\n", what);
  std::abort();
}

const std::string dir = "wal";
const std::string segment_path = dir + "/" + wal::segment_file_name(0, 1);
constexpr wal::options opts{.segment_size = 4096, .seed = 1};

void check_scan(std::string_view bytes, bool tail) {
  auto s = wal::scan_segment(bytes, tail);
  if (!s) {
    if (s.error().offset > bytes.size()) violated("error offset past the end");
    return;
  }
  if (s->end > bytes.size() || s->end < wal::file_header_size) violated("end out of range");
  if (!tail && !s->torn.empty()) violated("an older segment was reported torn");
  uint64_t prev = 0;
  for (const auto& r : s->records) {
    if (r.offset >= s->end || r.offset < prev) violated("record offsets out of order");
    if (r.batch < s->first_batch || r.batch > s->last_batch) violated("batch out of range");
    prev = r.offset + 1;
  }
  auto again = wal::scan_segment(bytes.substr(0, s->end), tail);
  if (!again || again->records.size() != s->records.size() || !again->torn.empty()) {
    violated("the accepted prefix does not rescan cleanly");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_scan(bytes, false);
  check_scan(bytes, true);

  base::sim_file_system fs;
  if (!fs.create_dir(dir) || !fs.open(segment_path, base::open_mode::create_exclusive)) {
    violated("setup");
  }
  fs.set_contents(segment_path, std::string(bytes));
  auto o = wal::wal::open(fs, dir, {}, opts);
  if (!o) return 0;
  std::vector<raftpb::Entry> want = o->data.entries;
  const uint64_t next = o->log->last_index() + 1;
  if (want.size() + 1 != next) return 0;  // a snapshot mark ahead of the entries: no round trip
  raftpb::Entry e;
  e.set_index(next);
  e.set_term(o->data.state.term());
  e.set_data("appended after fuzz input");
  if (!o->log->save(o->data.state, {&e, 1})) violated("a log that opened refuses an append");
  o->log.reset();
  auto again = wal::wal::open(fs, dir, {}, opts);
  if (!again) violated("the log does not reopen after an append");
  want.push_back(e);
  if (again->data.entries.size() != want.size()) violated("reopened entry count differs");
  for (size_t i = 0; i < want.size(); ++i) {
    if (again->data.entries[i].SerializeAsString() != want[i].SerializeAsString()) {
      violated("reopened entries differ");
    }
  }
  return 0;
}
