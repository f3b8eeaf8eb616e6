// Unsigned integers stored little-endian at any alignment: the byte order of TensorBundle
// checkpoint files and of the 8-byte words CRC32C's slicing loop reads.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstring>

namespace kiln {

template <std::unsigned_integral T>
T LoadLittleEndian(const void* p) {
  if constexpr (std::endian::native == std::endian::little) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    const auto* bytes = static_cast<const unsigned char*>(p);
    T v = 0;
    for (size_t i = sizeof v; i-- > 0;) v = static_cast<T>((v << 8) | bytes[i]);
    return v;
  }
}

}  // namespace kiln
