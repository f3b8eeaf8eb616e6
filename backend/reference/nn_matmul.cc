// Reference kernels: MatMul and BatchMatMul (packed GEMM accumulating in double for floating
// types and in int64 (wrapping on store) for integer types).
#include <fmt/format.h>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

void CheckNumeric(const KernelContext& ctx, DType dtype) {
  if (!IsFloating(dtype) && !IsInteger(dtype)) ctx.Fail(fmt::format("dtype {} is not supported", DTypeName(dtype)));
}

// Row-major [rows, cols] copy of a (possibly transposed) matrix at `src`.
template <typename Acc>
std::vector<Acc> Materialize(const Acc* src, int64_t rows, int64_t cols, bool transposed) {
  std::vector<Acc> m(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m[static_cast<size_t>(i * cols + j)] = transposed ? src[j * rows + i] : src[i * cols + j];
  return m;
}

// Gemm over blocks of rows on OpenMP threads. Each output element is computed as Gemm computes
// it however the rows are split (its sums run over the same k-blocks in the same order), so the
// result does not depend on the thread count. INT8 calibration runs whole networks here.
template <typename Acc>
void RowParallelGemm(int64_t M, const Acc* a, int64_t lda, const PackedB<Acc>& b, Acc* c, int64_t ldc) {
  constexpr int64_t kRows = 64;
  const int64_t blocks = (M + kRows - 1) / kRows;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic) if (blocks > 1 && M * b.K * b.N > (int64_t{1} << 20))
#endif
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t r0 = blk * kRows;
    Gemm(std::min(kRows, M - r0), a + r0 * lda, lda, b, c + r0 * ldc, ldc);
  }
}

template <typename Acc>
void MatMulImpl(KernelContext& ctx, Tensor& out) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const bool ta = ctx.attrs().GetOr<bool>("transpose_a", false), tb = ctx.attrs().GetOr<bool>("transpose_b", false);
  const int64_t M = out.dim(0), N = out.dim(1), K = ta ? a.dim(0) : a.dim(1);
  const std::vector<Acc> av = LoadAs<Acc>(a, "MatMul"), bv = LoadAs<Acc>(b, "MatMul");
  std::vector<Acc> cv(static_cast<size_t>(M * N), Acc(0));
  if (ctx.num_inputs() > 2) {
    const std::vector<Acc> bias = LoadAs<Acc>(ctx.input(2), "MatMul bias");
    for (int64_t i = 0; i < M; ++i) std::copy(bias.begin(), bias.end(), cv.begin() + i * N);
  }
  const std::vector<Acc> am = ta ? Materialize(av.data(), M, K, true) : std::vector<Acc>();
  const PackedB<Acc> pb = PackB(bv.data(), K, N, tb ? K : N, tb);
  RowParallelGemm(M, ta ? am.data() : av.data(), K, pb, cv.data(), N);
  StoreFrom(cv.data(), out, "MatMul");
}

void MatMulKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2)
    ctx.Fail(fmt::format("expected rank-2 operands, got {} and {}", ShapeStr(a.shape()), ShapeStr(b.shape())));
  if (a.dtype() != b.dtype()) ctx.Fail(fmt::format("operand dtypes differ: {} vs {}", DTypeName(a.dtype()), DTypeName(b.dtype())));
  CheckNumeric(ctx, a.dtype());
  const bool ta = ctx.attrs().GetOr<bool>("transpose_a", false), tb = ctx.attrs().GetOr<bool>("transpose_b", false);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t Kb = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  if (K != Kb)
    ctx.Fail(fmt::format("inner dimensions do not match: {} (transpose_a={}) vs {} (transpose_b={})", ShapeStr(a.shape()), ta,
                         ShapeStr(b.shape()), tb));
  if (ctx.num_inputs() > 2 && (ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != N))
    ctx.Fail(fmt::format("expected a bias of shape [{}], got {}", N, ShapeStr(ctx.input(2).shape())));
  Tensor& out = ctx.AllocateOutput(0, a.dtype(), {M, N});
  if (IsFloating(a.dtype())) MatMulImpl<double>(ctx, out);
  else MatMulImpl<int64_t>(ctx, out);
}
KILN_REFERENCE_KERNEL("MatMul", MatMulKernel);

template <typename Acc>
void BatchMatMulImpl(KernelContext& ctx, const Shape& bx, const Shape& by, const Shape& bout, int64_t M, int64_t K,
                     int64_t N, Tensor& out) {
  const bool adj_x = ctx.attrs().GetOr<bool>("adj_x", false), adj_y = ctx.attrs().GetOr<bool>("adj_y", false);
  const std::vector<Acc> xv = LoadAs<Acc>(ctx.input(0), "BatchMatMul"), yv = LoadAs<Acc>(ctx.input(1), "BatchMatMul");
  const int64_t nx = NumElements(bx), ny = NumElements(by), nout = NumElements(bout);
  std::vector<PackedB<Acc>> packed(static_cast<size_t>(ny));
  for (int64_t j = 0; j < ny; ++j) packed[static_cast<size_t>(j)] = PackB(yv.data() + j * K * N, K, N, adj_y ? K : N, adj_y);
  std::vector<Acc> xm;
  if (adj_x) {
    xm.resize(xv.size());
    for (int64_t i = 0; i < nx; ++i) {
      std::vector<Acc> t = Materialize(xv.data() + i * M * K, M, K, true);
      std::copy(t.begin(), t.end(), xm.begin() + i * M * K);
    }
  }
  const Acc* xs = adj_x ? xm.data() : xv.data();
  std::vector<Acc> cv(static_cast<size_t>(nout * M * N), Acc(0));
  // Output batch index -> operand batch indices (numpy broadcasting, right-aligned).
  const size_t R = bout.size();
  std::vector<int64_t> idx(R, 0);
  for (int64_t o = 0; o < nout; ++o) {
    int64_t ix = 0, iy = 0;
    for (size_t d = 0; d < R; ++d) {
      if (d + bx.size() >= R) {
        const int64_t dim = bx[d + bx.size() - R];
        ix = ix * dim + (dim == 1 ? 0 : idx[d]);
      }
      if (d + by.size() >= R) {
        const int64_t dim = by[d + by.size() - R];
        iy = iy * dim + (dim == 1 ? 0 : idx[d]);
      }
    }
    RowParallelGemm(M, xs + ix * M * K, K, packed[static_cast<size_t>(iy)], cv.data() + o * M * N, N);
    for (size_t d = R; d-- > 0;) {
      if (++idx[d] < bout[d]) break;
      idx[d] = 0;
    }
  }
  StoreFrom(cv.data(), out, "BatchMatMul");
}

void BatchMatMulKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.input(1);
  if (x.rank() < 2 || y.rank() < 2)
    ctx.Fail(fmt::format("expected operands of rank >= 2, got {} and {}", ShapeStr(x.shape()), ShapeStr(y.shape())));
  CheckNumeric(ctx, x.dtype());
  CheckNumeric(ctx, y.dtype());
  const DType out_dtype = ctx.attrs().Has("out_dtype") ? ctx.attrs().Type("out_dtype") : x.dtype();
  CheckNumeric(ctx, out_dtype);
  const bool adj_x = ctx.attrs().GetOr<bool>("adj_x", false), adj_y = ctx.attrs().GetOr<bool>("adj_y", false);
  const int rx = x.rank(), ry = y.rank();
  const int64_t M = x.dim(adj_x ? rx - 1 : rx - 2), K = x.dim(adj_x ? rx - 2 : rx - 1);
  const int64_t Ky = y.dim(adj_y ? ry - 1 : ry - 2), N = y.dim(adj_y ? ry - 2 : ry - 1);
  if (K != Ky)
    ctx.Fail(fmt::format("inner dimensions do not match: {} (adj_x={}) vs {} (adj_y={})", ShapeStr(x.shape()), adj_x,
                         ShapeStr(y.shape()), adj_y));
  const Shape bx(x.shape().begin(), x.shape().end() - 2), by(y.shape().begin(), y.shape().end() - 2);
  const size_t R = std::max(bx.size(), by.size());
  Shape bout(R);
  for (size_t d = 0; d < R; ++d) {
    const int64_t dx = d + bx.size() >= R ? bx[d + bx.size() - R] : 1;
    const int64_t dy = d + by.size() >= R ? by[d + by.size() - R] : 1;
    if (dx != dy && dx != 1 && dy != 1)
      ctx.Fail(fmt::format("batch dimensions of {} and {} cannot be broadcast", ShapeStr(x.shape()), ShapeStr(y.shape())));
    bout[d] = dx == 1 ? dy : dx;
  }
  Shape out_shape = bout;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor& out = ctx.AllocateOutput(0, out_dtype, out_shape);
  if (out.num_elements() == 0) return;
  if (IsFloating(x.dtype()) || IsFloating(y.dtype())) BatchMatMulImpl<double>(ctx, bx, by, bout, M, K, N, out);
  else BatchMatMulImpl<int64_t>(ctx, bx, by, bout, M, K, N, out);
}
KILN_REFERENCE_KERNEL("BatchMatMul", BatchMatMulKernel);

}  // namespace

}  // namespace kiln::reference::nn
