// TensorFlow's counter-based generator Philox4x32-10 and the distributions its stateless random
// ops draw from it (tensorflow/core/lib/random/philox_random.h, random_distributions.h), bit for
// bit: the same seed, key and counter give the same numbers as TensorFlow's CPU kernels.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace kiln::reference::philox {

using Block = std::array<uint32_t, 4>;  // one output of the generator, also its 128-bit counter
using Key = std::array<uint32_t, 2>;

// Philox4x32 with 10 rounds. Each call returns the block for the current counter and then
// advances the counter by one.
class Philox {
 public:
  Philox(Block counter, Key key) : counter_(counter), key_(key) {}

  Block Next() {
    Block c = counter_;
    Key k = key_;
    for (int round = 0; round < 10; ++round) {
      c = Round(c, k);
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    SkipOne();
    return c;
  }

  // Advances the 128-bit counter by `count` blocks.
  void Skip(uint64_t count) {
    const uint32_t lo = static_cast<uint32_t>(count);
    uint32_t hi = static_cast<uint32_t>(count >> 32);
    counter_[0] += lo;
    if (counter_[0] < lo) ++hi;
    counter_[1] += hi;
    if (counter_[1] < hi && ++counter_[2] == 0) ++counter_[3];
  }

  const Block& counter() const { return counter_; }
  const Key& key() const { return key_; }

 private:
  static Block Round(const Block& c, const Key& k) {
    const uint64_t p0 = uint64_t{0xD2511F53u} * c[0];
    const uint64_t p1 = uint64_t{0xCD9E8D57u} * c[2];
    return {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
            static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
  }
  void SkipOne() {
    if (++counter_[0] == 0 && ++counter_[1] == 0 && ++counter_[2] == 0) ++counter_[3];
  }

  Block counter_;
  Key key_;
};

// The key and counter TensorFlow derives from a two-element seed (GenerateKey): the seeds,
// widened to 64 bits (int32 seeds sign-extend), form a counter that one Philox block under a
// fixed key scrambles into the real key and the upper half of the counter.
inline void KeyCounterFromSeed(uint64_t seed0, uint64_t seed1, Key* key, Block* counter) {
  const Block mix = Philox({static_cast<uint32_t>(seed0), static_cast<uint32_t>(seed0 >> 32),
                            static_cast<uint32_t>(seed1), static_cast<uint32_t>(seed1 >> 32)},
                           {0x3ec8f720u, 0x02461e29u})
                        .Next();
  *key = {mix[0], mix[1]};
  *counter = {0, 0, mix[2], mix[3]};
}

// The uint64 tensors StatelessRandomGetKeyCounter outputs: key [1] and counter [2], low word first.
inline uint64_t Pack(uint32_t lo, uint32_t hi) { return lo | (static_cast<uint64_t>(hi) << 32); }
inline Philox FromKeyCounter(uint64_t key, const uint64_t counter[2]) {
  return Philox({static_cast<uint32_t>(counter[0]), static_cast<uint32_t>(counter[0] >> 32),
                 static_cast<uint32_t>(counter[1]), static_cast<uint32_t>(counter[1] >> 32)},
                {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)});
}

// [0, 1) from the mantissa bits: 1.m - 1 with 23 random bits (float), 52 (double: the low 20
// bits of x0 above the 32 of x1), 10 (half, the low bits of the word) or 7 (bfloat16).
inline float UniformFloat(uint32_t x) { return std::bit_cast<float>((127u << 23) | (x & 0x7fffffu)) - 1.0f; }
inline double UniformDouble(uint32_t x0, uint32_t x1) {
  return std::bit_cast<double>((uint64_t{1023} << 52) | (static_cast<uint64_t>(x0 & 0xfffffu) << 32) | x1) - 1.0;
}
// The half and bfloat16 values as float: 1.m - 1 is exact in the narrow type.
inline float UniformHalfAsFloat(uint32_t x) { return static_cast<float>(x & 0x3ffu) / 1024.0f; }
inline float UniformBFloat16AsFloat(uint32_t x) { return static_cast<float>(x & 0x7fu) / 128.0f; }

// Box-Muller on a pair of uniforms, as TensorFlow computes it: u1 floored at 1e-7, the angle
// 2*pi*u2 formed in double and rounded to the element type, sincos from the C library.
void BoxMullerFloat(uint32_t x0, uint32_t x1, float* f0, float* f1);
void BoxMullerDouble(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, double* d0, double* d1);

// Hands out a generator's words one at a time, drawing a new block when the last is used up
// (TensorFlow's SingleSampleAdapter, which truncated normal draws through).
class SingleSamples {
 public:
  explicit SingleSamples(Philox* gen) : gen_(gen) {}
  uint32_t Next() {
    if (used_ == 4) {
      block_ = gen_->Next();
      used_ = 0;
    }
    return block_[static_cast<size_t>(used_++)];
  }

 private:
  Philox* gen_;
  Block block_{};
  int used_ = 4;
};

}  // namespace kiln::reference::philox
