// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) as used by TensorBundle checkpoints and
// LevelDB-style tables, plus the "masking" those formats apply to stored checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln::tf::crc32c {

// Returns the CRC32C of concat(A, data[0, n)) where `crc` is the CRC32C of some string A.
// Extend(0, data, n) is the CRC32C of data. Uses the SSE4.2 crc32 instruction when the CPU
// has it, else a slicing-by-8 table.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
// Same result, always through the portable slicing-by-8 table (exposed for tests).
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
// True when Extend uses the hardware instruction.
bool HardwareAccelerated();

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

// Stored checksums are masked: a CRC of a string that embeds CRCs is otherwise degenerate.
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace kiln::tf::crc32c
