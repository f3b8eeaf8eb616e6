// Reference kernels: Pad (CONSTANT / REFLECT / SYMMETRIC), SpaceToBatchND, BatchToSpaceND.
#include <algorithm>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::DispatchMove;
using array::Elems;
using array::IntInput;

// Reads an [n, 2] pair tensor (paddings / crops) as n pairs.
std::vector<std::pair<int64_t, int64_t>> Pairs(const KernelContext& ctx, int i, int64_t n, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.rank() != 2 || t.dim(0) != n || t.dim(1) != 2)
    ctx.Fail(fmt::format("{} must have shape [{},2], got {}", what, n, ShapeToString(t.shape())));
  const auto v = IntInput(ctx, i, what);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t a = v[static_cast<size_t>(2 * k)], b = v[static_cast<size_t>(2 * k + 1)];
    if (a < 0 || b < 0) ctx.Fail(fmt::format("{}[{}] = [{},{}] must be non-negative", what, k, a, b));
    out.emplace_back(a, b);
  }
  return out;
}

void Pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::string mode = ctx.attrs().GetOr<std::string>("mode", "CONSTANT");
  if (mode != "CONSTANT" && mode != "REFLECT" && mode != "SYMMETRIC")
    ctx.Fail(fmt::format("mode must be CONSTANT, REFLECT or SYMMETRIC, got '{}'", mode));
  const auto pads = Pairs(ctx, 1, x.rank(), "paddings");
  const Tensor* fill = nullptr;
  if (ctx.num_inputs() == 3) {
    fill = &ctx.input(2);
    if (fill->dtype() != x.dtype() || fill->num_elements() != 1)
      ctx.Fail(fmt::format("constant_value must be a {} scalar, got {}{}", DTypeName(x.dtype()), DTypeName(fill->dtype()),
                           ShapeToString(fill->shape())));
  }
  const auto strides = array::Strides(x.shape());
  // The output's size is checked (and the output allocated) before the per-dim index maps, which
  // are as long as the output's dims.
  Shape out_shape;
  for (int d = 0; d < x.rank(); ++d) {
    const int64_t n = x.dim(d);
    const auto [before, after] = pads[static_cast<size_t>(d)];
    if (mode != "CONSTANT") {
      const int64_t limit = mode == "REFLECT" ? n - 1 : n;
      if (before > limit || after > limit)
        ctx.Fail(fmt::format("{} paddings[{}] = [{},{}] must be at most {} for dimension {} of input shape {}", mode, d, before, after,
                             std::max<int64_t>(limit, 0), d, ShapeToString(x.shape())));
    }
    int64_t m = 0;
    if (__builtin_add_overflow(n, before, &m) || __builtin_add_overflow(m, after, &m) || m < 0)
      ctx.Fail(fmt::format("paddings[{}] = [{},{}] give dimension {} of input shape {} an impossible size", d, before,
                           after, d, ShapeToString(x.shape())));
    out_shape.push_back(m);
  }
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (out.num_elements() == 0) return;
  std::vector<std::vector<int64_t>> maps;
  for (int d = 0; d < x.rank(); ++d) {
    const int64_t n = x.dim(d), m = out_shape[static_cast<size_t>(d)];
    const int64_t before = pads[static_cast<size_t>(d)].first;
    std::vector<int64_t> map(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      int64_t src = i - before;
      if (mode == "REFLECT") {
        if (src < 0) src = -src;
        else if (src >= n) src = 2 * (n - 1) - src;
      } else if (mode == "SYMMETRIC") {
        if (src < 0) src = -src - 1;
        else if (src >= n) src = 2 * n - src - 1;
      }
      map[static_cast<size_t>(i)] = (src < 0 || src >= n) ? -1 : src * strides[static_cast<size_t>(d)];
    }
    maps.push_back(std::move(map));
  }
  array::MapCopyTensor(ctx, x, out, maps, fill);
}
KILN_REFERENCE_KERNEL("Pad", Pad);

// Shared by SpaceToBatchND (to_batch) and BatchToSpaceND. `space` is the tensor with the large
// spatial dims ([B] + padded/cropped spatial + rest), `batch` the one with the blocks in the batch
// dim ([B * prod(block)] + spatial / block + rest). Visits every (batch element, block offset,
// spatial position) once and copies `inner` contiguous elements between them.
template <typename T>
void SpaceBatchCopy(const Shape& space_shape, const Shape& batch_shape, const std::vector<int64_t>& block,
                    const std::vector<std::pair<int64_t, int64_t>>& pads, const T* src, T* dst, bool to_batch) {
  const size_t m = block.size();
  const int64_t batch = space_shape[0];
  int64_t inner = 1;
  for (size_t d = m + 1; d < space_shape.size(); ++d) inner *= space_shape[d];
  const auto space_strides = array::Strides(space_shape);
  const auto batch_strides = array::Strides(batch_shape);
  int64_t blocks = 1;
  for (int64_t b : block) blocks *= b;
  std::vector<int64_t> off(m), pos(m);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t rem = blk;
    for (size_t i = m; i-- > 0;) {
      off[i] = rem % block[i];
      rem /= block[i];
    }
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t ob = blk * batch + n;
      int64_t count = 1;
      for (size_t i = 0; i < m; ++i) count *= batch_shape[i + 1];
      std::fill(pos.begin(), pos.end(), 0);
      for (int64_t k = 0; k < count; ++k) {
        int64_t b_off = ob * batch_strides[0], s_off = n * space_strides[0];
        bool inside = true;
        for (size_t i = 0; i < m; ++i) {
          const int64_t q = pos[i] * block[i] + off[i] - pads[i].first;  // position in the space tensor
          if (q < 0 || q >= space_shape[i + 1]) inside = false;
          b_off += pos[i] * batch_strides[i + 1];
          s_off += q * space_strides[i + 1];
        }
        if (to_batch) {
          if (inside) std::copy_n(src + s_off, inner, dst + b_off);
          else std::fill_n(dst + b_off, inner, T{});
        } else if (inside) {
          std::copy_n(src + b_off, inner, dst + s_off);
        }
        for (size_t i = m; i-- > 0;) {
          if (++pos[i] < batch_shape[i + 1]) break;
          pos[i] = 0;
        }
      }
    }
  }
}

template <bool kToBatch>
void SpaceBatch(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& bt = ctx.input(1);
  if (bt.rank() != 1) ctx.Fail(fmt::format("block_shape must be 1-D, got shape {}", ShapeToString(bt.shape())));
  const auto block = IntInput(ctx, 1, "block_shape");
  const size_t m = block.size();
  if (m < 1 || x.rank() < static_cast<int>(m) + 1)
    ctx.Fail(fmt::format("input shape {} must have rank >= {} (1 + block_shape size)", ShapeToString(x.shape()), m + 1));
  const auto pads = Pairs(ctx, 2, static_cast<int64_t>(m), kToBatch ? "paddings" : "crops");
  int64_t blocks = 1;
  for (size_t i = 0; i < m; ++i) {
    if (block[i] < 1) ctx.Fail(fmt::format("block_shape[{}] must be >= 1, got {}", i, block[i]));
    blocks *= block[i];
  }
  Shape space = x.shape(), batch = x.shape();
  if (kToBatch) {
    // space: the input; batch: the output.
    batch[0] = x.dim(0) * blocks;
    for (size_t i = 0; i < m; ++i) {
      const int64_t padded = x.dim(static_cast<int>(i) + 1) + pads[i].first + pads[i].second;
      if (padded % block[i] != 0)
        ctx.Fail(fmt::format("padded_shape[{}] = {} is not divisible by block_shape[{}] = {}", i, padded, i, block[i]));
      batch[i + 1] = padded / block[i];
    }
  } else {
    if (x.dim(0) % blocks != 0)
      ctx.Fail(fmt::format("input batch dimension ({}) is not divisible by the product of block sizes ({})", x.dim(0), blocks));
    space[0] = x.dim(0) / blocks;
    for (size_t i = 0; i < m; ++i) {
      const int64_t full = x.dim(static_cast<int>(i) + 1) * block[i];
      if (pads[i].first + pads[i].second > full)
        ctx.Fail(fmt::format("crops[{}] = [{},{}] exceed the uncropped size {}", i, pads[i].first, pads[i].second, full));
      space[i + 1] = full - pads[i].first - pads[i].second;
    }
  }
  // The copy treats crops like paddings: the batch tensor covers the padded/uncropped space.
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), kToBatch ? batch : space);
  if (out.num_elements() == 0 || x.num_elements() == 0) return;
  DispatchMove(x.dtype(), ctx.node().op, [&]<typename T>() {
    SpaceBatchCopy<T>(space, batch, block, pads, Elems<T>(x), Elems<T>(out), kToBatch);
  });
}
KILN_REFERENCE_KERNEL("SpaceToBatchND", SpaceBatch<true>);
KILN_REFERENCE_KERNEL("BatchToSpaceND", SpaceBatch<false>);

}  // namespace

}  // namespace kiln::reference
