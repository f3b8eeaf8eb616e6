// Random reference kernels: Dropout. The generator is numpy's legacy RandomState (MT19937 seeded
// like std::mt19937, doubles of 53 random bits), the generator ONNX's reference implementation
// uses: with the same `seed` Kiln draws the same mask as onnx.reference (and the ONNX backend
// tests' expected outputs). See docs/ops/nn.md, "Dropout".
#include <fmt/format.h>

#include <cstdint>
#include <random>

#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

// numpy's RandomState(seed): init_genrand(seed) for seeds in [0, 2^32) (as numpy accepts them);
// other seeds, which numpy refuses, seed MT19937 from both 32-bit halves. Without a seed, from the
// system's entropy.
std::mt19937 Generator(const ir::AttrMap& attrs) {
  if (!attrs.Has("seed")) return std::mt19937(std::random_device{}());
  const int64_t seed = attrs.Int("seed");
  if (seed >= 0 && seed <= int64_t{0xFFFFFFFF}) return std::mt19937(static_cast<uint32_t>(seed));
  const uint64_t bits = static_cast<uint64_t>(seed);
  std::seed_seq seq{static_cast<uint32_t>(bits), static_cast<uint32_t>(bits >> 32)};
  return std::mt19937(seq);
}

// numpy's random_sample: 27 + 26 bits of two draws, in [0, 1).
double NextDouble(std::mt19937& gen) {
  const uint32_t a = gen() >> 5, b = gen() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

// ---- Dropout(x, ratio, training_mode) attr seed? -> (y, mask) ----
// Not training, or ratio 0: y = x and the mask is all true. Training: each element is kept when
// a uniform draw in [0, 1) is >= ratio (in the elements' row-major order), y = x / (1 - ratio)
// where kept, 0 elsewhere.
void DropoutKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& ratio_t = ctx.input(1);
  const Tensor& training_t = ctx.input(2);
  if (ratio_t.num_elements() != 1 || ratio_t.rank() > 1)
    ctx.Fail(fmt::format("ratio must be a scalar, got shape {}", ShapeToString(ratio_t.shape())));
  if (training_t.dtype() != DType::kBool || training_t.num_elements() != 1 || training_t.rank() > 1)
    ctx.Fail(fmt::format("training_mode must be a bool scalar, got {} {}", DTypeName(training_t.dtype()),
                         ShapeToString(training_t.shape())));
  const double ratio = ratio_t.DoubleAt(0);
  const bool training = training_t.data<bool>()[0];
  if (training && !(ratio >= 0 && ratio < 1)) ctx.Fail(fmt::format("ratio must be in [0, 1), got {}", ratio));
  const int64_t n = x.num_elements();
  bool* mask = ctx.num_outputs() > 1 ? ctx.AllocateOutput(1, DType::kBool, x.shape()).data<bool>() : nullptr;
  if (!training || ratio == 0) {
    ctx.SetOutput(0, x);
    if (mask) std::fill(mask, mask + n, true);
    return;
  }
  std::mt19937 gen = Generator(ctx.attrs());
  const double scale = 1.0 / (1.0 - ratio);
  DispatchFloat(x.dtype(), ctx.node().op, [&]<typename T>() {
    const T* in = x.data<T>();
    T* out = ctx.AllocateOutput(0, x.dtype(), x.shape()).template data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = NextDouble(gen) >= ratio;
      out[i] = FromDouble<T>(keep ? ToDouble(in[i]) * scale : 0.0);
      if (mask) mask[i] = keep;
    }
  });
}
KILN_REFERENCE_KERNEL("Dropout", DropoutKernel);

}  // namespace
}  // namespace kiln::reference
