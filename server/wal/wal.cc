// The log over segment files (format: segment.cc). Directory layout and protocols:
//
//   <dir>/<seq>-<index>.wal   segments, seq contiguous from the oldest kept one
//   <dir>/*.wal.tmp           a segment being started; removed on open
//   <dir>.tmp/                a log being created; removed by the next create
//
// create: write segment 0 in <dir>.tmp, sync it and the directory, rename <dir>.tmp to <dir>,
// sync the parent. Cutting: write the new segment's prelude to a .tmp file, sync, rename, sync
// the directory, and only then append to it; the segment before was synced by its last batch.
// So after a crash the newest segment always has its prelude, and only its tail can be torn.
#include "wal/wal.h"
#include "base/failpoint.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "base/crc32c.h"
#include "wal/segment.h"

namespace cairn::wal {
namespace {

constexpr std::string_view tmp_suffix = ".tmp";

cairn::unexpected<error> fail_with(errc code, std::string message, int sys_errno = 0) {
  return cairn::unexpected(error{code, std::move(message), sys_errno});
}

cairn::unexpected<error> io_error(const base::file_error& e) {
  return fail_with(errc::io, "wal: " + e.message, e.code);
}

cairn::unexpected<error> corrupt(const std::string& path, uint64_t offset, std::string_view why) {
  return fail_with(errc::corrupt, fmt::format("wal: {}: offset {}: {}", path, offset, why));
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

[[noreturn]] void invariant_broken(const std::string& what) {
  std::fprintf(stderr, "wal: broken invariant: %s\n", what.c_str());
  std::abort();
}

}  // namespace

std::string segment_file_name(uint64_t seq, uint64_t first_index) {
  return fmt::format("{:016x}-{:016x}.wal", seq, first_index);
}

bool parse_segment_file_name(std::string_view name, uint64_t* seq, uint64_t* first_index) {
  if (name.size() != 37 || name[16] != '-' || name.substr(33) != ".wal") return false;
  auto hex = [](std::string_view s, uint64_t* out) {
    uint64_t v = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return false;
      }
      v = (v << 4) | static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  };
  return hex(name.substr(0, 16), seq) && hex(name.substr(17, 16), first_index);
}

wal::wal(base::file_system& fs, std::string dir, const options& opts)
    : fs_(fs),
      dir_(std::move(dir)),
      opts_(opts),
      rng_(opts.seed != 0 ? opts.seed : std::random_device{}()) {}

wal::~wal() { (void)close(); }

std::vector<std::string> wal::segment_names() const {
  std::vector<std::string> names;
  for (const auto& s : segments_) names.push_back(segment_file_name(s.seq, s.first_index));
  return names;
}

walpb::Record wal::chained(walpb::RecordType type, std::string data) {
  walpb::Record r;
  r.set_type(type);
  chain_ = base::crc32c_extend(chain_, data);
  r.set_crc(chain_);
  r.set_data(std::move(data));
  return r;
}

result<void> wal::fail(const base::file_error& e) {
  failed_ = error{errc::io, "wal: " + e.message, e.code};
  return cairn::unexpected(*failed_);
}

result<void> wal::start_segment(const std::string& dir, uint64_t seq, uint64_t first_index) {
  const std::string path = base::join_path(dir, segment_file_name(seq, first_index));
  const std::string tmp = path + std::string(tmp_suffix);
  // Until the rename nothing the log depends on has changed: a failure there leaves it as it was.
  const uint32_t chain_before = chain_;
  auto soft = [&](const base::file_error& e) -> result<void> {
    chain_ = chain_before;
    (void)fs_.remove(tmp);
    return cairn::unexpected(error{errc::io, "wal: " + e.message, e.code});
  };
  auto f = fs_.open(tmp, base::open_mode::create_truncate);
  if (!f) return soft(f.error());
  if (auto r = (*f)->preallocate(opts_.segment_size); !r) return soft(r.error());

  const uint32_t salt = static_cast<uint32_t>(rng_());
  std::string buf = encode_file_header({seq, salt});
  walpb::Record crc_record;
  crc_record.set_type(walpb::RECORD_CRC);
  crc_record.set_crc(chain_);
  walpb::SnapshotMark mark;
  mark.set_index(mark_.index);
  mark.set_term(mark_.term);
  const walpb::Record prelude[] = {
      crc_record,
      chained(walpb::RECORD_METADATA, metadata_),
      chained(walpb::RECORD_SNAPSHOT, mark.SerializeAsString()),
      chained(walpb::RECORD_STATE, state_.SerializeAsString()),
  };
  encode_batch(salt, next_batch_, prelude, buf);
  if (auto r = (*f)->write_at(0, buf); !r) return soft(r.error());
  if (auto r = (*f)->sync_data(); !r) return soft(r.error());
  if (auto r = (*f)->close(); !r) return soft(r.error());
  if (auto r = fs_.rename(tmp, path); !r) return fail(r.error());
  if (auto r = fs_.sync_dir(dir); !r) return fail(r.error());

  if (file_) (void)file_->close();
  file_.reset();
  auto reopened = fs_.open(path, base::open_mode::read_write);
  if (!reopened) return fail(reopened.error());
  file_ = std::move(*reopened);
  salt_ = salt;
  offset_ = buf.size();
  ++next_batch_;
  segments_.push_back({seq, first_index});
  return {};
}

result<std::unique_ptr<wal>> wal::create(base::file_system& fs, const std::string& dir,
                                         std::string_view metadata, const options& opts) {
  auto there = fs.exists(dir);
  if (!there) return io_error(there.error());
  if (*there) return fail_with(errc::already_exists, "wal: " + dir + " already exists");
  const std::string parent = base::parent_dir(dir);
  if (auto r = base::create_dirs(fs, parent); !r) return io_error(r.error());

  // A leftover from a create that crashed: never a log (the rename is the commit point).
  const std::string tmp = dir + std::string(tmp_suffix);
  auto tmp_there = fs.exists(tmp);
  if (!tmp_there) return io_error(tmp_there.error());
  if (*tmp_there) {
    auto names = fs.list_dir(tmp);
    if (!names) return io_error(names.error());
    for (const auto& n : *names) {
      if (auto r = fs.remove(base::join_path(tmp, n)); !r) return io_error(r.error());
    }
    if (auto r = fs.remove(tmp); !r) return io_error(r.error());
  }
  if (auto r = fs.create_dir(tmp); !r) return io_error(r.error());

  std::unique_ptr<wal> w(new wal(fs, tmp, opts));
  w->metadata_ = std::string(metadata);
  if (auto r = w->start_segment(tmp, 0, 1); !r) return cairn::unexpected(r.error());
  (void)w->file_->close();
  w->file_.reset();
  if (auto r = fs.sync_dir(tmp); !r) return io_error(r.error());
  if (auto r = fs.rename(tmp, dir); !r) return io_error(r.error());
  if (auto r = fs.sync_dir(parent); !r) return io_error(r.error());

  w->dir_ = dir;
  auto f = fs.open(base::join_path(dir, segment_file_name(0, 1)), base::open_mode::read_write);
  if (!f) return io_error(f.error());
  w->file_ = std::move(*f);
  return w;
}

result<bool> wal::exists(base::file_system& fs, const std::string& dir) {
  auto there = fs.exists(dir);
  if (!there) return io_error(there.error());
  return *there;
}

result<wal::opened> wal::open(base::file_system& fs, const std::string& dir, snapshot_mark from,
                              const options& opts) {
  auto there = fs.exists(dir);
  if (!there) return io_error(there.error());
  if (!*there) return fail_with(errc::not_found, "wal: " + dir + " does not exist");
  auto names = fs.list_dir(dir);
  if (!names) return io_error(names.error());

  std::unique_ptr<wal> w(new wal(fs, dir, opts));
  std::vector<std::string> leftovers;
  for (const auto& n : *names) {
    segment s;
    if (parse_segment_file_name(n, &s.seq, &s.first_index)) {
      w->segments_.push_back(s);
    } else if (ends_with(n, ".wal.tmp")) {
      leftovers.push_back(n);
    }
  }
  auto& segs = w->segments_;
  if (segs.empty()) return fail_with(errc::corrupt, "wal: " + dir + " holds no segment files");
  std::sort(segs.begin(), segs.end(), [](auto& a, auto& b) { return a.seq < b.seq; });

  // The newest segment that may hold entry from.index + 1; older ones are not needed.
  size_t start = segs.size();
  for (size_t i = segs.size(); i-- > 0;) {
    if (segs[i].first_index <= from.index + 1) {
      start = i;
      break;
    }
  }
  if (start == segs.size()) {
    return fail_with(errc::snapshot_not_found,
                     fmt::format("wal: {}: the oldest segment starts at index {}, after "
                                 "snapshot index {}",
                                 dir, segs.front().first_index, from.index));
  }

  replay out;
  bool chain_known = false;
  bool metadata_known = false;
  bool mark_found = false;
  uint64_t prev_last_batch = 0;
  w->last_index_ = segs[start].first_index - 1;
  for (size_t i = start; i < segs.size(); ++i) {
    const std::string name = segment_file_name(segs[i].seq, segs[i].first_index);
    const std::string path = base::join_path(dir, name);
    if (i > start && segs[i].seq != segs[i - 1].seq + 1) {
      return fail_with(errc::corrupt,
                       fmt::format("wal: {}: segment {} is missing before {}", dir,
                                   segment_file_name(segs[i - 1].seq + 1, 0).substr(0, 16), name));
    }
    auto bytes = base::read_file(fs, path);
    if (!bytes) return io_error(bytes.error());
    const bool tail = i + 1 == segs.size();
    auto scan = scan_segment(*bytes, tail);
    if (!scan) return corrupt(path, scan.error().offset, scan.error().reason);
    const auto& recs = scan->records;
    if (scan->header.seq != segs[i].seq) {
      return corrupt(path, 16, fmt::format("header says segment {}", scan->header.seq));
    }
    const bool prelude_ok = recs.size() >= 4 && recs[0].record.type() == walpb::RECORD_CRC &&
                            recs[1].record.type() == walpb::RECORD_METADATA &&
                            recs[2].record.type() == walpb::RECORD_SNAPSHOT &&
                            recs[3].record.type() == walpb::RECORD_STATE &&
                            recs[3].batch == scan->first_batch &&
                            (recs.size() == 4 || recs[4].batch != scan->first_batch);
    if (!prelude_ok) {
      return corrupt(path, file_header_size, "the segment does not start with a complete prelude");
    }
    if (prev_last_batch != 0 && scan->first_batch != prev_last_batch + 1) {
      return corrupt(path, file_header_size,
                     fmt::format("batch {} follows batch {} of the previous segment",
                                 scan->first_batch, prev_last_batch));
    }
    prev_last_batch = scan->last_batch;

    for (const auto& sr : recs) {
      const walpb::Record& r = sr.record;
      if (r.type() == walpb::RECORD_CRC) {
        if (chain_known && r.crc() != w->chain_) {
          return corrupt(path, sr.offset,
                         fmt::format("checksum chain broken: the segment carries {:08x}, the "
                                     "previous one ended with {:08x}",
                                     r.crc(), w->chain_));
        }
        w->chain_ = r.crc();
        chain_known = true;
        continue;
      }
      const uint32_t expected = base::crc32c_extend(w->chain_, r.data());
      if (r.crc() != expected) {
        return corrupt(path, sr.offset, "checksum chain broken (a record is missing or foreign)");
      }
      w->chain_ = expected;
      switch (r.type()) {
        case walpb::RECORD_METADATA:
          if (metadata_known && r.data() != out.metadata) {
            return corrupt(path, sr.offset, "metadata differs from the earlier segments'");
          }
          out.metadata = r.data();
          metadata_known = true;
          break;
        case walpb::RECORD_ENTRY: {
          raftpb::Entry e;
          if (!e.ParseFromString(r.data())) return corrupt(path, sr.offset, "bad entry");
          w->last_index_ = e.index();
          if (e.index() <= from.index) {
            // Raft only rewrites uncommitted entries, so this never meets a kept one; if it
            // did, everything after it would have been superseded.
            out.entries.clear();
            break;
          }
          const uint64_t pos = e.index() - from.index - 1;
          if (pos > out.entries.size()) {
            return corrupt(path, sr.offset,
                           fmt::format("entry {} leaves a gap after index {}", e.index(),
                                       from.index + out.entries.size()));
          }
          out.entries.resize(pos);
          out.entries.push_back(std::move(e));
          break;
        }
        case walpb::RECORD_STATE:
          if (!out.state.ParseFromString(r.data())) {
            return corrupt(path, sr.offset, "bad hard state");
          }
          break;
        case walpb::RECORD_SNAPSHOT: {
          walpb::SnapshotMark m;
          if (!m.ParseFromString(r.data())) return corrupt(path, sr.offset, "bad snapshot mark");
          if (m.index() == from.index) {
            if (m.term() != from.term) {
              return fail_with(
                  errc::snapshot_not_found,
                  fmt::format("wal: {}: offset {}: the mark for snapshot index {} has term {}, "
                              "not {}",
                              path, sr.offset, m.index(), m.term(), from.term));
            }
            mark_found = true;
          }
          w->mark_ = {m.index(), m.term()};
          w->last_index_ = std::max(w->last_index_, m.index());
          break;
        }
        default:
          return corrupt(path, sr.offset,
                         fmt::format("unknown record type {}", static_cast<int>(r.type())));
      }
    }

    if (tail) {
      auto f = fs.open(path, base::open_mode::read_write);
      if (!f) return io_error(f.error());
      if (!scan->torn.empty()) {
        spdlog::warn("wal: {}: cut off a torn write at offset {} ({})", path, scan->end,
                     scan->torn);
        if (auto r = (*f)->truncate(scan->end); !r) return io_error(r.error());
        if (auto r = (*f)->preallocate(opts.segment_size); !r) return io_error(r.error());
        if (auto r = (*f)->sync_data(); !r) return io_error(r.error());
      }
      w->file_ = std::move(*f);
      w->salt_ = scan->header.salt;
      w->offset_ = scan->end;
      w->next_batch_ = scan->last_batch + 1;
    }
  }
  if (!mark_found) {
    return fail_with(
        errc::snapshot_not_found,
        fmt::format("wal: {}: no mark for snapshot index {} term {}", dir, from.index, from.term));
  }
  if (!leftovers.empty()) {
    for (const auto& n : leftovers) {
      if (auto r = fs.remove(base::join_path(dir, n)); !r) return io_error(r.error());
    }
    if (auto r = fs.sync_dir(dir); !r) return io_error(r.error());
  }
  w->metadata_ = out.metadata;
  w->state_ = out.state;
  return opened{std::move(w), std::move(out)};
}

result<void> wal::append_batch(std::span<const walpb::Record> records) {
  std::string buf;
  encode_batch(salt_, next_batch_, records, buf);
  if (auto r = file_->write_at(offset_, buf); !r) {
    // A short write (ENOSPC past the preallocated space) can leave part of a frame that no
    // sector-level tear explains; cut it off so a reopen sees a clean end. Once that cut is
    // durable the log is exactly as before the call (the caller restores its own fields), and
    // the batch can be written again later.
    if (file_->truncate(offset_) && file_->sync_data())
      return cairn::unexpected(error{errc::io, "wal: " + r.error().message, r.error().code});
    return fail(r.error());
  }
#if !defined(CAIRN_PLANTED_BUG_WAL_NO_FSYNC)
  {
    const auto start = std::chrono::steady_clock::now();
    CAIRN_FAILPOINT("walBeforeFsync");
    if (auto r = file_->sync_data(); !r) return fail(r.error());
    CAIRN_FAILPOINT("walAfterFsync");
    if (opts_.stats != nullptr)
      opts_.stats->wal_fsync.observe(std::chrono::steady_clock::now() - start);
  }
#endif
  if (opts_.stats != nullptr) {
    opts_.stats->wal_write_bytes.fetch_add(buf.size(), std::memory_order_relaxed);
  }
  offset_ += buf.size();
  ++next_batch_;
  if (offset_ >= opts_.segment_size) {
    // The batch is durable. A new segment that cannot be made yet (a full disk) is tried again
    // after the next batch, which meanwhile grows this one; any other failure poisons the log.
    auto r = start_segment(dir_, segments_.back().seq + 1, last_index_ + 1);
    if (!r && !failed_) return {};
    return r;
  }
  return {};
}

result<void> wal::save(const raftpb::HardState& state, std::span<const raftpb::Entry> entries) {
  if (failed_) return cairn::unexpected(*failed_);
  if (!file_) return fail_with(errc::io, "wal: " + dir_ + ": closed");
  const bool state_changed = state.term() != state_.term() || state.vote() != state_.vote() ||
                             state.commit() != state_.commit();
  if (entries.empty() && !state_changed) return {};
  if (!entries.empty()) {
    if (entries.front().index() == 0 || entries.front().index() > last_index_ + 1) {
      invariant_broken(fmt::format("entry {} appended after last index {}", entries.front().index(),
                                   last_index_));
    }
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].index() != entries[i - 1].index() + 1) {
        invariant_broken(fmt::format("entries {} and {} are not contiguous", entries[i - 1].index(),
                                     entries[i].index()));
      }
    }
  }
  const uint32_t chain_before = chain_;  // chained() moves it
  std::vector<walpb::Record> records;
  records.reserve(entries.size() + 1);
  for (const auto& e : entries)
    records.push_back(chained(walpb::RECORD_ENTRY, e.SerializeAsString()));
  if (state_changed) records.push_back(chained(walpb::RECORD_STATE, state.SerializeAsString()));
  const uint64_t last_before = last_index_;
  const raftpb::HardState state_before = state_;
  if (!entries.empty()) last_index_ = entries.back().index();
  if (state_changed) state_ = state;
  auto r = append_batch(records);
  if (!r && !failed_) {  // nothing was written: as before the call
    chain_ = chain_before;
    last_index_ = last_before;
    state_ = state_before;
  }
  return r;
}

result<void> wal::save_snapshot(snapshot_mark mark) {
  if (failed_) return cairn::unexpected(*failed_);
  if (!file_) return fail_with(errc::io, "wal: " + dir_ + ": closed");
  walpb::SnapshotMark m;
  m.set_index(mark.index);
  m.set_term(mark.term);
  const walpb::Record records[] = {chained(walpb::RECORD_SNAPSHOT, m.SerializeAsString())};
  mark_ = mark;
  last_index_ = std::max(last_index_, mark.index);
  auto r = append_batch(records);
  if (!r && !failed_) failed_ = r.error();  // its callers stop the node: no way back here
  return r;
}

result<void> wal::release_to(uint64_t index) {
  if (failed_) return cairn::unexpected(*failed_);
  // Keep the newest segment that may hold entry index + 1 and everything after it.
  size_t keep = 0;
  for (size_t i = segments_.size(); i-- > 0;) {
    if (segments_[i].first_index <= index + 1) {
      keep = i;
      break;
    }
  }
  if (keep == 0) return {};
  for (size_t i = 0; i < keep; ++i) {
    const std::string path =
        base::join_path(dir_, segment_file_name(segments_[i].seq, segments_[i].first_index));
    if (auto r = fs_.remove(path); !r) {
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(i));
      return io_error(r.error());
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(keep));
  if (auto r = fs_.sync_dir(dir_); !r) return io_error(r.error());
  return {};
}

result<void> wal::close() {
  if (!file_) return {};
  auto r = file_->close();
  file_.reset();
  if (!r) return io_error(r.error());
  return {};
}

}  // namespace cairn::wal
