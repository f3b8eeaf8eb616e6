// Reference kernels: reshapes, permutes, joins and splits, tiles, broadcasts, shape queries and
// generators (Fill, Range, ZerosLike, OnesLike, InvertPermutation).
#include <algorithm>
#include <complex>
#include <cstring>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::AxisOrFail;
using array::DispatchMove;
using array::Elems;
using array::IntInput;
using array::ScalarInput;

void CheckVector(const KernelContext& ctx, int i, const char* what) {
  if (ctx.input(i).rank() > 1) ctx.Fail(fmt::format("{} must be a vector, got shape {}", what, ShapeToString(ctx.input(i).shape())));
}

void Reshape(KernelContext& ctx) {
  CheckVector(ctx, 1, "shape");
  const Tensor& x = ctx.input(0);
  Shape out;
  std::string err = ir::array::ResolveReshape(x.shape(), IntInput(ctx, 1, "shape"), &out);
  if (!err.empty()) ctx.Fail(err);
  ctx.SetOutput(0, x.Reshaped(out));
}
KILN_REFERENCE_KERNEL("Reshape", Reshape);

void Transpose(KernelContext& ctx) {
  CheckVector(ctx, 1, "perm");
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> perm = IntInput(ctx, 1, "perm");
  const int64_t rank = x.rank();
  if (static_cast<int64_t>(perm.size()) != rank)
    ctx.Fail(fmt::format("perm [{}] has {} entries, expected {} for input shape {}", fmt::join(perm, ","), perm.size(), rank,
                         ShapeToString(x.shape())));
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& p : perm) {
    if (p < 0) p += rank;
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)])
      ctx.Fail(fmt::format("perm [{}] is not a permutation of [0, {})", fmt::join(IntInput(ctx, 1, "perm"), ","), rank));
    seen[static_cast<size_t>(p)] = true;
  }
  const auto strides = array::Strides(x.shape());
  Shape out_shape;
  std::vector<std::vector<int64_t>> maps;
  for (int64_t p : perm) {
    const int64_t n = x.dim(static_cast<int>(p));
    out_shape.push_back(n);
    std::vector<int64_t> m(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) m[static_cast<size_t>(i)] = i * strides[static_cast<size_t>(p)];
    maps.push_back(std::move(m));
  }
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), out_shape);
  array::MapCopyTensor(ctx, x, out, maps, nullptr);
}
KILN_REFERENCE_KERNEL("Transpose", Transpose);

// Copies `parts` (each [outer, part_inner]) into `out` ([outer, sum part_inner]) or back.
template <typename T>
void Interleave(std::vector<const Tensor*> parts, Tensor& out, int64_t outer, const std::vector<int64_t>& part_inner, bool split,
                std::vector<Tensor*> split_outs) {
  int64_t total = 0;
  for (int64_t p : part_inner) total += p;
  T* o = split ? nullptr : Elems<T>(out);
  const T* src = split ? Elems<T>(*parts[0]) : nullptr;
  for (int64_t r = 0; r < outer; ++r) {
    int64_t offset = 0;
    for (size_t k = 0; k < part_inner.size(); ++k) {
      const int64_t len = part_inner[k];
      if (len > 0) {
        if (split) std::copy_n(src + r * total + offset, len, Elems<T>(*split_outs[k]) + r * len);
        else std::copy_n(Elems<T>(*parts[k]) + r * len, len, o + r * total + offset);
      }
      offset += len;
    }
  }
}

void Concat(KernelContext& ctx) {
  const int n = ctx.num_inputs() - 1;
  const Tensor& x0 = ctx.input(0);
  if (x0.rank() == 0) ctx.Fail("cannot concatenate scalars");
  const int64_t axis = AxisOrFail(ctx, ScalarInput(ctx, n, "axis"), x0.rank(), "axis", x0.shape());
  Shape out_shape = x0.shape();
  out_shape[static_cast<size_t>(axis)] = 0;
  std::vector<const Tensor*> parts;
  for (int i = 0; i < n; ++i) {
    const Tensor& x = ctx.input(i);
    if (x.dtype() != x0.dtype()) ctx.Fail(fmt::format("input {} has dtype {}, expected {}", i, DTypeName(x.dtype()), DTypeName(x0.dtype())));
    bool ok = x.rank() == x0.rank();
    for (int d = 0; ok && d < x.rank(); ++d) ok = d == axis || x.dim(d) == x0.dim(d);
    if (!ok)
      ctx.Fail(fmt::format("input {} has shape {}, which does not match input 0 {} outside axis {}", i, ShapeToString(x.shape()),
                           ShapeToString(x0.shape()), axis));
    out_shape[static_cast<size_t>(axis)] += x.dim(static_cast<int>(axis));
    parts.push_back(&x);
  }
  Tensor& out = ctx.AllocateOutput(0, x0.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out_shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < out_shape.size(); ++d) inner *= out_shape[d];
  std::vector<int64_t> part_inner;
  for (const Tensor* p : parts) part_inner.push_back(p->dim(static_cast<int>(axis)) * inner);
  DispatchMove(x0.dtype(), "Concat", [&]<typename T>() { Interleave<T>(parts, out, outer, part_inner, false, {}); });
}
KILN_REFERENCE_KERNEL("Concat", Concat);

void Pack(KernelContext& ctx) {
  const int n = ctx.num_inputs();
  const Tensor& x0 = ctx.input(0);
  const int64_t axis = AxisOrFail(ctx, ctx.attrs().GetOr<int64_t>("axis", 0), x0.rank() + 1, "axis", x0.shape());
  std::vector<const Tensor*> parts;
  for (int i = 0; i < n; ++i) {
    const Tensor& x = ctx.input(i);
    if (x.dtype() != x0.dtype() || x.shape() != x0.shape())
      ctx.Fail(fmt::format("input {} is {}{}, expected {}{} like input 0", i, DTypeName(x.dtype()), ShapeToString(x.shape()),
                           DTypeName(x0.dtype()), ShapeToString(x0.shape())));
    parts.push_back(&x);
  }
  Shape out_shape = x0.shape();
  out_shape.insert(out_shape.begin() + axis, n);
  Tensor& out = ctx.AllocateOutput(0, x0.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x0.dim(d);
  for (int d = static_cast<int>(axis); d < x0.rank(); ++d) inner *= x0.dim(d);
  DispatchMove(x0.dtype(), "Pack", [&]<typename T>() {
    Interleave<T>(parts, out, outer, std::vector<int64_t>(static_cast<size_t>(n), inner), false, {});
  });
}
KILN_REFERENCE_KERNEL("Pack", Pack);

// Splits x along `axis` into pieces of the given sizes (outputs 0..n-1), reshaping each piece to
// `drop_axis` ? without the axis : with the axis of its size.
void SplitInto(KernelContext& ctx, const Tensor& x, int64_t axis, const std::vector<int64_t>& sizes, bool drop_axis) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  std::vector<Tensor*> outs;
  std::vector<int64_t> part_inner;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Shape s = x.shape();
    if (drop_axis) s.erase(s.begin() + axis);
    else s[static_cast<size_t>(axis)] = sizes[k];
    outs.push_back(&ctx.AllocateOutput(static_cast<int>(k), x.dtype(), s));
    part_inner.push_back(sizes[k] * inner);
  }
  DispatchMove(x.dtype(), ctx.node().op, [&]<typename T>() { Interleave<T>({&x}, *outs[0], outer, part_inner, true, outs); });
}

void Unpack(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) ctx.Fail("cannot unpack a scalar");
  const int64_t axis = AxisOrFail(ctx, ctx.attrs().GetOr<int64_t>("axis", 0), x.rank(), "axis", x.shape());
  const int num = ctx.num_outputs();
  if (x.dim(static_cast<int>(axis)) != num)
    ctx.Fail(fmt::format("input shape {} has {} entries along axis {}, expected num = {}", ShapeToString(x.shape()),
                         x.dim(static_cast<int>(axis)), axis, num));
  if (num == 0) return;
  SplitInto(ctx, x, axis, std::vector<int64_t>(static_cast<size_t>(num), 1), true);
}
KILN_REFERENCE_KERNEL("Unpack", Unpack);

void Split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 0) ctx.Fail("cannot split a scalar");
  const int64_t axis = AxisOrFail(ctx, ScalarInput(ctx, 1, "axis"), x.rank(), "axis", x.shape());
  const int num = ctx.num_outputs();
  const int64_t dim = x.dim(static_cast<int>(axis));
  std::vector<int64_t> sizes;
  if (ctx.num_inputs() == 2) {
    if (num <= 0 || dim % num != 0)
      ctx.Fail(fmt::format("dimension {} of input shape {} (size {}) is not divisible by num_split {}", axis, ShapeToString(x.shape()), dim, num));
    sizes.assign(static_cast<size_t>(num), dim / num);
  } else {
    CheckVector(ctx, 2, "size_splits");
    sizes = IntInput(ctx, 2, "size_splits");
    if (static_cast<int>(sizes.size()) != num)
      ctx.Fail(fmt::format("size_splits [{}] has {} entries, expected num_split = {}", fmt::join(sizes, ","), sizes.size(), num));
    int minus_one = -1;
    int64_t known = 0;
    for (int i = 0; i < num; ++i) {
      const int64_t s = sizes[static_cast<size_t>(i)];
      if (s == -1 && minus_one < 0) minus_one = i;
      else if (s < 0) ctx.Fail(fmt::format("size_splits [{}] may hold one -1 and otherwise non-negative sizes", fmt::join(sizes, ",")));
      else known += s;
    }
    if ((minus_one < 0 && known != dim) || (minus_one >= 0 && known > dim))
      ctx.Fail(fmt::format("size_splits [{}] must sum to dimension {} of input shape {} (size {})", fmt::join(sizes, ","), axis,
                           ShapeToString(x.shape()), dim));
    if (minus_one >= 0) sizes[static_cast<size_t>(minus_one)] = dim - known;
  }
  if (num == 0) return;
  SplitInto(ctx, x, axis, sizes, false);
}
KILN_REFERENCE_KERNEL("Split", Split);

void Squeeze(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const auto axes = ctx.attrs().GetOr<std::vector<int64_t>>("axes", {});
  std::vector<bool> drop(static_cast<size_t>(x.rank()), false);
  for (int64_t a : axes) {
    const int64_t axis = AxisOrFail(ctx, a, x.rank(), "squeeze axis", x.shape());
    if (x.dim(static_cast<int>(axis)) != 1)
      ctx.Fail(fmt::format("cannot squeeze dim {} of shape {}: expected size 1, got {}", axis, ShapeToString(x.shape()), x.dim(static_cast<int>(axis))));
    drop[static_cast<size_t>(axis)] = true;
  }
  Shape out;
  for (int d = 0; d < x.rank(); ++d)
    if (!(axes.empty() ? x.dim(d) == 1 : drop[static_cast<size_t>(d)])) out.push_back(x.dim(d));
  ctx.SetOutput(0, x.Reshaped(out));
}
KILN_REFERENCE_KERNEL("Squeeze", Squeeze);

void ExpandDims(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t axis = AxisOrFail(ctx, ScalarInput(ctx, 1, "axis"), x.rank() + 1, "axis", x.shape());
  Shape out = x.shape();
  out.insert(out.begin() + axis, 1);
  ctx.SetOutput(0, x.Reshaped(out));
}
KILN_REFERENCE_KERNEL("ExpandDims", ExpandDims);

void Tile(KernelContext& ctx) {
  CheckVector(ctx, 1, "multiples");
  const Tensor& x = ctx.input(0);
  const auto m = IntInput(ctx, 1, "multiples");
  if (static_cast<int>(m.size()) != x.rank())
    ctx.Fail(fmt::format("multiples [{}] has {} entries, expected {} for input shape {}", fmt::join(m, ","), m.size(), x.rank(), ShapeToString(x.shape())));
  const auto strides = array::Strides(x.shape());
  // The output's size is checked (and the output allocated) before the per-dim index maps.
  Shape out_shape;
  for (int d = 0; d < x.rank(); ++d) {
    const int64_t k = m[static_cast<size_t>(d)], n = x.dim(d);
    int64_t size = 0;
    if (k < 0) ctx.Fail(fmt::format("multiples [{}] must be non-negative", fmt::join(m, ",")));
    if (__builtin_mul_overflow(n, k, &size))
      ctx.Fail(fmt::format("multiples [{}] make dim {} ({} x {}) overflow", fmt::join(m, ","), d, n, k));
    out_shape.push_back(size);
  }
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (out.num_elements() == 0) return;  // a dim of 2^62 next to a 0 allocates nothing; its map would
  std::vector<std::vector<int64_t>> maps;
  for (int d = 0; d < x.rank(); ++d) {
    const int64_t n = x.dim(d), size = out_shape[static_cast<size_t>(d)];
    std::vector<int64_t> map(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) map[static_cast<size_t>(i)] = (i % n) * strides[static_cast<size_t>(d)];
    maps.push_back(std::move(map));
  }
  array::MapCopyTensor(ctx, x, out, maps, nullptr);
}
KILN_REFERENCE_KERNEL("Tile", Tile);

void BroadcastTo(KernelContext& ctx) {
  CheckVector(ctx, 1, "shape");
  const Tensor& x = ctx.input(0);
  const Shape target = IntInput(ctx, 1, "shape");
  for (int64_t d : target)
    if (d < 0) ctx.Fail(fmt::format("target shape {} has a negative size", ShapeToString(target)));
  Shape b;
  if (!ir::array::BroadcastStatic(x.shape(), target, &b).empty() || b != target)
    ctx.Fail(fmt::format("cannot broadcast a tensor of shape {} to shape {}", ShapeToString(x.shape()), ShapeToString(target)));
  const auto strides = array::Strides(x.shape());
  const size_t off = target.size() - x.shape().size();
  // The output's size is checked (and the output allocated) before the per-dim index maps.
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), target);
  if (out.num_elements() == 0) return;
  std::vector<std::vector<int64_t>> maps;
  for (size_t d = 0; d < target.size(); ++d) {
    std::vector<int64_t> map(static_cast<size_t>(target[d]), 0);
    if (d >= off && x.dim(static_cast<int>(d - off)) != 1)
      for (int64_t i = 0; i < target[d]; ++i) map[static_cast<size_t>(i)] = i * strides[d - off];
    maps.push_back(std::move(map));
  }
  array::MapCopyTensor(ctx, x, out, maps, nullptr);
}
KILN_REFERENCE_KERNEL("BroadcastTo", BroadcastTo);

Tensor IntTensor(DType dtype, Shape shape, const std::vector<int64_t>& values) {
  Tensor t(dtype, std::move(shape));
  DispatchInteger(dtype, "shape tensor", [&]<typename T>() {
    for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = static_cast<T>(values[i]);
  });
  return t;
}

void BroadcastArgs(KernelContext& ctx) {
  CheckVector(ctx, 0, "s0");
  CheckVector(ctx, 1, "s1");
  const Shape a = IntInput(ctx, 0, "s0"), b = IntInput(ctx, 1, "s1");
  Shape out;
  if (!ir::array::BroadcastStatic(a, b, &out).empty())
    ctx.Fail(fmt::format("incompatible shapes: {} vs. {}", ShapeToString(a), ShapeToString(b)));
  ctx.SetOutput(0, IntTensor(ctx.input(0).dtype(), {static_cast<int64_t>(out.size())}, out));
}
KILN_REFERENCE_KERNEL("BroadcastArgs", BroadcastArgs);

DType OutType(const KernelContext& ctx) { return ctx.attrs().GetOr<DType>("out_type", DType::kInt32); }

void CheckFits(const KernelContext& ctx, DType t, const Shape& values) {
  for (int64_t v : values)
    if (t == DType::kInt32 && v > INT32_MAX) ctx.Fail(fmt::format("value {} does not fit out_type int32", v));
}

void ShapeKernel(KernelContext& ctx) {
  const Shape& s = ctx.input(0).shape();
  CheckFits(ctx, OutType(ctx), s);
  ctx.SetOutput(0, IntTensor(OutType(ctx), {static_cast<int64_t>(s.size())}, s));
}
KILN_REFERENCE_KERNEL("Shape", ShapeKernel);

void Size(KernelContext& ctx) {
  const int64_t n = ctx.input(0).num_elements();
  CheckFits(ctx, OutType(ctx), {n});
  ctx.SetOutput(0, IntTensor(OutType(ctx), {}, {n}));
}
KILN_REFERENCE_KERNEL("Size", Size);

void Rank(KernelContext& ctx) { ctx.SetOutput(0, IntTensor(DType::kInt32, {}, {ctx.input(0).rank()})); }
KILN_REFERENCE_KERNEL("Rank", Rank);

void Fill(KernelContext& ctx) {
  CheckVector(ctx, 0, "dims");
  const Shape dims = IntInput(ctx, 0, "dims");
  const Tensor& v = ctx.input(1);
  if (v.rank() != 0) ctx.Fail(fmt::format("value must be a scalar, got shape {}", ShapeToString(v.shape())));
  for (int64_t d : dims)
    if (d < 0) ctx.Fail(fmt::format("dims {} has a negative size", ShapeToString(dims)));
  Tensor& out = ctx.AllocateOutput(0, v.dtype(), dims);
  DispatchMove(v.dtype(), "Fill", [&]<typename T>() { std::fill_n(Elems<T>(out), out.num_elements(), Elems<T>(v)[0]); });
}
KILN_REFERENCE_KERNEL("Fill", Fill);

void Range(KernelContext& ctx) {
  const Tensor& s = ctx.input(0);
  int64_t n = 0;
  std::string err = ir::array::RangeSize(s, ctx.input(1), ctx.input(2), &n);
  if (!err.empty()) ctx.Fail(err);
  if (ctx.input(1).dtype() != s.dtype() || ctx.input(2).dtype() != s.dtype())
    ctx.Fail("start, limit and delta must have the same dtype");
  Tensor& out = ctx.AllocateOutput(0, s.dtype(), {n});
  DispatchNumeric(s.dtype(), "Range", [&]<typename T>() {
    // As TensorFlow's CPU kernel: accumulate in the element type.
    T val = s.data<T>()[0];
    const T delta = ctx.input(2).data<T>()[0];
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      o[i] = val;
      if (i + 1 == n) break;
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) val = T(static_cast<float>(val) + static_cast<float>(delta));
      else val = static_cast<T>(val + delta);
    }
  });
}
KILN_REFERENCE_KERNEL("Range", Range);

void ZerosLike(KernelContext& ctx) { ctx.AllocateOutput(0, ctx.input(0).dtype(), ctx.input(0).shape()); }
KILN_REFERENCE_KERNEL("ZerosLike", ZerosLike);

void OnesLike(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), x.shape());
  const int64_t n = out.num_elements();
  if (x.dtype() == DType::kComplex64) std::fill_n(out.data<std::complex<float>>(), n, std::complex<float>(1, 0));
  else if (x.dtype() == DType::kComplex128) std::fill_n(out.data<std::complex<double>>(), n, std::complex<double>(1, 0));
  else DispatchAll(x.dtype(), "OnesLike", [&]<typename T>() { std::fill_n(out.data<T>(), n, FromDouble<T>(1.0)); });
}
KILN_REFERENCE_KERNEL("OnesLike", OnesLike);

void InvertPermutation(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1) ctx.Fail(fmt::format("x must be 1-D, got shape {}", ShapeToString(x.shape())));
  const auto p = IntInput(ctx, 0, "x");
  const int64_t n = static_cast<int64_t>(p.size());
  std::vector<int64_t> inv(p.size(), -1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = p[static_cast<size_t>(i)];
    if (d < 0 || d >= n) ctx.Fail(fmt::format("{} is not between 0 and {}", d, n));
    if (inv[static_cast<size_t>(d)] != -1) ctx.Fail(fmt::format("{} is duplicated in the input", d));
    inv[static_cast<size_t>(d)] = i;
  }
  ctx.SetOutput(0, IntTensor(x.dtype(), x.shape(), inv));
}
KILN_REFERENCE_KERNEL("InvertPermutation", InvertPermutation);

}  // namespace

}  // namespace kiln::reference
