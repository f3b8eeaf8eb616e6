// Reference kernel: Einsum with TensorFlow's semantics (1 or 2 inputs, "..." broadcasting,
// repeated input labels = diagonals, labels only in one input and not the output = summed,
// repeated output labels = inflation onto a diagonal).
//
// Two inputs are contracted as a batched GEMM: each operand is gathered (summing its
// reduce-only labels and taking diagonals) into [batch, free, contract] / [batch, contract,
// free] layout, multiplied, and the [batch, free0, free1] result is scattered to the output.
#include <algorithm>

#include <fmt/format.h>

#include "backend/reference/nn_common.h"
#include "ir/ops/nn_util.h"

namespace kiln::reference::nn {
namespace {

// Calls fn(off_a, off_b) for every index of `dims` (row-major), offsets = sum(idx * stride).
template <typename Fn>
void ForEachIndex(const std::vector<int64_t>& dims, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, Fn&& fn) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  if (total == 0) return;
  const size_t R = dims.size();
  std::vector<int64_t> idx(R, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t i = 0; i < total; ++i) {
    fn(oa, ob);
    for (size_t d = R; d-- > 0;) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[d] < dims[d]) break;
      oa -= sa[d] * dims[d];
      ob -= sb[d] * dims[d];
      idx[d] = 0;
    }
  }
}

struct Operand {
  std::vector<int> labels;  // per axis
  Shape dims;
};

// out[target...] = sum over the operand's other labels of src, for the target labels in order
// with the given sizes. A target label absent from the operand or of size 1 there broadcasts.
template <typename Acc>
std::vector<Acc> Gather(const std::vector<Acc>& src, const Operand& op, const std::vector<int>& target,
                        const std::vector<int64_t>& label_size) {
  const size_t rank = op.labels.size();
  std::vector<int64_t> axis_stride(rank, 1);
  for (size_t a = rank; a-- > 1;) axis_stride[a - 1] = axis_stride[a] * op.dims[a];
  // Unique labels of the operand: its dim and summed stride (diagonal for repeats).
  std::vector<int> uniq;
  std::vector<int64_t> udim, ustride;
  for (size_t a = 0; a < rank; ++a) {
    auto it = std::find(uniq.begin(), uniq.end(), op.labels[a]);
    if (it == uniq.end()) {
      uniq.push_back(op.labels[a]);
      udim.push_back(op.dims[a]);
      ustride.push_back(axis_stride[a]);
    } else {
      ustride[static_cast<size_t>(it - uniq.begin())] += axis_stride[a];
    }
  }
  std::vector<int64_t> dims, sa, sb;
  int64_t out_size = 1;
  for (int l : target) out_size *= label_size[static_cast<size_t>(l)];
  int64_t stride = out_size;
  for (int l : target) {
    const int64_t n = label_size[static_cast<size_t>(l)];
    stride = n == 0 ? 0 : stride / n;
    auto it = std::find(uniq.begin(), uniq.end(), l);
    const size_t u = static_cast<size_t>(it - uniq.begin());
    dims.push_back(n);
    sa.push_back(it == uniq.end() || udim[u] == 1 ? 0 : ustride[u]);
    sb.push_back(stride);
  }
  for (size_t u = 0; u < uniq.size(); ++u) {
    if (std::find(target.begin(), target.end(), uniq[u]) != target.end()) continue;
    dims.push_back(udim[u]);
    sa.push_back(ustride[u]);
    sb.push_back(0);
  }
  std::vector<Acc> out(static_cast<size_t>(out_size), Acc(0));
  ForEachIndex(dims, sa, sb, [&](int64_t a, int64_t b) { out[static_cast<size_t>(b)] += src[static_cast<size_t>(a)]; });
  return out;
}

template <typename Acc>
void EinsumImpl(KernelContext& ctx, const ir::nn::EinsumSpec& spec, const std::vector<Operand>& ops,
                const std::vector<int64_t>& size, Tensor& out) {
  const int L = spec.num_labels();
  std::vector<std::vector<Acc>> vals;
  for (int i = 0; i < ctx.num_inputs(); ++i) vals.push_back(LoadAs<Acc>(ctx.input(i), "Einsum"));
  auto in_op = [&](size_t i, int l) {
    return std::find(spec.inputs[i].begin(), spec.inputs[i].end(), l) != spec.inputs[i].end();
  };
  auto in_out = [&](int l) { return std::find(spec.output.begin(), spec.output.end(), l) != spec.output.end(); };
  // Present with the full size (not broadcast from 1) in operand i.
  auto full_in_op = [&](size_t i, int l) {
    for (size_t a = 0; a < spec.inputs[i].size(); ++a)
      if (spec.inputs[i][a] == l && ops[i].dims[a] == size[static_cast<size_t>(l)]) return true;
    return false;
  };
  std::vector<int> result_labels;
  std::vector<Acc> result;
  if (ops.size() == 1) {
    for (int l : spec.output)
      if (std::find(result_labels.begin(), result_labels.end(), l) == result_labels.end()) result_labels.push_back(l);
    result = Gather(vals[0], ops[0], result_labels, size);
  } else {
    std::vector<int> batch, free0, free1, contract;
    for (int l = 0; l < L; ++l) {
      const bool a = in_op(0, l), b = in_op(1, l), o = in_out(l);
      if (spec.is_bcast(l)) {
        const bool fa = full_in_op(0, l), fb = full_in_op(1, l);
        if (fa && !fb) free0.push_back(l);
        else if (fb && !fa) free1.push_back(l);
        else batch.push_back(l);
      } else if (a && b) {
        (o ? batch : contract).push_back(l);
      } else if (o) {
        (a ? free0 : free1).push_back(l);
      }
    }
    auto concat = [](std::vector<int> x, const std::vector<int>& y, const std::vector<int>& z) {
      x.insert(x.end(), y.begin(), y.end());
      x.insert(x.end(), z.begin(), z.end());
      return x;
    };
    auto prod = [&](const std::vector<int>& ls) {
      int64_t p = 1;
      for (int l : ls) p *= size[static_cast<size_t>(l)];
      return p;
    };
    const std::vector<Acc> A = Gather(vals[0], ops[0], concat(batch, free0, contract), size);
    const std::vector<Acc> B = Gather(vals[1], ops[1], concat(batch, contract, free1), size);
    const int64_t nb = prod(batch), M = prod(free0), K = prod(contract), N = prod(free1);
    result.assign(static_cast<size_t>(nb * M * N), Acc(0));
    for (int64_t bi = 0; bi < nb; ++bi) {
      const PackedB<Acc> pb = PackB(B.data() + bi * K * N, K, N, N, false);
      Gemm(M, A.data() + bi * M * K, K, pb, result.data() + bi * M * N, N);
    }
    result_labels = concat(batch, free0, free1);
  }
  // Scatter the result (unique labels) into the output (labels may repeat: diagonal inflation).
  const Shape& os = out.shape();
  std::vector<int64_t> out_stride(os.size(), 1);
  for (size_t a = os.size(); a-- > 1;) out_stride[a - 1] = out_stride[a] * os[a];
  std::vector<int64_t> dims, sa, sb;
  int64_t stride = 1;
  for (int l : result_labels) stride *= size[static_cast<size_t>(l)];
  for (int l : result_labels) {
    const int64_t n = size[static_cast<size_t>(l)];
    stride = n == 0 ? 0 : stride / n;
    int64_t s = 0;
    for (size_t a = 0; a < spec.output.size(); ++a)
      if (spec.output[a] == l) s += out_stride[a];
    dims.push_back(n);
    sa.push_back(stride);
    sb.push_back(s);
  }
  std::vector<Acc> ov(static_cast<size_t>(out.num_elements()), Acc(0));
  ForEachIndex(dims, sa, sb, [&](int64_t a, int64_t b) { ov[static_cast<size_t>(b)] = result[static_cast<size_t>(a)]; });
  StoreFrom(ov.data(), out, "Einsum");
}

void EinsumKernel(KernelContext& ctx) {
  const std::string& eq = ctx.attrs().Str("equation");
  std::vector<int> ranks;
  std::vector<Operand> ops;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    ranks.push_back(ctx.input(i).rank());
    if (ctx.input(i).dtype() != ctx.input(0).dtype())
      ctx.Fail(fmt::format("input dtypes differ: {} vs {}", DTypeName(ctx.input(0).dtype()), DTypeName(ctx.input(i).dtype())));
  }
  const DType dtype = ctx.input(0).dtype();
  if (!IsFloating(dtype) && !IsInteger(dtype)) ctx.Fail(fmt::format("dtype {} is not supported", DTypeName(dtype)));
  ir::nn::EinsumSpec spec;
  const std::string err = ir::nn::ParseEinsum(eq, ranks, &spec);
  if (!err.empty()) ctx.Fail(err);
  std::vector<int64_t> size(static_cast<size_t>(spec.num_labels()), -1);
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    Operand op{spec.inputs[static_cast<size_t>(i)], ctx.input(i).shape()};
    for (size_t a = 0; a < op.labels.size(); ++a) {
      const int l = op.labels[a];
      int64_t& s = size[static_cast<size_t>(l)];
      const int64_t d = op.dims[a];
      if (s < 0 || (spec.is_bcast(l) && s == 1)) {
        s = d;
      } else if (d != s && !(spec.is_bcast(l) && d == 1)) {
        if (spec.is_bcast(l))
          ctx.Fail(fmt::format("equation '{}': broadcast dimensions of {} are incompatible", eq, ShapeStr(op.dims)));
        ctx.Fail(fmt::format("equation '{}': label '{}' has size {} but input {} {} has size {} for it", eq,
                             spec.names[static_cast<size_t>(l)], s, i, ShapeStr(op.dims), d));
      }
    }
    ops.push_back(std::move(op));
  }
  Shape out_shape;
  for (int l : spec.output) out_shape.push_back(std::max<int64_t>(size[static_cast<size_t>(l)], 0));
  Tensor& out = ctx.AllocateOutput(0, dtype, out_shape);
  if (IsFloating(dtype)) EinsumImpl<double>(ctx, spec, ops, size, out);
  else EinsumImpl<int64_t>(ctx, spec, ops, size, out);
}
KILN_REFERENCE_KERNEL("Einsum", EinsumKernel);

}  // namespace

}  // namespace kiln::reference::nn
