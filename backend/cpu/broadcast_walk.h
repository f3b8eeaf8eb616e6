// How CPU kernels walk operands that broadcast into an output: each input's element stride along
// every output dim (0 where it broadcasts), with dims of size 1 dropped and neighbouring dims that
// every input walks the same way (contiguous together, or broadcast together) merged, so the
// common cases (same shapes, a per-channel or scalar operand) are one or two dims.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::backend::cpu {

struct BroadcastWalk {
  std::vector<int64_t> dims;                  // at least one (1 for a single element)
  std::vector<std::vector<int64_t>> strides;  // [input][dim]
};

// The walk of `inputs` into `out`; kInternal (naming `what`) when one does not broadcast into it.
BroadcastWalk CollapsedBroadcastWalk(const Shape& out, std::span<const Tensor> inputs, const char* what);

// The walk's rows (its innermost dim) in tasks of at most 16 Ki elements of one row, so that one
// long merged row splits too: fn(out_offset, len, offsets) for each, offsets[i] being input i's
// element offset where the task starts (N inputs). Tasks run on oneDNN's OpenMP team (idle
// between oneDNN calls) when the including file is built with OpenMP and the walk is large.
template <size_t N, typename Fn>
void ForEachRowChunk(const BroadcastWalk& w, const Fn& fn) {
  const size_t outer = w.dims.size() - 1;
  const int64_t inner = w.dims.back();
  int64_t rows = 1;
  for (size_t d = 0; d < outer; ++d) rows *= w.dims[d];
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = rows * chunks;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (tasks > 1 && rows * inner >= (int64_t{1} << 15))
#endif
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t row = task / chunks;
    const int64_t begin = (task % chunks) * kChunk, len = std::min(inner, begin + kChunk) - begin;
    std::array<int64_t, N> offsets{};
    int64_t rest = row;
    for (size_t d = outer; d-- > 0;) {
      const int64_t i = rest % w.dims[d];
      rest /= w.dims[d];
      for (size_t k = 0; k < N; ++k) offsets[k] += i * w.strides[k][d];
    }
    for (size_t k = 0; k < N; ++k) offsets[k] += begin * w.strides[k].back();
    fn(row * inner + begin, len, offsets);
  }
}

}  // namespace kiln::backend::cpu
