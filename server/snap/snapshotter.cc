// Snapshot files.
//
// Name: <term>-<index>.snap (16 lower-case hex digits each) in the snapshot directory; newest
// means highest index (then term).
// Content: a serialized snappb.SnapshotFile {crc: CRC32C of data, data: a serialized
// raftpb.Snapshot}. A file is intact when it parses, the CRC matches, the snapshot has a
// non-zero index, and its index and term are the ones in the name.
// Save: write <name>.tmp, fdatasync, rename to <name>, fsync the directory, so a crash leaves
// either no file of that name or the whole file; leftover .tmp files are removed by the next
// save. Then the oldest files beyond `keep` are removed (the directory synced again).
#include "snap/snapshotter.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/crc32c.h"
#include "snappb/snap.pb.h"

namespace cairn::snap {
namespace {

cairn::unexpected<error> fail(errc code, std::string message, int sys_errno = 0) {
  return cairn::unexpected(error{code, std::move(message), sys_errno});
}

cairn::unexpected<error> io_error(const base::file_error& e) {
  return fail(errc::io, "snap: " + e.message, e.code);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

struct named {
  std::string name;
  uint64_t term;
  uint64_t index;
};

}  // namespace

std::string encode_snapshot_file(const raftpb::Snapshot& s) {
  snappb::SnapshotFile f;
  f.set_data(s.SerializeAsString());
  f.set_crc(base::crc32c(f.data()));
  return f.SerializeAsString();
}

result<raftpb::Snapshot> decode_snapshot_file(std::string_view bytes) {
  snappb::SnapshotFile f;
  if (!f.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return fail(errc::corrupt, "not a snapshot file (does not parse)");
  }
  if (f.data().empty()) return fail(errc::corrupt, "empty snapshot file");
  const uint32_t crc = base::crc32c(f.data());
  if (crc != f.crc()) {
    return fail(errc::corrupt,
                fmt::format("checksum mismatch: file says {:08x}, data has {:08x}", f.crc(), crc));
  }
  raftpb::Snapshot s;
  if (!s.ParseFromString(f.data())) return fail(errc::corrupt, "snapshot does not parse");
  if (s.metadata().index() == 0) return fail(errc::corrupt, "snapshot has index 0");
  return s;
}

std::string snapshot_file_name(uint64_t term, uint64_t index) {
  return fmt::format("{:016x}-{:016x}.snap", term, index);
}

bool parse_snapshot_file_name(std::string_view name, uint64_t* term, uint64_t* index) {
  if (name.size() != 38 || name[16] != '-' || name.substr(33) != ".snap") return false;
  auto hex = [](std::string_view s, uint64_t* out) {
    uint64_t v = 0;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        v = (v << 4) | static_cast<uint64_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = (v << 4) | static_cast<uint64_t>(c - 'a' + 10);
      } else {
        return false;
      }
    }
    *out = v;
    return true;
  };
  return hex(name.substr(0, 16), term) && hex(name.substr(17, 16), index);
}

snapshotter::snapshotter(base::file_system& fs, std::string dir, size_t keep)
    : fs_(fs), dir_(std::move(dir)), keep_(std::max<size_t>(keep, 1)) {}

result<std::vector<std::string>> snapshotter::names() {
  auto all = fs_.list_dir(dir_);
  if (!all) return io_error(all.error());
  std::vector<named> found;
  for (const auto& n : *all) {
    named e{n, 0, 0};
    if (parse_snapshot_file_name(n, &e.term, &e.index)) found.push_back(std::move(e));
  }
  std::sort(found.begin(), found.end(), [](const named& a, const named& b) {
    return a.index != b.index ? a.index > b.index : a.term > b.term;
  });
  std::vector<std::string> out;
  for (auto& e : found) out.push_back(std::move(e.name));
  return out;
}

result<void> snapshotter::save(const raftpb::Snapshot& s) {
  if (s.metadata().index() == 0) return {};
  const std::string path =
      base::join_path(dir_, snapshot_file_name(s.metadata().term(), s.metadata().index()));
  if (auto r = base::write_file_atomically(fs_, path, encode_snapshot_file(s)); !r) {
    return io_error(r.error());
  }

  auto sorted = names();
  if (!sorted) return cairn::unexpected(sorted.error());
  auto all = fs_.list_dir(dir_);
  if (!all) return io_error(all.error());
  std::vector<std::string> doomed(
      sorted->begin() + static_cast<ptrdiff_t>(std::min(keep_, sorted->size())), sorted->end());
  for (const auto& n : *all) {
    if (ends_with(n, ".snap.tmp")) doomed.push_back(n);
  }
  if (doomed.empty()) return {};
  for (const auto& n : doomed) {
    if (auto r = fs_.remove(base::join_path(dir_, n)); !r) return io_error(r.error());
  }
  if (auto r = fs_.sync_dir(dir_); !r) return io_error(r.error());
  return {};
}

result<raftpb::Snapshot> snapshotter::load() {
  return load_newest([](uint64_t, uint64_t) { return true; });
}

result<raftpb::Snapshot> snapshotter::load_newest(
    const std::function<bool(uint64_t index, uint64_t term)>& acceptable) {
  auto sorted = names();
  if (!sorted) return cairn::unexpected(sorted.error());
  size_t broken = 0;
  for (const auto& n : *sorted) {
    uint64_t term = 0, index = 0;
    parse_snapshot_file_name(n, &term, &index);
    if (!acceptable(index, term)) continue;
    const std::string path = base::join_path(dir_, n);
    auto bytes = base::read_file(fs_, path);
    if (!bytes) return io_error(bytes.error());
    auto s = decode_snapshot_file(*bytes);
    std::string why;
    if (!s) {
      why = s.error().message;
    } else if (s->metadata().index() != index || s->metadata().term() != term) {
      why = fmt::format("it holds the snapshot at index {} term {}", s->metadata().index(),
                        s->metadata().term());
    } else {
      return s;
    }
    ++broken;
    spdlog::warn("snap: skipping broken snapshot file {}: {}", path, why);
  }
  return fail(errc::no_snapshot,
              broken == 0
                  ? fmt::format("snap: no snapshot in {}", dir_)
                  : fmt::format("snap: no intact snapshot in {} ({} broken)", dir_, broken));
}

}  // namespace cairn::snap
