// Shape functions of the array family, part 1: reshapes, permutes, joins/splits, padding,
// broadcasting, shape queries and generators. Semantics are documented in docs/ops/array.md.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ir/ops/array_common.h"

namespace kiln::ir {
namespace {

using array::ConstInts;
using array::ConstScalar;
using array::MergeDim;
using array::NormalizeAxis;
using array::RequireIndexInput;
using array::ShapeVectorInput;
using array::SymElem;

std::string ShapeStr(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

SymShape UnknownDims(int rank) { return SymShape::Of(std::vector<Dim>(static_cast<size_t>(rank), kUnknownDim)); }

// ---- Reshape(x, shape) ----
void InferReshape(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "shape");
  const DType dtype = ctx.input_dtype(0);
  const SymShape& in = ctx.input_shape(0);
  auto target = ShapeVectorInput(ctx, 1);
  if (!target) return ctx.SetOutput(0, dtype, SymShape::Unknown());
  int minus_one = -1;
  bool all_const = true;
  for (size_t d = 0; d < target->size(); ++d) {
    const SymElem& e = (*target)[d];
    if (!e.is_const) { all_const = false; continue; }
    if (e.value == -1) {
      if (minus_one >= 0) ctx.Fail(fmt::format("target shape has more than one -1 (dims {} and {})", minus_one, d));
      minus_one = static_cast<int>(d);
    } else if (e.value < -1) {
      ctx.Fail(fmt::format("target shape has a negative size {} at dim {}", e.value, d));
    }
  }
  if (all_const && in.IsFullyStatic()) {
    std::vector<int64_t> t;
    for (const SymElem& e : *target) t.push_back(e.value);
    Shape out;
    std::string err = array::ResolveReshape(*in.ToStatic(), t, &out);
    if (!err.empty()) ctx.Fail(err);
    return ctx.SetOutput(0, dtype, SymShape::Of(std::vector<Dim>(out.begin(), out.end())));
  }
  std::vector<Dim> dims;
  for (const SymElem& e : *target) dims.push_back(e.is_const ? (e.value == -1 ? kUnknownDim : e.value) : e.dim);
  if (minus_one >= 0 && in.rank_known) {
    // Cancel equal symbols on both sides; the -1 is what is left when one side is static.
    std::vector<Dim> rest(in.dims.begin(), in.dims.end());
    bool ok = true;
    int64_t target_product = 1;
    for (size_t d = 0; d < target->size() && ok; ++d) {
      if (static_cast<int>(d) == minus_one) continue;
      const SymElem& e = (*target)[d];
      if (e.is_const) {
        if (__builtin_mul_overflow(target_product, e.value, &target_product))
          ctx.Fail("the product of the target shape's dims overflows int64");
        continue;
      }
      auto it = e.dim == kUnknownDim ? rest.end() : std::find(rest.begin(), rest.end(), e.dim);
      if (it == rest.end()) ok = false;
      else rest.erase(it);
    }
    if (ok && target_product > 0) {
      int64_t in_product = 1;
      std::vector<Dim> non_static;
      for (Dim d : rest) {
        if (!IsStatic(d)) {
          non_static.push_back(d);
        } else if (__builtin_mul_overflow(in_product, d, &in_product)) {
          ctx.Fail("the product of the input's dims overflows int64");
        }
      }
      if (non_static.empty() && in_product % target_product == 0) dims[static_cast<size_t>(minus_one)] = in_product / target_product;
      else if (non_static.size() == 1 && in_product == target_product) dims[static_cast<size_t>(minus_one)] = non_static[0];
    }
  }
  if (in.IsFullyStatic() && minus_one < 0 && SymShape::Of(dims).IsFullyStatic()) {
    int64_t n = 1;
    for (Dim d : dims) n *= d;
    if (n != NumElements(*in.ToStatic()))
      ctx.Fail(fmt::format("cannot reshape {} ({} elements) to {}", ShapeStr(ctx, in), NumElements(*in.ToStatic()),
                           ShapeStr(ctx, SymShape::Of(dims))));
  }
  ctx.SetOutput(0, dtype, SymShape::Of(std::move(dims)));
}

// ---- Transpose(x, perm) ----
void InferTranspose(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "perm");
  const SymShape& in = ctx.input_shape(0);
  auto perm = ConstInts(ctx, 1);
  if (!perm) {
    if (in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), UnknownDims(in.rank()));
    auto n = array::StaticLength(ctx, 1);
    return ctx.SetOutput(0, ctx.input_dtype(0), n ? UnknownDims(static_cast<int>(*n)) : SymShape::Unknown());
  }
  const int64_t rank = static_cast<int64_t>(perm->size());
  if (in.rank_known && in.rank() != rank)
    ctx.Fail(fmt::format("perm has {} entries but the input has rank {} (shape {})", rank, in.rank(), ShapeStr(ctx, in)));
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  std::vector<Dim> dims;
  for (int64_t p : *perm) {
    auto a = NormalizeAxis(p, rank);
    if (!a) ctx.Fail(fmt::format("perm entry {} is out of range [{}, {})", p, -rank, rank));
    if (seen[static_cast<size_t>(*a)]) ctx.Fail(fmt::format("perm [{}] is not a permutation", fmt::join(*perm, ",")));
    seen[static_cast<size_t>(*a)] = true;
    dims.push_back(in.rank_known ? in.dims[static_cast<size_t>(*a)] : kUnknownDim);
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- Concat(x0, ..., xn-1, axis) ----
void InferConcat(InferContext& ctx) {
  const int n = ctx.num_inputs() - 1;
  RequireIndexInput(ctx, n, "axis", 0);
  const DType dtype = ctx.input_dtype(0);
  int rank = -1;
  for (int i = 0; i < n; ++i) {
    if (ctx.input_dtype(i) != dtype)
      ctx.Fail(fmt::format("input {} has dtype {}, expected {} like input 0", i, DTypeName(ctx.input_dtype(i)), DTypeName(dtype)));
    const SymShape& s = ctx.input_shape(i);
    if (!s.rank_known) continue;
    if (rank >= 0 && s.rank() != rank)
      ctx.Fail(fmt::format("input {} has rank {} (shape {}), expected rank {}", i, s.rank(), ShapeStr(ctx, s), rank));
    rank = s.rank();
  }
  if (rank < 0) return ctx.SetOutput(0, dtype, SymShape::Unknown());
  if (rank == 0) ctx.Fail("cannot concatenate scalars (use Pack)");
  auto axis_value = ConstScalar(ctx, n);
  if (!axis_value) return ctx.SetOutput(0, dtype, UnknownDims(rank));
  auto axis = NormalizeAxis(*axis_value, rank);
  if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {})", *axis_value, -rank, rank));
  std::vector<Dim> dims(static_cast<size_t>(rank), kUnknownDim);
  Dim total = 0;
  bool first = true;
  for (int i = 0; i < n; ++i) {
    const SymShape& s = ctx.input_shape(i);
    if (!s.rank_known) { total = kUnknownDim; continue; }
    for (int d = 0; d < rank; ++d) {
      const Dim v = s.dims[static_cast<size_t>(d)];
      if (d == *axis) {
        if (n == 1) total = v;
        else total = (IsStatic(total) && IsStatic(v)) ? total + v : kUnknownDim;
      } else {
        dims[static_cast<size_t>(d)] = first ? v : MergeDim(ctx, dims[static_cast<size_t>(d)], v,
                                                             fmt::format("dimension {} of input {} ({})", d, i, ShapeStr(ctx, s)));
      }
    }
    first = false;
  }
  dims[static_cast<size_t>(*axis)] = total;
  ctx.SetOutput(0, dtype, SymShape::Of(std::move(dims)));
}

// The merged shape of all inputs (Pack: all inputs have the same shape).
SymShape MergeInputShapes(InferContext& ctx, int n) {
  SymShape merged;
  for (int i = 0; i < n; ++i) {
    const SymShape& s = ctx.input_shape(i);
    if (ctx.input_dtype(i) != ctx.input_dtype(0))
      ctx.Fail(fmt::format("input {} has dtype {}, expected {} like input 0", i, DTypeName(ctx.input_dtype(i)),
                           DTypeName(ctx.input_dtype(0))));
    if (!s.rank_known) continue;
    if (!merged.rank_known) { merged = s; continue; }
    if (merged.rank() != s.rank())
      ctx.Fail(fmt::format("input {} has shape {}, expected {} like the others", i, ShapeStr(ctx, s), ShapeStr(ctx, merged)));
    for (size_t d = 0; d < s.dims.size(); ++d)
      merged.dims[d] = MergeDim(ctx, merged.dims[d], s.dims[d], fmt::format("dimension {} of input {}", d, i));
  }
  return merged;
}

// ---- Pack(x0, ..., xn-1) attr axis ----
void InferPack(InferContext& ctx) {
  const int n = ctx.num_inputs();
  SymShape s = MergeInputShapes(ctx, n);
  if (!s.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", 0);
  auto axis = NormalizeAxis(axis_attr, s.rank() + 1);
  if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}]", axis_attr, -(s.rank() + 1), s.rank()));
  s.dims.insert(s.dims.begin() + *axis, n);
  ctx.SetOutput(0, ctx.input_dtype(0), s);
}

// ---- Unpack(x) attr axis; one output per slice ----
void InferUnpack(InferContext& ctx) {
  const SymShape& in = ctx.input_shape(0);
  const int num = ctx.num_outputs();
  SymShape out = SymShape::Unknown();
  if (in.rank_known) {
    const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", 0);
    auto axis = NormalizeAxis(axis_attr, in.rank());
    if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}) for input shape {}", axis_attr, -in.rank(), in.rank(), ShapeStr(ctx, in)));
    const Dim d = in.dims[static_cast<size_t>(*axis)];
    if (IsStatic(d) && d != num) ctx.Fail(fmt::format("dimension {} of input {} is {}, but the node has {} outputs", *axis, ShapeStr(ctx, in), d, num));
    out = in;
    out.dims.erase(out.dims.begin() + *axis);
  }
  for (int i = 0; i < num; ++i) ctx.SetOutput(i, ctx.input_dtype(0), out);
}

// ---- Split(x, axis[, size_splits]) ----
void InferSplit(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "axis", 0);
  const SymShape& in = ctx.input_shape(0);
  const DType dtype = ctx.input_dtype(0);
  const int num = ctx.num_outputs();
  const bool uneven = ctx.num_inputs() == 3;
  if (uneven) RequireIndexInput(ctx, 2, "size_splits");
  auto axis_value = ConstScalar(ctx, 1);
  if (!in.rank_known || !axis_value) {
    for (int i = 0; i < num; ++i) ctx.SetOutput(i, dtype, in.rank_known ? UnknownDims(in.rank()) : SymShape::Unknown());
    return;
  }
  auto axis = NormalizeAxis(*axis_value, in.rank());
  if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}) for input shape {}", *axis_value, -in.rank(), in.rank(), ShapeStr(ctx, in)));
  const Dim d = in.dims[static_cast<size_t>(*axis)];
  std::vector<Dim> sizes(static_cast<size_t>(num), kUnknownDim);
  if (!uneven) {
    if (IsStatic(d)) {
      if (num <= 0 || d % num != 0) ctx.Fail(fmt::format("dimension {} of input {} ({}) is not divisible by {} splits", *axis, ShapeStr(ctx, in), d, num));
      sizes.assign(static_cast<size_t>(num), d / num);
    } else if (num == 1) {
      sizes[0] = d;
    }
  } else if (auto split = ConstInts(ctx, 2)) {
    if (static_cast<int>(split->size()) != num)
      ctx.Fail(fmt::format("size_splits has {} entries but the node has {} outputs", split->size(), num));
    int minus_one = -1;
    int64_t known = 0;
    for (int i = 0; i < num; ++i) {
      const int64_t s = (*split)[static_cast<size_t>(i)];
      if (s == -1) {
        if (minus_one >= 0) ctx.Fail(fmt::format("size_splits [{}] has more than one -1", fmt::join(*split, ",")));
        minus_one = i;
      } else if (s < 0) {
        ctx.Fail(fmt::format("size_splits [{}] has a negative size {}", fmt::join(*split, ","), s));
      } else {
        known += s;
        sizes[static_cast<size_t>(i)] = s;
      }
    }
    if (IsStatic(d)) {
      if ((minus_one < 0 && known != d) || (minus_one >= 0 && known > d))
        ctx.Fail(fmt::format("size_splits [{}] do not add up to dimension {} of input {} ({})", fmt::join(*split, ","), *axis,
                             ShapeStr(ctx, in), d));
      if (minus_one >= 0) sizes[static_cast<size_t>(minus_one)] = d - known;
    } else if (minus_one >= 0 && known == 0) {
      sizes[static_cast<size_t>(minus_one)] = d;
    }
  }
  for (int i = 0; i < num; ++i) {
    SymShape s = in;
    s.dims[static_cast<size_t>(*axis)] = sizes[static_cast<size_t>(i)];
    ctx.SetOutput(i, dtype, s);
  }
}

// ---- Squeeze(x) attr axes (empty: every size-1 dim) ----
void InferSqueeze(InferContext& ctx) {
  const SymShape& in = ctx.input_shape(0);
  const auto axes = ctx.attrs().GetOr<std::vector<int64_t>>("axes", {});
  if (!in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  std::vector<bool> drop(static_cast<size_t>(in.rank()), false);
  if (axes.empty()) {
    for (size_t d = 0; d < in.dims.size(); ++d) {
      if (!IsStatic(in.dims[d])) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());  // might be 1
      drop[d] = in.dims[d] == 1;
    }
  } else {
    for (int64_t a : axes) {
      auto axis = NormalizeAxis(a, in.rank());
      if (!axis) ctx.Fail(fmt::format("squeeze axis {} is out of range [{}, {}) for input shape {}", a, -in.rank(), in.rank(), ShapeStr(ctx, in)));
      const Dim d = in.dims[static_cast<size_t>(*axis)];
      if (IsStatic(d) && d != 1) ctx.Fail(fmt::format("cannot squeeze dim {} of input {}: expected size 1, got {}", *axis, ShapeStr(ctx, in), d));
      drop[static_cast<size_t>(*axis)] = true;
    }
  }
  std::vector<Dim> dims;
  for (size_t d = 0; d < in.dims.size(); ++d)
    if (!drop[d]) dims.push_back(in.dims[d]);
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- ExpandDims(x, axis) ----
void InferExpandDims(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "axis");
  const SymShape& in = ctx.input_shape(0);
  if (!in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  auto a = ConstScalar(ctx, 1);
  if (!a) return ctx.SetOutput(0, ctx.input_dtype(0), UnknownDims(in.rank() + 1));
  auto axis = NormalizeAxis(*a, in.rank() + 1);
  if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}] for input shape {}", *a, -(in.rank() + 1), in.rank(), ShapeStr(ctx, in)));
  SymShape out = in;
  out.dims.insert(out.dims.begin() + *axis, 1);
  ctx.SetOutput(0, ctx.input_dtype(0), out);
}

// ---- Tile(x, multiples) ----
void InferTile(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "multiples");
  const SymShape& in = ctx.input_shape(0);
  auto m = ConstInts(ctx, 1);
  if (!m) {
    if (in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), UnknownDims(in.rank()));
    auto n = array::StaticLength(ctx, 1);
    return ctx.SetOutput(0, ctx.input_dtype(0), n ? UnknownDims(static_cast<int>(*n)) : SymShape::Unknown());
  }
  if (in.rank_known && static_cast<int>(m->size()) != in.rank())
    ctx.Fail(fmt::format("multiples has {} entries but the input has shape {}", m->size(), ShapeStr(ctx, in)));
  std::vector<Dim> dims;
  for (size_t d = 0; d < m->size(); ++d) {
    const int64_t k = (*m)[d];
    if (k < 0) ctx.Fail(fmt::format("multiples[{}] is negative: {}", d, k));
    const Dim x = in.rank_known ? in.dims[d] : kUnknownDim;
    Dim tiled = 0;
    if (IsStatic(x) && __builtin_mul_overflow(x, k, &tiled))
      ctx.Fail(fmt::format("dim {} of {} tiled {} times overflows int64", d, x, k));
    dims.push_back(IsStatic(x) ? tiled : k == 1 ? x : k == 0 ? 0 : kUnknownDim);
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- Pad(x, paddings[, constant_value]) attr mode ----
void InferPad(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "paddings", 2);
  const std::string mode = ctx.attrs().GetOr<std::string>("mode", "CONSTANT");
  if (mode != "CONSTANT" && mode != "REFLECT" && mode != "SYMMETRIC")
    ctx.Fail(fmt::format("mode must be CONSTANT, REFLECT or SYMMETRIC, got '{}'", mode));
  if (ctx.num_inputs() == 3) {
    if (ctx.input_dtype(2) != ctx.input_dtype(0))
      ctx.Fail(fmt::format("constant_value has dtype {}, expected {}", DTypeName(ctx.input_dtype(2)), DTypeName(ctx.input_dtype(0))));
    const SymShape& c = ctx.input_shape(2);
    if (c.rank_known && c.rank() != 0) ctx.Fail(fmt::format("constant_value must be a scalar, got shape {}", ShapeStr(ctx, c)));
  }
  const SymShape& in = ctx.input_shape(0);
  auto p = ConstInts(ctx, 1);
  if (!p) return ctx.SetOutput(0, ctx.input_dtype(0), in.rank_known ? UnknownDims(in.rank()) : SymShape::Unknown());
  const int rank = static_cast<int>(p->size() / 2);
  const SymShape& ps = ctx.input_shape(1);
  if (ps.rank() != 2 || ps.dims[1] != 2 || (in.rank_known && rank != in.rank()))
    ctx.Fail(fmt::format("paddings must have shape [{},2], got {}", in.rank_known ? in.rank() : rank, ShapeStr(ctx, ps)));
  std::vector<Dim> dims;
  for (int d = 0; d < rank; ++d) {
    const int64_t before = (*p)[static_cast<size_t>(2 * d)], after = (*p)[static_cast<size_t>(2 * d + 1)];
    const Dim x = in.rank_known ? in.dims[static_cast<size_t>(d)] : kUnknownDim;
    if (before < 0 || after < 0) ctx.Fail(fmt::format("paddings[{}] = [{},{}] must be non-negative", d, before, after));
    if (IsStatic(x) && mode != "CONSTANT") {
      const int64_t limit = mode == "REFLECT" ? x - 1 : x;
      if (before > limit || after > limit)
        ctx.Fail(fmt::format("{} paddings[{}] = [{},{}] must be at most {} for dimension size {}", mode, d, before, after, limit, x));
    }
    dims.push_back(IsStatic(x) ? x + before + after : (before == 0 && after == 0) ? x : kUnknownDim);
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- BroadcastTo(x, shape) ----
void InferBroadcastTo(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "shape");
  const SymShape& in = ctx.input_shape(0);
  auto target = ShapeVectorInput(ctx, 1);
  if (!target) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  std::vector<Dim> dims;
  for (const SymElem& e : *target) {
    if (e.is_const && e.value < 0) ctx.Fail(fmt::format("target shape has a negative size {}", e.value));
    dims.push_back(e.is_const ? e.value : e.dim);
  }
  if (in.rank_known) {
    if (in.rank() > static_cast<int>(dims.size()))
      ctx.Fail(fmt::format("cannot broadcast {} to a shape of rank {}", ShapeStr(ctx, in), dims.size()));
    const size_t off = dims.size() - in.dims.size();
    for (size_t i = 0; i < in.dims.size(); ++i) {
      const Dim a = in.dims[i], t = dims[off + i];
      if (IsStatic(a) && IsStatic(t) && a != t && a != 1)
        ctx.Fail(fmt::format("cannot broadcast {} to {}", ShapeStr(ctx, in), ShapeStr(ctx, SymShape::Of(dims))));
      if (!IsStatic(t) && IsStatic(a) && a != 1) dims[off + i] = a;
    }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- BroadcastArgs(s0, s1) ----
void InferBroadcastArgs(InferContext& ctx) {
  RequireIndexInput(ctx, 0, "s0");
  RequireIndexInput(ctx, 1, "s1");
  if (ctx.input_dtype(0) != ctx.input_dtype(1)) ctx.Fail("s0 and s1 must have the same dtype");
  auto a = array::StaticLength(ctx, 0), b = array::StaticLength(ctx, 1);
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of({a && b ? std::max(*a, *b) : kUnknownDim}));
}

DType OutType(InferContext& ctx, DType fallback) {
  const DType t = ctx.attrs().GetOr<DType>("out_type", fallback);
  if (t != DType::kInt32 && t != DType::kInt64) ctx.Fail(fmt::format("out_type must be int32 or int64, got {}", DTypeName(t)));
  return t;
}

Tensor IntTensor(DType dtype, Shape shape, const std::vector<int64_t>& values) {
  Tensor t(dtype, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kInt32) t.data<int32_t>()[i] = static_cast<int32_t>(values[i]);
    else t.data<int64_t>()[i] = values[i];
  }
  return t;
}

// A re-run of shape inference with less specific input shapes must not keep an old constant.
void ClearConstant(InferContext& ctx) { ctx.graph().value(ctx.node().outputs[0]).constant.reset(); }

// ---- Shape(x) attr out_type ----
void InferShape(InferContext& ctx) {
  const DType t = OutType(ctx, DType::kInt32);
  const SymShape& in = ctx.input_shape(0);
  if (auto s = in.ToStatic()) return ctx.SetOutputConstant(0, IntTensor(t, {static_cast<int64_t>(s->size())}, *s));
  ClearConstant(ctx);
  ctx.SetOutput(0, t, SymShape::Of({in.rank_known ? in.rank() : kUnknownDim}));
}

// ---- Size(x) attr out_type ----
void InferSize(InferContext& ctx) {
  const DType t = OutType(ctx, DType::kInt32);
  const SymShape& in = ctx.input_shape(0);
  if (auto s = in.ToStatic()) return ctx.SetOutputConstant(0, IntTensor(t, {}, {NumElements(*s)}));
  ClearConstant(ctx);
  ctx.SetOutput(0, t, SymShape::Scalar());
}

// ---- Rank(x) -> int32 ----
void InferRank(InferContext& ctx) {
  const SymShape& in = ctx.input_shape(0);
  if (in.rank_known) return ctx.SetOutputConstant(0, IntTensor(DType::kInt32, {}, {in.rank()}));
  ClearConstant(ctx);
  ctx.SetOutput(0, DType::kInt32, SymShape::Scalar());
}

// ---- Fill(dims, value) ----
void InferFill(InferContext& ctx) {
  RequireIndexInput(ctx, 0, "dims");
  const SymShape& v = ctx.input_shape(1);
  if (v.rank_known && v.rank() != 0) ctx.Fail(fmt::format("value must be a scalar, got shape {}", ShapeStr(ctx, v)));
  auto target = ShapeVectorInput(ctx, 0);
  if (!target) return ctx.SetOutput(0, ctx.input_dtype(1), SymShape::Unknown());
  std::vector<Dim> dims;
  for (const SymElem& e : *target) {
    if (e.is_const && e.value < 0) ctx.Fail(fmt::format("dims has a negative size {}", e.value));
    dims.push_back(e.is_const ? e.value : e.dim);
  }
  ctx.SetOutput(0, ctx.input_dtype(1), SymShape::Of(std::move(dims)));
}

// ---- Range(start, limit, delta) ----
void InferRange(InferContext& ctx) {
  const DType t = ctx.input_dtype(0);
  for (int i = 0; i < 3; ++i) {
    if (ctx.input_dtype(i) != t)
      ctx.Fail(fmt::format("start, limit and delta must have the same dtype, got {}, {} and {}", DTypeName(ctx.input_dtype(0)),
                           DTypeName(ctx.input_dtype(1)), DTypeName(ctx.input_dtype(2))));
    const SymShape& s = ctx.input_shape(i);
    if (s.rank_known && s.rank() != 0) ctx.Fail(fmt::format("input {} must be a scalar, got shape {}", i, ShapeStr(ctx, s)));
  }
  if (!IsInteger(t) && !IsFloating(t)) ctx.Fail(fmt::format("dtype {} is not supported", DTypeName(t)));
  const Tensor *a = ctx.constant_input(0), *b = ctx.constant_input(1), *c = ctx.constant_input(2);
  Dim n = kUnknownDim;
  if (a && b && c) {
    int64_t size = 0;
    std::string err = array::RangeSize(*a, *b, *c, &size);
    if (!err.empty()) ctx.Fail(err);
    n = size;
  } else if (IsInteger(t) && a && c && a->IntAt(0) == 0 && c->IntAt(0) == 1) {
    // range(0, n, 1) has n elements: keeps a symbolic n (e.g. BERT's position ids).
    if (auto limit = array::EvalSymbolic(ctx.graph(), ctx.node().inputs[1]); limit && limit->elems.size() == 1 && !limit->elems[0].is_const)
      n = limit->elems[0].dim;
  }
  ctx.SetOutput(0, t, SymShape::Of({n}));
}

void InferSameAsInput(InferContext& ctx) { ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0)); }

// ---- InvertPermutation(x) ----
void InferInvertPermutation(InferContext& ctx) {
  RequireIndexInput(ctx, 0, "x");
  const SymShape& s = ctx.input_shape(0);
  if (s.rank_known && s.rank() != 1) ctx.Fail(fmt::format("x must be 1-D, got shape {}", ShapeStr(ctx, s)));
  ctx.SetOutput(0, ctx.input_dtype(0), s.rank_known ? s : SymShape::Of({kUnknownDim}));
}

// ---- SpaceToBatchND(x, block_shape, paddings) / BatchToSpaceND(x, block_shape, crops) ----
template <bool kToBatch>
void InferSpaceBatch(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "block_shape");
  RequireIndexInput(ctx, 2, kToBatch ? "paddings" : "crops", 2);
  const SymShape& in = ctx.input_shape(0);
  if (!in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  auto block = ConstInts(ctx, 1);
  auto pads = ConstInts(ctx, 2);
  if (!block || !pads) return ctx.SetOutput(0, ctx.input_dtype(0), UnknownDims(in.rank()));
  const size_t m = block->size();
  if (pads->size() != 2 * m) ctx.Fail(fmt::format("{} must have shape [{},2]", kToBatch ? "paddings" : "crops", m));
  if (m < 1 || static_cast<int>(m) + 1 > in.rank())
    ctx.Fail(fmt::format("block_shape has {} entries; the input shape {} needs rank >= {}", m, ShapeStr(ctx, in), m + 1));
  std::vector<Dim> dims = in.dims;
  int64_t prod = 1;
  for (size_t i = 0; i < m; ++i) {
    const int64_t b = (*block)[i], p0 = (*pads)[2 * i], p1 = (*pads)[2 * i + 1];
    if (b < 1) ctx.Fail(fmt::format("block_shape[{}] must be >= 1, got {}", i, b));
    if (p0 < 0 || p1 < 0) ctx.Fail(fmt::format("{}[{}] = [{},{}] must be non-negative", kToBatch ? "paddings" : "crops", i, p0, p1));
    prod *= b;
    Dim& d = dims[i + 1];
    if (!IsStatic(d)) {
      if (!(b == 1 && p0 == 0 && p1 == 0)) d = kUnknownDim;
      continue;
    }
    if (kToBatch) {
      if ((d + p0 + p1) % b != 0)
        ctx.Fail(fmt::format("padded size {} of input dimension {} is not divisible by block_shape[{}] = {}", d + p0 + p1, i + 1, i, b));
      d = (d + p0 + p1) / b;
    } else {
      if (p0 + p1 > d * b) ctx.Fail(fmt::format("crops[{}] = [{},{}] exceed the block size {}", i, p0, p1, d * b));
      d = d * b - p0 - p1;
    }
  }
  Dim& batch = dims[0];
  if (IsStatic(batch)) {
    if (kToBatch) batch *= prod;
    else if (batch % prod != 0) ctx.Fail(fmt::format("batch size {} is not divisible by the block size {}", batch, prod));
    else batch /= prod;
  } else if (prod != 1) {
    batch = kUnknownDim;
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

}  // namespace

void RegisterArrayShapeOps(OpRegistry& r) {
  r.Add({"Reshape", 2, 2, InferReshape});
  r.Add({"Transpose", 2, 2, InferTranspose});
  r.Add({"Concat", 2, -1, InferConcat});
  r.Add({"Pack", 1, -1, InferPack});
  r.Add({"Unpack", 1, 1, InferUnpack});
  r.Add({"Split", 2, 3, InferSplit});
  r.Add({"Squeeze", 1, 1, InferSqueeze});
  r.Add({"ExpandDims", 2, 2, InferExpandDims});
  r.Add({"Tile", 2, 2, InferTile});
  r.Add({"Pad", 2, 3, InferPad});
  r.Add({"BroadcastTo", 2, 2, InferBroadcastTo});
  r.Add({"BroadcastArgs", 2, 2, InferBroadcastArgs});
  r.Add({"Shape", 1, 1, InferShape});
  r.Add({"Size", 1, 1, InferSize});
  r.Add({"Rank", 1, 1, InferRank});
  r.Add({"Fill", 2, 2, InferFill});
  r.Add({"Range", 3, 3, InferRange});
  r.Add({"ZerosLike", 1, 1, InferSameAsInput});
  r.Add({"OnesLike", 1, 1, InferSameAsInput});
  r.Add({"InvertPermutation", 1, 1, InferInvertPermutation});
  r.Add({"SpaceToBatchND", 3, 3, InferSpaceBatch<true>});
  r.Add({"BatchToSpaceND", 3, 3, InferSpaceBatch<false>});
}

}  // namespace kiln::ir
