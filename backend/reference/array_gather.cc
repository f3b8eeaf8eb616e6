// Reference kernels: Gather (axis, batch_dims), GatherNd, ScatterNd, TensorScatter and OneHot.
#include <algorithm>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::DispatchMove;
using array::Elems;
using array::IntInput;

// "[1,2]": the multi-index of flat element i of a tensor of `shape`.
std::string IndexString(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return fmt::format("[{}]", fmt::join(idx, ","));
}

int64_t Product(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t d = from; d < to; ++d) p *= s[d];
  return p;
}

void Gather(KernelContext& ctx) {
  const Tensor& params = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (params.rank() < 1) ctx.Fail("params must be at least 1-D, got a scalar");
  const int64_t axis = array::AxisOrFail(ctx, array::ScalarInput(ctx, 2, "axis"), params.rank(), "axis", params.shape());
  int64_t batch_dims = ctx.attrs().GetOr<int64_t>("batch_dims", 0);
  if (batch_dims < -indices.rank() || batch_dims > indices.rank())
    ctx.Fail(fmt::format("batch_dims {} is out of range [{}, {}] for indices shape {}", batch_dims, -indices.rank(), indices.rank(),
                         ShapeToString(indices.shape())));
  if (batch_dims < 0) batch_dims += indices.rank();
  if (batch_dims > 0 && batch_dims >= params.rank())
    ctx.Fail(fmt::format("batch_dims ({}) must be less than the rank of params {}", batch_dims, ShapeToString(params.shape())));
  if (axis < batch_dims) ctx.Fail(fmt::format("batch_dims ({}) must be <= axis ({})", batch_dims, axis));
  for (int i = 0; i < batch_dims; ++i)
    if (params.dim(i) != indices.dim(i))
      ctx.Fail(fmt::format("params.shape[{}] = {} must equal indices.shape[{}] = {} (batch_dims {}; params {}, indices {})", i, params.dim(i),
                           i, indices.dim(i), batch_dims, ShapeToString(params.shape()), ShapeToString(indices.shape())));
  const Shape& ps = params.shape();
  const Shape& is = indices.shape();
  const size_t bd = static_cast<size_t>(batch_dims), ax = static_cast<size_t>(axis);
  const int64_t batch = Product(ps, 0, bd), outer = Product(ps, bd, ax), gather_dim = ps[ax], inner = Product(ps, ax + 1, ps.size());
  const int64_t n = Product(is, bd, is.size());
  Shape out_shape(ps.begin(), ps.begin() + axis);
  out_shape.insert(out_shape.end(), is.begin() + batch_dims, is.end());
  out_shape.insert(out_shape.end(), ps.begin() + axis + 1, ps.end());
  const auto idx = IntInput(ctx, 1, "indices");
  for (size_t k = 0; k < idx.size(); ++k)
    if (idx[k] < 0 || idx[k] >= gather_dim)
      ctx.Fail(fmt::format("indices{} = {} is not in [0, {}) (params shape {}, axis {})", IndexString(is, static_cast<int64_t>(k)), idx[k],
                           gather_dim, ShapeToString(ps), axis));
  Tensor& out = ctx.AllocateOutput(0, params.dtype(), out_shape);
  if (out.num_elements() == 0) return;
  DispatchMove(params.dtype(), "Gather", [&]<typename T>() {
    const T* p = Elems<T>(params);
    T* o = Elems<T>(out);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < outer; ++r)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t g = idx[static_cast<size_t>(b * n + j)];
          std::copy_n(p + ((b * outer + r) * gather_dim + g) * inner, inner, o + ((b * outer + r) * n + j) * inner);
        }
  });
}
KILN_REFERENCE_KERNEL("Gather", Gather);

// Flat slice offsets (in units of `slice` elements) of every index row of an [..., K] tensor
// into `shape`; fails naming the first row out of range.
std::vector<int64_t> NdOffsets(const KernelContext& ctx, int indices_input, const Shape& shape, const char* what) {
  const Tensor& indices = ctx.input(indices_input);
  const int64_t k = indices.dim(indices.rank() - 1);
  if (k > static_cast<int64_t>(shape.size()))
    ctx.Fail(fmt::format("indices shape {} indexes {} dims, but {} shape {} has only {}", ShapeToString(indices.shape()), k, what,
                         ShapeToString(shape), shape.size()));
  const auto idx = IntInput(ctx, indices_input, "indices");
  const Shape prefix(indices.shape().begin(), indices.shape().end() - 1);
  const int64_t n = NumElements(prefix);
  std::vector<int64_t> offsets(static_cast<size_t>(n), 0);
  for (int64_t r = 0; r < n; ++r) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t v = idx[static_cast<size_t>(r * k + j)];
      if (v < 0 || v >= shape[static_cast<size_t>(j)]) {
        std::vector<int64_t> row(idx.begin() + r * k, idx.begin() + (r + 1) * k);
        ctx.Fail(fmt::format("indices{} = [{}] does not index into {} shape {}", IndexString(prefix, r), fmt::join(row, ","), what,
                             ShapeToString(shape)));
      }
      off = off * shape[static_cast<size_t>(j)] + v;
    }
    offsets[static_cast<size_t>(r)] = off;
  }
  return offsets;
}

void GatherNd(KernelContext& ctx) {
  const Tensor& params = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (indices.rank() < 1) ctx.Fail("indices must be at least 1-D, got a scalar");
  const int64_t k = indices.dim(indices.rank() - 1);
  const auto offsets = NdOffsets(ctx, 1, params.shape(), "params");
  const int64_t slice = Product(params.shape(), static_cast<size_t>(k), params.shape().size());
  Shape out_shape(indices.shape().begin(), indices.shape().end() - 1);
  out_shape.insert(out_shape.end(), params.shape().begin() + k, params.shape().end());
  Tensor& out = ctx.AllocateOutput(0, params.dtype(), out_shape);
  if (out.num_elements() == 0) return;
  DispatchMove(params.dtype(), "GatherNd", [&]<typename T>() {
    for (size_t r = 0; r < offsets.size(); ++r)
      std::copy_n(Elems<T>(params) + offsets[r] * slice, slice, Elems<T>(out) + static_cast<int64_t>(r) * slice);
  });
}
KILN_REFERENCE_KERNEL("GatherNd", GatherNd);

void ScatterNd(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& updates = ctx.input(1);
  if (ctx.input(2).rank() != 1) ctx.Fail(fmt::format("shape must be 1-D, got shape {}", ShapeToString(ctx.input(2).shape())));
  const Shape shape = IntInput(ctx, 2, "shape");
  for (int64_t d : shape)
    if (d < 0) ctx.Fail(fmt::format("shape {} has a negative size", ShapeToString(shape)));
  if (indices.rank() < 1) ctx.Fail("indices must be at least 1-D, got a scalar");
  const int64_t k = indices.dim(indices.rank() - 1);
  if (k > static_cast<int64_t>(shape.size()))
    ctx.Fail(fmt::format("indices shape {} indexes {} dims, but the output shape {} has only {}", ShapeToString(indices.shape()), k,
                         ShapeToString(shape), shape.size()));
  Shape expected(indices.shape().begin(), indices.shape().end() - 1);
  expected.insert(expected.end(), shape.begin() + k, shape.end());
  if (updates.shape() != expected)
    ctx.Fail(fmt::format("updates shape {} must be {} (indices.shape[:-1] + shape[{}:])", ShapeToString(updates.shape()),
                         ShapeToString(expected), k));
  const auto offsets = NdOffsets(ctx, 0, shape, "output");
  const int64_t slice = Product(shape, static_cast<size_t>(k), shape.size());
  Tensor& out = ctx.AllocateOutput(0, updates.dtype(), shape);
  if (out.num_elements() == 0 || updates.num_elements() == 0) return;
  if (updates.dtype() == DType::kBool) {
    for (size_t r = 0; r < offsets.size(); ++r)
      for (int64_t j = 0; j < slice; ++j) out.data<bool>()[offsets[r] * slice + j] |= updates.data<bool>()[static_cast<int64_t>(r) * slice + j];
    return;
  }
  DispatchNumeric(updates.dtype(), "ScatterNd", [&]<typename T>() {
    const T* u = updates.data<T>();
    T* o = out.data<T>();
    for (size_t r = 0; r < offsets.size(); ++r)
      for (int64_t j = 0; j < slice; ++j) {
        T& dst = o[offsets[r] * slice + j];
        const T src = u[static_cast<int64_t>(r) * slice + j];
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) dst = T(static_cast<float>(dst) + static_cast<float>(src));
        else if constexpr (std::is_integral_v<T>) dst = static_cast<T>(static_cast<std::make_unsigned_t<T>>(dst) + static_cast<std::make_unsigned_t<T>>(src));
        else dst = dst + src;
      }
  });
}
KILN_REFERENCE_KERNEL("ScatterNd", ScatterNd);

enum class ScatterReduction { kNone, kAdd, kMul, kMin, kMax };

// One element of TensorScatter's reduction: dst combined with src (NaN propagates through min
// and max; integers wrap; bool add/max are or, mul/min are and; half types compute in float).
template <typename T>
T Combine(ScatterReduction red, T dst, T src) {
  using R = ScatterReduction;
  if constexpr (std::is_same_v<T, bool>) {
    return red == R::kAdd || red == R::kMax ? (dst || src) : (dst && src);
  } else if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    if (red == R::kAdd) return static_cast<T>(static_cast<U>(static_cast<U>(dst) + static_cast<U>(src)));
    if (red == R::kMul)  // in uint64: uint16 products would overflow int after promotion
      return static_cast<T>(static_cast<U>(static_cast<uint64_t>(static_cast<U>(dst)) * static_cast<U>(src)));
    return red == R::kMin ? std::min(dst, src) : std::max(dst, src);
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(Combine<float>(red, static_cast<float>(dst), static_cast<float>(src)));
  } else {
    if (red == R::kAdd) return dst + src;
    if (red == R::kMul) return dst * src;
    if (dst != dst || src != src) return dst != dst ? dst : src;
    return red == R::kMin ? std::min(dst, src) : std::max(dst, src);
  }
}

// TensorScatter(tensor, indices, updates) attr reduction: a copy of tensor whose rows at
// indices are combined with updates, one index row after the other.
void TensorScatter(KernelContext& ctx) {
  const Tensor& tensor = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  const std::string name = ctx.attrs().GetOr<std::string>("reduction", "none");
  using R = ScatterReduction;
  R red = R::kNone;
  if (name == "add") red = R::kAdd;
  else if (name == "mul") red = R::kMul;
  else if (name == "min") red = R::kMin;
  else if (name == "max") red = R::kMax;
  else if (name != "none") ctx.Fail(fmt::format("reduction '{}' is not one of none, add, mul, min, max", name));
  if (updates.dtype() != tensor.dtype())
    ctx.Fail(fmt::format("updates must have the tensor's dtype {}, got {}", DTypeName(tensor.dtype()), DTypeName(updates.dtype())));
  if (indices.rank() < 1) ctx.Fail("indices must be at least 1-D, got a scalar");
  const Shape& shape = tensor.shape();
  const auto offsets = NdOffsets(ctx, 1, shape, "tensor");
  const int64_t k = indices.dim(indices.rank() - 1);
  Shape expected(indices.shape().begin(), indices.shape().end() - 1);
  expected.insert(expected.end(), shape.begin() + k, shape.end());
  if (updates.shape() != expected)
    ctx.Fail(fmt::format("updates shape {} must be {} (indices.shape[:-1] + tensor.shape[{}:])", ShapeToString(updates.shape()),
                         ShapeToString(expected), k));
  const int64_t slice = Product(shape, static_cast<size_t>(k), shape.size());
  Tensor out = tensor.Clone();
  if (red == R::kNone) {
    DispatchMove(tensor.dtype(), "TensorScatter", [&]<typename T>() {
      for (size_t r = 0; r < offsets.size(); ++r)
        std::copy_n(Elems<T>(updates) + static_cast<int64_t>(r) * slice, slice, Elems<T>(out) + offsets[r] * slice);
    });
  } else {
    DispatchAll(tensor.dtype(), "TensorScatter", [&]<typename T>() {
      const T* u = updates.data<T>();
      T* o = out.data<T>();
      for (size_t r = 0; r < offsets.size(); ++r)
        for (int64_t j = 0; j < slice; ++j) {
          T& dst = o[offsets[r] * slice + j];
          dst = Combine<T>(red, dst, u[static_cast<int64_t>(r) * slice + j]);
        }
    });
  }
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL("TensorScatter", TensorScatter);

void OneHot(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const int64_t depth = array::ScalarInput(ctx, 1, "depth");
  const Tensor& on = ctx.input(2);
  const Tensor& off = ctx.input(3);
  if (depth < 0) ctx.Fail(fmt::format("depth must be non-negative, got {}", depth));
  if (on.num_elements() != 1 || off.num_elements() != 1 || on.dtype() != off.dtype())
    ctx.Fail(fmt::format("on_value and off_value must be scalars of one dtype, got {}{} and {}{}", DTypeName(on.dtype()),
                         ShapeToString(on.shape()), DTypeName(off.dtype()), ShapeToString(off.shape())));
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", -1);
  if (axis_attr < -1 || axis_attr > indices.rank())
    ctx.Fail(fmt::format("axis {} must be -1 or in [0, {}]", axis_attr, indices.rank()));
  const size_t axis = static_cast<size_t>(axis_attr == -1 ? indices.rank() : axis_attr);
  Shape out_shape = indices.shape();
  out_shape.insert(out_shape.begin() + static_cast<int64_t>(axis), depth);
  const int64_t prefix = Product(indices.shape(), 0, axis), suffix = Product(indices.shape(), axis, indices.shape().size());
  const auto idx = IntInput(ctx, 0, "indices");
  Tensor& out = ctx.AllocateOutput(0, on.dtype(), out_shape);
  DispatchMove(on.dtype(), "OneHot", [&]<typename T>() {
    const T on_v = Elems<T>(on)[0], off_v = Elems<T>(off)[0];
    T* o = Elems<T>(out);
    for (int64_t p = 0; p < prefix; ++p)
      for (int64_t d = 0; d < depth; ++d)
        for (int64_t s = 0; s < suffix; ++s) o[(p * depth + d) * suffix + s] = idx[static_cast<size_t>(p * suffix + s)] == d ? on_v : off_v;
  });
}
KILN_REFERENCE_KERNEL("OneHot", OneHot);

}  // namespace

}  // namespace kiln::reference
