#include "common/crc32c.h"

#include <array>
#include <cstring>

#include "common/little_endian.h"

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace kiln::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xffu];
  return t;
}

constexpr Tables kTables = MakeTables();

// `l` is the raw (pre-inverted) register.
uint32_t ExtendTable(uint32_t l, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    l = kTables[0][(l ^ *p++) & 0xffu] ^ (l >> 8);
    --n;
  }
  while (n >= 8) {
    const uint64_t v = LoadLittleEndian<uint64_t>(p) ^ l;
    l = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^ kTables[5][(v >> 16) & 0xff] ^
        kTables[4][(v >> 24) & 0xff] ^ kTables[3][(v >> 32) & 0xff] ^ kTables[2][(v >> 40) & 0xff] ^
        kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    l = kTables[0][(l ^ *p++) & 0xffu] ^ (l >> 8);
    --n;
  }
  return l;
}

#if defined(__SSE4_2__)
// Compiled for SSE4.2: always use the instruction.
uint32_t ExtendHw(uint32_t l, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    l = _mm_crc32_u8(l, *p++);
    --n;
  }
  uint64_t l64 = l;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    l64 = _mm_crc32_u64(l64, v);
    p += 8;
    n -= 8;
  }
  l = static_cast<uint32_t>(l64);
  while (n > 0) {
    l = _mm_crc32_u8(l, *p++);
    --n;
  }
  return l;
}
constexpr bool kHaveHw = true;
inline bool CpuHasHw() { return true; }
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Not compiled for SSE4.2: build the instruction path anyway and pick it at run time.
__attribute__((target("sse4.2"))) uint32_t ExtendHw(uint32_t l, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    l = __builtin_ia32_crc32qi(l, *p++);
    --n;
  }
  unsigned long long l64 = l;
  while (n >= 8) {
    unsigned long long v;
    std::memcpy(&v, p, 8);
    l64 = __builtin_ia32_crc32di(l64, v);
    p += 8;
    n -= 8;
  }
  l = static_cast<uint32_t>(l64);
  while (n > 0) {
    l = __builtin_ia32_crc32qi(l, *p++);
    --n;
  }
  return l;
}
constexpr bool kHaveHw = true;
inline bool CpuHasHw() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#else
uint32_t ExtendHw(uint32_t l, const uint8_t* p, size_t n) { return ExtendTable(l, p, n); }
constexpr bool kHaveHw = false;
inline bool CpuHasHw() { return false; }
#endif

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  return ExtendTable(crc ^ 0xffffffffu, static_cast<const uint8_t*>(data), n) ^ 0xffffffffu;
}

bool HardwareAccelerated() { return kHaveHw && CpuHasHw(); }

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (kHaveHw && CpuHasHw()) return ExtendHw(crc ^ 0xffffffffu, p, n) ^ 0xffffffffu;
  return ExtendTable(crc ^ 0xffffffffu, p, n) ^ 0xffffffffu;
}

}  // namespace kiln::crc32c
