// One WAL segment file: its byte format (specified at the top of segment.cc), the encoder the
// log appends with, and the scanner that reads a segment back and decides where a torn tail
// ends and where damage is real corruption. Pure functions over bytes, no I/O: the fuzz target
// drives scan_segment() directly. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "walpb/record.pb.h"

namespace cairn::wal {

inline constexpr std::string_view segment_magic = "cairnwal";
inline constexpr uint32_t segment_format_version = 1;
inline constexpr uint64_t file_header_size = 32;
inline constexpr uint64_t frame_header_size = 24;
// The unit a disk writes atomically, as far as the torn-write rule below assumes (the smallest
// sector size in use; a 4 KiB-sector disk tears at coarser, aligned boundaries, which this covers).
inline constexpr uint64_t sector_size = 512;

struct segment_header {
  uint64_t seq = 0;   // the segment's sequence number (also in its file name)
  uint32_t salt = 0;  // seeds every frame checksum of this file
};

std::string encode_file_header(const segment_header& h);

// Appends the frames of one batch (one record each, the last one flagged as ending the batch)
// to out. out.size() must be a multiple of 8 and out must land at an 8-aligned file offset.
void encode_batch(uint32_t salt, uint64_t batch, std::span<const walpb::Record> records,
                  std::string& out);

struct scanned_record {
  uint64_t offset = 0;  // of the frame in the file
  uint64_t batch = 0;
  walpb::Record record;
};

struct segment_scan {
  segment_header header;
  // Every record of every complete batch, in file order. Records of a batch whose last frame
  // is missing are never returned.
  std::vector<scanned_record> records;
  uint64_t first_batch = 0;  // 0 when there is no complete batch
  uint64_t last_batch = 0;
  // Just past the last complete batch: where the next batch goes.
  uint64_t end = file_header_size;
  // Non-empty when bytes after `end` are a torn write that a repair must cut off; says what
  // was found there.
  std::string torn;
};

struct scan_error {
  uint64_t offset = 0;
  std::string reason;
};

// Reads a segment. A tail segment (the newest, where a crash can leave a torn write) may end in
// a torn batch; any other segment must end cleanly. See segment.cc for the rules.
cairn::expected<segment_scan, scan_error> scan_segment(std::string_view bytes, bool is_tail);

}  // namespace cairn::wal
