// CRC32C (Castagnoli), the checksum of every WAL record and snapshot file.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table otherwise; both give
// the same answer (tested). Pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace cairn::base {

// Extends `crc`, the CRC32C of some earlier bytes (0 for none), with `data`, so that
// crc32c_extend(crc32c(a), b) == crc32c(a + b). This is what lets the WAL chain checksums.
uint32_t crc32c_extend(uint32_t crc, std::string_view data);

inline uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data); }

// The table implementation, always; exposed so tests can compare it with the hardware path.
uint32_t crc32c_extend_portable(uint32_t crc, std::string_view data);

}  // namespace cairn::base
