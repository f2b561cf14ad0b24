// WAL segment format, version 1. All integers little-endian.
//
// A segment file is named <seq>-<index>.wal (each 16 lower-case hex digits): seq counts
// segments from 0, index is the first raft index the segment may hold (last index + 1 when it
// was started). It is preallocated to the segment size (64 MiB by default) and zero-filled.
//
//   file header, 32 bytes
//     0   8  magic "cairnwal"
//     8   4  format version (1)
//     12  4  salt: random per file; seeds every frame checksum below, so bytes copied from
//            another segment (or written by a client into an entry) never pass as a frame here
//     16  8  seq, as in the name
//     24  4  CRC32C of bytes 0..24
//     28  4  zero
//   then frames, each starting at a multiple of 8:
//     0   4  payload length in bytes
//     4   4  flags: bit 0 set on the last frame of a batch; other bits zero
//     8   8  batch number: +1 for every batch appended (one fdatasync each), across segments
//     16  4  payload checksum: CRC32C(payload) seeded with the salt
//     20  4  header checksum: CRC32C(bytes 0..20) seeded with the salt
//     24  .  payload: a serialized walpb.Record {type, crc, data}
//     .   .  zero padding to the next multiple of 8
//   then zeros (the unused preallocated space).
//
// Record.crc chains across the whole log: it is the CRC32C of every earlier record's data and
// this one's (crc32c_extend(previous crc, data)); a RECORD_CRC record carries the running value
// into the next segment. The frame checksums make each frame checkable on its own; the chain
// catches frames that are intact but missing, reordered or from another log (see wal.cc).
//
// Every segment starts with one batch, the prelude: RECORD_CRC, RECORD_METADATA,
// RECORD_SNAPSHOT (the newest snapshot mark) and RECORD_STATE (the newest hard state), so a
// segment can be read without the ones before it.
//
// Reading, and what counts as a torn tail. A batch counts only once its last frame is read;
// the frames of an unfinished batch are dropped. Scanning stops at the first position that is
// not an intact frame. That is a clean end if no batch is open and everything from there on is
// zero. Otherwise, in any segment but the newest it is corruption. In the newest segment it is
// a torn write, cut off on open, only if all of this holds:
//   - the damaged frame has a 512-byte-aligned piece that is all zeros (a write that never
//     reached the disk leaves its sectors as they were: zero, since the file was preallocated);
//     a frame whose every sector holds data was damaged after it was written;
//   - no intact frame after it belongs to a later batch than the damaged one. Batch n + 1 is
//     only ever written after batch n was synced, so a later batch means the damage lies in
//     synced data, which no crash can tear.
// Any other damage is refused with the file and offset. Limits of the rule: damage to the last
// batch of the log is indistinguishable from a crash while writing it (the batch is dropped);
// and damage inside a frame whose payload has a whole zero-filled sector of its own counts as
// torn if no later batch follows.
#include "wal/segment.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/crc32c.h"

namespace cairn::wal {
namespace {

using base::crc32c;
using base::crc32c_extend;

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get32(std::string_view b, uint64_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
uint64_t get64(std::string_view b, uint64_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
uint64_t align8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

bool all_zero(std::string_view b) {
  return std::all_of(b.begin(), b.end(), [](char c) { return c == '\0'; });
}

cairn::unexpected<scan_error> fail(uint64_t offset, std::string reason) {
  return cairn::unexpected(scan_error{offset, std::move(reason)});
}

struct frame_header {
  uint32_t length;
  uint32_t flags;
  uint64_t batch;
  uint32_t payload_crc;
  uint32_t header_crc;
};

frame_header read_frame_header(std::string_view b, uint64_t at) {
  return {get32(b, at), get32(b, at + 4), get64(b, at + 8), get32(b, at + 16), get32(b, at + 20)};
}

bool header_intact(std::string_view b, uint64_t at, uint32_t salt) {
  return crc32c_extend(salt, b.substr(at, 20)) == get32(b, at + 20);
}

// Whether [lo, hi) holds a 512-byte-aligned piece that is all zeros: what a write that never
// reached the disk leaves behind in a zero-filled file.
bool has_unwritten_sector(std::string_view b, uint64_t lo, uint64_t hi) {
  hi = std::min<uint64_t>(hi, b.size());
  while (lo < hi) {
    const uint64_t piece_end = std::min(hi, (lo / sector_size + 1) * sector_size);
    if (all_zero(b.substr(lo, piece_end - lo))) return true;
    lo = piece_end;
  }
  return false;
}

}  // namespace

std::string encode_file_header(const segment_header& h) {
  std::string out(segment_magic);
  put32(out, segment_format_version);
  put32(out, h.salt);
  put64(out, h.seq);
  put32(out, crc32c(out));
  put32(out, 0);
  return out;
}

void encode_batch(uint32_t salt, uint64_t batch, std::span<const walpb::Record> records,
                  std::string& out) {
  std::string payload;
  for (size_t i = 0; i < records.size(); ++i) {
    payload.clear();
    records[i].SerializeToString(&payload);
    const size_t start = out.size();
    put32(out, static_cast<uint32_t>(payload.size()));
    put32(out, i + 1 == records.size() ? 1 : 0);
    put64(out, batch);
    put32(out, crc32c_extend(salt, payload));
    put32(out, crc32c_extend(salt, std::string_view(out).substr(start, 20)));
    out.append(payload);
    out.resize(align8(out.size()), '\0');
  }
}

cairn::expected<segment_scan, scan_error> scan_segment(std::string_view b, bool is_tail) {
  if (b.size() < file_header_size) {
    return fail(0, "file header cut short (" + std::to_string(b.size()) + " bytes)");
  }
  if (b.substr(0, 8) != segment_magic) return fail(0, "not a WAL segment (bad magic)");
  if (get32(b, 8) != segment_format_version) {
    return fail(8, "unsupported segment format version " + std::to_string(get32(b, 8)));
  }
  if (crc32c(b.substr(0, 24)) != get32(b, 24)) return fail(24, "file header checksum mismatch");
  if (get32(b, 28) != 0) return fail(28, "non-zero reserved bytes in the file header");

  segment_scan s;
  s.header = {get64(b, 16), get32(b, 12)};
  const uint32_t salt = s.header.salt;
  size_t complete = 0;  // records in complete batches
  uint64_t batch = 0;   // batch of the last intact frame (0: none yet)
  bool batch_open = false;
  uint64_t pos = file_header_size;

  enum class damage { eof, zero, header, payload };
  damage kind;
  std::string why;
  uint64_t damaged_len = 0;  // payload length, when the header is intact
  for (;;) {
    if (pos >= b.size()) {
      kind = damage::eof;
      why = "the file ends";
      break;
    }
    if (b.size() - pos < frame_header_size) {
      kind = damage::eof;
      why = "the file ends inside a record header";
      break;
    }
    if (all_zero(b.substr(pos, frame_header_size))) {
      kind = damage::zero;
      why = "zeros instead of a record";
      break;
    }
    if (!header_intact(b, pos, salt)) {
      kind = damage::header;
      why = "record header checksum mismatch";
      break;
    }
    const frame_header h = read_frame_header(b, pos);
    const uint64_t next = align8(pos + frame_header_size + h.length);
    if (next > b.size()) {
      kind = damage::eof;
      why = "a record of " + std::to_string(h.length) + " bytes runs past the end of the file";
      break;
    }
    const std::string_view payload = b.substr(pos + frame_header_size, h.length);
    if (crc32c_extend(salt, payload) != h.payload_crc) {
      kind = damage::payload;
      why = "record checksum mismatch";
      damaged_len = h.length;
      break;
    }
    // An intact frame: from here on, anything inconsistent is corruption, never a tear.
    if ((h.flags & ~uint32_t{1}) != 0) return fail(pos, "unknown record flags");
    if (h.batch == 0) return fail(pos, "batch number 0");
    if (batch != 0 && !batch_open && h.batch != batch + 1) {
      return fail(pos,
                  "batch " + std::to_string(h.batch) + " follows batch " + std::to_string(batch));
    }
    if (batch_open && h.batch != batch) {
      return fail(pos, "batch " + std::to_string(h.batch) + " inside unfinished batch " +
                           std::to_string(batch));
    }
    if (!all_zero(b.substr(pos + frame_header_size + h.length,
                           next - pos - frame_header_size - h.length))) {
      return fail(pos, "non-zero padding after a record");
    }
    scanned_record r;
    r.offset = pos;
    r.batch = h.batch;
    if (!r.record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return fail(pos, "record does not parse");
    }
    s.records.push_back(std::move(r));
    batch = h.batch;
    batch_open = (h.flags & 1) == 0;
    pos = next;
    if (!batch_open) {
      complete = s.records.size();
      if (s.first_batch == 0) s.first_batch = batch;
      s.last_batch = batch;
      s.end = pos;
    }
  }

  // `pos` is the first place that is not an intact frame.
  if (!batch_open && (kind == damage::eof || kind == damage::zero) &&
      all_zero(b.substr(std::min<uint64_t>(pos, b.size())))) {
    return s;  // a clean end
  }
  if (batch_open) why += " inside unfinished batch " + std::to_string(batch);
  if (!is_tail) return fail(pos, why);
  if (kind == damage::header || kind == damage::payload) {
    const uint64_t hi = pos + frame_header_size + (kind == damage::payload ? damaged_len : 0);
    if (!has_unwritten_sector(b, pos, hi)) {
      return fail(pos, why + ", and no sector of it is unwritten: damaged after it was synced");
    }
  }
  // The batch the damaged frame belongs to; an intact frame of any other batch after it shows
  // the damage is older than the last sync.
  const uint64_t damaged_batch = batch_open ? batch : batch + 1;
  for (uint64_t y = pos + 8; y + frame_header_size <= b.size(); y += 8) {
    if (get64(b, y) == 0 && get64(b, y + 8) == 0) continue;  // the common zero-filled case
    if (!header_intact(b, y, salt)) continue;
    const frame_header h = read_frame_header(b, y);
    if (h.length > b.size() - y - frame_header_size) continue;
    if (crc32c_extend(salt, b.substr(y + frame_header_size, h.length)) != h.payload_crc) continue;
    if (batch == 0 || h.batch != damaged_batch) {
      return fail(pos, why + "; an intact record of batch " + std::to_string(h.batch) +
                           " at offset " + std::to_string(y) +
                           " shows the log was synced past this point");
    }
  }
  s.records.resize(complete);
  s.torn = why;
  return s;
}

}  // namespace cairn::wal
